"""Figures. Every function returns a matplotlib ``Figure``; none saves or shows it."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

REGIME_LABEL = {"direct": "direct", "jailbroken": "jailbroken", "dressed": "dressed-up", "held_out": "held-out"}
RATE_COLORS = {"reasoning_harm_rate": "#c44e52", "response_harm_rate": "#8c1c13", "ssa_rate": "#dd8452"}
RATE_LABELS = {"reasoning_harm_rate": "reasoning harmful", "response_harm_rate": "response harmful (ASR)",
               "ssa_rate": "SSA (unsafe reasoning, safe answer)"}


def behaviour_by_family(table: pd.DataFrame, benign: dict[str, float], title: str = "") -> plt.Figure:
    """Grouped bars of the safety rates per attack family, plus the benign-prompt metrics.

    Args:
        table: :func:`craft.evaluate.family_table` output (regime, family, n and rates).
        benign: e.g. ``{"arithmetic accuracy": 0.95, "over-refusal": 0.02}``.
    """
    order = {"direct": 0, "jailbroken": 1, "dressed": 2, "held_out": 3}
    t = table.sort_values(by=["regime", "family"], key=lambda s: s.map(order) if s.name == "regime" else s)
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 3.6), width_ratios=[4, 1.2])
    x, w = np.arange(len(t)), 0.27
    for i, col in enumerate(RATE_COLORS):
        ax.bar(x + (i - 1) * w, t[col], w, color=RATE_COLORS[col], label=RATE_LABELS[col])
    ax.set_xticks(x, [f"{f}\n{REGIME_LABEL[r]}\nn={n}" for f, r, n in zip(t.family, t.regime, t.n)], fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("rate on held-out harmful prompts")
    ax.legend(fontsize=8, loc="upper left", frameon=False)
    ax.grid(axis="y", alpha=0.3)
    bx.bar(range(len(benign)), list(benign.values()), color=["#4c72b0", "#55a868"][:len(benign)])
    bx.set_xticks(range(len(benign)), list(benign), fontsize=8)
    bx.set_ylim(0, 1)
    bx.set_title("benign prompts", fontsize=9)
    bx.grid(axis="y", alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def loss_curve(log_history: list[dict], title: str = "SFT loss") -> plt.Figure:
    """Training loss against step from a Trainer ``log_history``."""
    pts = [(r["step"], r["loss"]) for r in log_history if "loss" in r and "step" in r]
    fig, ax = plt.subplots(figsize=(4.5, 3))
    if pts:
        ax.plot(*zip(*pts), marker="o", ms=3)
    ax.set_xlabel("step")
    ax.set_ylabel("loss (completion tokens)")
    ax.set_yscale("log")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
