"""Cached generation and judging: the service every stage that samples a policy uses (paper §6).

Completions are cached under ``run_dir/cache/generations/<method>-<hash>/`` (:meth:`Run.completions_dir`),
where the hash is the identity of what made them (the policy's content hash, the prompts, the
decoding): a retrained policy, another temperature or another length is another folder, so a cache
can never describe a policy that no longer exists, and the base policy's completions made by notebook
00 serve notebooks 01, 02, 03 and 04 unchanged. The judged records are cached beside them, keyed by
the judges' identity and the version of the judging rules (:data:`RECORD_RULES`).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence

import pandas as pd

from craft.evaluate import GenerationSettings, generate, judge_records, typed_records
from craft.io import atomic_write, load_json
from craft.runs import Artifact, DamagedFileError, is_main_process, json_hash, locked
from craft.stages.common import Run, free_memory, generation_settings, run_in_workers
from craft.types import Prompt

# Bump when judge_records changes what it judges or how (2: the response judge reads
# craft.models.judged_response; a failed judgement is a missing verdict, not 0.5).
RECORD_RULES = 2

__all__ = ["RECORD_RULES", "evaluate_model", "evaluate_policies", "read_records"]


def evaluate_model(model, tokenizer, prompts: Sequence[Prompt], judges: Mapping,
                   settings: GenerationSettings, progress: bool = False) -> pd.DataFrame:
    """Generate one completion per prompt with an in-memory policy and judge it (no cache)."""
    texts = generate(model, tokenizer, [p.text for p in prompts], settings, progress=progress)
    return judge_records(prompts, texts, judges["reasoning"], judges["response"])


def read_records(path, n_rows: int | None = None) -> pd.DataFrame:
    """Judged records cached as CSV, with their types (:func:`craft.evaluate.typed_records`: a failed
    judgement comes back as a missing verdict). A file that is not that, or holds other than
    ``n_rows`` rows, raises :class:`~craft.runs.DamagedFileError` naming it: never read silently."""
    try:
        records = pd.read_csv(path, keep_default_na=False)
        if n_rows is not None and len(records) != n_rows:
            raise ValueError(f"{len(records)} rows where {n_rows} were written")
        return typed_records(records)
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as e:
        raise DamagedFileError(path, str(e)) from None


def _cache(run: Run, name: str, policy: str, prompts: Sequence[Prompt], settings: GenerationSettings) -> Artifact:
    """The completions cache of ``policy`` on ``prompts`` with ``settings`` (what made them, hashed)."""
    identity = {"policy": run.source.policy_fingerprint(policy), "prompts": json_hash([p.text for p in prompts]),
                "generation": dataclasses.asdict(settings)}
    return Artifact(run.completions_dir(name, json_hash(identity)), identity, recompute=True,
                    what="cache of completions")


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
                atomic_write(folder / "completions.json", json.dumps({"policy": str(policy), "completions": texts}))
            artifact.finish()
    return folder, load_json(folder / "completions.json")["completions"]


def _sample(run: Run, name: str, policy: str, prompts: Sequence[Prompt], settings: GenerationSettings) -> None:
    """One policy's completions into the cache (a job of :func:`evaluate_policies`' worker pool)."""
    _completions(run, name, policy, prompts, settings)


def evaluate_policies(run: Run, policies: Mapping[str, str], prompts: Sequence[Prompt] | None = None,
                      settings: GenerationSettings | None = None, workers: int = 1) -> pd.DataFrame:
    """Judged records of every policy (``{method: path}``) on ``prompts`` (default: the source's
    evaluation set) with ``settings`` (default: :func:`~craft.stages.common.generation_settings`), with a
    ``method`` column; completions and records are cached (module docstring). ``workers`` > 1: the
    policies not cached yet are first sampled that many at a time
    (:func:`~craft.stages.common.run_in_workers`)."""
    prompts = list(run.source.eval_prompts() if prompts is None else prompts)
    settings = settings or generation_settings(run)
    todo = [(name, policy, prompts, settings) for name, policy in policies.items()
            if not _cache(run, name, policy, prompts, settings).done]
    run_in_workers(run, _sample, todo, workers)
    judges = {role: None for role in ("reasoning", "response")}
    frames = []
    for name, policy in policies.items():
        folder, texts = _completions(run, name, policy, prompts, settings)
        key = {**run.source.judge_identity(), "rules": RECORD_RULES}
        path = folder / f"records-{json_hash(key)[:12]}.csv"
        with locked(folder, wait=True):
            if path.is_file():
                records = read_records(path, len(prompts))
            else:
                judges = {r: j or run.source.judge(r) for r, j in judges.items()}
                records = judge_records(prompts, texts, judges["reasoning"], judges["response"])
                if is_main_process():
                    atomic_write(path, records.to_csv(index=False))
        frames.append(records.assign(method=name))
    return pd.concat(frames, ignore_index=True)
