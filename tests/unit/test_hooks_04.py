"""Notebook 04's hook: the paired test (``test``) of ``craft.stats.paired_comparisons`` (Exercise 4.1 builds the
exact McNemar test and passes it in)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from craft.stats import holm, mcnemar, paired_comparisons


def _outcomes(seed: int = 0, n: int = 200) -> pd.DataFrame:
    """Yes/no outcomes of a reference and three methods on the same items, a few missing."""
    rng = np.random.default_rng(seed)
    table = pd.DataFrame({"craft": rng.random(n) < 0.1, "base": rng.random(n) < 0.7,
                          "near": rng.random(n) < 0.12, "far": rng.random(n) < 0.35}).astype(object)
    table.loc[rng.choice(n, 7, replace=False), "near"] = None
    table.loc[rng.choice(n, 3, replace=False), "craft"] = None
    return table


def _by_hand(a, b):
    """The exact McNemar test written out (Exercise 4.1's solution): the smaller binomial tail, doubled."""
    a_only = sum(bool(x) and not bool(y) for x, y in zip(a, b))
    b_only = sum(bool(y) and not bool(x) for x, y in zip(a, b))
    n = a_only + b_only
    if n == 0:
        return a_only, b_only, 1.0
    return a_only, b_only, min(1.0, 2 * sum(math.comb(n, i) for i in range(min(a_only, b_only) + 1)) / 2**n)


def _chi_squared(a, b):
    """Another test: McNemar's chi-squared approximation with continuity correction."""
    a_only, b_only, _ = mcnemar(a, b)
    n = a_only + b_only
    return a_only, b_only, float(stats.chi2.sf((abs(a_only - b_only) - 1) ** 2 / n, 1)) if n else 1.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_packages_test_passed_in_gives_the_same_table(seed):
    outcomes = _outcomes(seed)
    own = paired_comparisons(outcomes, "craft")
    pd.testing.assert_frame_equal(paired_comparisons(outcomes, "craft", test=mcnemar), own)
    pd.testing.assert_frame_equal(paired_comparisons(outcomes, "craft", test=None), own)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_exact_test_written_by_hand_matches_the_package(seed):
    outcomes = _outcomes(seed)
    own, yours = paired_comparisons(outcomes, "craft"), paired_comparisons(outcomes, "craft", test=_by_hand)
    assert yours[["n", "craft_only", "method_only"]].equals(own[["n", "craft_only", "method_only"]])
    assert -np.log10(yours.p_holm.to_numpy()) == pytest.approx(-np.log10(own.p_holm.to_numpy()), abs=1e-6)


def test_another_test_changes_the_p_values_not_the_counts():
    outcomes = _outcomes(0)
    own, other = paired_comparisons(outcomes, "craft"), paired_comparisons(outcomes, "craft", test=_chi_squared)
    assert other[["n", "craft_rate", "method_rate", "craft_only", "method_only"]].equals(
        own[["n", "craft_rate", "method_rate", "craft_only", "method_only"]])
    assert not np.allclose(other.p.to_numpy(), own.p.to_numpy())
    assert other.p_holm.tolist() == pytest.approx(holm(other.p.tolist()))   # Holm runs on the hook's p-values


def test_the_hook_gets_each_pair_as_lists_of_bools_without_missing_items():
    outcomes, seen = _outcomes(1), []

    def spy(a, b):
        seen.append((a, b))
        return mcnemar(a, b)

    paired_comparisons(outcomes, "craft", test=spy)
    assert len(seen) == 3
    for (a, b), other in zip(seen, ["base", "near", "far"]):
        pair = outcomes[["craft", other]].dropna()
        assert isinstance(a, list) and isinstance(b, list) and len(a) == len(b) == len(pair)
        assert all(type(v) is bool for v in a + b)
        assert a == pair.craft.astype(bool).tolist() and b == pair[other].astype(bool).tolist()
