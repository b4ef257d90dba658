"""craft.stages.params: one params file for every stage; the organism's defaults are
params/organism.yaml; bad values fail when loaded, naming the key."""

import math

import pytest

from craft.config import ConfigError, load_yaml
from craft.io import project_root
from craft.organism.config import OrganismConfig, OrganismSourceConfig
from craft.stages.params import TOP_KEYS, load_params, params_from_notebook

ORGANISM = project_root() / "params" / "organism.yaml"


def test_the_organism_file_is_the_default_and_complete():
    data = load_yaml(ORGANISM)
    assert set(data) == set(TOP_KEYS)
    p = load_params()
    assert p == load_params(ORGANISM) == load_params(None, r2l={}, lclr={})
    assert p.scale == "organism" and p.seeds == [0, 1, 2] and p.r2l.steps == 40 and p.latent.layer == "auto"
    # the organism's own config classes default to the same values
    assert p.organism == OrganismConfig() and p.source == OrganismSourceConfig()


def test_a_notebook_parameter_changes_one_value():
    p = params_from_notebook({"run_dir": "runs/x", "r2l": {"w_cons": 0.0, "grpo": {"max_steps": 10}}, "lclr": {}})
    assert p.run_dir == "runs/x" and p.r2l.w_cons == 0.0 and p.r2l.steps == 10
    assert p.r2l.grpo["learning_rate"] == 1e-4 and p.r2l.w_lat == 0.5        # the rest kept


def test_params_give_back_the_settings_that_load_them_again():
    import dataclasses

    p = params_from_notebook({"run_dir": "runs/x", "probe": {"C": 0.5}, "r2l": {"w_cons": 0.0}})
    data = p.as_data()
    assert load_params(data) == p and data["probe"]["C"] == 0.5 and data["r2l"]["w_cons"] == 0.0
    data["probe"]["C"] = 9.0
    assert p.as_data()["probe"]["C"] == 0.5                        # a copy: the params are not changed through it
    with pytest.raises(ValueError, match="not made by load_params"):
        dataclasses.replace(p, seed=3).as_data()


@pytest.mark.parametrize("changes, message", [
    ({"r2l": {"w_txt": -0.4}}, "r2l.w_txt must be >= 0"),
    ({"r2l": {"w_lat": math.nan}}, "r2l.w_lat must be a finite number"),
    ({"r2l": {"grpo": {"beta": -1}}}, "r2l.grpo.beta must be >= 0"),
    ({"r2l": {"grpo": {"top_p": 7}}}, "r2l.grpo.top_p must be <= 1"),
    ({"r2l": {"grpo": {"temperature": 0}}}, "r2l.grpo.temperature must be > 0"),
    ({"r2l": {"grpo": {"max_completion_length": 0}}}, "r2l.grpo.max_completion_length must be >= 1"),
    ({"evaluate": {"max_new_tokens": 0}}, "evaluate.max_new_tokens must be >= 1"),
    ({"evaluate": {"top_p": 1.5}}, "evaluate.top_p must be <= 1"),
    ({"seed": True}, "seed: expected an int, got bool"),
    ({"r2l": {"n_seeds": 0}}, "r2l.n_seeds must be >= 1"),
    ({"r2l": {"stepz": 5}}, "r2l: unknown key(s) ['stepz']"),
    ({"stepz": 5}, "unknown top-level key(s) ['stepz']"),
    ({"latent": {"pool": "max"}}, "latent.pool: 'max' is not one of"),
    ({"source": {"harmful_fraction": 0.9, "arithmetic_fraction": 0.2}}, "must be <= 1"),
    ({"lclr": {"seed": 1}}, "lclr.seed is set by the pipeline"),
    ({"r2l": {"variant": "craft"}}, "r2l.variant is set by the pipeline"),
    ({"organism": {"sft": {"seed": 3}}}, "organism.sft.seed is set by the pipeline"),
    ({"source": {"kind": "laptop"}}, "source.kind must be organism or paper"),
    ({"attacks": {"methods": []}}, "attacks.methods: [] must be a non-empty list of ['gcg', 'fuzz', 'cot_hijack']"),
    ({"attacks": {"gcg": {"search_width": 0}}}, "search_width must be >= 1"),
    ({"attacks": {"fuzz": {"budget": 9}}}, "budget"),
    ({"attacks": {"gcg": {"seed": 1}}}, "attacks.gcg.seed is set by the pipeline"),
    ({"attacks": {"samples": 0}}, "attacks.samples must be >= 1"),
])
def test_out_of_range_values_fail_when_loaded(changes, message):
    with pytest.raises(ConfigError) as e:
        load_params(None, **changes)
    assert message in str(e.value)
