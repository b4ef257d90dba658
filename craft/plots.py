"""Figures. Every function returns a matplotlib ``Figure``; none saves or shows it.

Colours come from seaborn's colour-blind-safe palette (``CB``, the Okabe–Ito hues) everywhere, and the same
thing keeps its colour across notebooks (a method, a class of trace, a rate). seaborn draws what it does
well: lines with a band over seeds (:func:`training_curves`) and annotated heat maps (:func:`method_table`);
matplotlib draws the rest. No global style is set: importing this module changes nothing.
"""

from __future__ import annotations

import html
import warnings
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib import colormaps
from matplotlib.colors import to_hex

CB = dict(zip(("blue", "orange", "green", "vermillion", "purple", "brown", "pink", "grey", "yellow", "sky"),
              sns.color_palette("colorblind", 10).as_hex()))

MAX_WIDTH = 12.0      # inches: a figure wider than this is unreadable on a notebook page; panels wrap instead
REGIME_LABEL = {"direct": "direct", "jailbroken": "jailbroken", "dressed": "dressed-up", "held_out": "held-out"}
RATE_COLORS = {"reasoning_harm_rate": CB["orange"], "response_harm_rate": CB["vermillion"], "ssa_rate": CB["purple"]}
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
    ax.set_xticks(x, [f"{f}\n{REGIME_LABEL.get(r, r)}\nn={n}" for f, r, n in zip(t.family, t.regime, t.n)], fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("rate on held-out harmful prompts")
    ax.legend(fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, frameon=False)
    ax.grid(axis="y", alpha=0.3)
    bx.bar(range(len(benign)), list(benign.values()), color=[CB["blue"], CB["green"], CB["grey"]][:len(benign)])
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


CLASS_COLORS = {"safe": CB["blue"], "rethink": CB["green"], "unsafe": CB["vermillion"]}


def layer_sweep(sweep: pd.DataFrame, chosen: dict[str, int]) -> plt.Figure:
    """3-way probe accuracy per layer, one colour per model: held-out traces of seen hazards (solid) and,
    where the sweep has them (``unseen_acc``), traces of unseen hazards (dashed); chosen layers circled."""
    fig, ax = plt.subplots(figsize=(5.2, 3.4))
    unseen = "unseen_acc" in sweep and sweep.unseen_acc.notna().any()
    for i, (name, df) in enumerate(sweep.groupby("model", sort=True)):
        line, = ax.plot(df.layer, df.probe_acc_3way, marker="o", color=_cycle(i), label=f"{name} · held-out")
        if unseen:
            ax.plot(df.layer, df.unseen_acc, marker="s", ls="--", color=line.get_color(),
                    label=f"{name} · unseen hazards")
        row = df[df.layer == chosen[name]]
        ax.scatter(row.layer, row.probe_acc_3way, s=140, facecolors="none", edgecolors=line.get_color())
    ax.set_xlabel("layer (0 = embeddings)")
    ax.set_ylabel("3-way probe accuracy")
    ax.set_ylim(0, 1.02)
    ax.axhline(1 / 3, color="grey", lw=0.8, ls=":")
    ax.legend(fontsize=7, frameon=False)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def probe_controls(binary: pd.DataFrame, controls: pd.DataFrame, column: str = "unseen_auroc") -> plt.Figure:
    """Safe-vs-unsafe probe AUROC per layer, one line per pooling (``column``: unseen-hazard test traces by
    default), beside what memorising words gives: the bag of words on the reasoning text (dashed, ``bow[model]``)
    and the control task's AUROC (dotted, one random label per hazard, held-out traces of the same hazards).
    One panel per model of ``binary`` (the probe stage's ``controls_sweep.csv``); ``controls`` (its
    ``controls.csv``) gives each model's bag of words, ``probe_auroc_bow_unseen`` or ``_test`` as ``column``."""
    bow_column = "probe_auroc_bow_unseen" if column.startswith("unseen") else "probe_auroc_bow_test"
    bow = dict(zip(controls.model, controls[bow_column]))
    models = list(dict.fromkeys(binary.model))
    fig, axes = plt.subplots(1, len(models), figsize=(4.4 * len(models), 3.4), squeeze=False, sharey=True)
    colors = {"mean": CB["blue"], "last": CB["orange"], "max": CB["green"]}
    for ax, name in zip(axes[0], models):
        df = binary[binary.model == name]
        for pool, rows in df.groupby("pool", sort=False):
            color = colors.get(pool, CB["grey"])
            ax.plot(rows.layer, rows[column], marker="o", color=color, label=f"probe · {pool}")
            if rows.control_auroc.notna().any():
                ax.plot(rows.layer, rows.control_auroc, ls=":", color=color, label=f"control task · {pool}")
        if name in bow and not np.isnan(bow[name]):
            ax.axhline(bow[name], color="black", ls="--", lw=1, label="bag of words")
        ax.axhline(0.5, color="grey", lw=0.8, ls=":")
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("layer (0 = embeddings)")
        ax.set_ylim(0.4, 1.02)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("AUROC, unsafe vs safe" + (" (unseen hazards)" if column.startswith("unseen") else ""))
    axes[0][-1].legend(fontsize=7, frameon=False, loc="lower right", ncol=2)
    fig.tight_layout()
    return fig


def latent_pca(panels: dict[str, tuple[np.ndarray, np.ndarray]],
               title_suffix: dict[str, str] | None = None) -> plt.Figure:
    """Paper Fig. 2 style: 2-D PCA of latents coloured by class, one panel per model,
    with class centroids marked. ``panels[name] = (points (N, 2), labels (N,))``."""
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.8), squeeze=False)
    for ax, (name, (pts, labels)) in zip(axes[0], panels.items()):
        for cls, color in CLASS_COLORS.items():
            m = labels == cls
            ax.scatter(pts[m, 0], pts[m, 1], s=6, alpha=0.35, color=color, label=cls)
            ax.scatter(*pts[m].mean(0), s=160, marker="X", color=color, edgecolors="black", linewidths=0.8)
        ax.set_title(f"{name}" + (f" · {title_suffix[name]}" if title_suffix else ""), fontsize=10)
        ax.set_xlabel("PC 1")
        ax.set_ylabel("PC 2")
        ax.legend(fontsize=8, markerscale=2, frameon=False)
    fig.tight_layout()
    return fig


