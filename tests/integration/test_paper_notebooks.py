"""Every notebook at paper scale, offline: papermill runs notebooks 00-05 in order with a params
file of the paper-scale form that points at a tiny random-init Qwen3 (craft.tiny). The organism
cells must be skipped, the paper-scale cells must run, and each notebook writes its metrics."""

import json
import os

import papermill
import pytest
import yaml

from craft.io import project_root

from paper_fixtures import paper_params

NOTEBOOKS = sorted((project_root() / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _cell_text(cell) -> str:
    return "".join("".join(o["text"]) if isinstance(o["text"], list) else o["text"]
                   for o in cell.get("outputs", []) if o.get("output_type") == "stream")


def test_notebooks_run_at_paper_scale(tmp_path, monkeypatch):
    params = yaml.safe_load(paper_params(tmp_path, "qwen3").read_text())
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TQDM_DISABLE", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert len(NOTEBOOKS) == 6
    for nb in NOTEBOOKS:
        out = tmp_path / nb.name
        papermill.execute_notebook(str(nb), str(out), parameters=params, kernel_name="python3",
                                   cwd=str(project_root()), progress_bar=False)
        cells = [c for c in json.loads(out.read_text())["cells"] if c["cell_type"] == "code"]
        marked = {scale: [c for c in cells if "".join(c["source"]).startswith(f"%%only {scale}")]
                  for scale in ("organism", "paper")}
        assert marked["paper"], f"{nb.name} has no paper-scale cell"
        assert all("skipped in the paper run" in _cell_text(c) for c in marked["organism"]), nb.name
        assert not any("skipped" in _cell_text(c) for c in marked["paper"]), nb.name
        assert (tmp_path / "run" / "metrics" / f"{nb.stem}.json").is_file(), f"{nb.name} wrote no metrics"
    metrics = json.loads((tmp_path / "run" / "metrics" / "05_ablations_and_theory.json").read_text())
    assert {"base_reasoning_harm", "craft_reasoning_harm", "no_cons_reasoning_harm"} <= set(metrics)
    assert os.listdir(tmp_path / "run" / "03_train_r2l_grpo") and "no_cons" in os.listdir(tmp_path / "run" / "03_train_r2l_grpo")
