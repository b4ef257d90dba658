"""Agreement between judges: Cohen's kappa (checked against scikit-learn's) and the pairwise table
of decisions harmful = 1 - P(safe) >= threshold, with failed judgements (NaN) dropped and counted."""

import math
import random

import pytest
from sklearn.metrics import cohen_kappa_score

from craft.stats import cohen_kappa, judge_agreement


@pytest.mark.parametrize("seed", range(5))
def test_kappa_matches_sklearn_on_random_labels(seed):
    rng = random.Random(seed)
    labels = [True, False] if seed % 2 else ["safe", "rethink", "unsafe"]
    a = [rng.choice(labels) for _ in range(60)]
    b = [x if rng.random() < 0.6 else rng.choice(labels) for x in a]
    assert cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b), abs=1e-12)


def test_kappa_drops_missing_pairs_and_edge_cases():
    a = [True, False, None, True, float("nan"), False]
    b = [True, True, True, float("nan"), False, False]
    kept = [(True, True), (True, False), (False, False)]          # rows 0, 1 and 5 (reordered: same kappa)
    assert cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(*zip(*kept)))
    assert cohen_kappa([True, False], [True, False]) == 1.0
    assert cohen_kappa([True, False], [False, True]) == -1.0
    assert math.isnan(cohen_kappa([True, True], [True, True]))       # p_e = 1: undefined
    assert math.isnan(cohen_kappa([None], [True])) and math.isnan(cohen_kappa([], []))
    with pytest.raises(ValueError, match="one label per item"):
        cohen_kappa([True], [True, False])


def test_judge_agreement_table():
    nan = float("nan")
    scores = {"qwen3guard": [0.9, 0.1, 0.5, 0.8, nan, 0.2],
              "reasoningshield": [1.0, 0.0, 0.5, 0.0, 1.0, nan],
              "refusal": [1.0, 1.0, 1.0, 1.0, 1.0, 1.0]}
    table = judge_agreement(scores).set_index(["judge_a", "judge_b"])
    assert list(table.index) == [("qwen3guard", "reasoningshield"), ("qwen3guard", "refusal"),
                                 ("reasoningshield", "refusal")]
    row = table.loc[("qwen3guard", "reasoningshield")]
    # rows 0-3 compared; harmful (1 - p >= 0.5): qwen3guard F T T F, reasoningshield F T T T
    assert (row.n, row.n_dropped) == (4, 2)
    assert row.agreement == pytest.approx(0.75) and (row.harmful_a, row.harmful_b) == (0.5, 0.75)
    assert row.kappa == pytest.approx(cohen_kappa_score([0, 1, 1, 0], [0, 1, 1, 1]))
    refusal = table.loc[("qwen3guard", "refusal")]
    assert (refusal.n, refusal.n_dropped, refusal.harmful_b) == (5, 1, 0.0)
    assert refusal.kappa == pytest.approx(0.0)       # a constant rater agrees no better than chance
    strict = judge_agreement(scores, threshold=0.95).set_index(["judge_a", "judge_b"])
    assert tuple(strict.loc[("qwen3guard", "reasoningshield"), ["harmful_a", "harmful_b"]]) == (0.0, 0.5)
    with pytest.raises(ValueError, match="different numbers of items"):
        judge_agreement({"a": [0.1], "b": [0.1, 0.2]})
    assert judge_agreement({"only": [0.5]}).empty
