"""The rule that chooses Intervened PO's learning rate on the validation prompts (craft.stages.baselines)."""

import pandas as pd
import pytest

from craft.stages.baselines import MAX_CAPABILITY_DROP, MAX_OVER_REFUSAL, choose_learning_rate


def table(rows):
    return pd.DataFrame(rows, columns=["learning_rate", "reasoning_harm_rate", "over_refusal_rate",
                                       "capability_accuracy"])


BASE = {"capability_accuracy": 0.70}


def test_least_harmful_reasoning_within_both_bounds():
    t = table([(1e-4, 0.02, 0.00, 0.55),      # capability 0.15 below the base: out
               (5e-5, 0.05, 0.00, 0.68),
               (2.5e-5, 0.03, 0.05, 0.66)])
    assert choose_learning_rate(t, BASE) == pytest.approx(2.5e-5)


def test_over_refusal_above_its_bound_rules_a_candidate_out():
    t = table([(1e-4, 0.00, MAX_OVER_REFUSAL + 0.01, 0.70), (5e-5, 0.10, 0.00, 0.70)])
    assert choose_learning_rate(t, BASE) == pytest.approx(5e-5)


def test_ties_go_to_the_higher_capability_then_to_the_earlier_candidate():
    t = table([(1e-4, 0.00, 0.0, 0.62), (5e-5, 0.00, 0.0, 0.66), (2.5e-5, 0.00, 0.0, 0.66)])
    assert choose_learning_rate(t, BASE) == pytest.approx(5e-5)


def test_none_within_the_bounds_least_over_refusal_then_smallest_capability_drop():
    drop = BASE["capability_accuracy"] - MAX_CAPABILITY_DROP - 0.05
    t = table([(1e-4, 0.0, 0.30, 0.70), (5e-5, 0.0, 0.20, drop - 0.05), (2.5e-5, 0.0, 0.20, drop)])
    assert choose_learning_rate(t, BASE) == pytest.approx(2.5e-5)
