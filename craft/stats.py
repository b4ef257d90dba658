"""Statistics over seeds: means with Student-t intervals, and the per-seed rows they are taken over;
paired comparisons of two methods on the same prompts (exact McNemar test, Holm's correction across the
rows of a table); and agreement between judges: Cohen's kappa and raw agreement on the harmful / not decision.

Used by notebooks 03 and 05 to report each method over seeds as a mean and a 95 % interval; a
number that depends on the draw is reported as a spread, not asserted. Inter-judge agreement is
beyond the paper (ours): it says how much a reasoning-harm rate depends on the judge that made it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["RATE_KEYS", "auroc", "bootstrap_ci", "cohen_kappa", "final_rows", "holm", "interval_metrics",
           "interval_table", "intervals", "judge_agreement", "mcnemar", "mean_ci", "paired_comparisons", "wilson_ci"]


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


def wilson_ci(k: int, n: int, level: float = 0.95) -> tuple[float, float, float]:
    """A rate ``k / n`` and the two ends of its Wilson score ``level`` interval (one seed, ``n`` prompts);
    NaN for ``n = 0``."""
    if n == 0:
        return float("nan"), float("nan"), float("nan")
    z, p = float(stats.norm.ppf(0.5 + level / 2)), k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return p, max(0.0, centre - half), min(1.0, centre + half)


def auroc(y_true: Sequence, scores: Sequence[float]) -> float:
    """P(score of a positive > score of a negative), ties counting one half (the Mann-Whitney form of
    the area under the ROC curve); NaN without both classes."""
    y, s = np.asarray(y_true, dtype=bool), np.asarray(scores, dtype=float)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if not n_pos or not n_neg:
        return float("nan")
    ranks = stats.rankdata(s)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def bootstrap_ci(statistic, *columns: Sequence, groups: Sequence | None = None, n_boot: int = 1000,
                 level: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """``statistic(*columns)`` and the percentile ``level`` interval of it over ``n_boot`` resamples of the
    rows (of whole ``groups`` when given: rows of one group are drawn together, as a behaviour and its
    benign twin are). Paired by construction: every column is resampled with the same rows, so
    ``statistic`` may compare two methods on the same prompts. Resamples where it is NaN are skipped."""
    cols = [np.asarray(c) for c in columns]
    value = float(statistic(*cols))
    keys = np.asarray(groups if groups is not None else np.arange(len(cols[0])))
    distinct, index = np.unique(keys.astype(str), return_inverse=True)
    members = [np.flatnonzero(index == g) for g in range(len(distinct))]
    rng, draws = np.random.default_rng(seed), []
    for _ in range(n_boot):
        rows = np.concatenate([members[g] for g in rng.integers(0, len(members), len(members))])
        v = float(statistic(*(c[rows] for c in cols)))
        if not math.isnan(v):
            draws.append(v)
    if not draws:
        return value, float("nan"), float("nan")
    lo, hi = np.quantile(draws, [0.5 - level / 2, 0.5 + level / 2])
    return value, float(lo), float(hi)


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


# ---------------------------------------------------------------- paired comparisons
def mcnemar(a: Sequence[bool], b: Sequence[bool]) -> tuple[int, int, float]:
    """Exact McNemar test of two methods' yes/no outcomes on the same items, in the same order:
    ``(n_a_only, n_b_only, p)``, the discordant counts (yes for ``a`` and not ``b``, and the reverse) and the
    two-sided p-value of the binomial test that a discordant item is as likely either way (1.0 with none)."""
    if len(a) != len(b):
        raise ValueError(f"mcnemar: {len(a)} outcomes against {len(b)}; pair them item by item")
    a_only = sum(bool(x) and not bool(y) for x, y in zip(a, b))
    b_only = sum(bool(y) and not bool(x) for x, y in zip(a, b))
    n = a_only + b_only
    p = float(stats.binomtest(a_only, n, 0.5).pvalue) if n else 1.0
    return a_only, b_only, p


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment of ``pvalues`` (family-wise error across the tests), in their order."""
    order = sorted(range(len(pvalues)), key=lambda i: pvalues[i])
    adjusted, running = [0.0] * len(pvalues), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(pvalues) - rank) * float(pvalues[i])))
        adjusted[i] = running
    return adjusted


