"""Evaluation stage (notebooks 00, 04, 05; ``craft evaluate``): generate, judge, tabulate (paper §6).

Every method is sampled on the source's evaluation set with the run's decoding and judged by the
source's judges, through the cached service of :mod:`craft.stages.completions`. The trained policies
it evaluates by default (:func:`default_methods`: the finished R2L runs of notebook 03 and the trained
baselines of notebook 04) are checked against the current params first: a policy trained under other
settings is refused with the keys that changed, never evaluated as if it were this run's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from craft.evaluate import paper_table, relative_improvement, summary_metrics
from craft.stages.common import Run
from craft.stages.completions import evaluate_policies
from craft.stages.r2l import finished_policies

__all__ = ["EvaluateResult", "default_methods", "evaluate_stage", "headline_metrics", "safety_table", "seed_records"]


@dataclass
class EvaluateResult:
    records: pd.DataFrame               # one judged completion per (method, prompt), ``method`` column
    summary: dict[str, dict]            # method -> craft.evaluate.summary_metrics
    table: pd.DataFrame                 # the paper's Table 1 layout (:func:`safety_table`)
    headline: dict[str, float]          # the table's averages and relative improvements (:func:`headline_metrics`)

    @property
    def metrics(self) -> dict:
        """The headline numbers, then every method's summary as ``<method>_<metric>``."""
        return {**self.headline, **{f"{m}_{k}": v for m, s in self.summary.items() for k, v in s.items()}}


def safety_table(run: Run, records: pd.DataFrame) -> pd.DataFrame:
    """The paper's Table 1 layout (:func:`craft.evaluate.paper_table`) of harmful prompts: the source
    says which columns are the benchmark and the attack, and which scores are averaged."""
    bench, attack = run.source.table_groups
    r_col, a_col = run.source.table_columns
    harmful = records[records.kind == "harmful"]
    long = (harmful.groupby(["method", bench, attack], sort=False)[[r_col, a_col]].mean().reset_index()
            .rename(columns={bench: "benchmark", attack: "attack", r_col: "reasoning_harm", a_col: "response_harm"}))
    return paper_table(long)


def headline_metrics(table: pd.DataFrame, base: str = "base") -> dict[str, float]:
    """Per method the table's averages and, against ``base``, the paper's relative improvements."""
    out = {}
    for m in table.index:
        for part in ("reasoning", "response"):
            out[f"{m}_table_{part}_harm"] = float(table.loc[m, ("average", part)])
            if m != base and base in table.index:
                out[f"{m}_rel_{part}_improvement"] = relative_improvement(
                    table.loc[base, ("average", part)], table.loc[m, ("average", part)])
    return out


def default_methods(run: Run, seed: int | None = None, baselines: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base``, the given baselines, and every finished R2L variant of notebook 03 for ``seed``
    (each checked against the current params: :func:`craft.stages.r2l.finished_policies`)."""
    seed = run.params.seed if seed is None else seed
    runs = finished_policies(run, run.params.r2l.variants, [seed])
    return {"base": run.source.base_policy(), **(baselines or {}), **{v: path for (v, _), path in runs.items()}}


def evaluate_stage(run: Run, methods: Mapping[str, str] | None = None) -> EvaluateResult:
    """Evaluate ``methods`` (default :func:`default_methods`) on the source's evaluation set:
    ``records``, per-method ``summary`` (:func:`craft.evaluate.summary_metrics`), the paper-layout
    ``table`` and its ``headline`` metrics."""
    methods = dict(methods or default_methods(run))
    prompts = run.source.eval_prompts()
    if not any(p.kind == "harmful" for p in prompts):
        raise ValueError("the evaluation set has no harmful prompt, so there is no safety to measure: give it some "
                         "(organism: source.evaluation.core / unseen_hazards / novel / held_out; paper scale: "
                         "source.benchmarks)")
    records = evaluate_policies(run, methods, prompts, workers=run.params.evaluate.workers)
    summary = {m: summary_metrics(records[records.method == m]) for m in methods}
    table = safety_table(run, records)
    return EvaluateResult(records, summary, table, headline_metrics(table))


def seed_records(run: Run, records: pd.DataFrame, variants: Sequence[str] | None = None,
                 baselines: Mapping[tuple[str, int], str] | None = None) -> pd.DataFrame:
    """Judged records of every seed's policy of the R2L ``variants`` (default: the ``r2l.variants`` among
    ``records``' methods) and of the ``baselines`` (``{(method, seed): policy folder}``, e.g.
    :attr:`craft.stages.baselines.Baselines.seeds`; those among ``records``' methods) on the evaluation set, with
    ``method`` and ``seed`` columns. Seed ``seed`` is taken from ``records`` (:func:`evaluate_stage` sampled it);
    the other seeds are sampled and judged here the same way, in one batch of policies (cached as
    ``<method>-seed<k>``; each R2L policy checked against the current params)."""
    methods = set(records.method)
    variants = [v for v in (variants or run.params.r2l.variants) if v in methods]
    others = [s for s in run.params.seeds if s != run.params.seed]
    policies = finished_policies(run, variants, others, required=True)
    policies |= {(m, s): path for (m, s), path in (baselines or {}).items() if m in methods and s != run.params.seed}
    sampled = evaluate_policies(run, {f"{m}-seed{s}": path for (m, s), path in policies.items()},
                                workers=run.params.evaluate.workers) if policies else pd.DataFrame()
    seeded = variants + [m for m in dict.fromkeys(m for m, _ in baselines or {}) if m in methods]
    frames = [records[records.method.isin(seeded)].assign(seed=run.params.seed)]
    for (m, s) in policies:
        frames.append(sampled[sampled.method == f"{m}-seed{s}"].assign(method=m, seed=s))
    return pd.concat(frames, ignore_index=True)
