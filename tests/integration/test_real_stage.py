"""Notebook 08's stage end to end, offline, on a tiny Llama with a Llama-3 chat template (no <think>, like
SmolLM2) in place of the packaged model: the params file of the third size with its model swapped and its
sizes shrunk, the data that ship with the package."""

import math

import pytest
import yaml

from craft.io import project_root
from craft.stages import load_params, open_run
from craft.stages import real as real_module
from craft.stages.real import real_stage
from craft.testing.tiny import build_tiny_checkpoint

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stage(tmp_path_factory):
    root = tmp_path_factory.mktemp("real")
    model = str(build_tiny_checkpoint(root / "tiny-instruct", arch="llama", template="llama3", hidden_size=64,
                                      num_layers=3))
    cfg = yaml.safe_load((project_root() / "params" / "smollm2-135m.yaml").read_text())
    cfg["source"] |= {"model": model, "max_traces": 12, "monitor_prompts": 2}
    cfg["source"]["reward_judge"]["model"] = model
    cfg["latent"]["layer"] = 2
    cfg["lclr"] |= {"epochs": 1, "proj_hidden": 16, "proj_dim": 8}
    cfg["r2l"]["grpo"] |= {"max_steps": 2, "max_completion_length": 8, "save_steps": 1}
    cfg["evaluate"]["max_new_tokens"] = 4
    path = root / "tiny-real.yaml"
    path.write_text(yaml.safe_dump(cfg))
    outer = open_run(load_params(None, run_dir=str(root / "run"), figures_dir=str(root / "figures"),
                                 real=str(path)), progress=False)
    return (*real_stage(outer), path)


def test_the_real_stage_runs_every_part(stage):
    real, result, _ = stage
    assert real.root.name == "08_read_real_model_latents" and real.root.parent.name == "run"
    assert set(result.sweep.set) == {"xstest", "jbb"} and set(result.sweep.layer) == {0, 1, 2, 3}
    assert set(result.sweep["pool"]) == {"mean", "max", "last"}
    assert list(result.controls.n) == [450, 200] and result.controls.best_test_auroc.between(0, 1).all()
    # the judge's rows are the held-out behaviours' labelled responses, each judged by both judges
    test = real.source.traces("lclr", "test")
    assert len(result.judged) == len(test) > 0 and set(result.agreement.judge_b) == {"latent", "refusal"}
    assert (result.agreement.n == len(test)).all() and result.judged.latent_p_safe.between(0, 1).all()
    # no request is in both the judge's training and its test rows
    train_goals = {t.prompt for t in real.source.traces("lclr", "train")}
    assert not train_goals & set(result.judged.request)
    # the model's own answers: held-out behaviours (harmful and benign) and as many of XSTest's safe prompts
    assert set(result.behaviour.kind) == {"harmful", "benign"} and set(result.behaviour.benchmark) == {"jbb", "xstest"}
    r2l = result.r2l
    assert r2l.steps == 2 and "rewards/r_ls/mean" in {k for row in r2l.log_history for k in row}
    m = result.metrics
    for key in ("real_probe_auroc_best_xstest", "real_probe_best_layer_jbb", "real_probe_auroc_layer0_xstest",
                "real_bow_auroc_jbb", "latent_judge_kappa_test", "latent_judge_auroc_test",
                "refusal_detector_kappa_test", "real_r2l_seconds_per_step", "real_r2l_peak_rss_mb"):
        assert key in m and not (isinstance(m[key], float) and math.isnan(m[key])), key
    assert m["real_r2l_rewards_finite"] is True and m["real_r2l_seconds_per_step"] > 0


def test_a_rerun_reuses_every_artifact(stage, monkeypatch):
    real, first, path = stage

    monkeypatch.setattr(real_module, "_sweep", lambda *a, **k: pytest.fail("the prompt sweep ran again"))
    outer = open_run(load_params(None, run_dir=str(real.root.parent), figures_dir=real.params.figures_dir,
                                 real=str(path)), progress=False)
    _, again = real_stage(outer)
    assert again.r2l.cached and again.controls.equals(first.controls)
    assert again.judged.latent_p_safe.tolist() == pytest.approx(first.judged.latent_p_safe.tolist())
