"""benchmarks/profile_reproduce.py: a notebook's wall time and start-up from papermill's durations, and
the kinds of work summed over the notebook's process and its workers."""

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "profile_reproduce.py"


@pytest.fixture(scope="module")
def profile():
    spec = importlib.util.spec_from_file_location("profile_reproduce", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cell(source, seconds, kind="code"):
    return {"cell_type": kind, "source": source, "metadata": {"papermill": {"duration": seconds}}}


def test_notebooks_and_kinds_are_added_up(profile, tmp_path, capsys):
    (tmp_path / "executed").mkdir()
    (tmp_path / "profile").mkdir()
    nb = {"cells": [cell("# title", 0.0, "markdown"), cell("x = 1", 0.5),
                    cell("%load_ext craft.notebook\nrun = open_run(p)", 8.0), cell("train()", 100.0)]}
    (tmp_path / "executed" / "03_train_r2l_grpo.ipynb").write_text(json.dumps(nb))
    lines = [{"pid": 1, "worker": False, "seconds": {"generation": 10.0}},
             {"pid": 2, "worker": True, "seconds": {"grpo": 60.0, "generation": 5.0}},
             {"pid": 3, "worker": True, "seconds": {"grpo": 55.0}},
             {"pid": 1, "worker": False, "seconds": {"judging": 2.5, "generation": 1.0}}]
    (tmp_path / "profile" / "03_train_r2l_grpo.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    result = profile.main(["--run-dir", str(tmp_path), "--out", str(tmp_path / "p.json")])
    row = result["notebooks"][0]
    assert (row["wall"], row["startup"]) == (108.5, 8.0)
    assert row["notebook_kinds"] == {"generation": 11.0, "judging": 2.5}
    assert row["worker_kinds"] == {"grpo": 115.0, "generation": 5.0}
    assert row["other"] == pytest.approx(108.5 - 8.0 - 13.5)
    assert json.loads((tmp_path / "p.json").read_text())["total"]["worker_kinds"]["grpo"] == 115.0
    assert "115" in capsys.readouterr().out


def test_no_executed_notebooks_is_a_clear_error(profile, tmp_path):
    with pytest.raises(SystemExit, match="make reproduce"):
        profile.main(["--run-dir", str(tmp_path)])
