"""Strict config building and run-directory I/O."""

import json
import math

import pytest

from craft.config import ConfigError, OrganismConfig, from_dict, load_yaml, to_dict
from craft.io import RunDir, project_root, resolve, save_json


def test_from_dict_round_trip_and_nested():
    cfg = from_dict(OrganismConfig, {"seed": 3, "model": {"arch": "llama", "hidden_size": 64}, "sft": {"steps": 5}})
    assert cfg.seed == 3 and cfg.model.arch == "llama" and cfg.model.hidden_size == 64 and cfg.sft.steps == 5
    assert from_dict(OrganismConfig, to_dict(cfg)) == cfg


def test_unknown_key_names_the_allowed_ones():
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['stpes'\]; allowed: .*steps"):
        from_dict(OrganismConfig, {"sft": {"stpes": 5}})


def test_wrong_type_is_an_error_ints_accepted_for_floats():
    with pytest.raises(ConfigError, match="sft.steps: expected int"):
        from_dict(OrganismConfig, {"sft": {"steps": "many"}})
    assert from_dict(OrganismConfig, {"eval_fraction": 1}).eval_fraction == 1.0


def test_load_yaml_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_yaml(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_yaml(bad)
    lst = tmp_path / "list.yaml"
    lst.write_text("- 1\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_yaml(lst)


def test_project_root_and_resolve():
    root = project_root()
    assert (root / "pyproject.toml").is_file() and (root / "craft").is_dir()
    assert resolve("runs/x") == root / "runs/x"
    assert resolve("/abs/path").as_posix() == "/abs/path"


def test_run_dir_metrics_round_trip(tmp_path):
    run = RunDir(tmp_path / "run")
    run.save_metrics("00_x", {"a": 1, "b": 0.5, "ok": True})
    assert run.load_metrics("00_x") == {"a": 1, "b": 0.5, "ok": True}
    with pytest.raises(TypeError, match="flat"):
        run.save_metrics("00_x", {"nested": {"a": 1}})
    with pytest.raises(FileNotFoundError, match="run notebook 01_y first"):
        run.load_metrics("01_y")


def test_save_json_writes_nan_as_null(tmp_path):
    p = save_json({"x": math.nan}, tmp_path / "a.json")
    assert json.loads(p.read_text()) == {"x": None}
