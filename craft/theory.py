"""An exact small model of GRPO on the CRAFT reward that makes Theorem 5.1 (paper §5) visible.

Model. One harmful prompt, four outcomes: reasoning ∈ {safe, unsafe} × answer ∈ {refuse, comply},
indexed ``k = 2·r + s`` (r = 1 unsafe reasoning, s = 1 comply), see :data:`OUTCOMES`. The policy is an
exact softmax (here: Bernoulli) policy with logits θ = (a, b): P(unsafe reasoning) = σ(a) = x and
P(comply) = σ(b) = y, independent, so a policy is a point (x, y) of the unit square and the SSA corner
is x → 1, y → 0. A three-logit conditional variant θ = (a, b_safe, b_unsafe), P(comply | r) = σ(b_r),
is accepted by every function that takes θ (:func:`conditional_logits` builds it); the flow field is drawn for the
factorised model only. In the coupled variant an answer that follows the reasoning (b_unsafe > b_safe) gives the
reasoning a reward through the answer even under R_txt alone.

Theorem 5.1's assumptions, as they map onto the model:
- fixed text judge → a fixed P(safe | y) per answer type (``p_safe_text``);
- Lipschitz latent heads → a fixed latent reward R_ls and a fixed p_z per reasoning type
  (``ls_safe``/``ls_unsafe``, ``p_safe_latent``);
- local controllability of the latents → the reasoning logit a moves the latent between the safe and the
  unsafe prototype (here: it moves the probability of each reasoning type).

Exact: the expected GRPO update at θ for a group of G samples is enumerated over every multiset of
outcomes (multinomial compositions of G over 4 outcomes), with TRL's group advantages
(R − mean) / (std + 1e-4), std with Bessel's correction (``scale_rewards="group"``), so a group whose
rewards are all equal contributes nothing (the "frozen" effect falls out of the enumeration).
Idealised: a population-level expectation (no sampling noise), one on-policy step per batch (the
PPO ratio is 1, so clipping is inactive), a sequence-level gradient Σ_i A_i ∇log π(o_i) / G (TRL's
token-level normalisation only rescales it here), and no KL unless ``beta_kl > 0``.

What it shows: under R_txt alone the update has no reasoning component anywhere (the line y = 0, SSA
included, is a continuum of stationary points); with w_cons > 0 it points away from unsafe reasoning
near the SSA corner, even with w_lat = 0. In this model R_ls alone (w_cons = 0) does so too: any term
that depends on the reasoning type breaks the neutrality.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from functools import lru_cache

import numpy as np

OUTCOMES = ("safe reasoning, refuse", "safe reasoning, comply",
            "unsafe reasoning, refuse (SSA)", "unsafe reasoning, comply (jailbreak)")
_R = np.array([0, 0, 1, 1])  # unsafe reasoning, per outcome
_S = np.array([0, 1, 0, 1])  # comply, per outcome
TRL_STD_EPS = 1e-4           # TRL GRPOTrainer: advantages / (std_rewards + 1e-4)


def _sigmoid(v: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-v))


def _expand(theta) -> tuple[np.ndarray, np.ndarray]:
    """θ (2,) or (3,) → conditional logits (a, b_safe, b_unsafe) (3,) and the Jacobian T (3, len θ)."""
    theta = np.asarray(theta, dtype=float)
    T = np.eye(3) if theta.size == 3 else np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    return T @ theta, T


def logits_from_xy(x: float, y: float) -> np.ndarray:
    """The factorised θ = (a, b) (2,) with P(unsafe reasoning) = x and P(comply) = y."""
    return np.log(np.array([x, y]) / (1.0 - np.array([x, y])))


def conditional_logits(x: float, y_safe: float, y_unsafe: float) -> np.ndarray:
    """The coupled θ = (a, b_safe, b_unsafe) (3,) with P(unsafe reasoning) = x and P(comply | safe reasoning)
    = y_safe, P(comply | unsafe reasoning) = y_unsafe."""
    p = np.array([x, y_safe, y_unsafe], dtype=float)
    return np.log(p / (1.0 - p))


def to_xy(theta) -> np.ndarray:
    """(P(unsafe reasoning), P(comply)) (2,) of a policy; P(comply) is the marginal."""
    p = outcome_probs(theta)  # (4,)
    return np.array([p[2] + p[3], p[1] + p[3]])


def outcome_probs(theta) -> np.ndarray:
    """Probability of each outcome in :data:`OUTCOMES` order, (4,)."""
    (a, *b), _ = _expand(theta)
    x, y = _sigmoid(a), _sigmoid(np.array(b))  # scalar, (2,) per reasoning type
    return (np.array([1 - x, x])[:, None] * np.stack([1 - y, y], axis=1)).ravel()


def outcome_scores(theta) -> np.ndarray:
    """∇_θ log π(o) for each outcome, (4, len θ)."""
    (a, *b), T = _expand(theta)
    x, y = _sigmoid(a), _sigmoid(np.array(b))
    score = np.stack([_R - x, (_R == 0) * (_S - y[0]), (_R == 1) * (_S - y[1])], axis=1)  # (4, 3)
    return score @ T


def ideal_latent_rewards(alpha: float = 1.0, beta: float = 1.0, gamma: float = 0.5,
                         cos_safe_unsafe: float = 0.0) -> tuple[float, float]:
    """R_ls of safe and of unsafe reasoning under an ideal geometry.

    Unit prototypes μ_safe, μ_unsafe with cosine ``c = cos_safe_unsafe`` (c > −1), μ_rethink their
    normalised midpoint (rethink sits between, paper §3), and the latent z of a trace exactly at the
    prototype of its class. Then cos(μ_safe, μ_rethink) = cos(μ_unsafe, μ_rethink) = √((1 + c)/2) and
    R_ls = α·cos(z, μ_safe) − β·cos(z, μ_unsafe) + γ·cos(z, μ_rethink).
    """
    if not -1.0 < cos_safe_unsafe <= 1.0:
        raise ValueError("cos_safe_unsafe must lie in (-1, 1]")
    c, rt = cos_safe_unsafe, math.sqrt((1.0 + cos_safe_unsafe) / 2.0)
    return alpha - beta * c + gamma * rt, alpha * c - beta + gamma * rt


def outcome_rewards(w_lat: float, w_txt: float, w_cons: float, *, ls_safe: float | None = None,
                    ls_unsafe: float | None = None, p_safe_latent: tuple[float, float] = (1.0, 0.0),
                    p_safe_text: tuple[float, float] = (1.0, 0.0)) -> np.ndarray:
    """CRAFT reward R = w_lat·R_ls + w_txt·R_txt + w_cons·R_cons of each outcome, (4,).

    Args:
        ls_safe, ls_unsafe: R_ls of safe / unsafe reasoning; default :func:`ideal_latent_rewards`.
        p_safe_latent: p_z = P(safe) read from the latent of (safe, unsafe) reasoning.
        p_safe_text: P(safe | y) from the judge of a (refusing, complying) answer.
    """
    ideal = ideal_latent_rewards()
    ls = np.array([ideal[0] if ls_safe is None else ls_safe, ideal[1] if ls_unsafe is None else ls_unsafe])
    pz, pt = np.asarray(p_safe_latent, float)[_R], np.asarray(p_safe_text, float)[_S]  # (4,) each
    return w_lat * ls[_R] + w_txt * (2 * pt - 1) + w_cons * (1 - np.abs(pz - pt))


@lru_cache(maxsize=8)
def group_compositions(group_size: int) -> np.ndarray:
    """Every multiset of ``group_size`` outcomes as counts, (M, 4); M = C(G + 3, 3) (165 for G = 8)."""
    combos = itertools.combinations_with_replacement(range(4), group_size)
    counts = np.array([np.bincount(c, minlength=4) for c in combos])
    counts.setflags(write=False)
    return counts


def composition_probs(theta, group_size: int) -> np.ndarray:
    """Multinomial probability of each composition of :func:`group_compositions`, (M,)."""
    counts, p = group_compositions(group_size), outcome_probs(theta)
    coef = np.array([math.factorial(group_size) / math.prod(math.factorial(n) for n in c) for c in counts])
    return coef * np.prod(p[None, :] ** counts, axis=1)


def group_advantages(counts: np.ndarray, rewards: np.ndarray, eps: float = TRL_STD_EPS,
                     scale_rewards: str = "group") -> np.ndarray:
    """TRL's GRPO advantage of each outcome within each group, (M, 4) for counts (M, 4); entries of
    outcomes absent from a group (count 0) are unused.

    (R_k − mean) / (std + eps), std with Bessel's correction (TRL ``scale_rewards="group"``), or
    R_k − mean (``"none"``, Dr. GRPO). R_k − mean is written as Σ_j n_j (R_k − R_j) / G, so a group of
    equal rewards gets advantage exactly 0.
    """
    G = counts.sum(axis=1, keepdims=True)                           # (M, 1)
    dev = counts @ (rewards[:, None] - rewards[None, :]).T / G      # (M, 4)
    if scale_rewards == "none":
        return dev
    if scale_rewards != "group":
        raise ValueError("scale_rewards must be 'group' or 'none'")
    std = np.sqrt((counts * dev**2).sum(axis=1, keepdims=True) / (G - 1))
    return dev / (std + eps)


def grpo_expected_update(theta, rewards, group_size: int = 8, eps: float = TRL_STD_EPS,
                         beta_kl: float = 0.0, theta_ref=None, scale_rewards: str = "group",
                         advantages: Callable | None = None) -> np.ndarray:
    """Exact expected GRPO ascent direction dθ (len θ,) at θ for groups of ``group_size``.

    E_groups[Σ_i A_i ∇_θ log π(o_i) / G], enumerated over :func:`group_compositions`. With
    ``scale_rewards="none"`` this is exactly (G − 1)/G·∇J; the std scaling makes it a different
    field, which need not even ascend J for arbitrary rewards. With ``beta_kl > 0`` it subtracts
    β·∇_θ KL(π_ref ‖ π_θ) per token (reasoning, then answer), the expected gradient of TRL's k3
    per-token penalty exp(Δ) − Δ − 1, Δ = log π_ref − log π.
    ``advantages(counts, rewards) -> (M, 4)`` replaces :func:`group_advantages` (then ``eps`` and
    ``scale_rewards`` are unused): how an exercise runs the dynamics with an advantage a student wrote.
    """
    rewards = np.asarray(rewards, dtype=float)
    counts = group_compositions(group_size)                          # (M, 4)
    adv = group_advantages(counts, rewards, eps, scale_rewards) if advantages is None else \
        np.asarray(advantages(counts, rewards), dtype=float)         # (M, 4)
    if adv.shape != counts.shape:
        raise ValueError(f"advantages(counts, rewards) must return one row per group and one column per outcome, "
                         f"{counts.shape}; got {adv.shape}")
    per_group = (counts * adv) @ outcome_scores(theta) / group_size  # (M, len θ)
    d = composition_probs(theta, group_size) @ per_group
    return d if beta_kl == 0.0 else d - beta_kl * _kl_grad(theta, theta_ref)


def _kl_grad(theta, theta_ref) -> np.ndarray:
    """∇_θ of Σ_tokens KL(π_ref ‖ π_θ) on π_θ's own samples: (x − x_ref, P(r)·(y_r − y_ref,r)) · T."""
    if theta_ref is None:
        raise ValueError("beta_kl > 0 needs theta_ref")
    (a, *b), T = _expand(theta)
    (a0, *b0), _ = _expand(theta_ref)
    x, y, y0 = _sigmoid(a), _sigmoid(np.array(b)), _sigmoid(np.array(b0))
    return np.r_[x - _sigmoid(a0), np.array([1 - x, x]) * (y - y0)] @ T