def reliability_diagram(p: np.ndarray, y: np.ndarray, n_bins: int = 10,
                        p_rethink: np.ndarray | None = None, strategy: str = "uniform", title: str = "") -> plt.Figure:
    """Calibration of ``p`` (predicted P(safe)) against binary ``y``: observed frequency per bin,
    with the distribution of ``p`` below (and of ``p_rethink``, rethink traces, when given).

    ``strategy``: ``uniform`` bins of equal width on [0, 1] (those of the ECE), drawn as bars; or ``quantile``
    bins holding equal numbers of traces, drawn as one point per bin at its mean ``p``, so that every point
    is populated even when ``p`` piles up near 0 and 1."""
    if strategy not in ("uniform", "quantile"):
        raise ValueError(f"unknown strategy {strategy!r}; choose 'uniform' or 'quantile'")
    p, y = np.asarray(p, dtype=float), np.asarray(y, dtype=float)
    uniform = np.linspace(0, 1, n_bins + 1)
    edges = np.quantile(p, np.linspace(0, 1, n_bins + 1)) if strategy == "quantile" else uniform
    # equal-count bins by rank, so that ties (many equal p) still split into bins of equal size
    idx = (np.argsort(np.argsort(p, kind="stable")) * n_bins // len(p) if strategy == "quantile"
           else np.clip(np.digitize(p, edges[1:-1]), 0, n_bins - 1))
    freq = np.array([y[idx == b].mean() if (idx == b).any() else np.nan for b in range(n_bins)])
    mean_p = np.array([p[idx == b].mean() if (idx == b).any() else np.nan for b in range(n_bins)])
    fig, (ax, bx) = plt.subplots(2, 1, figsize=(4.2, 5), height_ratios=[3, 1.3], sharex=True)
    ax.plot([0, 1], [0, 1], ls=":", color="grey")
    if strategy == "quantile":
        ax.plot(mean_p, freq, "o-", color=CB["blue"], ms=5, label=f"{n_bins} bins of {len(p) // n_bins} traces")
        ax.legend(fontsize=8, frameon=False, loc="upper left")
    else:
        centres = (uniform[:-1] + uniform[1:]) / 2
        ax.bar(centres, freq, width=1 / n_bins, edgecolor="black", alpha=0.7, color=CB["blue"])
    ax.set_ylabel("observed fraction safe")
    ax.set_title(title or "reliability of p_z (safe vs unsafe traces)", fontsize=10)
    hist_edges = np.linspace(0, 1, 21)
    bx.hist(p, bins=hist_edges, color=CB["blue"], alpha=0.7, label="safe + unsafe")
    if p_rethink is not None:
        bx.hist(p_rethink, bins=hist_edges, color=CLASS_COLORS["rethink"], alpha=0.7, label="rethink")
    bx.set_yscale("log")
    bx.set_xlabel("predicted p_z = P(safe)")
    bx.set_ylabel("traces")
    bx.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def lclr_losses(logs: dict[str, list[dict]]) -> plt.Figure:
    """LCLR loss terms per epoch, one panel per variant."""
    fig, axes = plt.subplots(1, len(logs), figsize=(4.2 * len(logs), 3), squeeze=False)
    for ax, (name, log) in zip(axes[0], logs.items()):
        df = pd.DataFrame(log)
        for i, col in enumerate(c for c in df.columns if c not in ("epoch", "step")):
            ax.plot(df["epoch"], df[col], marker="o", color=_cycle(i), label=col)
        ax.set_title(f"LCLR · {name}", fontsize=10)
        ax.set_xlabel("epoch")
        ax.legend(fontsize=8, frameon=False)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def theorem_flow(panels: dict[str, tuple], trajectories: dict[str, list[np.ndarray]] | None = None) -> plt.Figure:
    """Theorem 5.1 (paper §5): the expected GRPO flow in the (P(unsafe reasoning), P(comply)) square,
    one panel per reward design, with trajectories and the SSA corner marked.

    Args:
        panels: ``panels[name] = (X, Y, U, V)`` from :func:`craft.theory.flow_field`.
        trajectories: ``trajectories[name]`` = list of (T, 2) (x, y) paths from :func:`craft.theory.trajectory`.
    """
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.2), squeeze=False)
    for ax, (name, (X, Y, U, V)) in zip(axes[0], panels.items()):
        ax.streamplot(X, Y, U, V, color="#9a9a9a", density=0.9, linewidth=0.7, arrowsize=0.8)
        for i, path in enumerate((trajectories or {}).get(name, [])):
            line, = ax.plot(path[:, 0], path[:, 1], lw=2, color=_cycle(i))
            ax.plot(*path[0], "o", ms=5, color=line.get_color())
            ax.plot(*path[-1], "s", ms=6, color=line.get_color(), markeredgecolor="black")
        ax.plot(1, 0, "*", ms=16, color=RATE_COLORS["ssa_rate"], markeredgecolor="black", clip_on=False, zorder=5)
        ax.annotate("SSA\n(unsafe reasoning,\nsafe answer)", (1, 0), xytext=(0.62, 0.12), fontsize=8,
                    arrowprops={"arrowstyle": "->", "lw": 0.8}, bbox={"fc": "white", "ec": "none", "alpha": 0.8})
        ax.annotate("safe", (0, 0), xytext=(0.03, 0.03), fontsize=8)
        ax.annotate("jailbreak", (1, 1), xytext=(0.76, 0.94), fontsize=8)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_aspect("equal")
        ax.set_xlabel("P(unsafe reasoning)")
        ax.set_ylabel("P(comply)")
        ax.set_title(name, fontsize=10)
    fig.tight_layout()
    return fig


