"""Statistics over seeds (craft.stats) and the organism's R2L prompt sets (craft.organism.corpus)."""

import math

import numpy as np
import pandas as pd
import pytest

from craft.organism.corpus import EvalSizes, eval_prompts, r2l_prompts
from craft.stats import auroc, bootstrap_ci, holm, mcnemar, mean_ci, paired_comparisons, wilson_ci


def test_mean_ci_is_the_student_t_interval():
    mean, lo, hi = mean_ci([1.0, 2.0, 3.0])
    half = 4.302652729911275 / math.sqrt(3)          # t(0.975, 2) * s / sqrt(n), s = 1
    assert mean == 2.0 and lo == pytest.approx(2 - half) and hi == pytest.approx(2 + half)
    assert mean_ci([0.4]) == (0.4, 0.4, 0.4)
    assert mean_ci([0.0, 0.0, 0.03], bounds=(0.0, 1.0))[1] == 0.0         # a rate's interval stays in [0, 1]


def test_r2l_prompts_mix_and_split(world):
    prompts = r2l_prompts(world, 100, seed=1, harmful=0.6, arithmetic=0.3)
    kinds = [p.kind for p in prompts]
    assert (kinds.count("harmful"), kinds.count("arithmetic"), kinds.count("benign")) == (60, 30, 10)
    assert all(p.split == "train" and p.regime != "held_out" for p in prompts)
    assert prompts == r2l_prompts(world, 100, seed=1, harmful=0.6, arithmetic=0.3)
    with pytest.raises(ValueError, match="sum <= 1"):
        r2l_prompts(world, 10, seed=0, harmful=0.8, arithmetic=0.3)


def test_eval_prompts_are_held_out(world):
    prompts = eval_prompts(world, EvalSizes(core=30, arithmetic=5, benign_repeats=2), seed=0)
    assert all(p.split == "eval" for p in prompts)
    assert not any(p.regime == "held_out" or p.novel or p.unseen_hazard for p in prompts)
    harmful = [p for p in prompts if p.kind == "harmful"]
    assert len(harmful) == 30 and {p.regime for p in harmful} == {"direct", "jailbroken", "dressed"}
    full = eval_prompts(world, EvalSizes(core=30, unseen_hazards=4, novel=6, held_out=3, arithmetic=5), seed=0)
    assert sum(p.regime == "held_out" for p in full) == 3 and sum(p.unseen_hazard for p in full) == 4
    assert {p.novel for p in full if p.novel} == {"framing", "wording"} and sum(bool(p.novel) for p in full) == 6
    assert eval_prompts(world, EvalSizes(core=30), seed=1) != eval_prompts(world, EvalSizes(core=30), seed=0)
    benign = world.select(split="eval", kind="benign")
    assert sum(p.kind == "arithmetic" for p in prompts) == 5
    assert sum(p.kind == "benign" for p in prompts) == 2 * len(benign)


def test_wilson_interval_matches_its_closed_form():
    p, lo, hi = wilson_ci(29, 30)
    assert p == pytest.approx(29 / 30) and (lo, hi) == pytest.approx((0.8333, 0.9941), abs=1e-4)
    assert wilson_ci(0, 10)[1] == 0.0 and wilson_ci(10, 10)[2] == pytest.approx(1.0) and math.isnan(wilson_ci(0, 0)[0])


def test_auroc_counts_ties_as_half_and_needs_both_classes():
    assert auroc([True, False], [1.0, 0.0]) == 1.0 and auroc([True, False], [0.0, 1.0]) == 0.0
    assert auroc([True, False, True, False], [0.5, 0.5, 0.5, 0.5]) == 0.5
    assert math.isnan(auroc([True, True], [0.1, 0.2]))


def test_bootstrap_resamples_whole_groups_and_pairs_the_columns():
    rng = np.random.default_rng(0)
    y = np.repeat([True, False], 50)
    a = y + rng.normal(0, 1, 100)
    value, lo, hi = bootstrap_ci(auroc, y, a, seed=1)
    assert lo < value < hi and value == auroc(y, a)
    # the same method against itself: every paired resample differs by exactly 0
    assert bootstrap_ci(lambda yy, s, t: auroc(yy, s) - auroc(yy, t), y, a, a.copy(), seed=1) == (0.0, 0.0, 0.0)
    # one group holding every row: each resample is the whole data, so the interval has no width
    _, glo, ghi = bootstrap_ci(auroc, y, a, groups=["g"] * 100, seed=1)
    assert glo == ghi == value


def test_mcnemar_is_the_exact_binomial_test_on_discordant_pairs():
    a = [True] * 8 + [False] * 2 + [True] * 5 + [False] * 5     # 8 a-only, 2 b-only, 10 concordant
    b = [False] * 8 + [True] * 2 + [True] * 5 + [False] * 5
    a_only, b_only, p = mcnemar(a, b)
    assert (a_only, b_only) == (8, 2)
    assert p == pytest.approx(2 * sum(math.comb(10, k) for k in range(0, 3)) / 2 ** 10)   # 0.109375
    assert mcnemar([True, False], [True, False]) == (0, 0, 1.0)
    with pytest.raises(ValueError, match="pair them"):
        mcnemar([True], [True, False])


def test_holm_steps_down_and_stays_monotone():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert holm([]) == []


def test_paired_comparisons_pair_rows_and_leave_out_missing_values():
    outcomes = pd.DataFrame({"craft": [False, False, True, None, False],
                             "base": [True, True, True, True, None],
                             "other": [False, False, True, False, False]})
    t = paired_comparisons(outcomes, "craft")
    assert list(t.index) == ["base", "other"]
    assert t.loc["base", "n"] == 3 and t.loc["base", "method_only"] == 2 and t.loc["base", "craft_only"] == 0
    assert t.loc["other", "p"] == 1.0 and t.loc["other", "n"] == 4
    assert t.p_holm.tolist() == pytest.approx(holm(t.p.tolist()))
