"""The paper-scale path offline: every stage of craft.pipeline (and its CLIs) on tiny random-init
Qwen3 and Llama checkpoints with their real chat formats, a tiny Llama-Guard-style reward judge,
R2D-R1-format traces and 4 JBB prompts (issue: real-model code paths tested offline)."""

import json

import pytest

from craft import pipeline
from craft.cli import cli
from craft.config import ConfigError
from craft.paper_config import load_paper_run, paper_run

from paper_fixtures import GOALS, paper_params

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module", params=["qwen3", "llama"])
def run(request, tmp_path_factory):
    return load_paper_run(paper_params(tmp_path_factory.mktemp(f"paper-{request.param}"), request.param))


def test_every_stage_end_to_end(run, monkeypatch):
    cfg, run_dir = run.config, run.run_dir
    info = pipeline.policy_stage(cfg, run_dir)
    assert info["has_chat_template"] and info["num_hidden_layers"] == 4 and info["layer"] == 2

    probe = pipeline.probe_stage(cfg, run_dir)
    assert probe["n_train"] + probe["n_test"] == 9 and probe["pca"].shape == (probe["n_train"], 2)

    lclr = pipeline.lclr_stage(cfg, run_dir, progress=False)
    assert len(lclr["history"]) == 2 and 0.0 <= lclr["metrics"]["p_safe_mean_safe"] <= 1.0
    heads = pipeline.heads_dir(run_dir)
    assert json.loads((heads / "latent.json").read_text()) == {"layer": 2, "pool": "mean"}

    for variant in ("craft", "output_only"):
        result = pipeline.r2l_stage(cfg, run_dir, variant, progress=False)
        assert result["steps"] == 2 and not result["cached"] and result["world_size"] == 1
        out = pipeline.policy_dir(run_dir, variant).parent
        logged = json.loads((out / "log_history.json").read_text())
        terms = {k for row in logged for k in row if k.startswith("rewards/")}
        assert ("rewards/r_ls/mean" in terms) == (variant == "craft") and "rewards/r_txt/mean" in terms
        assert not list(out.glob("checkpoint-*")), "a finished run keeps no optimiser checkpoints"
    assert pipeline.r2l_stage(cfg, run_dir, "craft")["cached"]

    ev = pipeline.evaluate_stage(cfg, run_dir, progress=False)
    records, m = ev["records"], ev["metrics"]
    assert set(records.method) == {"base", "craft", "output_only"}
    assert len(records) == 3 * len(GOALS) * 2 and set(records.goal) == set(GOALS)
    assert list(ev["table"].index) == ["base", "craft", "output_only"]
    for key in ("base_reasoning_harm", "craft_response_harm", "craft_ssa_rate", "craft_rel_reasoning_improvement"):
        assert key in m
    assert records[["reasoning_harm", "response_harm"]].stack().between(0, 1).all()

    # a rerun reuses the cached completions: nothing is generated again
    monkeypatch.setattr(pipeline, "generate", lambda *a, **k: pytest.fail("regenerated cached completions"))
    again = pipeline.evaluate_stage(cfg, run_dir, progress=False)
    assert again["records"]["answer"].tolist() == records["answer"].tolist()


def test_cli_runs_the_same_stage(tmp_path, capsys):
    params = paper_params(tmp_path, "qwen3", judge="refusal")
    summary = cli("lclr", ["--config", str(params), "--no-progress"])
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["stage"] == "lclr" and printed["summary"]["n_test"] == summary["n_test"] > 0
    result = cli("r2l", ["--config", str(params), "--variant", "craft", "--no-progress"])
    assert result["craft"]["steps"] == 2
    metrics = cli("evaluate", ["--config", str(params), "--no-progress"])
    assert {"base_reasoning_harm", "craft_reasoning_harm"} <= set(metrics)


def test_cli_names_a_missing_config(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        cli("lclr", ["--config", str(tmp_path / "nope.yaml")])


def _params(**paper):
    return {"run_dir": "runs/x", "figures_dir": "", "paper": {"model": "some/model", **paper}}


@pytest.mark.parametrize("bad, message", [
    ({"layr": 3}, "unknown key(s) ['layr']"),
    ({"variants": ["craft", "magic"]}, "['magic'] not in"),
    ({"r2l": {"stepz": 3}}, "paper.r2l: unknown key(s) ['stepz']"),
    ({"r2l": {"variant": "craft"}}, "set by the pipeline"),
    ({"lclr": {"epochs": "three"}}, "paper.lclr.epochs: expected int"),
    ({"reward_judge": {"kind": "llama_guard"}}, "needs model"),
    ({"attacks": ["gcg"]}, "['gcg'] not in"),
    ({"data_paths": {"jbb": "/data"}}, "paper.data_paths: unknown key(s) ['jbb']"),
    ({"train_dtype": "fp8"}, "paper.train_dtype"),
])
def test_bad_config_fails_early_and_names_the_key(bad, message):
    with pytest.raises(ConfigError) as e:
        paper_run(_params(**bad))
    assert message in str(e.value)


def test_missing_pieces_say_what_to_do(tmp_path):
    with pytest.raises(ConfigError, match="paper.model is required"):
        paper_run({"paper": {"layer": 3}})
    with pytest.raises(ConfigError, match="unknown top-level"):
        paper_run({**_params(), "steps": 3})
    cfg = paper_run(_params()).config
    with pytest.raises(ValueError, match="r2d_path is empty"):
        pipeline.labelled_traces(cfg)
    with pytest.raises(FileNotFoundError, match="run the LCLR stage first"):
        pipeline.r2l_stage(cfg, tmp_path / "run", "craft")


def test_params_files_parse():
    from craft.io import project_root

    files = sorted((project_root() / "params").glob("*.yaml"))
    paper_files = [f for f in files if f.stem.startswith(("paper-", "smoke-"))]
    assert {f.stem for f in paper_files} >= {"paper-qwen3-4b-thinking", "paper-r1-distill-llama-8b", "smoke-qwen3-0.6b"}
    models = {load_paper_run(f).config.model for f in paper_files}
    assert {"Qwen/Qwen3-4B-Thinking-2507", "deepseek-ai/DeepSeek-R1-Distill-Llama-8B"} <= models