VARIANT_COLORS = {"base": CB["grey"], "output_only": CB["orange"], "craft": CB["blue"], "no_lclr": CB["purple"],
                  "no_cons": CB["green"], "no_ls": CB["vermillion"], "no_txt": CB["yellow"],
                  "sft_offpolicy": CB["sky"], "intervened_po": CB["pink"], "reasoning_judge": CB["brown"],
                  "shuffled_lclr": "#222222"}


def training_curves(history: pd.DataFrame, panels: dict[str, str], band: str = "range over seeds") -> plt.Figure:
    """Metrics against GRPO step, one panel per metric, one line per variant (mean over seeds)
    with a band from the lowest to the highest seed.

    Args:
        history: long table with columns ``variant``, ``seed``, ``step`` and one per metric.
        panels: ``panels[column] = title``.
    """
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.2), squeeze=False, sharey=True)
    variants = list(dict.fromkeys(history["variant"]))
    n_seeds = history.groupby("variant")["seed"].nunique()
    labels = {v: f"{v} (n={n_seeds[v]})" for v in variants}
    palette = {labels[v]: VARIANT_COLORS.get(v, _cycle(i)) for i, v in enumerate(variants)}
    legend_col = ([c for c in panels if c in history.columns] or [None])[-1]
    for ax, (col, title) in zip(axes[0], panels.items()):
        if col not in history.columns:      # not measured by this run's evaluation set
            ax.text(0.5, 0.5, "not measured\nin this run", ha="center", va="center", transform=ax.transAxes)
        else:                                # mean over seeds, band from the lowest to the highest seed
            data = history.dropna(subset=[col]).assign(label=lambda d: d.variant.map(labels))
            sns.lineplot(data=data, x="step", y=col, hue="label", hue_order=list(palette), palette=palette,
                         estimator="mean", errorbar=lambda v: (v.min(), v.max()), marker="o", markersize=4,
                         markeredgewidth=0, err_kws={"alpha": 0.2, "lw": 0}, ax=ax, legend=col == legend_col)
        ax.set_ylabel("")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("GRPO step")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(f"rate (mean, band: {band})")
    for ax in axes[0]:
        if ax.get_legend() is not None:
            ax.legend(fontsize=8, frameon=False, title=None)
    fig.tight_layout()
    return fig


