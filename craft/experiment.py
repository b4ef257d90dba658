"""Seeded R2L runs from one base policy, evaluated while they train (notebooks 03 and 05).

A run is one (variant, seed) of :mod:`craft.r2l`: the base policy is loaded from disk, trained
with the variant's rewards, and evaluated on a held-out prompt set every ``eval_every`` steps
(:class:`craft.r2l.PeriodicEval`, the same generation and judge as every other notebook). A run
directory holds:

- ``config.json``: what the run is; a directory that holds another run is refused, not mixed;
- ``history.json``: the metrics of each evaluated step, written as they come (a crash keeps them);
- ``checkpoint-*``: TRL's checkpoints while training (an interrupted run resumes from the last);
- ``records.csv``, ``log_history.json``, ``model/``: the judged completions of the last
  evaluation, TRL's logged reward terms and the trained policy (safetensors);
- ``result.json``: written last; a finished run with the same config is loaded, not retrained,
  and its checkpoints are removed.

:func:`mean_ci` turns per-seed numbers into a mean and a 95 % t-interval.
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy import stats
from transformers import PrinterCallback, TrainerCallback

from craft import io
from craft.evaluate import GenerationSettings, generate, judge_records, summary_metrics
from craft.judges import OrganismJudge
from craft.latents import LatentSpec
from craft.lclr import load_heads
from craft.models import load_model
from craft.organism.world import Prompt
from craft.r2l import PeriodicEval, R2LConfig, build_trainer, make_prompt_dataset, train

__all__ = ["RATE_KEYS", "RunResult", "evaluate_policy", "final_rows", "interval_metrics", "interval_table", "intervals",
           "mean_ci", "run_r2l"]


@dataclass
class RunResult:
    """A finished run: metrics per evaluated step and the last evaluation's judged completions."""

    variant: str
    seed: int
    history: pd.DataFrame       # one row per evaluated step: step + summary_metrics
    records: pd.DataFrame       # one row per completion of the last evaluation
    log_history: list[dict]     # TRL's logs (reward terms, KL, loss) every logging_steps
    train_seconds: float        # training wall time, evaluations included
    cached: bool                # loaded from a finished run directory


def evaluate_policy(model, tokenizer, prompts: Sequence[Prompt], judge: OrganismJudge,
                    settings: GenerationSettings) -> pd.DataFrame:
    """Generate one completion per prompt and judge it (:func:`craft.evaluate.judge_records`)."""
    return judge_records(prompts, generate(model, tokenizer, [p.text for p in prompts], settings), judge)


def _finite(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if not (isinstance(v, float) and math.isnan(v))}


def _identity(cfg: R2LConfig, base_dir: Path, heads_dir: Path | None, eval_every: int,
              settings: GenerationSettings, n_train: int, n_eval: int) -> dict:
    r2l = asdict(cfg)
    if not cfg.use_vllm:    # vLLM settings have no effect without vLLM: not part of what the run is
        r2l = {k: v for k, v in r2l.items() if not k.startswith("vllm_")}
    return {"r2l": r2l, "base_dir": base_dir.name, "heads": heads_dir.name if heads_dir else None,
            "eval_every": eval_every, "generation": asdict(settings), "n_train": n_train, "n_eval": n_eval}


def _claim(out: Path, identity: dict) -> bool:
    """True if ``out`` holds this run finished; creates it otherwise. Another run's directory
    raises (its checkpoints must not be resumed into this run)."""
    cfg_path = out / "config.json"
    if cfg_path.exists():
        if io.load_json(cfg_path) != identity:
            raise ValueError(f"{out} holds a different R2L run (see its config.json); remove it or "
                             "choose another run_dir, so that neither run is lost or mixed")
        return (out / "result.json").exists()
    out.mkdir(parents=True, exist_ok=True)
    io.save_json(identity, cfg_path)
    return False


def _load(out: Path, cfg: R2LConfig, cached: bool) -> RunResult:
    result = io.load_json(out / "result.json")
    return RunResult(cfg.variant, cfg.seed, pd.DataFrame(io.load_json(out / "history.json")),
                     pd.read_csv(out / "records.csv"), io.load_json(out / "log_history.json"),
                     result["train_seconds"], cached)


