"""Every stage that reads a trained policy or trained heads checks them against the current params first.

On a tiny organism with its heads, an output-only and a CRAFT policy (notebooks 00, 02, 03) and the
baselines (notebook 04): change one upstream key and re-run only a consumer (evaluate, monitor,
attacks, baselines), and it refuses with the key that changed and the command that rebuilds it;
change nothing, and it reuses what is there."""

import json
import shutil

import pandas as pd
import pytest
from organism_fixtures import tiny_params, trained_run

from craft.io import DamagedFileError
from craft.runs import StaleArtifactError
from craft.stages import baselines as baselines_module
from craft.stages import load_params, open_run
from craft.stages.attacks import attack_policies, attacks_stage
from craft.stages.baselines import baselines_stage, trained
from craft.stages.evaluate import default_methods, evaluate_stage
from craft.stages.monitor import CONTROL, monitor_stage, trained_policies
from craft.stages.r2l import r2l_artifact

pytestmark = pytest.mark.slow

ATTACKS = {"n_goals": 1, "n_seeds": 1, "samples": 1, "workers": 1, "methods": ["fuzz"], "regimes": ["direct"],
           "fuzz": {"query_budget": 2, "goals_per_mutant": 1, "mutants_per_round": 1}}


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    """Notebooks 00, 02, 03 (output-only and CRAFT, seed 0) and 04's baselines on the tiny organism."""
    root = tmp_path_factory.mktemp("upstream")
    baselines_stage(trained_run(root, attacks=ATTACKS))
    return root


def consumer(upstream, tmp_path, **changes):
    """A copy of the upstream run opened with ``changes`` (deep-merged over the tiny params)."""
    shutil.copytree(upstream / "run", tmp_path / "run")
    return consumer_of(tmp_path, **changes)


def consumer_of(tmp_path, **changes):
    """The run already copied to ``tmp_path`` opened with ``changes``."""
    return open_run(load_params(None, **tiny_params(tmp_path, **{"attacks": ATTACKS, **changes})), progress=False)


# (changed params, the key the error must name, the notebook that rebuilds it)
R2L_CHANGE = ({"r2l": {"w_cons": 0.1}}, r"r2l\.w_cons: 0\.2 -> 0\.1", "notebook 03")
LCLR_CHANGE = ({"lclr": {"epochs": 2}}, r"lclr\.epochs: 1 -> 2", "notebook 02")
ORGANISM_CHANGE = ({"organism": {"sft": {"steps": 41}}}, r"organism\.sft\.steps: 40 -> 41", "notebook 00")


def refuses(call, key: str, maker: str):
    with pytest.raises(StaleArtifactError, match=key) as error:
        call()
    assert maker in str(error.value) and "Nothing was changed" in str(error.value)


CONSUMERS = {"evaluate": evaluate_stage, "monitor": monitor_stage, "attacks": attacks_stage,
             "baselines": baselines_stage}
# what each consumer reads: evaluate and monitor the heads too (through the CRAFT policy), baselines the organism only
CASES = [(name, change) for name in ("evaluate", "monitor") for change in ("r2l", "lclr", "organism")] + \
        [("attacks", "r2l"), ("attacks", "organism"), ("baselines", "organism")]
CHANGES = {"r2l": R2L_CHANGE, "lclr": LCLR_CHANGE, "organism": ORGANISM_CHANGE}


@pytest.mark.parametrize("name, change", CASES, ids=[f"{n}-{c}" for n, c in CASES])
def test_a_consumer_refuses_a_stale_upstream(upstream, tmp_path, name, change):
    changes, key, maker = CHANGES[change]
    run = consumer(upstream, tmp_path, **changes)
    refuses(lambda: CONSUMERS[name](run), key, maker)
    assert not run.stage_dir("attacks").exists(), "nothing is written before the check"


def test_evaluate_refuses_a_stale_baseline(upstream, tmp_path):
    run = consumer(upstream, tmp_path, baselines={"sft": {"steps": 3}})
    refuses(lambda: trained(run), r"config\.steps: 2 -> 3", "notebook 04")


def test_evaluate_reuses_what_is_current(upstream, tmp_path):
    run = consumer(upstream, tmp_path)
    methods = default_methods(run, baselines=trained(run))
    assert list(methods) == ["base", "sft_offpolicy", "intervened_po", "output_only", "craft"]
    assert methods["craft"] == str(run.r2l_dir("craft", 0) / "model")
    assert set(evaluate_stage(run, methods).summary) == set(methods)


