"""Strict config building (craft.config: from_dict, check_fields, rule, deep_merge, diff, missing_keys)
and run-directory I/O."""

import json
import math
from dataclasses import dataclass, field
from typing import Literal

import pytest

from craft.config import ConfigError, check_fields, deep_merge, diff, from_dict, load_yaml, missing_keys, rule, to_dict
from craft.io import RunDir, project_root, resolve, save_json
from craft.organism.config import OrganismConfig


@dataclass(frozen=True)
class Inner:
    rate: float = field(default=0.5, metadata=rule(ge=0, le=1))
    name: str = "x"

    def __post_init__(self):
        check_fields(self)


@dataclass(frozen=True)
class CatSource:
    kind: Literal["cat"] = "cat"
    lives: int = field(default=9, metadata=rule(ge=1))

    def __post_init__(self):
        check_fields(self)


@dataclass(frozen=True)
class DogSource:
    kind: Literal["dog"] = "dog"
    breed: str = "mutt"


@dataclass(frozen=True)
class Outer:
    """One field per kind of type from_dict supports."""

    steps: int = field(default=1, metadata=rule(ge=1))
    lr: float = field(default=0.1, metadata=rule(gt=0))
    flag: bool = False
    mode: Literal["fast", "slow"] = "fast"
    layer: int | str = "auto"
    layers: list[int] | str = "all"
    weights: dict[str, float] = field(default_factory=dict)
    inner: Inner = field(default_factory=Inner)
    source: CatSource | DogSource = field(default_factory=CatSource)
    pick: str = field(default="a", metadata=rule(choices=("a", "b")))

    def __post_init__(self):
        check_fields(self)


def test_from_dict_round_trip_and_nested():
    data = {"n_hazards": 3, "n_unseen_hazards": 1, "model": {"arch": "llama", "hidden_size": 64}, "sft": {"steps": 5}}
    cfg = from_dict(OrganismConfig, data)
    assert cfg.n_hazards == 3 and cfg.model.arch == "llama" and cfg.model.hidden_size == 64 and cfg.sft.steps == 5
    assert from_dict(OrganismConfig, to_dict(cfg)) == cfg
    out = from_dict(Outer, {"steps": 3, "layer": 5, "layers": [1, 2], "weights": {"a": 1, "b": 0.5},
                            "inner": {"rate": 1}, "mode": "slow", "flag": True})
    assert (out.steps, out.layer, out.layers, out.mode, out.flag) == (3, 5, [1, 2], "slow", True)
    assert out.weights == {"a": 1.0, "b": 0.5} and isinstance(out.weights["a"], float)
    assert out.inner == Inner(rate=1.0) and isinstance(out.inner.rate, float)
    assert from_dict(Outer, to_dict(out)) == out
    assert from_dict(Outer, {"layer": "auto", "layers": "all"}) == Outer()   # the str side of int | str


def test_organism_config_has_no_seed():
    """The seed is the params file's top-level ``seed``, not a field of the organism section."""
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['seed'\]"):
        from_dict(OrganismConfig, {"seed": 3})


def test_unknown_key_names_the_allowed_ones():
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['stpes'\]; allowed: .*steps"):
        from_dict(OrganismConfig, {"sft": {"stpes": 5}})
    with pytest.raises(ConfigError, match=r"inner: unknown key\(s\) \['rte'\]"):
        from_dict(Outer, {"inner": {"rte": 0.1}})


def test_wrong_type_is_an_error_ints_accepted_for_floats():
    with pytest.raises(ConfigError, match="sft.steps: expected an int"):
        from_dict(OrganismConfig, {"sft": {"steps": "many"}})
    assert from_dict(OrganismConfig, {"eval_fraction": 1e-1}).eval_fraction == 0.1
    assert from_dict(Outer, {"lr": 1}).lr == 1.0 and isinstance(from_dict(Outer, {"lr": 1}).lr, float)
    assert from_dict(Outer, {"steps": 4.0}).steps == 4          # a YAML float that is an int


@pytest.mark.parametrize("data, key", [
    ({"steps": True}, "steps"),                 # bool is not an int
    ({"steps": "three"}, "steps"),              # "three" is not an int
    ({"steps": 2.5}, "steps"),
    ({"lr": "0.1"}, "lr"),
    ({"lr": False}, "lr"),
    ({"flag": 1}, "flag"),
    ({"mode": "medium"}, "mode"),
    ({"layer": 2.5}, "layer"),
    ({"layers": [1, "two"]}, "layers"),
    ({"layers": 3}, "layers"),
    ({"weights": {"a": "heavy"}}, r"weights\.a"),
    ({"weights": [1.0]}, "weights"),
    ({"inner": {"rate": "half"}}, r"inner\.rate"),
    ({"inner": 0.5}, "inner"),
])
def test_wrong_types_name_the_key(data, key):
    with pytest.raises(ConfigError, match=key):
        from_dict(Outer, data)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_floats_are_refused(value):
    with pytest.raises(ConfigError, match="lr must be a finite number"):
        from_dict(Outer, {"lr": value})
    with pytest.raises(ConfigError, match=r"inner\.rate must be a finite number"):
        from_dict(Outer, {"inner": {"rate": value}})
    with pytest.raises(ConfigError, match=r"weights\.w must be a finite number"):
        from_dict(Outer, {"weights": {"w": value}})
    with pytest.raises(ConfigError, match="lr must be a finite number"):
        Outer(lr=value)                                         # built in code: check_fields