def run_r2l(base_dir: str | Path, cfg: R2LConfig, train_prompts: Sequence[Prompt],
            eval_prompts: Sequence[Prompt], judge: OrganismJudge, out_dir: str | Path, *,
            heads_dir: str | Path | None = None, eval_every: int = 10,
            settings: GenerationSettings = GenerationSettings(), resume: bool = True,
            callbacks: Sequence[TrainerCallback] = ()) -> RunResult:
    """Train ``cfg.variant`` (seed ``cfg.seed``) from the policy saved in ``base_dir``, evaluating
    ``eval_prompts`` at step 0, every ``eval_every`` steps and at the end; see the module
    docstring for what ``out_dir`` holds. ``heads_dir`` (LCLR heads and their ``latent.json``)
    is needed by every variant with a latent term. The KL reference is ``base_dir``'s weights.
    ``callbacks`` are added to the trainer (they are not part of the run's identity)."""
    base_dir, out = Path(base_dir), Path(out_dir)
    heads_dir = Path(heads_dir) if heads_dir is not None else None
    if _claim(out, _identity(cfg, base_dir, heads_dir, eval_every, settings,
                             len(train_prompts), len(eval_prompts))):
        return _load(out, cfg, cached=True)
    heads = spec = None
    if cfg.variant != "output_only":
        if heads_dir is None:
            raise ValueError(f"run_r2l: variant {cfg.variant!r} needs heads_dir (LCLR heads, notebook 02)")
        heads, spec = load_heads(heads_dir), LatentSpec(**io.load_json(heads_dir / "latent.json"))
    model, tokenizer = load_model(base_dir)
    last: dict[str, pd.DataFrame] = {}

    def evaluate(step: int, policy: torch.nn.Module) -> dict:
        last["records"] = evaluate_policy(policy, tokenizer, eval_prompts, judge, settings)
        return _finite(summary_metrics(last["records"]))

    periodic = PeriodicEval(eval_every, evaluate, path=out / "history.json")
    trainer = build_trainer(model, tokenizer, make_prompt_dataset(train_prompts), heads, spec, judge,
                            cfg, str(out), callbacks=[periodic, *callbacks], save_total_limit=1)
    trainer.remove_callback(PrinterCallback)   # TRL's logs go to log_history.json, not stdout
    start = time.perf_counter()
    train(trainer, resume=resume)
    if "records" not in last:   # resumed at the final step: the last evaluation was not redone here
        evaluate(trainer.state.global_step, trainer.model)
    seconds = time.perf_counter() - start
    last["records"].to_csv(out / "records.csv", index=False)
    io.save_json(trainer.state.log_history, out / "log_history.json")
    trainer.save_model(str(out / "model"))
    io.save_json({"train_seconds": seconds, "steps": trainer.state.global_step}, out / "result.json")
    for ckpt in out.glob("checkpoint-*"):
        shutil.rmtree(ckpt)
    return _load(out, cfg, cached=False)


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
             "attack_success_rate", "arith_accuracy", "over_refusal_rate")


def final_rows(history: pd.DataFrame, variants: Sequence[str]) -> dict[str, pd.DataFrame]:
    """One row per seed for ``base`` (the step-0 evaluation: the same base policy, sampled with
    each seed) and for each variant (its runs' last evaluation). ``history`` is long, with
    ``variant``, ``seed`` and ``step`` columns."""
    last = history.loc[history.groupby(["variant", "seed"]).step.idxmax()]
    return {"base": history[history.step == 0].drop_duplicates("seed"),
            **{v: last[last.variant == v] for v in variants}}


def intervals(rows: dict[str, pd.DataFrame], keys: Sequence[str] = RATE_KEYS) -> dict[str, dict[str, tuple]]:
    """``{method: {key: (mean, lo, hi)}}``: mean and 95 % interval over seeds, clipped to [0, 1]."""
    return {m: {k: mean_ci(df[k], bounds=(0.0, 1.0)) for k in keys} for m, df in rows.items()}


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
