"""Statistics over seeds: means with Student-t intervals, and the per-seed rows they are taken over.

Used by notebooks 03 and 05 to report each method over seeds as a mean and a 95 % interval; a
number that depends on the draw is reported as a spread, not asserted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["RATE_KEYS", "final_rows", "interval_metrics", "interval_table", "intervals", "mean_ci"]


def mean_ci(values: Sequence[float], level: float = 0.95,
            bounds: tuple[float, float] | None = None) -> tuple[float, float, float]:
    """Mean and the two ends of a Student-t ``level`` interval over seeds (the ends equal the
    mean for one value), the ends clipped to ``bounds`` (e.g. (0, 1) for a rate)."""
    x = np.asarray(values, dtype=float)
    mean = float(x.mean())
    half = float(stats.t.ppf(0.5 + level / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x))) if len(x) > 1 else 0.0
    lo, hi = mean - half, mean + half
    if bounds is not None:
        lo, hi = max(lo, bounds[0]), min(hi, bounds[1])
    return mean, lo, hi


RATE_KEYS = ("reasoning_harm_rate", "response_harm_rate", "ssa_rate", "ssa_rate_dressed", "ssa_rate_jailbroken",
             "attack_success_rate", "capability_accuracy", "over_refusal_rate")


def final_rows(history: pd.DataFrame, variants: Sequence[str]) -> dict[str, pd.DataFrame]:
    """One row per seed for ``base`` (the step-0 evaluation: the same base policy, sampled with
    each seed) and for each variant (its runs' last evaluation). ``history`` is long, with
    ``variant``, ``seed`` and ``step`` columns."""
    last = history.loc[history.groupby(["variant", "seed"]).step.idxmax()]
    return {"base": history[history.step == 0].drop_duplicates("seed"),
            **{v: last[last.variant == v] for v in variants}}


def intervals(rows: dict[str, pd.DataFrame], keys: Sequence[str] = RATE_KEYS) -> dict[str, dict[str, tuple]]:
    """``{method: {key: (mean, lo, hi)}}``: mean and 95 % interval over seeds, clipped to [0, 1]; NaN
    for a key the evaluation did not measure (e.g. no dressed-up family at paper scale)."""
    nan = (float("nan"),) * 3
    return {m: {k: mean_ci(df[k], bounds=(0.0, 1.0)) if k in df.columns else nan for k in keys}
            for m, df in rows.items()}


def interval_table(iv: dict[str, dict[str, tuple]], text: bool = False) -> pd.DataFrame:
    """One row per method: ``key``, ``key_lo``, ``key_hi`` columns, or with ``text`` one
    ``"mean [lo, hi]"`` column per key."""
    if text:
        return pd.DataFrame({m: {k: f"{a:.3f} [{lo:.3f}, {hi:.3f}]" for k, (a, lo, hi) in row.items()}
                             for m, row in iv.items()}).T
    return pd.DataFrame({m: {f"{k}{end}": v for k, t in row.items() for end, v in zip(("", "_lo", "_hi"), t)}
                         for m, row in iv.items()}).T


def interval_metrics(iv: dict[str, dict[str, tuple]]) -> dict[str, float]:
    """Flat metrics: ``<method>_<key>`` (the mean) and ``<method>_<key>_ci95_lo`` / ``_hi``."""
    return {f"{m}_{k}{end}": v for m, row in iv.items() for k, t in row.items()
            for end, v in zip(("", "_ci95_lo", "_ci95_hi"), t)}
