"""The LCLR losses (paper §4.1) and the token-dropout views of InfoNCE; see :mod:`craft.lclr`.

Paper variant: ``L = L_proto + λ_inst·L_inst + λ_cal·L_cal``. Released-code variant: triplet,
InfoNCE, 3-way cross-entropy, calibration ("distill") and ordering terms. Plain tensors in, a scalar
loss out.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from craft.latents import pool_tokens
from craft.types import RETHINK, SAFE, UNSAFE

SOFT_LABEL = {SAFE: 1.0, UNSAFE: 0.0, RETHINK: 0.5}   # y_soft, the calibration target


def soft_targets(labels: Tensor) -> Tensor:
    """y_soft per trace: safe 1, rethink 0.5, unsafe 0. (N,) long -> (N,) float."""
    table = torch.tensor([SOFT_LABEL[c] for c in range(3)], device=labels.device)
    return table[labels]


def proto_loss(z: Tensor, labels: Tensor, mu: Tensor, margin: float, gamma_rt: float) -> Tensor:
    """Label-conditioned prototype loss, mean over the batch. z (N, D) unit, mu (3, D).

    safe:    max(0, η − zᵀμ_safe + zᵀμ_unsafe)
    unsafe:  max(0, η − zᵀμ_unsafe + zᵀμ_safe)
    rethink: γ_rt·(1 − zᵀμ_rethink)
    """
    cos = z @ mu.T                                                            # (N, 3)
    to_safe = F.relu(margin - cos[:, SAFE] + cos[:, UNSAFE])
    to_unsafe = F.relu(margin - cos[:, UNSAFE] + cos[:, SAFE])
    anchor = gamma_rt * (1 - cos[:, RETHINK])
    per = torch.where(labels == SAFE, to_safe, torch.where(labels == UNSAFE, to_unsafe, anchor))
    return per.mean()


def info_nce(z1: Tensor, z2: Tensor, tau: float) -> Tensor:
    """Symmetric InfoNCE ½[CE(z1 z2ᵀ/τ, I) + CE(z2 z1ᵀ/τ, I)]: row i of z1 and of z2 (N, D) are two
    views of trace i, the positives on the diagonal (rows are re-normalised)."""
    z1, z2 = F.normalize(z1, dim=-1), F.normalize(z2, dim=-1)
    logits = z1 @ z2.T / tau                                                  # (N, N)
    target = torch.arange(len(z1), device=z1.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def bernoulli_kl(q: Tensor, logit: Tensor) -> Tensor:
    """KL(Bernoulli(q) || Bernoulli(sigmoid(logit))), elementwise, stable in the logit."""
    q = q.to(logit)
    return (torch.xlogy(q, q) - q * F.logsigmoid(logit)
            + torch.xlogy(1 - q, 1 - q) - (1 - q) * F.logsigmoid(-logit))


def calibration_loss(logit: Tensor, labels: Tensor, judge_p_safe: Tensor | None = None,
                     lambda_kl: float = 0.0) -> Tensor:
    """L_cal = BCE(sigmoid(logit), y_soft) + λ_kl·mean KL(Bernoulli(judge) || Bernoulli(p_z)).
    logit (N,), labels (N,), judge_p_safe (N,) in [0, 1] or None (then no KL term)."""
    loss = F.binary_cross_entropy_with_logits(logit, soft_targets(labels).to(logit))
    if judge_p_safe is not None and lambda_kl > 0:
        loss = loss + lambda_kl * bernoulli_kl(judge_p_safe, logit).mean()
    return loss


def triplet_loss(z: Tensor, labels: Tensor, margin: float) -> Tensor:
    """Unconditioned batch-hard triplet loss on cosine similarity (released variant).

    Every trace i is an anchor; its positive is the least similar other trace of its class and
    its negative the most similar trace of another class (Hermans et al. 2017):
    mean_i max(0, η − z_iᵀz_pos(i) + z_iᵀz_neg(i)), over anchors that have both. No randomness.
    """
    sim = z @ z.T                                                             # (N, N)
    same = labels[:, None] == labels[None, :]
    pos = same & ~torch.eye(len(z), dtype=torch.bool, device=z.device)
    valid = pos.any(1) & (~same).any(1)
    if not bool(valid.any()):
        return z.sum() * 0.0
    hardest_pos = sim.masked_fill(~pos, float("inf")).min(1).values
    hardest_neg = sim.masked_fill(same, float("-inf")).max(1).values
    return F.relu(margin - hardest_pos + hardest_neg)[valid].mean()


def ordering_loss(p_z: Tensor, labels: Tensor, margin: float = 0.2) -> Tensor:
    """Order class means of p_z: p̄_safe > p̄_rethink > p̄_unsafe (released variant).

    Mean over the ordered pairs (a above b) whose classes are both in the batch of
    max(0, k_ab·η − (p̄_a − p̄_b)), with k = 1 for (safe, rethink) and (rethink, unsafe) and
    k = 2 for (safe, unsafe). Zero when fewer than two classes are present.
    """
    means = {c: p_z[labels == c].mean() for c in range(3) if bool((labels == c).any())}
    pairs = ((SAFE, RETHINK, 1.0), (RETHINK, UNSAFE, 1.0), (SAFE, UNSAFE, 2.0))
    terms = [F.relu(k * margin - (means[a] - means[b])) for a, b, k in pairs if a in means and b in means]
    return torch.stack(terms).mean() if terms else p_z.sum() * 0.0


def token_dropout_view(tokens: Tensor, p: float, generator: torch.Generator | None = None,
                       pool: str = "mean") -> Tensor:
    """THE pooling over a random subset of tokens, each kept with prob 1 − p, at least one. (T, d) -> (d,)"""
    keep = torch.rand(len(tokens), generator=generator) >= p                  # (T,)
    if not bool(keep.any()):
        keep[torch.randint(len(tokens), (1,), generator=generator)] = True
    return pool_tokens(tokens[keep.to(tokens.device)], pool)


