"""Evaluation stage (notebooks 00, 04, 05; ``craft evaluate``): generate, judge, tabulate (paper §6).

Completions are cached under ``run_dir/cache/generations/<method>-<hash>/``, where the hash is the
identity of what made them (the policy's content hash, the prompts, the decoding): a retrained
policy, another temperature or another length is another folder, so a cache can never describe a
policy that no longer exists, and the base policy's completions made by notebook 00 serve notebook
04 unchanged. The judged records are cached beside them, keyed by the judges' identity and the
version of the judging rules (:data:`RECORD_RULES`).
"""

from __future__ import annotations

import dataclasses
import gc
import json
from collections.abc import Mapping, Sequence

import pandas as pd
import torch

from craft.evaluate import (
    GenerationSettings,
    generate,
    judge_records,
    paper_table,
    relative_improvement,
    summary_metrics,
    with_ssa,
)
from craft.runs import Artifact, is_main_process, json_hash, locked
from craft.stages.common import Run
from craft.types import Prompt

# Bump when judge_records changes what it judges or how (2: the response judge reads
# craft.models.judged_response; a failed judgement is a missing verdict, not 0.5).
RECORD_RULES = 2

__all__ = ["RECORD_RULES", "default_methods", "evaluate_model", "evaluate_policies", "evaluate_stage", "free_memory",
           "generation_settings", "headline_metrics", "safety_table"]


def free_memory() -> None:
    """Return freed models' memory (call after ``del model``)."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def generation_settings(run: Run, seed: int | None = None) -> GenerationSettings:
    """The run's decoding (``evaluate`` section), sampled with ``seed`` (default: the run's seed)."""
    values = {f.name: getattr(run.params.evaluate, f.name) for f in dataclasses.fields(GenerationSettings)}
    return GenerationSettings(**{**values, "seed": run.params.seed if seed is None else seed})


def evaluate_model(model, tokenizer, prompts: Sequence[Prompt], judges: Mapping,
                   settings: GenerationSettings, progress: bool = False) -> pd.DataFrame:
    """Generate one completion per prompt with an in-memory policy and judge it (no cache)."""
    texts = generate(model, tokenizer, [p.text for p in prompts], settings, progress=progress)
    return judge_records(prompts, texts, judges["reasoning"], judges["response"])


def _cache(run: Run, name: str, policy: str, prompts: Sequence[Prompt], settings: GenerationSettings) -> Artifact:
    """The completions cache of ``policy`` on ``prompts`` with ``settings`` (what made them, hashed)."""
    identity = {"policy": run.source.policy_fingerprint(policy), "prompts": json_hash([p.text for p in prompts]),
                "generation": dataclasses.asdict(settings)}
    folder = run.root / "cache" / "generations" / f"{name}-{json_hash(identity)[:12]}"
    return Artifact(folder, identity, recompute=True, what="cache of completions")


def _completions(run: Run, name: str, policy: str, prompts: Sequence[Prompt], settings: GenerationSettings):
    artifact = _cache(run, name, policy, prompts, settings)
    folder = artifact.path
    with locked(folder, wait=True):   # workers of one seed share the base policy's completions
        if not artifact.claim():
            model, tok = run.source.load_policy(policy)
            texts = generate(model, tok, [p.text for p in prompts], settings, progress=run.progress)
            del model
            free_memory()
            if is_main_process():
                (folder / "completions.json").write_text(json.dumps({"policy": str(policy), "completions": texts}))
            artifact.finish()
    return folder, json.loads((folder / "completions.json").read_text())["completions"]


def _generate_in_workers(run: Run, policies: Mapping[str, str], prompts: Sequence[Prompt],
                         settings: GenerationSettings, workers: int) -> None:
    """Sample the policies whose completions are not cached yet, ``workers`` at a time, each in
    its own spawned process on one CPU thread (organism only; as R2L's runs, :func:`craft.stages.r2l.
    r2l_stage`: sampling a tiny model keeps a second core busier as a second process than as a second
    thread). The completions land in the cache that :func:`_completions` then reads."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    todo = [(name, policy) for name, policy in policies.items()
            if not _cache(run, name, policy, prompts, settings).done]
    workers = min(workers, len(todo))
    if workers <= 1 or run.scale != "organism":
        return
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        for future in [pool.submit(_worker, run.params, name, policy, prompts, settings) for name, policy in todo]:
            future.result()                 # a failed worker raises here, with its own traceback


def _worker(params, name: str, policy: str, prompts, settings: GenerationSettings) -> None:
    from craft.stages.common import open_run

    worker_run = open_run(params, progress=False)
    torch.set_num_threads(1)
    _completions(worker_run, name, policy, prompts, settings)


def evaluate_policies(run: Run, policies: Mapping[str, str], prompts: Sequence[Prompt] | None = None,
                      settings: GenerationSettings | None = None, workers: int = 1) -> pd.DataFrame:
    """Judged records of every policy (``{method: path}``) on ``prompts`` (default: the source's
    evaluation set) with ``settings`` (default: :func:`generation_settings`), with a ``method``
    column; completions and records are cached (module docstring). ``workers`` > 1: the policies
    not cached yet are sampled that many at a time (:func:`_generate_in_workers`)."""
    prompts = list(run.source.eval_prompts() if prompts is None else prompts)
    settings = settings or generation_settings(run)
    _generate_in_workers(run, policies, prompts, settings, workers)
    judges = {role: None for role in ("reasoning", "response")}
    frames = []
    for name, policy in policies.items():
        folder, texts = _completions(run, name, policy, prompts, settings)
        key = {**run.source.judge_identity(), "rules": RECORD_RULES}
        path = folder / f"records-{json_hash(key)[:12]}.csv"
        with locked(folder, wait=True):
            if path.is_file():
                records = with_ssa(pd.read_csv(path, keep_default_na=False))
            else:
                judges = {r: j or run.source.judge(r) for r, j in judges.items()}
                records = judge_records(prompts, texts, judges["reasoning"], judges["response"])
                if is_main_process():
                    records.to_csv(path, index=False)
        frames.append(records.assign(method=name))
    return pd.concat(frames, ignore_index=True)


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
    """``base``, the given baselines, and every finished R2L variant of notebook 03 for ``seed``."""
    from craft.stages.r2l import run_dir

    seed = run.params.seed if seed is None else seed
    methods = {"base": run.source.base_policy(), **(baselines or {})}
    for v in run.params.r2l.variants:
        folder = run_dir(run, v, seed)
        if (folder / "DONE").is_file():
            methods[v] = str(folder / "model")
    return methods


def evaluate_stage(run: Run, methods: Mapping[str, str] | None = None) -> dict:
    """Evaluate ``methods`` (default :func:`default_methods`) on the source's evaluation set:
    ``records``, per-method ``summary`` (:func:`craft.evaluate.summary_metrics`), the paper-layout
    ``table`` and its ``headline`` metrics."""
    methods = dict(methods or default_methods(run))
    records = evaluate_policies(run, methods, workers=run.params.evaluate.workers)
    summary = {m: summary_metrics(records[records.method == m]) for m in methods}
    table = safety_table(run, records)
    return {"records": records, "summary": summary, "table": table, "headline": headline_metrics(table)}
