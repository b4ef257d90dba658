"""The paper-scale path offline: every stage runner on tiny random-init Qwen3 and Llama checkpoints
with their real chat formats, a tiny Llama-Guard-style reward judge, R2D-R1-format traces and 4 JBB
prompts; the CLI; and params files that fail early with the key named."""

import json

import pytest
import yaml
from paper_fixtures import GOALS, paper_params

from craft.cli import main
from craft.config import ConfigError
from craft.io import project_root
from craft.stages import completions as completions_module
from craft.stages import load_params, open_run
from craft.stages.attacks import attacks_stage
from craft.stages.build import build_stage
from craft.stages.evaluate import default_methods, evaluate_stage
from craft.stages.lclr import lclr_stage
from craft.stages.probe import probe_stage
from craft.stages.r2l import r2l_stage

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=["qwen3", "llama"])
def run(request, tmp_path_factory):
    return open_run(load_params(paper_params(tmp_path_factory.mktemp(f"paper-{request.param}"), request.param)),
                    progress=False)


def test_every_stage_end_to_end(run, monkeypatch):
    info = build_stage(run).info
    assert info["num_hidden_layers"] == 4 and info["hidden_size"] == 64

    probe = probe_stage(run)
    assert set(probe.sweep.layer) == {1, 2} and probe.metrics["n_train_traces"] + probe.metrics["n_test_traces"] == 9
    # no unseen-hazard split and no hazards at paper scale: chosen on the held-out traces, no control task
    assert probe.metrics["probe_choice_split"] == "test" and probe.binary.control_auroc.isna().all()
    assert set(probe.binary.layer) == {0, 1, 2}

    lclr = lclr_stage(run)
    assert len(lclr.history["paper"]) == 2 and 0.0 <= lclr.metrics["lclr_p_safe_mean_safe"] <= 1.0
    cfg = json.loads((run.heads_dir() / "lclr_config.json").read_text())
    assert (cfg["layer"], cfg["pool"], cfg["d_model"]) == (2, "mean", 64)

    results = r2l_stage(run)
    for variant in ("craft", "output_only"):
        r = results[variant, 0]
        assert r.steps == 2 and not r.cached and r.world_size == 1 and list(r.history.step) == [0, 2]
        terms = {k for row in r.log_history for k in row if k.startswith("rewards/")}
        assert ("rewards/r_ls/mean" in terms) == (variant == "craft") and "rewards/r_txt/mean" in terms
        assert not list(r.path.glob("checkpoint-*")), "a finished run keeps no optimiser checkpoints"
    assert r2l_stage(run, ["craft"])["craft", 0].cached

    ev = evaluate_stage(run, default_methods(run))
    records = ev.records
    assert set(records.method) == {"base", "craft", "output_only"}
    assert len(records) == 3 * len(GOALS) * 2 and set(records.goal) == set(GOALS)
    assert list(ev.table.index) == ["base", "craft", "output_only"]
    assert {"craft_rel_reasoning_improvement", "base_table_reasoning_harm"} <= set(ev.headline)
    assert records[["reasoning_harm", "response_harm"]].stack().between(0, 1).all()

    # a rerun reuses the cached completions and judged records: nothing is generated again
    monkeypatch.setattr(completions_module, "generate", lambda *a, **k: pytest.fail("regenerated cached completions"))
    again = evaluate_stage(run, default_methods(run))
    assert again.records["answer"].tolist() == records["answer"].tolist()

    # adaptive attacks (notebook 07): GCG through nanogcg and the fuzzer from the PAP templates, on the real format
    attacked = attacks_stage(run)
    assert set(attacked.per_seed.policy) == {"base", "output_only", "craft"}
    assert set(attacked.per_seed.attack) == {"none", "gcg", "fuzz", "cot_hijack"}
    assert set(attacked.searches.goal) == set(GOALS[:2])
    hijack = attacked.searches[attacked.searches.attack == "cot_hijack"]     # GSM8K worked problems, then the goal
    assert all(p.startswith("What is 2 plus 3?") and p.endswith(g) for p, g in zip(hijack.prompt, hijack.goal))
    assert attacked.records.p_z.between(0, 1).all() and "cot_hijack_p_z_base" in attacked.metrics
    gcg = attacked.searches[attacked.searches.attack == "gcg"]
    assert all(p.startswith(g) and p != g for p, g in zip(gcg.prompt, gcg.goal))
    assert {"gcg_reasoning_asr_craft", "gcg_final_asr_base", "fuzz_reasoning_asr_output_only"} <= set(attacked.metrics)


def test_the_paper_source_attacks_direct_requests_only(run):
    """The dressed-up and coded regimes are the organism's: asked of the paper-scale source, they are a clear error."""
    for regime in ("dressed", "coded"):
        with pytest.raises(ValueError, match=r"direct requests only.*attacks\.regimes: \[direct\]"):
            run.source.attack_goals(1, regime)