def coupled_ssa(model_paths: dict[str, dict[str, np.ndarray]], measured: pd.DataFrame) -> plt.Figure:
    """One panel per regime: the SSA rate the output-only runs measured against the GRPO step (mean over seeds,
    band from the lowest seed to the highest; bottom axis) and each model's predicted SSA rate against its own
    step (top axis: a model step is a step in logit space, not a GRPO step).

    Args:
        model_paths: ``model_paths[regime][model]`` = the model's SSA rate per step, (steps + 1,).
        measured: long history with ``seed``, ``step`` and ``ssa_rate_<regime>`` columns.
    """
    fig, axes = plt.subplots(1, len(model_paths), figsize=(4.2 * len(model_paths), 3.4), squeeze=False)
    styles = {"coupled": ("k", "-"), "independent": ("k", ":")}
    for ax, (regime, paths) in zip(axes[0], model_paths.items()):
        per_step = measured.groupby("step")[f"ssa_rate_{regime}"]
        mean, lo, hi = per_step.mean(), per_step.min(), per_step.max()
        ax.plot(mean.index, mean, "o-", color=VARIANT_COLORS["output_only"], label="measured: output-only GRPO")
        ax.fill_between(mean.index, lo, hi, color=VARIANT_COLORS["output_only"], alpha=0.2, lw=0)
        ax.set_xlabel("GRPO step (measured)")
        top = ax.twiny()
        for model, path in paths.items():
            color, ls = styles.get(model, ("k", "--"))
            top.plot(np.arange(len(path)), path, color=color, ls=ls, label=f"model: {model}")
        top.set_xlabel("model step", fontsize=8)
        ax.set_title(f"SSA · {REGIME_LABEL.get(regime, regime)}", fontsize=10)
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        handles = ax.get_legend_handles_labels()[0] + top.get_legend_handles_labels()[0]
        ax.legend(handles, [h.get_label() for h in handles], fontsize=7, frameon=False, loc="center right")
    axes[0][0].set_ylabel("SSA rate, core prompts")
    fig.tight_layout()
    return fig