def expected_reward(theta, rewards) -> float:
    """J(θ) = Σ_o π_θ(o)·R(o)."""
    return float(outcome_probs(theta) @ np.asarray(rewards, dtype=float))


def expected_reward_grad(theta, rewards) -> np.ndarray:
    """∇_θ J (len θ,) by the chain rule through the sigmoids (not through the score function)."""
    (a, *b), T = _expand(theta)
    x, y = _sigmoid(a), _sigmoid(np.array(b))
    M = np.asarray(rewards, dtype=float).reshape(2, 2)   # [reasoning, answer]
    row = (1 - y) * M[:, 0] + y * M[:, 1]                 # (2,) E[R | reasoning]
    g_b = np.array([1 - x, x]) * y * (1 - y) * (M[:, 1] - M[:, 0])
    return np.r_[x * (1 - x) * (row[1] - row[0]), g_b] @ T


def trajectory(theta0, rewards, steps: int, lr: float, group_size: int = 8, beta_kl: float = 0.0,
               theta_ref=None) -> np.ndarray:
    """(P(unsafe reasoning), P(comply)) along θ ← θ + lr·dθ, (steps + 1, 2)."""
    theta, out = np.asarray(theta0, dtype=float), [to_xy(theta0)]
    for _ in range(steps):
        theta = theta + lr * grpo_expected_update(theta, rewards, group_size, beta_kl=beta_kl, theta_ref=theta_ref)
        out.append(to_xy(theta))
    return np.array(out)


