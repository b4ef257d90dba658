"""Unit tests for craft.attacks: None / PAP / PAIR prompts (paper §6).

The real JailbreakBench artifacts are read through the ``shared_data`` fixture (tests/conftest.py);
the tests that need them skip with a reason when the folder is absent. Nothing is downloaded.
"""

from collections import Counter

import pandas as pd
import pytest

from craft.attacks import (
    ATTACKS,
    DEFAULT_PAIR_TARGET,
    PAP_TECHNIQUES,
    AttackedPrompt,
    apply_attack,
    pair_prompts,
    pap_prompt,
    pap_technique,
)
from craft.data.benchmarks import load_jbb_artifacts, load_jbb_behaviors

GOALS = [f"Explain topic number {i} in detail" for i in range(40)]


def _artifacts() -> pd.DataFrame:
    """A small PAIR-artifacts frame: two target models, one goal without a submitted prompt."""
    rows = [("goal A", "Alpha", "pair prompt A (m1)", "m1"), ("goal B", "Beta", None, "m1"),
            ("Goal  C.", "Gamma", "pair prompt C (m1)", "m1"),
            ("goal A", "Alpha", "pair prompt A (m2)", "m2")]
    df = pd.DataFrame(rows, columns=["goal", "behavior", "prompt", "target_model"])
    df["attack"] = "PAIR"
    return df


def test_none_is_identity():
    out = apply_attack("none", GOALS[:3])
    assert [a.prompt for a in out] == GOALS[:3]
    assert all(a == AttackedPrompt(g, g, "none", None) for a, g in zip(out, GOALS[:3]))


def test_pap_deterministic_covers_every_goal_and_wraps_it():
    out = apply_attack("pap", GOALS, seed=3)
    assert out == apply_attack("PAP", GOALS, seed=3)            # deterministic, case-insensitive name
    assert len(out) == len(GOALS)
    assert all(a.goal == g and g in a.prompt and a.prompt != g for a, g in zip(out, GOALS))
    assert all(a.technique in PAP_TECHNIQUES and a.attack == "pap" for a in out)
    assert len(Counter(a.technique for a in out)) >= 4          # 40 goals spread over the 5 techniques
    assert [a.technique for a in out] != [a.technique for a in apply_attack("pap", GOALS, seed=4)]
    assert pap_technique(GOALS[0], 3) == out[0].technique       # per goal, independent of the list
    assert out[0].prompt == pap_prompt(GOALS[0], out[0].technique)


def test_pap_templates_only_frame_the_goal():
    assert len(PAP_TECHNIQUES) == 5
    for name, template in PAP_TECHNIQUES.items():
        assert template.count("{goal}") == 1, name
        assert pap_prompt("<GOAL>", name).endswith("<GOAL>")
    with pytest.raises(ValueError, match="unknown PAP technique 'flattery'"):
        pap_prompt("x", "flattery")


def test_pair_on_synthetic_artifacts():
    goals = ["goal A", "goal B", "goal c", "goal D", "reworded delta"]
    prompts, n_fallback = pair_prompts(goals, _artifacts(), target_model="m1")
    # exact; no prompt submitted; case/whitespace/punctuation-insensitive; no row; no row
    assert prompts == ["pair prompt A (m1)", None, "pair prompt C (m1)", None, None]
    assert n_fallback == 3
    by_behavior, n = pair_prompts(["reworded alpha"], _artifacts(), "m1", behaviors=["Alpha"])
    assert by_behavior == ["pair prompt A (m1)"] and n == 0
    out = apply_attack("pair", goals, artifacts=_artifacts(), target_model="m2")
    assert [a.prompt for a in out] == ["pair prompt A (m2)"] + goals[1:]   # fallbacks send the goal
    assert [a.technique for a in out] == ["m2", None, None, None, None]
    assert all(a.attack == "pair" for a in out)


def test_pair_real_artifacts_cover_jbb_behaviors(shared_data):
    arts = load_jbb_artifacts("PAIR", path=shared_data("jailbreakbench_artifacts"))
    jbb = load_jbb_behaviors("harmful", path=shared_data("jbb_behaviors"))
    goals, behaviors = jbb["goal"].tolist(), jbb["behavior"].tolist()
    prompts, n_fallback = pair_prompts(goals, arts, DEFAULT_PAIR_TARGET, behaviors=behaviors)
    rows = arts[arts["target_model"] == DEFAULT_PAIR_TARGET]
    assert len(prompts) == 100
    assert n_fallback == rows["prompt"].isna().sum() == 18     # vicuna: PAIR submitted 82 prompts
    out = apply_attack("pair", goals, artifacts=arts, behaviors=behaviors)
    assert sum(a.technique is None for a in out) == n_fallback
    assert all(a.prompt == (p if p is not None else g) for a, p, g in zip(out, prompts, goals))
    # without behaviors, the goals JailbreakBench reworded after the artifacts also fall back
    _, by_text_only = pair_prompts(goals, arts, DEFAULT_PAIR_TARGET)
    assert n_fallback <= by_text_only <= n_fallback + 5


def test_errors_are_clear():
    with pytest.raises(ValueError, match=r"unknown attack 'gcg'; known: \['none', 'pap', 'pair'\]"):
        apply_attack("gcg", GOALS)
    with pytest.raises(ValueError, match=r'load_jbb_artifacts\("PAIR", path=\.\.\.\)'):
        apply_attack("pair", GOALS)
    with pytest.raises(ValueError, match="no PAIR artifacts for target_model='gpt-9'.*'m1', 'm2'"):
        apply_attack("pair", GOALS, artifacts=_artifacts(), target_model="gpt-9")
    with pytest.raises(ValueError, match="no PAIR rows"):
        pair_prompts(GOALS, _artifacts().assign(attack="JBC"), "m1")
    with pytest.raises(ValueError, match="lacks columns"):
        pair_prompts(GOALS, pd.DataFrame({"goal": ["x"]}), "m1")
    with pytest.raises(ValueError, match="one per goal"):
        pair_prompts(GOALS, _artifacts(), "m1", behaviors=["Alpha"])
    with pytest.raises(TypeError, match="not one string"):
        apply_attack("none", "one goal")
    assert ATTACKS == ("none", "pap", "pair")

