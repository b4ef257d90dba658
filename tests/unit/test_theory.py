"""The exact small model of GRPO (craft.theory): enumeration, TRL's advantages, Theorem 5.1 numerically."""

import itertools
import math

import numpy as np
import pytest

from craft import theory as t

TXT_ONLY = t.outcome_rewards(0.0, 0.4, 0.0)
CRAFT = t.outcome_rewards(0.5, 0.4, 0.2)
CONS_ONLY = t.outcome_rewards(0.0, 0.4, 0.2)  # no latent reward: consistency alone + R_txt
NEAR_SSA = t.logits_from_xy(0.95, 0.05)


def test_compositions_and_their_probabilities_match_brute_force():
    assert t.group_compositions(8).shape == (math.comb(11, 3), 4) == (165, 4)
    theta = np.array([0.4, -1.3])
    assert t.composition_probs(theta, 8).sum() == pytest.approx(1.0, abs=1e-12)
    p, brute = t.outcome_probs(theta), {}
    for seq in itertools.product(range(4), repeat=3):  # every ordered group of 3
        key = tuple(np.bincount(seq, minlength=4))
        brute[key] = brute.get(key, 0.0) + math.prod(p[k] for k in seq)
    exact = dict(zip(map(tuple, t.group_compositions(3)), t.composition_probs(theta, 3)))
    assert exact.keys() == brute.keys()
    assert all(exact[k] == pytest.approx(brute[k], abs=1e-14) for k in brute)


def test_ideal_latent_rewards_and_outcome_rewards():
    safe, unsafe = t.ideal_latent_rewards()  # orthogonal prototypes, rethink at 45°
    assert (safe, unsafe) == pytest.approx((1 + 0.5 * math.sqrt(0.5), -1 + 0.5 * math.sqrt(0.5)))
    safe, unsafe = t.ideal_latent_rewards(cos_safe_unsafe=-0.5)
    assert safe - unsafe == pytest.approx(2 * 1.5)  # (α + β)(1 − c): rethink term cancels
    with pytest.raises(ValueError):
        t.ideal_latent_rewards(cos_safe_unsafe=-1.0)
    assert TXT_ONLY == pytest.approx([0.4, -0.4, 0.4, -0.4])
    assert CONS_ONLY == pytest.approx([0.6, -0.4, 0.4, -0.2])  # consistency prefers jailbreak to SSA
    assert CRAFT[0] == CRAFT.max() and CRAFT[3] == CRAFT.min()


def test_equal_rewards_and_single_outcome_groups_give_exactly_zero():
    assert np.all(t.grpo_expected_update(NEAR_SSA, np.full(4, 0.3)) == 0.0)
    counts = np.array([[0, 0, 8, 0], [3, 0, 5, 0]])  # all SSA; SSA and safe-refuse under R_txt only
    assert np.all(t.group_advantages(counts, TXT_ONLY)[counts > 0] == 0.0)  # outcomes in the group


@pytest.mark.parametrize("xy", [(0.95, 0.05), (0.99, 0.01), (0.5, 0.5), (0.2, 0.9)])
def test_output_only_reward_is_neutral_in_reasoning_and_pushes_to_refuse(xy):
    d = t.grpo_expected_update(t.logits_from_xy(*xy), TXT_ONLY)
    assert abs(d[0]) < 1e-12
    assert d[1] < -1e-4


@pytest.mark.parametrize("rewards", [CRAFT, CONS_ONLY], ids=["craft", "consistency-only"])
def test_consistency_reward_drives_reasoning_away_from_the_ssa_corner(rewards):
    dx, dy = t.ssa_corner_drift(rewards, x=0.95, y=0.05)
    assert dx < -1e-3 and dy < 0
    assert t.ssa_corner_drift(rewards)[0] < -1e-4  # at (0.99, 0.01) too


def test_trajectories_from_near_ssa():
    txt = t.trajectory(NEAR_SSA, TXT_ONLY, steps=60, lr=1.0)
    craft = t.trajectory(NEAR_SSA, CRAFT, steps=60, lr=1.0)
    assert txt.shape == (61, 2)
    assert abs(txt[-1, 0] - 0.95) < 1e-9 and txt[-1, 1] < 0.01  # SSA kept: answers safe, reasoning not
    assert craft[-1, 0] < 0.1 and craft[-1, 1] < 0.01


def test_grpo_direction_ascends_expected_reward_for_the_paper_designs():
    rng = np.random.default_rng(0)
    for rewards in (TXT_ONLY, CRAFT, CONS_ONLY):
        for theta in rng.normal(scale=2.0, size=(5, 2)):
            assert t.grpo_expected_update(theta, rewards) @ t.expected_reward_grad(theta, rewards) > 0


def test_unscaled_advantages_give_exactly_a_multiple_of_the_gradient():
    rng = np.random.default_rng(1)
    for theta in (rng.normal(size=2), rng.normal(size=3)):
        r = rng.normal(size=4)
        d = t.grpo_expected_update(theta, r, scale_rewards="none")
        assert d == pytest.approx(7 / 8 * t.expected_reward_grad(theta, r), abs=1e-14)


def test_std_scaling_can_point_against_the_gradient():
    """With a rare jackpot outcome, per-group std scaling lets the common small differences win."""
    theta, r = np.array([-2.2, -1.22]), np.array([-1.04, -1.12, -1.33, 0.5])
    assert t.grpo_expected_update(theta, r) @ t.expected_reward_grad(theta, r) < 0


