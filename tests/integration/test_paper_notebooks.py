"""Every notebook at paper scale, offline: papermill runs notebooks 00-08 in order with a complete
paper-scale params file that points at a tiny random-init Qwen3 (craft.testing.tiny). The organism
cells are skipped, every shared cell runs the same stage code, and each notebook writes its metrics.
Notebook 08's own run (its ``real`` params file) is the same tiny model on the data that ship with the
package, with JailbreakBench's labelled responses as its traces."""

import json

import papermill
import pytest
import yaml
from paper_fixtures import gsm8k_folder, paper_params

from craft.io import project_root

NOTEBOOKS = sorted((project_root() / "notebooks").glob("[0-9][0-9]_*.ipynb"))
pytestmark = pytest.mark.slow


def _cell_text(cell) -> str:
    return "".join("".join(o["text"]) if isinstance(o["text"], list) else o["text"]
                   for o in cell.get("outputs", []) if o.get("output_type") == "stream")


def test_notebooks_run_at_paper_scale(tmp_path, monkeypatch):
    gsm8k = {"capability": ["gsm8k"], "data_paths": {"gsm8k": str(gsm8k_folder(tmp_path / "gsm8k"))}}
    params = yaml.safe_load(paper_params(tmp_path, "qwen3", source=gsm8k).read_text())   # benign prompts for 06
    bundled = {"jbb_behaviors": "bundled", "jbb_artifacts": "bundled", "xstest": "bundled"}
    (tmp_path / "real").mkdir()
    real = paper_params(tmp_path / "real", "qwen3", source={
        "data_paths": bundled, "traces": "jbb_artifacts", "max_traces": 5, "test_fraction": 0.3,
        "train_prompts": "jbb"})
    params["real"] = str(real)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TQDM_DISABLE", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert len(NOTEBOOKS) == 9
    for nb in NOTEBOOKS:
        out = tmp_path / nb.name
        papermill.execute_notebook(str(nb), str(out), parameters=params, kernel_name="python3",
                                   cwd=str(project_root()), progress_bar=False)
        cells = [c for c in json.loads(out.read_text())["cells"] if c["cell_type"] == "code"]
        organism_only = [c for c in cells if "".join(c["source"]).startswith("%%only organism")]
        assert all("skipped in the paper run" in _cell_text(c) for c in organism_only), nb.name
        assert (tmp_path / "run" / "metrics" / f"{nb.stem}.json").is_file(), f"{nb.name} wrote no metrics"
    real_metrics = json.loads((tmp_path / "run" / "metrics" / "08_read_real_model_latents.json").read_text())
    assert {"real_probe_auroc_best_xstest", "latent_judge_kappa_test", "real_r2l_seconds_per_step"} <= set(real_metrics)
    assert (tmp_path / "run" / "08_read_real_model_latents" / "03_train_r2l_grpo" / "craft-seed0" / "DONE").is_file()
    metrics = json.loads((tmp_path / "run" / "metrics" / "05_ablations_and_theory.json").read_text())
    assert {"craft_reasoning_harm_rate", "no_cons_reasoning_harm_rate"} <= set(metrics)
    assert (tmp_path / "run" / "05_ablations_and_theory" / "no_cons-seed0" / "DONE").is_file()
    monitor = json.loads((tmp_path / "run" / "metrics" / "06_monitor_reasoning.json").read_text())
    assert {"monitor_auroc_at_25pct", "monitor_false_alarm_benign_heldout", "obfuscation_frozen_auroc_craft",
            "obfuscation_positive_control_flagged"} <= set(monitor)
    assert monitor["monitor_false_alarm_benign_fit"] <= 0.05    # the threshold is fixed on these benign prompts
    judges = json.loads((tmp_path / "run" / "metrics" / "04_evaluate_benchmarks.json").read_text())
    assert "judge_kappa_reasoning_judge_vs_reasoningshield" in judges    # the agreement judge ran
    attacks = json.loads((tmp_path / "run" / "metrics" / "07_run_adaptive_attacks.json").read_text())
    assert {"gcg_reasoning_asr_craft", "fuzz_final_asr_base", "n_attack_seeds"} <= set(attacks)


def test_an_unknown_papermill_parameter_is_an_error(tmp_path):
    """papermill only warns on `-p stepz 5` and would run with the defaults; the setup cell refuses."""
    nb = project_root() / "notebooks" / "03_train_r2l_grpo.ipynb"
    with pytest.raises(papermill.PapermillExecutionError, match=r"unknown parameter\(s\) \['stepz'\]"):
        papermill.execute_notebook(str(nb), str(tmp_path / "out.ipynb"), parameters={"stepz": 5},
                                   kernel_name="python3", cwd=str(project_root()), progress_bar=False)