def interval_bars(table: pd.DataFrame, metrics: dict[str, str]) -> plt.Figure:
    """Grouped bars with error bars: one group per metric, one bar per row of ``table``.

    Args:
        table: indexed by variant; columns ``<metric>``, ``<metric>_lo`` and ``<metric>_hi``.
        metrics: ``metrics[column] = label``.
    """
    fig, ax = plt.subplots(figsize=(1.6 + 1.5 * len(metrics), 3.2))
    width = 0.8 / len(table)
    for i, (variant, row) in enumerate(table.iterrows()):
        x = np.arange(len(metrics)) + (i - (len(table) - 1) / 2) * width
        mean = np.array([row[m] for m in metrics])
        err = np.array([[row[m] - row[f"{m}_lo"], row[f"{m}_hi"] - row[m]] for m in metrics]).T
        ax.bar(x, mean, width, yerr=err, capsize=2, color=VARIANT_COLORS.get(variant, _cycle(i)), label=variant)
    ax.set_xticks(np.arange(len(metrics)), list(metrics.values()), fontsize=8)
    ax.set_ylabel("rate (mean, 95 % interval over seeds)")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def run_dots(rows: dict[str, pd.DataFrame], metrics: dict[str, str], reference: str = "craft",
             margin: float = 0.0) -> plt.Figure:
    """One panel per metric, one column of dots per variant: each dot one run's final rate (a seed, or a draw
    of random heads), the bar its mean; a dashed line at ``reference``'s mean + ``margin``.

    Args:
        rows: ``rows[variant]`` one row per run, with a column per metric (:func:`craft.stats.final_rows`).
        metrics: ``metrics[column] = label``.
    """
    ncols = max([1] + [n for n in range(1, len(metrics) + 1) if 1.2 + 0.8 * len(rows) * n <= MAX_WIDTH])
    nrows = -(-len(metrics) // ncols)                              # panels wrap to stay readable on a page
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.2 + 0.8 * len(rows) * ncols, 3.0 * nrows), sharey=True,
                             squeeze=False)
    for ax in axes.flat[len(metrics):]:
        ax.set_visible(False)
    for ax, (col, label) in zip(axes.flat, metrics.items()):
        for i, (variant, df) in enumerate(rows.items()):
            values = df[col].to_numpy(dtype=float)
            color = VARIANT_COLORS.get(variant, _cycle(i))
            ax.scatter(np.full(len(values), i) + np.linspace(-0.12, 0.12, len(values)), values, s=18, color=color)
            ax.hlines(values.mean(), i - 0.3, i + 0.3, color=color, lw=1.5)
        if reference in rows and margin:
            ax.axhline(rows[reference][col].mean() + margin, color="k", ls="--", lw=0.8,
                       label=f"{reference} mean + {margin:g}")
        ax.set_xticks(range(len(rows)), list(rows), rotation=30, ha="right", fontsize=8)
        ax.set_title(label, fontsize=10)
        ax.set_ylim(-0.02, 1.02)
        ax.grid(axis="y", alpha=0.3)
    for ax in axes[:, 0]:
        ax.set_ylabel("final rate (one dot a run)")
    if reference in rows and margin:
        axes.flat[len(metrics) - 1].legend(fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def coded_shift(pooled: pd.DataFrame) -> plt.Figure:
    """Two panels, one bar per policy: harmful reasoning as the exact and as the surface judge read it, and
    the coded share of the unsafe reasoning (the gap between the two), each with its Wilson 95 % interval.

    Args:
        pooled: indexed by policy; columns ``reasoning_harm``, ``surface_harm``, ``coded_share`` and for
            each ``<column>_lo`` / ``<column>_hi``.
    """
    fig, (left, right) = plt.subplots(1, 2, figsize=(8.4, 3.2), gridspec_kw={"width_ratios": [1.6, 1]})
    x, width = np.arange(len(pooled)), 0.38
    for k, (col, label, hatch) in enumerate((("reasoning_harm", "exact judge", ""),
                                             ("surface_harm", "surface judge (text monitor)", "//"))):
        err = np.array([pooled[col] - pooled[f"{col}_lo"], pooled[f"{col}_hi"] - pooled[col]])
        colors = [VARIANT_COLORS.get(v, _cycle(i)) for i, v in enumerate(pooled.index)]
        left.bar(x + (k - 0.5) * width, pooled[col], width, yerr=err, capsize=2, color=colors, hatch=hatch,
                 edgecolor="white", label=label)
    left.set_title("harmful prompts with harmful reasoning", fontsize=10)
    err = np.array([pooled.coded_share - pooled.coded_share_lo, pooled.coded_share_hi - pooled.coded_share])
    right.bar(x, pooled.coded_share, 0.6, yerr=err, capsize=2,
              color=[VARIANT_COLORS.get(v, _cycle(i)) for i, v in enumerate(pooled.index)])
    right.set_title("coded share of the unsafe reasoning", fontsize=10)
    for ax in (left, right):
        ax.set_xticks(x, list(pooled.index), fontsize=8, rotation=20)
        ax.set_ylim(0, 1.05)
        ax.grid(axis="y", alpha=0.3)
    left.set_ylabel("rate (Wilson 95 % interval)")
    left.legend(fontsize=8, frameon=False, loc="upper right")
    fig.tight_layout()
    return fig


def method_table(table: pd.DataFrame, title: str = "harmful rate (lower is safer)") -> plt.Figure:
    """A paper-layout table (rows: methods; columns: (benchmark, reasoning|response)) as an
    annotated heat map, one column per (benchmark, kind)."""
    values = table.astype(float)                                            # (methods, columns)
    values.columns = [f"{b}\n{k}" for b, k in table.columns]
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * values.shape[1], 0.9 + 0.45 * values.shape[0]))
    sns.heatmap(values, cmap="rocket_r", vmin=0, vmax=1, annot=True, fmt=".2f", annot_kws={"fontsize": 8},
                cbar=False, linewidths=0.5, linecolor="white", ax=ax)
    for i, j in zip(*np.nonzero(values.isna().to_numpy())):                 # seaborn leaves NaN cells blank
        ax.text(j + 0.5, i + 0.5, "–", ha="center", va="center", fontsize=8)
    ax.tick_params(axis="x", labelsize=7, rotation=0)
    ax.tick_params(axis="y", labelsize=9, rotation=0)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