@pytest.mark.parametrize("data, message", [
    ({"steps": 0}, "steps must be >= 1, got 0"),
    ({"lr": 0.0}, "lr must be > 0"),
    ({"lr": -1}, "lr must be > 0"),
    ({"inner": {"rate": 7}}, r"inner\.rate must be <= 1"),
    ({"inner": {"rate": -0.1}}, r"inner\.rate must be >= 0"),
    ({"pick": "c"}, r"pick: 'c' is not one of \['a', 'b'\]"),
    ({"source": {"kind": "cat", "lives": 0}}, r"source\.lives must be >= 1"),
])
def test_out_of_range_rules_name_the_key(data, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(Outer, data)


def test_rules_hold_when_built_in_code():
    assert rule(ge=0, le=1) == {"rule": {"ge": 0, "le": 1}}
    with pytest.raises(ConfigError, match="rate must be <= 1"):
        Inner(rate=2.0)
    with pytest.raises(ConfigError, match="steps must be >= 1"):
        Outer(steps=0)


def test_union_of_dataclasses_told_apart_by_kind():
    assert from_dict(Outer, {"source": {"kind": "dog", "breed": "collie"}}).source == DogSource(breed="collie")
    assert from_dict(Outer, {"source": {"kind": "cat", "lives": 3}}).source == CatSource(lives=3)
    assert from_dict(Outer, {"source": {"lives": 3}}).source == CatSource(lives=3)     # no kind: the first
    with pytest.raises(ConfigError, match=r"source\.kind: 'cow' is not one of \['cat', 'dog'\]"):
        from_dict(Outer, {"source": {"kind": "cow"}})
    with pytest.raises(ConfigError, match=r"source: unknown key\(s\) \['lives'\]"):
        from_dict(Outer, {"source": {"kind": "dog", "lives": 3}})              # a cat's key on a dog
    assert from_dict(Outer, to_dict(Outer(source=DogSource()))).source == DogSource()


def test_deep_merge_merges_mappings_and_replaces_the_rest():
    base = {"a": 1, "r2l": {"w": 0.5, "grpo": {"max_steps": 40, "beta": 0.01}}, "layers": [1, 2]}
    merged = deep_merge(base, {"r2l": {"grpo": {"max_steps": 10}}, "layers": [3], "new": {"x": 1}})
    assert merged == {"a": 1, "r2l": {"w": 0.5, "grpo": {"max_steps": 10, "beta": 0.01}}, "layers": [3],
                      "new": {"x": 1}}
    assert base["r2l"]["grpo"]["max_steps"] == 40                              # inputs untouched
    assert deep_merge(base, {"r2l": 5})["r2l"] == 5                            # a non-mapping replaces
    assert deep_merge({"a": 1}, {"a": {"b": 2}}) == {"a": {"b": 2}}
    assert deep_merge(base, {}) == base


def test_diff_lists_changed_leaves_by_dotted_key():
    old = {"seed": 0, "r2l": {"w": 0.5, "grpo": {"max_steps": 40, "beta": 0.01}}, "gone": 1}
    new = {"seed": 0, "r2l": {"w": 0.4, "grpo": {"max_steps": 40}}, "added": [1]}
    assert diff(old, new) == [("added", "<absent>", [1]), ("gone", 1, "<absent>"),
                              ("r2l.grpo.beta", 0.01, "<absent>"), ("r2l.w", 0.5, 0.4)]
    assert diff(old, old) == []
    assert diff({"a": {"b": 1}}, {"a": 1}) == [("a", {"b": 1}, 1)]


def test_missing_keys_are_dotted_and_recursive():
    assert missing_keys(Outer, to_dict(Outer())) == []
    data = to_dict(Outer())
    del data["lr"], data["inner"]["name"]
    assert missing_keys(Outer, data) == ["lr", "inner.name"]
    assert missing_keys(Inner, {}) == ["rate", "name"]
    assert "inner.rate" not in missing_keys(Outer, {"steps": 1})               # an absent section is one key
    assert "inner" in missing_keys(Outer, {"steps": 1})


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
