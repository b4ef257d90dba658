"""Statistics over seeds (craft.stats) and the organism's R2L prompt sets (craft.organism.corpus)."""

import math

import pytest

from craft.organism.corpus import EvalSizes, eval_prompts, r2l_prompts
from craft.stats import mean_ci


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