MONITOR_COLORS = {"safe": CB["blue"], "rethink": CB["green"], "dressed-up SSA": CB["purple"],
                  "jailbroken": CB["vermillion"], "benign": CB["grey"]}


def _mean_band(ax, rows: list[np.ndarray], x: np.ndarray, color: str, label: str) -> None:
    grid = np.full((len(rows), len(x)), np.nan)
    for i, r in enumerate(rows):
        grid[i, :len(r)] = r[:len(x)]
    enough = (~np.isnan(grid)).sum(0) >= 5               # a point needs five completions behind it
    with warnings.catch_warnings():                      # all-NaN columns (not enough completions) are dropped
        warnings.simplefilter("ignore", RuntimeWarning)
        mean, lo, hi = np.nanmean(grid, 0), np.nanpercentile(grid, 25, 0), np.nanpercentile(grid, 75, 0)
    ax.plot(x[enough], mean[enough], color=color, label=f"{label} (n={len(rows)})")
    ax.fill_between(x[enough], lo[enough], hi[enough], color=color, alpha=0.15)


def monitor_trajectories(groups: dict[str, list[list[float]]], aligned: dict[str, list[np.ndarray]],
                         threshold: float, max_tokens: int = 100, window: int = 30) -> plt.Figure:
    """p_z after each reasoning token, mean and interquartile band per kind of completion (left), and
    around the first disclosed recipe step (right: ``aligned`` rows hold p_z at offsets -window..window)."""
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 3.8), sharey=True)
    x = np.arange(max_tokens)
    for name, rows in groups.items():
        _mean_band(ax, [np.asarray(r) for r in rows], x, MONITOR_COLORS.get(name, "gray"), name)
    ax.set_xlabel("reasoning tokens read")
    ax.set_ylabel("running p_z = P(safe | latent so far)")
    offsets = np.arange(-window, window + 1)
    for name, rows in aligned.items():
        grid = np.vstack(rows) if rows else np.empty((0, len(offsets)))
        enough = (~np.isnan(grid)).sum(0) >= 5
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(grid, 0)
        bx.plot(offsets[enough], mean[enough], color=MONITOR_COLORS.get(name, "gray"), label=f"{name} (n={len(rows)})")
    bx.axvline(0, color="black", lw=0.8, ls=":")
    bx.set_xlabel("tokens from the first disclosed recipe step")
    for a in (ax, bx):
        a.axhline(threshold, color="black", lw=0.8, ls="--", label="alarm threshold" if a is ax else None)
        a.set_ylim(0, 1)
        a.grid(alpha=0.3)
        a.legend(fontsize=7, loc="lower left")
    ax.set_title("as the reasoning streams (base policy)", fontsize=9)
    bx.set_title("around the first disclosure", fontsize=9)
    fig.tight_layout()
    return fig