@pytest.mark.parametrize("theta", [np.array([0.3, -0.7]), np.array([0.3, -0.7, 1.1])])
def test_analytic_gradient_matches_finite_differences(theta):
    r, h = np.array([0.2, -1.0, 0.7, 0.1]), 1e-6
    fd = [(t.expected_reward(theta + h * e, r) - t.expected_reward(theta - h * e, r)) / (2 * h)
          for e in np.eye(theta.size)]
    assert t.expected_reward_grad(theta, r) == pytest.approx(fd, abs=1e-8)


def test_kl_term_pulls_toward_the_reference():
    theta, ref = np.array([1.0, -2.0]), np.array([0.0, 0.5])
    d = t.grpo_expected_update(theta, np.zeros(4), beta_kl=0.1, theta_ref=ref)
    assert d == pytest.approx(-0.1 * (1 / (1 + np.exp(-theta)) - 1 / (1 + np.exp(-ref))), abs=1e-15)
    at_ref = t.grpo_expected_update(theta, CRAFT, beta_kl=0.1, theta_ref=theta)
    assert np.all(at_ref == t.grpo_expected_update(theta, CRAFT))


def test_monte_carlo_groups_agree_with_the_enumeration():
    theta, G, n = np.array([0.8, -0.6]), 8, 20_000
    rng = np.random.default_rng(0)
    o = rng.choice(4, size=(n, G), p=t.outcome_probs(theta))  # (n, G) sampled groups
    r = CRAFT[o]
    adv = (r - r.mean(1, keepdims=True)) / (r.std(1, ddof=1, keepdims=True) + 1e-4)  # TRL, scale="group"
    g = (adv[..., None] * t.outcome_scores(theta)[o]).mean(1)  # (n, 2) per-group gradients
    se = g.std(0, ddof=1) / np.sqrt(n)  # ≈ 8e-4; a biased std (ddof=0) would land ≈ 20–30 SE off
    assert np.all(np.abs(g.mean(0) - t.grpo_expected_update(theta, CRAFT, G)) < 4 * se)


def test_theorem_flow_figure():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from craft.plots import theorem_flow
    panels = {"R_txt only": t.flow_field(TXT_ONLY, grid=7), "CRAFT": t.flow_field(CRAFT, grid=7)}
    paths = {name: [t.trajectory(NEAR_SSA, r, steps=3, lr=1.0)]
             for name, r in (("R_txt only", TXT_ONLY), ("CRAFT", CRAFT))}
    fig = theorem_flow(panels, paths)
    assert len(fig.axes) == 2
    plt.close(fig)


def test_coupled_start_under_output_only_moves_the_reasoning_and_the_factorised_one_only_the_answer():
    """A jailbroken start under R_txt alone. Coupled (unsafe reasoning complies, safe reasoning refuses): the reasoning
    carries the answer's reward, so P(unsafe reasoning) falls and SSA does not build up. Factorised (answer independent
    of the reasoning): the reasoning never moves while the answers learn to refuse, so SSA rises."""
    theta = t.conditional_logits(0.7, 0.05, 0.95)
    assert t.outcome_probs(theta) == pytest.approx([0.3 * 0.95, 0.3 * 0.05, 0.7 * 0.05, 0.7 * 0.95])
    path = t.outcome_path(theta, TXT_ONLY, steps=30, lr=1.0)
    assert path.shape == (31, 4) and np.allclose(path.sum(axis=1), 1.0)
    assert path[-1, 2] + path[-1, 3] < 0.1 and path[-1, 2] < path[0, 2]     # unsafe reasoning, SSA included, fell
    factorised = t.outcome_path(t.logits_from_xy(0.7, 0.7), TXT_ONLY, steps=30, lr=1.0)
    assert abs(factorised[-1, 2] + factorised[-1, 3] - 0.7) < 1e-9          # the reasoning never moves
    assert factorised[-1, 2] > factorised[0, 2] + 0.4                       # SSA rises
    frozen = t.outcome_path(t.conditional_logits(0.9, 0.02, 0.02), TXT_ONLY, steps=30, lr=1.0)
    assert abs(frozen[-1, 2] - frozen[0, 2]) < 0.02       # a dressed-up start: every answer refuses, (almost) frozen


def test_the_dynamics_run_with_an_advantage_they_are_given():
    """An exercise's own advantage function replaces TRL's: the same function gives the same path, Dr. GRPO's
    (no std scaling) another one, and a function of the wrong shape is refused."""
    rewards = t.outcome_rewards(0.5, 0.4, 0.2)
    start = t.logits_from_xy(0.95, 0.05)
    ref = t.outcome_path(start, rewards, 20, 1.0, 8)
    same = t.outcome_path(start, rewards, 20, 1.0, 8, advantages=lambda c, r: t.group_advantages(c, r))
    np.testing.assert_array_equal(ref, same)
    dr = t.outcome_path(start, rewards, 20, 1.0, 8,
                        advantages=lambda c, r: t.group_advantages(c, r, scale_rewards="none"))
    np.testing.assert_array_equal(dr, t.outcome_path(start, rewards, 20, 1.0, 8, scale_rewards="none"))
    assert not np.allclose(dr, ref)
    corner = t.ssa_corner_drift(rewards, 0.99, 0.02, scale_rewards="none")
    assert corner[0] < 0 and not np.isclose(corner[0], t.ssa_corner_drift(rewards, 0.99, 0.02)[0])
    with pytest.raises(ValueError, match="one row per group and one column per outcome"):
        t.grpo_expected_update(start, rewards, 8, advantages=lambda c, r: r)