def test_monitor_reuses_what_is_current(upstream, tmp_path):
    run = consumer(upstream, tmp_path)
    assert trained_policies(run) == {"craft-seed0": str(run.r2l_dir("craft", 0) / "model")}
    result = monitor_stage(run)
    # the positive control of the obfuscation check is trained on first use, into the stage's folder, and checked
    assert set(result.rollouts.policy) == {"base", "craft-seed0", CONTROL}
    assert (run.r2l_dir("obfuscator", 0, "monitor") / "DONE").is_file()
    control = r2l_artifact(run, "obfuscator", 0, stage="monitor", eval_every=0)
    assert control.identity["reasoning_reward_judge"] == "reasoning"     # R_dis: the exact judge, coded text too
    assert control.identity["heads"] is not None and "r2l.w_cons" in control.ignore
    assert list(result.verdicts.index) == ["craft-seed0", CONTROL]
    assert isinstance(result.metrics["obfuscation_positive_control_flagged"], bool)
    # the thresholds are fixed on one half of the base's benign prompts, the false alarms reported on the other
    base = result.rollouts[result.rollouts.policy == "base"]
    benign = base[base.kind != "harmful"]
    assert set(benign.benign_split) == {"fit", "heldout"} and set(base[base.kind == "harmful"].benign_split) == {""}
    assert not set(benign[benign.benign_split == "fit"].prompt) & set(benign[benign.benign_split == "heldout"].prompt)
    m = result.metrics
    assert m["monitor_false_alarm_benign_fit"] <= run.params.monitor.false_alarm
    assert m["monitor_n_benign_heldout"] == (benign.benign_split == "heldout").sum()
    assert m["monitor_false_alarm_benign_heldout"] == (benign[benign.benign_split == "heldout"].alarm >= 0).mean()
    # cached under what made it: a second call reads the result back, exactly
    folder = run.stage_dir("monitor") / "result"
    done = (folder / "DONE").stat().st_mtime_ns
    again = monitor_stage(run)
    for name in ("rollouts", "stopped", "obfuscation", "verdicts"):
        pd.testing.assert_frame_equal(getattr(again, name), getattr(result, name), check_exact=True)
    assert json.dumps(again.metrics) == json.dumps(result.metrics)
    assert (again.threshold, again.text_threshold) == (result.threshold, result.text_threshold)
    # a damaged cache file is named, with what to do, never read in silence
    saved = (folder / "rollouts.json").read_text()
    (folder / "rollouts.json").write_text(saved[: len(saved) // 2])
    with pytest.raises(DamagedFileError, match=r"rollouts\.json is damaged .*delete .*result"):
        monitor_stage(run)
    (folder / "rollouts.json").write_text(saved)
    # another threshold rule is computed afresh and leaves the cache as it is
    other = monitor_stage(run, threshold_rule=lambda minima, budget: 0.0)
    assert other.threshold == 0.0 and (folder / "DONE").stat().st_mtime_ns == done
    # a changed monitor setting computes the result again, under its own identity
    changed = consumer_of(tmp_path, monitor={"false_alarm": 0.5})
    assert monitor_stage(changed).metrics["monitor_false_alarm_benign_fit"] <= 0.5
    assert json.loads((folder / "identity.json").read_text())["monitor"]["false_alarm"] == 0.5


def test_attacks_reuse_what_is_current(upstream, tmp_path):
    run = consumer(upstream, tmp_path)
    assert attack_policies(run)[("craft", 0)] == str(run.r2l_dir("craft", 0) / "model")
    assert set(attacks_stage(run).per_seed.policy) == {"base", "output_only", "craft"}


def test_baselines_reuse_what_is_current(upstream, tmp_path, monkeypatch):
    run = consumer(upstream, tmp_path)
    monkeypatch.setitem(baselines_module._TRAIN, "sft_offpolicy", (*baselines_module._TRAIN["sft_offpolicy"][:3],
                        lambda *a, **k: pytest.fail("retrained a finished baseline")))
    result = baselines_stage(run)
    assert result == {m: str(run.baseline_dir(m) / "policy") for m in ("sft_offpolicy", "intervened_po")}
    assert result.metrics["sft_offpolicy_n_examples"] == 16