def monitor_detection(auroc: dict[str, dict[float, float]], leads: dict[str, list[int]]) -> plt.Figure:
    """Detection AUROC against the share of the reasoning read (left), and the lead of each monitor's
    alarm over the first disclosed recipe step (right: > 0 is before it; a stop there prevents it)."""
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 3.6), width_ratios=[1, 1.4])
    for i, (name, curve) in enumerate(auroc.items()):
        f = sorted(curve)
        ax.plot([100 * v for v in f], [curve[v] for v in f], marker="o", color=_cycle(i), label=name)
    ax.axhline(0.5, color="gray", lw=0.8, ls=":")
    ax.set_xlabel("% of the reasoning read")
    ax.set_ylabel("AUROC, harmful vs not (harmful prompts)")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    values = [v for vs in leads.values() for v in vs]
    bins = np.arange(min(values, default=0) - 0.5, max(values, default=0) + 1.5) if values else 10
    for i, (name, vs) in enumerate(leads.items()):
        label = f"{name} (median {np.median(vs):+.0f}, n={len(vs)})" if vs else f"{name} (no alarm)"
        if vs and len(set(vs)) == 1:                     # one value for every completion: a line, not a spike
            bx.axvline(vs[0], color=_cycle(i), lw=2, label=label)
        else:
            bx.hist(vs, bins=bins, alpha=0.6, color=_cycle(i), label=label)
    bx.axvline(0.5, color="black", lw=0.8, ls=":")
    bx.set_xlabel("lead in tokens: first disclosure − alarm (≥ 1: stopping there prevents it)")
    bx.set_ylabel("completions")
    bx.legend(fontsize=8)
    fig.tight_layout()
    return fig


POLICY_COLORS = {"base": CB["grey"], "output_only": CB["orange"], "craft": CB["blue"]}
ATTACK_LABELS = {"none": "no attack", "gcg": "GCG\n(white-box)", "fuzz": "fuzzer\n(black-box)",
                 "cot_hijack": "CoT hijack\n(padding)"}