def outcome_path(theta0, rewards, steps: int, lr: float, group_size: int = 8, *, scale_rewards: str = "group",
                 advantages: Callable | None = None) -> np.ndarray:
    """The probability of each outcome (:data:`OUTCOMES` order) along θ ← θ + lr·dθ, (steps + 1, 4): column 2
    is the SSA rate (unsafe reasoning, refuse). θ may be the factorised (a, b) or the coupled (a, b_safe, b_unsafe).
    ``scale_rewards`` and ``advantages``: as in :func:`grpo_expected_update`."""
    theta, out = np.asarray(theta0, dtype=float), [outcome_probs(theta0)]
    for _ in range(steps):
        theta = theta + lr * grpo_expected_update(theta, rewards, group_size, scale_rewards=scale_rewards,
                                                  advantages=advantages)
        out.append(outcome_probs(theta))
    return np.array(out)


def flow_field(rewards, grid: int = 21, group_size: int = 8, lo: float = 0.01,
               hi: float = 0.99) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The expected GRPO update of the factorised model in probability space on a grid.

    Returns X, Y, U, V, each (grid, grid) as from ``np.meshgrid``: X = P(unsafe reasoning),
    Y = P(comply), (U, V) = (x(1−x)·da, y(1−y)·db).
    """
    X, Y = np.meshgrid(np.linspace(lo, hi, grid), np.linspace(lo, hi, grid))
    d = np.array([grpo_expected_update(logits_from_xy(x, y), rewards, group_size)
                  for x, y in zip(X.ravel(), Y.ravel())])  # (grid², 2)
    return X, Y, X * (1 - X) * d[:, 0].reshape(X.shape), Y * (1 - Y) * d[:, 1].reshape(Y.shape)


def ssa_corner_drift(rewards, x: float = 0.99, y: float = 0.01, group_size: int = 8, *,
                     scale_rewards: str = "group") -> np.ndarray:
    """The expected GRPO update (dx, dy) in probability space at a point near the SSA corner.

    Theorem 5.1, numerically: dx < 0 (away from unsafe reasoning) when w_cons > 0; dx = 0 under R_txt only.
    ``scale_rewards="none"``: Dr. GRPO's advantages (no division by the group's std).
    """
    d = grpo_expected_update(logits_from_xy(x, y), rewards, group_size, scale_rewards=scale_rewards)
    return np.array([x * (1 - x) * d[0], y * (1 - y) * d[1]])
