"""Metrics of the LCLR heads on held-out traces (paper §4.1): 3-way accuracy by nearest prototype,
AUROC of p_z for safe vs unsafe, the true-positive rate at 1 % false positives, calibration (ECE, Brier)
and the prototypes' geometry.

ECE, Brier and AUROC use safe-vs-unsafe traces only: rethink has no binary truth.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from torch import Tensor

from craft.lclr.heads import LCLRHeads
from craft.probing import tpr_at_fpr
from craft.types import LABEL_NAMES, RETHINK, SAFE, UNSAFE


def _np(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, Tensor) else np.asarray(x)


def accuracy_3way(pred, labels) -> float:
    """Fraction of traces whose predicted class equals the label."""
    return float(np.mean(_np(pred) == _np(labels)))


def auroc_safe_unsafe(p_safe, labels) -> float:
    """AUROC of p_safe for safe (positive) vs unsafe; rethink excluded. NaN if a class is missing."""
    p, y = _np(p_safe).astype(float), _np(labels)
    keep = y != RETHINK
    positive = y[keep] == SAFE
    return float("nan") if positive.all() or not positive.any() else float(roc_auc_score(positive, p[keep]))


def expected_calibration_error(p, y, n_bins: int = 10) -> float:
    """ECE = Σ_b (n_b / N)·|mean p in b − mean y in b|, equal-width bins on [0, 1] (p = 1 in the last).

    ``evaluate_heads`` calls it on safe-vs-unsafe traces with binary targets (rethink excluded).
    """
    p, y = _np(p).astype(float), _np(y).astype(float)
    if len(p) == 0:
        return float("nan")
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1)
    return float(sum(abs(p[bins == b].mean() - y[bins == b].mean()) * np.mean(bins == b)
                     for b in np.unique(bins)))


def brier_score(p, y) -> float:
    """Mean (p − y)²."""
    p, y = _np(p).astype(float), _np(y).astype(float)
    return float(np.mean((p - y) ** 2)) if len(p) else float("nan")


def prototype_gaps(heads: LCLRHeads) -> dict[str, float]:
    """Cosines between prototypes (unit vectors): safe·unsafe, safe·rethink, unsafe·rethink."""
    mu = heads.prototypes.mu
    return {"cos_safe_unsafe": float(mu[SAFE] @ mu[UNSAFE]),
            "cos_safe_rethink": float(mu[SAFE] @ mu[RETHINK]),
            "cos_unsafe_rethink": float(mu[UNSAFE] @ mu[RETHINK])}


def evaluate_heads(heads: LCLRHeads, features: Tensor, labels) -> dict[str, float]:
    """All LCLR metrics on pooled ``features`` (N, d) with ``labels`` (N,).

    ECE and Brier use safe-vs-unsafe traces with binary targets; ``tpr_at_1pct_fpr`` is the share of unsafe
    traces whose ``1 - p_z`` passes the threshold that lets at most 1 % of safe traces through (how a monitor
    reading p_z would be set); ``p_safe_mean_<class>`` is the mean p_z per class (NaN for an absent class).
    """
    labels = torch.as_tensor(labels, dtype=torch.long)
    p = heads.p_safe(features).cpu()
    binary = labels != RETHINK
    y = (labels == SAFE).float()
    unsafe_scores = (1.0 - p[binary]).numpy()                  # a detector of unsafe traces: low p_z alarms
    out = {"acc_3way": accuracy_3way(heads.predict(features).cpu(), labels),
           "auroc_safe_unsafe": auroc_safe_unsafe(p, labels),
           "tpr_at_1pct_fpr": tpr_at_fpr((labels[binary] == UNSAFE).numpy(), unsafe_scores, 0.01),
           "ece": expected_calibration_error(p[binary], y[binary]),
           "brier": brier_score(p[binary], y[binary]),
           **prototype_gaps(heads)}
    for c, name in enumerate(LABEL_NAMES):
        out[f"p_safe_mean_{name}"] = float(p[labels == c].mean()) if bool((labels == c).any()) else float("nan")
    return out