def adaptive_attacks(per_seed: pd.DataFrame, losses: dict[str, list[np.ndarray]],
                     paper: dict[str, dict[str, tuple[float, float]]] | None = None) -> plt.Figure:
    """Notebook 07: GCG's target loss per step, and reasoning / final attack success per policy.

    Args:
        per_seed: one row per (policy, seed, attack) with ``reasoning_asr`` and ``final_asr``; bars are
            the mean over seeds, dots the seeds.
        losses: policy -> GCG loss curves (one array per goal and seed), drawn as their mean and
            interquartile band.
        paper: attack -> {"reasoning": (base, craft), "final": (base, craft)}, drawn hatched at the right
            (the paper's Fig. 4, in %/100).
    """
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), width_ratios=[1, 1.6, 1.6])
    ax = axes[0]
    for policy, curves in losses.items():
        if curves:
            width = max(len(c) for c in curves)
            rows = np.array([np.pad(c, (0, width - len(c)), constant_values=np.nan) for c in curves])
            _mean_band(ax, list(rows), np.arange(1, width + 1), POLICY_COLORS.get(policy, "k"), policy)
    ax.set(xlabel="GCG step", ylabel="target loss (nats / token)", title="GCG against each policy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, frameon=False)
    attacks = [a for a in ATTACK_LABELS if a in set(per_seed.attack)]
    policies = [p for p in POLICY_COLORS if p in set(per_seed.policy)]
    for ax, kind in zip(axes[1:], ("reasoning", "final")):
        w = 0.8 / len(policies)
        for i, policy in enumerate(policies):
            for j, attack in enumerate(attacks):
                vals = per_seed[(per_seed.policy == policy) & (per_seed.attack == attack)][f"{kind}_asr"].astype(float)
                x = j + (i - (len(policies) - 1) / 2) * w
                ax.bar(x, vals.mean(), w, color=POLICY_COLORS[policy], label=policy if j == 0 else None)
                ax.plot(np.full(len(vals), x), vals, "o", ms=3, color="black", alpha=0.6)
        ticks = [ATTACK_LABELS[a] for a in attacks]
        for k, (name, cells) in enumerate((paper or {}).items()):
            x0 = len(attacks) + k
            for i, policy in enumerate(("base", "craft")):
                ax.bar(x0 + (i - 0.5) * 0.35, cells[kind][i], 0.35, color=POLICY_COLORS[policy], hatch="//",
                       edgecolor="white", alpha=0.7)
            ticks.append(f"paper:\n{name}")
        ax.set_xticks(range(len(ticks)), ticks, fontsize=8)
        ax.set_ylim(0, 1.05)
        ax.set_ylabel(f"{kind} ASR")
        ax.set_title(f"{kind} attack success (dots: seeds)", fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    axes[1].legend(fontsize=8, frameon=False, loc="upper left")
    fig.tight_layout()
    return fig


def attack_regimes(per_seed: pd.DataFrame) -> plt.Figure:
    """Notebook 07: attack success from each regime (one panel a regime), per attack and policy: bars the reasoning
    ASR's mean over seeds, dots its seeds, black ticks the final ASR's mean.

    Args:
        per_seed: one row per (policy, seed, regime, attack) with ``reasoning_asr`` and ``final_asr``.
    """
    regimes = list(dict.fromkeys(per_seed.regime))
    sizes = [per_seed[per_seed.regime == r].attack.nunique() for r in regimes]
    fig, axes = plt.subplots(1, len(regimes), figsize=(2.0 + 1.3 * sum(sizes), 3.6), sharey=True,
                             width_ratios=sizes, squeeze=False)
    policies = [p for p in POLICY_COLORS if p in set(per_seed.policy)]
    w = 0.8 / len(policies)
    for ax, regime in zip(axes[0], regimes):
        part = per_seed[per_seed.regime == regime]
        attacks = [a for a in ATTACK_LABELS if a in set(part.attack)]
        for i, policy in enumerate(policies):
            for j, attack in enumerate(attacks):
                cell = part[(part.policy == policy) & (part.attack == attack)]
                x = j + (i - (len(policies) - 1) / 2) * w
                ax.bar(x, cell.reasoning_asr.mean(), w, color=POLICY_COLORS[policy], label=policy if j == 0 else None)
                ax.plot(np.full(len(cell), x), cell.reasoning_asr, "o", ms=3, color="black", alpha=0.6)
                ax.hlines(cell.final_asr.mean(), x - w / 2, x + w / 2, color="black", lw=2,
                          label="final ASR (mean)" if (i, j) == (0, 0) else None)
        ax.set_xticks(range(len(attacks)), [ATTACK_LABELS[a] for a in attacks], fontsize=8)
        ax.set_title(f"from: {regime}", fontsize=10)
        ax.set_ylim(0, 1.05)
        ax.grid(axis="y", alpha=0.3)
    axes[0, 0].set_ylabel("reasoning ASR (bars; dots: seeds)")
    axes[0, 0].legend(fontsize=7, frameon=False, loc="upper left")
    fig.tight_layout()
    return fig


def _cycle(i: int) -> str:
    """The i-th colour of the colour-blind-safe palette (for series with no fixed colour)."""
    return sns.color_palette("colorblind", 10).as_hex()[i % 10]


def token_heat(tokens: Sequence[str], values: Sequence[float], *, threshold: float | None = None,
               marks: dict[int, str] | None = None, label: str = "p_z") -> str:
    """Static HTML of ``tokens``, each on the colour of its value in [0, 1] (``RdBu``: red near 0, blue near 1;
    the value in its tooltip), so that a notebook page or the rendered book shows a value per token without a
    kernel. ``threshold``: tokens at or below it are underlined; ``marks``: ``{token index: text}`` shown in a
    box before that token (e.g. where a monitor's alarm fired)."""
    if len(tokens) != len(values):
        raise ValueError(f"{len(tokens)} tokens but {len(values)} values: one value per token")
    cmap, marks = colormaps["RdBu"], marks or {}
    spans = []
    for i, (token, v) in enumerate(zip(tokens, values)):
        if i in marks:
            box = "border:1px solid #000;padding:0 2px;font-size:80%"
            spans.append(f'<span style="{box}">{html.escape(marks[i])}</span>')
        r, g, b, _ = cmap(float(np.clip(v, 0.0, 1.0)))
        ink = "#000" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "#fff"
        under = "text-decoration:underline;" if threshold is not None and v <= threshold else ""
        spans.append(f'<span title="{label} = {v:.3f}" style="background:{to_hex((r, g, b))};color:{ink};{under}">'
                     f"{html.escape(token)}</span>")
    legend = (f'<div style="font-size:80%">{label}: <span style="background:{to_hex(cmap(0.0))};color:#fff">0</span> '
              f'<span style="background:{to_hex(cmap(0.5))}">0.5</span> '
              f'<span style="background:{to_hex(cmap(1.0))};color:#fff">1</span>'
              + (f"; underlined: at or below {threshold:.3f}" if threshold is not None else "") + "</div>")
    return f'<div style="font-family:monospace;white-space:pre-wrap;line-height:1.6">{"".join(spans)}</div>{legend}'