def test_cli_runs_the_same_stages(tmp_path, capsys):
    params = paper_params(tmp_path, "qwen3", judge="refusal")
    summary = main(["lclr", "--config", str(params), "--no-progress"])
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["stage"] == "lclr" and printed["summary"]["n_test_traces"] == summary["n_test_traces"] > 0
    result = main(["r2l", "--config", str(params), "--variant", "craft", "--no-progress"])
    assert result["craft-seed0"]["steps"] == 2
    metrics = main(["evaluate", "--config", str(params), "--no-progress"])
    assert {"base_reasoning_harm_rate", "craft_reasoning_harm_rate", "craft_rel_reasoning_improvement"} <= set(metrics)
    main(["r2l", "--config", str(params), "--variant", "output_only", "--no-progress"])
    attacked = main(["attacks", "--config", str(params), "--no-progress"])
    assert attacked["n_attack_seeds"] == 1 and 0.0 <= attacked["fuzz_final_asr_craft"] <= 1.0


def test_cli_names_a_missing_config(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["lclr", "--config", str(tmp_path / "nope.yaml")])
    assert e.value.code == 1
    assert capsys.readouterr().err == f"error: config file {tmp_path / 'nope.yaml'} does not exist\n"
    with pytest.raises(ConfigError, match="does not exist"):
        main(["lclr", "--config", str(tmp_path / "nope.yaml"), "--debug"])


def _paper(**changes):
    from craft.config import deep_merge, load_yaml

    return deep_merge(load_yaml(project_root() / "params" / "paper-qwen3-4b-thinking.yaml"), changes)


@pytest.mark.parametrize("bad, message", [
    ({"latent": {"layr": 3}}, "unknown key(s) ['layr']"),
    ({"r2l": {"variants": ["craft", "magic"]}}, "must be a non-empty list of"),
    ({"r2l": {"grpo": {"stepz": 3}}}, "r2l.grpo.stepz is not a field of trl.GRPOConfig"),
    ({"r2l": {"variant": "craft"}}, "r2l.variant is set by the pipeline"),
    ({"lclr": {"epochs": "three"}}, "lclr.epochs: expected an int"),
    ({"source": {"reward_judge": {"kind": "llama_guard", "model": ""}}}, "needs model"),
    ({"source": {"attacks": ["gcg"]}}, "['gcg'] not in"),
    ({"attacks": {"methods": ["autodan"]}}, "must be a non-empty list of ['gcg', 'fuzz', 'cot_hijack']"),
    ({"attacks": {"gcg": {"num_stepz": 3}}}, "num_stepz"),
    ({"source": {"data_paths": {"jbb": "/data"}}}, "unknown key(s) ['jbb']"),
    ({"source": {"train_dtype": "fp8"}}, "source.train_dtype: 'fp8' is not one of"),
    ({"r2l": {"grpo": {"beta": -1}}}, "r2l.grpo.beta must be >= 0"),
    ({"r2l": {"w_txt": -0.4}}, "r2l.w_txt must be >= 0"),
    ({"r2l": {"w_lat": float("nan")}}, "r2l.w_lat must be a finite number"),
    ({"r2l": {"grpo": {"top_p": 7}}}, "r2l.grpo.top_p must be <= 1"),
    ({"r2l": {"grpo": {"temperature": 0}}}, "r2l.grpo.temperature must be > 0"),
    ({"evaluate": {"max_new_tokens": 0}}, "evaluate.max_new_tokens must be >= 1"),
    ({"evaluate": {"temperature": 0}}, "evaluate.temperature must be > 0"),
    ({"seed": True}, "seed: expected an int, got bool"),
    ({"stepz": 5}, "unknown top-level key(s) ['stepz']"),
])
def test_bad_config_fails_early_and_names_the_key(bad, message):
    with pytest.raises(ConfigError) as e:
        load_params(_paper(**bad))
    assert message in str(e.value)


def test_a_paper_file_has_no_defaults():
    data = _paper()
    del data["source"]["reward_judge"], data["lclr"]
    with pytest.raises(ConfigError, match=r"does not set \['lclr', 'source.reward_judge'\]"):
        load_params(data)
    data = _paper()
    del data["r2l"]["grpo"]["beta"]
    with pytest.raises(ConfigError, match=r"r2l\.grpo must set \['beta'\]"):
        load_params(data)


def test_missing_pieces_say_what_to_do(tmp_path):
    run = open_run(load_params(_paper(run_dir=str(tmp_path / "run"), source={"r2d_path": ""})), progress=False)
    with pytest.raises(ValueError, match="r2d_path is empty"):
        run.source.traces("lclr", "train")
    with pytest.raises(FileNotFoundError, match=r"run notebook 02 \(or `craft lclr"):
        r2l_stage(run, ["craft"])


def test_params_files_parse():
    files = sorted((project_root() / "params").glob("*.yaml"))
    scales = {f.stem: load_params(f).scale for f in files if f.stem != "ci"}
    assert scales == {"organism": "organism", "quick": "organism", "paper-qwen3-4b-thinking": "paper",
                      "paper-r1-distill-llama-8b": "paper", "smoke-qwen3-0.6b": "paper", "smollm2-135m": "paper",
                      "smollm2-135m-quick": "paper"}
    models = {load_params(project_root() / "params" / f"{s}.yaml").source.model for s in scales if scales[s] == "paper"}
    assert {"Qwen/Qwen3-4B-Thinking-2507", "deepseek-ai/DeepSeek-R1-Distill-Llama-8B"} <= models
    ci = yaml.safe_load((project_root() / "params" / "ci.yaml").read_text())
    assert load_params(None, **ci).run_dir == "build/ci-run"