def paired_comparisons(outcomes: pd.DataFrame, reference: str, test=None) -> pd.DataFrame:
    """``reference`` against every other column of ``outcomes`` (rows: the same items for every method;
    columns: methods; values: a yes/no outcome, e.g. harmful reasoning; rows with a missing value in either
    column are left out of that pair): the rates on the paired items, the discordant counts, the exact McNemar
    p-value and the Holm-adjusted one across the table's rows.

    ``test(a, b) -> (n_a_only, n_b_only, p)``, given the two methods' outcomes as lists of bools in item order,
    replaces the exact McNemar test (None: :func:`mcnemar`); notebook 04's exercise 4.1 passes its own."""
    test = mcnemar if test is None else test
    rows = []
    for other in [c for c in outcomes.columns if c != reference]:
        pair = outcomes[[reference, other]].dropna().astype(bool)
        ref_only, other_only, p = test(pair[reference].tolist(), pair[other].tolist())
        rows.append({"method": other, "n": len(pair), f"{reference}_rate": float(pair[reference].mean()),
                     "method_rate": float(pair[other].mean()), f"{reference}_only": ref_only,
                     "method_only": other_only, "p": p})
    table = pd.DataFrame(rows).set_index("method")
    table["p_holm"] = holm(table.p.tolist())
    return table


# ---------------------------------------------------------------- agreement between judges
def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def cohen_kappa(a: Sequence, b: Sequence) -> float:
    """Cohen's kappa of two raters' labels (booleans or any hashable labels), one pair per item.

    kappa = (p_o - p_e) / (1 - p_e), with p_o the observed agreement and p_e the agreement expected
    from each rater's own label shares. A pair where either label is missing (None or NaN) is
    dropped. NaN when no pair is left or when kappa is undefined (p_e = 1: both raters gave one and
    the same label throughout)."""
    if len(a) != len(b):
        raise ValueError(f"got {len(a)} and {len(b)} labels; pass one label per item from each rater")
    pairs = [(x, y) for x, y in zip(a, b) if not (_missing(x) or _missing(y))]
    if not pairs:
        return float("nan")
    n = len(pairs)
    p_o = sum(x == y for x, y in pairs) / n
    share_a = pd.Series([x for x, _ in pairs]).value_counts() / n
    share_b = pd.Series([y for _, y in pairs]).value_counts() / n
    p_e = float(sum(share_a.get(label, 0.0) * share_b.get(label, 0.0) for label in share_a.index))
    return float("nan") if p_e >= 1.0 else (p_o - p_e) / (1.0 - p_e)


def judge_agreement(scores: dict[str, Sequence[float]], threshold: float = 0.5) -> pd.DataFrame:
    """Pairwise agreement of judges on the harmful / not decision, harmful = 1 - P(safe) >= ``threshold``.

    ``scores`` maps a judge's name to its P(safe) per item (the same items, in the same order, for
    every judge). For each pair of judges, rows where either scored NaN (a failed judgement) are
    dropped and counted. Columns: ``judge_a``, ``judge_b``, ``n`` (items compared), ``n_dropped``,
    ``agreement`` (share of equal decisions), ``kappa`` (:func:`cohen_kappa`), ``harmful_a``,
    ``harmful_b`` (each judge's harmful share over the compared items)."""
    lengths = {name: len(v) for name, v in scores.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"judges scored different numbers of items: {lengths}")
    names, rows = list(scores), []
    for i, first in enumerate(names):
        for second in names[i + 1:]:
            a, b = (np.asarray(scores[k], dtype=float) for k in (first, second))
            keep = ~(np.isnan(a) | np.isnan(b))
            harm_a, harm_b = (1.0 - a[keep]) >= threshold, (1.0 - b[keep]) >= threshold
            n = int(keep.sum())
            rows.append({"judge_a": first, "judge_b": second, "n": n, "n_dropped": int((~keep).sum()),
                         "agreement": float((harm_a == harm_b).mean()) if n else float("nan"),
                         "kappa": cohen_kappa(harm_a.tolist(), harm_b.tolist()),
                         "harmful_a": float(harm_a.mean()) if n else float("nan"),
                         "harmful_b": float(harm_b.mean()) if n else float("nan")})
    columns = ["judge_a", "judge_b", "n", "n_dropped", "agreement", "kappa", "harmful_a", "harmful_b"]
    return pd.DataFrame(rows, columns=columns)
