"""R2L stage (notebooks 03 and 05; ``craft r2l``): seeded GRPO runs from the base policy (paper §4.2).

A run is one (variant, seed) of :mod:`craft.r2l`, trained from the source's base policy with the
variant's rewards and evaluated on the source's held-out monitor prompts at step 0, every
``eval_every`` steps and at the end (:class:`craft.r2l.PeriodicEval`, the same generation and
judge as every other stage; in a single process the step-0 evaluation of the base policy goes
through the completion cache of :mod:`craft.stages.completions`, so the variants of one seed generate it
once). Its folder
``run_dir/<stage>/<variant>-seed<seed>/`` is an
:class:`craft.runs.Artifact` holding:

- ``identity.json``: the R2L settings, the latent, and the content hashes of the base policy, the
  LCLR heads, the training and monitor prompts and the judge; a folder made otherwise is refused;
- ``history.json``: the metrics of each evaluated step, written as they come (a crash keeps them);
- ``checkpoint-*``: TRL's checkpoints while training (an interrupted run resumes from the last
  complete one);
- ``records.csv``, ``log_history.json``, ``model/``: the last evaluation's judged completions, TRL's
  logged reward terms and the trained policy (safetensors); ``result.json`` and ``DONE`` last.

Only the main process writes; the folder is locked while a process trains in it.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from transformers import PrinterCallback, TrainerCallback

from craft import io
from craft.evaluate import CountedRate, coded_counts, judged_harmful, prompt_slices, summary_metrics
from craft.judges import JudgeUnavailableError
from craft.lclr import save_heads
from craft.r2l import (
    VARIANTS,
    PeriodicEval,
    R2LConfig,
    build_trainer,
    judges_reasoning,
    make_prompt_dataset,
    text_judges,
    uses_latent,
)
from craft.runs import Artifact, is_main_process, json_hash, locked, train
from craft.stages.common import Run, free_memory, generation_settings, run_in_workers
from craft.stages.completions import evaluate_model, evaluate_policies, read_records
from craft.stages.lclr import shuffled_label_heads, trained_heads
from craft.stages.probe import resolve_latent
from craft.stats import wilson_ci
from craft.timing import timed

__all__ = ["HEAD_DRAW_VARIANTS", "R2L_MAKER", "R2LRuns", "RunResult", "ablation_jobs", "base_records", "coded_shares",
           "POOLED_RATES", "SLICE_SUFFIX", "finished_policies", "history_frame", "pooled_coded_shares",
           "pooled_rate_intervals", "pooled_slice_metrics", "r2l_artifact", "r2l_config", "r2l_run", "r2l_stage"]

R2L_MAKER = "notebook 03 (or `craft r2l --config <params file>`)"
ABLATIONS_MAKER = "notebook 05 (or `craft r2l --ablations --config <params file>`)"
# the ablation whose heads are a draw of its seed (random heads): the spread over draws is its result, so it runs on
# ``ablations.head_draws`` seeds (``shuffled_lclr``'s heads are a draw too, but fit on the traces: n_seeds of them)
HEAD_DRAW_VARIANTS = ("no_lclr",)


@dataclass
class RunResult:
    """A finished run: metrics per evaluated step and the last evaluation's judged completions."""

    variant: str
    seed: int
    history: pd.DataFrame       # one row per evaluated step: step + summary_metrics
    records: pd.DataFrame       # one row per completion of the last evaluation
    log_history: list[dict]     # TRL's logs (reward terms, KL, loss) every logging_steps
    train_seconds: float        # training wall time, evaluations included
    cached: bool                # loaded from a finished run folder
    path: Path                  # the run folder (the policy is path / "model")
    steps: int                  # optimizer steps done
    world_size: int             # processes that trained it

    @property
    def metrics(self) -> dict:
        """The last evaluation's numbers (``summary_metrics``), the steps and the training time."""
        last = self.history.iloc[-1].to_dict() if len(self.history) else {}
        return {**{k: v for k, v in last.items() if k != "step"}, "steps": self.steps,
                "train_seconds": self.train_seconds, "world_size": self.world_size}


class R2LRuns(dict):
    """``{(variant, seed): RunResult}`` of :func:`r2l_stage`, in the order trained."""

    @property
    def metrics(self) -> dict:
        """Every run's :attr:`RunResult.metrics`, keyed ``<variant>-seed<seed>_<name>``."""
        return {f"{v}-seed{s}_{k}": x for (v, s), r in self.items() for k, x in r.metrics.items()}


def r2l_config(run: Run, variant: str, seed: int) -> R2LConfig:
    """The :class:`craft.r2l.R2LConfig` of one run: the ``r2l`` section with this variant and seed."""
    section = run.params.r2l
    values = {f.name: getattr(section, f.name) for f in dataclasses.fields(R2LConfig)}
    return R2LConfig(**{**values, "variant": variant, "seed": seed})


def _load(folder: Path, variant: str, seed: int, cached: bool) -> RunResult:
    result = io.load_json(folder / "result.json")
    records = folder / "records.csv"
    return RunResult(variant, seed, pd.DataFrame(io.load_json(folder / "history.json")),
                     read_records(records) if records.is_file() else pd.DataFrame(),
                     io.load_json(folder / "log_history.json"), result["train_seconds"], cached, folder,
                     result["steps"], result.get("world_size", 1))


def _heads(run: Run, variant: str):
    """The latent and the LCLR heads a variant's rewards read (None, None without latent terms), checked:
    heads notebook 02 fit with the current params, reading a latent of this policy's width."""
    if not uses_latent(variant):
        return None, None
    spec, heads = resolve_latent(run), trained_heads(run)
    heads.check_latent(spec, run.source.hidden_size())
    return spec, heads


def r2l_artifact(run: Run, variant: str, seed: int, *, stage: str = "r2l", eval_every: int | None = None,
                 spec=None) -> Artifact:
    """One run's folder and the identity that must have made it: the R2L settings, the evaluation
    cadence and decoding, the latent, and the content hashes of the base policy, the LCLR heads, the
    training and monitor prompts and the judge."""
    cfg, source = r2l_config(run, variant, seed), run.source
    eval_every = run.params.r2l.eval_every if eval_every is None else eval_every
    settings = generation_settings(run, seed=1000 + seed)
    latent_terms = uses_latent(variant)
    identity = {"r2l": dataclasses.asdict(cfg), "eval_every": eval_every, "generation": dataclasses.asdict(settings),
                "base_policy": source.policy_fingerprint(source.base_policy()),
                "latent": dataclasses.asdict(spec or resolve_latent(run)) if latent_terms else None,
                "heads": source.policy_fingerprint(str(run.heads_dir())) if latent_terms else None,
                "train_prompts": json_hash([dataclasses.asdict(p) for p in source.train_prompts(seed)]),
                "monitor_prompts": json_hash([dataclasses.asdict(p) for p in source.monitor_prompts()]),
                "judge": source.judge_identity()}
    if judges_reasoning(variant):     # the judge R_rtxt (or R_dis) reads the reasoning with
        identity["reasoning_reward_judge"] = _reasoning_reward_role(source, variant)
    return Artifact(run.r2l_dir(variant, seed, stage), identity, what=f"R2L run ({variant}, seed {seed})",
                    ignore=_unused(cfg))


def _reasoning_reward_role(source, variant: str) -> str:
    """The judge role a variant's reasoning reward reads the reasoning with: for R_rtxt ``surface`` where the source
    has a surface judge (a text monitor of the reasoning as written), else ``reasoning``; for R_dis (the
    ``obfuscator`` control, paid for what is disclosed, coded or not) always ``reasoning``, the exact judge."""
    if "dis" in VARIANTS[variant]:
        return "reasoning"
    return "surface" if source.judge("surface") is not None else "reasoning"


def _unused(cfg: R2LConfig) -> tuple[str, ...]:
    """The ``r2l`` keys a run's training never reads: the latent term's settings without R_ls (its weight
    also without R_rtxt, which takes it), R_cons's weight without it, where the latent terms apply and how
    their latent is read with neither, the LoRA shape without LoRA. A change of these refuses no finished run."""
    terms = VARIANTS[cfg.variant]
    unused = [] if "ls" in terms else ["alpha", "beta_ls", "gamma"] + ([] if "rtxt" in terms else ["w_lat"])
    unused += [] if "cons" in terms else ["w_cons"]
    unused += [] if {"ls", "cons"} & set(terms) else ["harmful_only", "capture_latents"]
    unused += [] if cfg.use_lora else ["lora_r", "lora_alpha"]
    return tuple(f"r2l.{k}" for k in unused)


def r2l_run(run: Run, variant: str, seed: int, *, stage: str = "r2l", eval_every: int | None = None,
            callbacks: Sequence[TrainerCallback] = ()) -> RunResult:
    """Train (or load, or resume) one run; see the module docstring. ``eval_every`` defaults to
    ``r2l.eval_every`` (0: evaluate at the first and last step only). ``callbacks`` are added to the
    trainer (they are not part of the run's identity)."""
    cfg, source = r2l_config(run, variant, seed), run.source
    eval_every = run.params.r2l.eval_every if eval_every is None else eval_every
    spec, heads = _heads(run, variant)
    artifact = r2l_artifact(run, variant, seed, stage=stage, eval_every=eval_every, spec=spec)
    folder = artifact.path
    with locked(folder):
        if artifact.claim():
            return _load(folder, variant, seed, cached=True)
        if variant == "shuffled_lclr":     # a function of notebook 02's identity and the seed; kept for the reader
            heads = shuffled_label_heads(run, seed)
            if is_main_process():
                save_heads(heads, folder / "heads")
        _train(run, cfg, heads, spec, source.train_prompts(seed), source.monitor_prompts(),
               generation_settings(run, seed=1000 + seed), eval_every, folder, callbacks)
        artifact.finish()
    return _load(folder, variant, seed, cached=False)


def _train(run: Run, cfg: R2LConfig, heads, spec, train_prompts, monitor, settings, eval_every: int, folder: Path,
           callbacks: Sequence[TrainerCallback]) -> None:
    source = run.source
    model, tokenizer = source.load_policy(train=True)
    judges = {role: source.judge(role) for role in ("reward", "reasoning", "response")} if monitor else \
        {"reward": source.judge("reward")}
    last: dict[str, pd.DataFrame] = {}

    def evaluate(step: int, policy: torch.nn.Module) -> dict:
        distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
        if step == 0 and not distributed:   # the base policy: the variants of this seed share its cached completions
            last["records"] = evaluate_policies(run, {"base": source.base_policy()}, monitor,
                                                settings).drop(columns="method")
        else:
            last["records"] = evaluate_model(policy, tokenizer, monitor, judges, settings)
        return summary_metrics(last["records"])     # NaN where not measured (json keeps it)

    extra = [PeriodicEval(eval_every or cfg.steps, evaluate, path=folder / "history.json")] if monitor else []
    dataset = make_prompt_dataset(train_prompts, tokenizer)
    role = _reasoning_reward_role(source, cfg.variant) if judges_reasoning(cfg.variant) else None
    reasoning_judge = source.judge(role) if role else None
    trainer = build_trainer(model, tokenizer, dataset, heads, spec, judges["reward"], cfg, str(folder),
                            callbacks=[*extra, *callbacks], disable_tqdm=not io.bars_on(run.progress),
                            reasoning_judge=reasoning_judge, save_total_limit=1)
    trainer.remove_callback(PrinterCallback)   # TRL's logs go to log_history.json, not stdout
    start = time.perf_counter()
    with timed("grpo"):
        train(trainer, resume=True)
    _check_reward_judge(run, trainer, folder)
    if monitor and "records" not in last:   # resumed at the final step: the last evaluation was not redone here
        evaluate(trainer.state.global_step, trainer.model)
    seconds = time.perf_counter() - start
    trainer.accelerator.wait_for_everyone()
    trainer.save_model(str(folder / "model"))
    if is_main_process():
        if monitor:
            io.atomic_write(folder / "records.csv", last["records"].to_csv(index=False))
        else:
            io.save_json([], folder / "history.json")
        io.save_json(trainer.state.log_history, folder / "log_history.json")
        io.save_json({"train_seconds": seconds, "steps": trainer.state.global_step,
                      "world_size": trainer.accelerator.num_processes}, folder / "result.json")
        for ckpt in folder.glob("checkpoint-*"):      # finished: the checkpoints' optimiser states go
            shutil.rmtree(ckpt)
    trainer.accelerator.wait_for_everyone()       # the other ranks read what the main process wrote
    del trainer, model
    free_memory()


def _check_reward_judge(run: Run, trainer, folder: Path) -> None:
    """Count the texts the reward judges could not judge (each paid a neutral 0.5) over the whole run,
    resumed parts included (``reward_judge.json``); past ``r2l.max_judge_failure_rate`` the run ends
    here with an error and is not marked finished: its rewards were mostly not the judges'."""
    judges = text_judges(trainer)
    if not judges or not is_main_process():
        return
    path = folder / "reward_judge.json"
    before = io.load_json(path) if path.is_file() else {"failures": 0, "texts": 0}
    counts = {"failures": before["failures"] + sum(j.failures for j in judges),
              "texts": before["texts"] + sum(j.calls for j in judges)}
    io.save_json(counts, path)
    for judge in judges:                      # counted; a later call of this check starts from the file
        judge.failures = judge.calls = 0
    limit = run.params.r2l.max_judge_failure_rate
    if counts["texts"] and counts["failures"] > limit * counts["texts"]:
        names = ", ".join(getattr(j.judge, "name", "?") for j in judges)
        raise JudgeUnavailableError(
            f"{folder}: the reward judge{'s' if len(judges) > 1 else ''} ({names}) failed on {counts['failures']} of "
            f"{counts['texts']} texts (more than r2l.max_judge_failure_rate = {limit}); each failure paid a neutral "
            "reward, so this run did not learn from the judge. It is not marked finished. Fix the judge (its endpoint, "
            "model or key), delete that folder and train again; or raise r2l.max_judge_failure_rate.")


def ablation_jobs(run: Run, variants: Sequence[str] | None = None) -> list[tuple[str, int]]:
    """Notebook 05's runs, ``(variant, seed)``: each of ``variants`` (default ``ablations.variants``) on the first
    ``ablations.n_seeds`` seeds, those of :data:`HEAD_DRAW_VARIANTS` on the first ``ablations.head_draws`` (one draw of
    their heads a seed)."""
    a = run.params.ablations
    return [(v, run.params.seed + k) for v in (variants or a.variants)
            for k in range(a.head_draws if v in HEAD_DRAW_VARIANTS else a.n_seeds)]


def r2l_stage(run: Run, variants: Sequence[str] | None = None, seeds: Sequence[int] | None = None,
              stage: str = "r2l", eval_every: int | None = None, also: Sequence[tuple] = (),
              jobs: Sequence[tuple[str, int]] | None = None) -> R2LRuns:
    """Every (variant, seed) run: ``r2l.variants`` x the run's seeds by default, in that order; ``jobs`` lists the
    ``(variant, seed)`` runs instead (e.g. :func:`ablation_jobs`).

    ``also``: more runs, each ``(variant, seed, stage, eval_every)``, trained in the same pool of workers after
    those (where a worker would otherwise wait for the last run) and not returned; e.g. the positive control of the
    monitor stage (:func:`craft.stages.monitor.control_job`).

    With ``r2l.workers`` > 1 the runs still to train are trained that many at a time, each in its own
    one-thread process (:func:`~craft.stages.common.run_in_workers`), then every run is loaded from
    its folder. A run's numbers depend on the threads it trained with, so a run trained by a worker
    repeats bit for bit only when trained by a worker again; each is still one seeded process."""
    from tqdm import tqdm

    if jobs is None:
        jobs = [(v, s) for v in (variants or run.params.r2l.variants) for s in (seeds or run.params.seeds)]
    todo = [(v, s, stage, eval_every) for v, s in jobs if not (run.r2l_dir(v, s, stage) / "DONE").is_file()]
    todo += [job for job in also if not (run.r2l_dir(*job[:3]) / "DONE").is_file()]
    pooled = run_in_workers(run, _train_one, todo, run.params.r2l.workers, desc="R2L runs")
    for job in also if not pooled else ():       # no pool: trained here, one after the other
        _train_one(run, *job)
    return R2LRuns({job: r2l_run(run, *job, stage=stage, eval_every=eval_every)
                    for job in tqdm(jobs, desc="R2L runs", **io.bar_options(run.progress and not pooled))})


def _train_one(run: Run, variant: str, seed: int, stage: str, eval_every: int | None) -> None:
    """One run of :func:`r2l_stage` in a worker process."""
    r2l_run(run, variant, seed, stage=stage, eval_every=eval_every)


def finished_policies(run: Run, variants: Sequence[str], seeds: Sequence[int], *, stage: str = "r2l",
                      required: bool = False) -> dict[tuple[str, int], str]:
    """``{(variant, seed): policy folder}`` of the finished runs, each checked against the current
    params before anyone reads it: a run trained with other settings, another base policy, other heads
    or prompts is refused (:class:`~craft.runs.StaleArtifactError`, with the keys that changed and the
    command that retrains it), and so are heads that notebook 02 fit with other params. Runs never
    started are left out, or with ``required`` raise ``FileNotFoundError`` saying what to run; a run
    started but not finished (training now, or stopped) is an error either way, never left out in silence."""
    maker = R2L_MAKER if stage == "r2l" else ABLATIONS_MAKER
    eval_every = run.params.r2l.eval_every if stage == "r2l" else run.params.ablations.eval_every
    out, heads_checked = {}, False
    for variant in variants:
        for seed in seeds:
            folder = run.r2l_dir(variant, seed, stage)
            if (folder / "identity.json").is_file() and not (folder / "DONE").is_file():
                raise FileNotFoundError(f"{folder} is an R2L run that has started but not finished (it is training "
                                        f"now, or it stopped): finish it with {maker}, or remove that folder to "
                                        "leave the variant out")
            if not (folder / "DONE").is_file():
                if required:
                    raise FileNotFoundError(f"{folder} is not a finished R2L run: run {maker} first")
                continue
            if uses_latent(variant) and not heads_checked:
                trained_heads(run)                  # the heads it rewarded with must still be notebook 02's
                heads_checked = True
            r2l_artifact(run, variant, seed, stage=stage, eval_every=eval_every).require(maker)
            out[variant, seed] = str(folder / "model")
    return out


def history_frame(results: dict[tuple[str, int], RunResult]) -> pd.DataFrame:
    """The runs' histories in one long frame with ``variant`` and ``seed`` columns."""
    return pd.concat([r.history.assign(variant=v, seed=s) for (v, s), r in results.items()], ignore_index=True)


def base_records(run: Run, seed: int) -> pd.DataFrame:
    """The judged completions of the base policy's step-0 evaluation in the runs of ``seed`` (the same
    prompts, decoding and seed; read from the completion cache the runs filled)."""
    source = run.source
    records = evaluate_policies(run, {"base": source.base_policy()}, source.monitor_prompts(),
                                generation_settings(run, seed=1000 + seed))
    return records.drop(columns="method")


def coded_shares(run: Run, results: dict[tuple[str, int], RunResult]) -> pd.DataFrame:
    """Per seed, for the base policy (its step-0 evaluation) and each run (its last evaluation): of the harmful
    prompts, the share whose reasoning the exact judge calls harmful (``reasoning_harm``) and the share the
    surface judge does (``surface_harm``: what a text monitor reading the reasoning as written sees), and the
    **coded share** of the unsafe reasoning (the rule of :func:`craft.evaluate.coded_flags`, from the same one pass
    of the surface judge) with its Wilson 95 % interval.
    Empty where the source has no surface judge (paper scale: no coded text)."""
    surface = run.source.judge("surface")
    if surface is None:
        return pd.DataFrame()
    rows = []
    seeds = sorted({s for _, s in results})
    for variant, seed, records in [("base", s, base_records(run, s)) for s in seeds] + \
            [(v, s, r.records) for (v, s), r in results.items()]:
        harmful = records[records.kind == "harmful"]
        unsafe = harmful.reasoning_harmful.fillna(False).astype(bool).to_numpy()
        seen = np.array(judged_harmful(surface, harmful.goal, harmful.reasoning), dtype=bool)   # one pass
        n_unsafe, n_surface, n_coded = int(unsafe.sum()), int(seen.sum()), int((unsafe & ~seen).sum())
        rows.append({"variant": variant, "seed": seed, "n_harmful": len(harmful), "n_unsafe": n_unsafe,
                     "n_surface_harm": n_surface, "n_coded": n_coded})
    return _with_rates(pd.DataFrame(rows))


def _with_rates(counts: pd.DataFrame) -> pd.DataFrame:
    """``counts`` with ``reasoning_harm`` (n_unsafe / n_harmful), ``surface_harm`` (n_surface_harm / n_harmful),
    ``coded_harm`` (n_coded / n_harmful: coded disclosures per harmful prompt) and ``coded_share`` (n_coded / n_unsafe),
    each with its Wilson 95 % interval (``_lo``, ``_hi``)."""
    out = counts.copy()
    for col, k, n in (("reasoning_harm", "n_unsafe", "n_harmful"), ("surface_harm", "n_surface_harm", "n_harmful"),
                      ("coded_harm", "n_coded", "n_harmful"), ("coded_share", "n_coded", "n_unsafe")):
        cis = [wilson_ci(int(a), int(b)) for a, b in zip(out[k], out[n])]
        out[col], out[f"{col}_lo"], out[f"{col}_hi"] = zip(*cis) if cis else ([], [], [])
    return out


POOLED_RATES = ("reasoning_harm_rate", "response_harm_rate", "ssa_rate", "ssa_rate_dressed")


def pooled_rate_intervals(records: dict[tuple[str, int], pd.DataFrame], rates: Sequence[str] = POOLED_RATES) -> dict:
    """Wilson 95 % intervals of rates of :func:`craft.evaluate.summary_metrics`, pooled over seeds: for each
    ``(variant, seed) -> judged records`` (a run's last evaluation, or the base policy's), the rate's counts
    (``k`` of ``n``), summed over the variant's seeds. Keys ``<variant>_<rate>_ci_low`` and ``_ci_high``, and
    ``<variant>_<rate>_pooled`` (k / n; the mean over seeds when every seed has the same prompts). These are intervals
    over prompts and samples; the ``_ci95_lo``/``_ci95_hi`` of a notebook's seed table are over seeds."""
    counts: dict[tuple[str, str], list[int]] = {}
    for (variant, _seed), recs in records.items():
        m = summary_metrics(recs)
        for rate in rates:
            value = m.get(rate)
            if isinstance(value, CountedRate):
                k, n = counts.setdefault((variant, rate), [0, 0])
                counts[(variant, rate)] = [k + value.k, n + value.n]
    out = {}
    for (variant, rate), (k, n) in counts.items():
        share, lo, hi = wilson_ci(k, n)
        out |= {f"{variant}_{rate}_pooled": share, f"{variant}_{rate}_ci_low": lo, f"{variant}_{rate}_ci_high": hi}
    return out


# slice of the harmful prompts (craft.evaluate.prompt_slices) -> the suffix of its rates in summary_metrics
SLICE_SUFFIX = {"core": "", "evalonly": "_unseen_framings", "unseen": "_unseen_hazards", "held_out": "_held_out"}


def pooled_slice_metrics(records: dict[tuple[str, int], pd.DataFrame], surface=None,
                         rates: Sequence[str] = ("reasoning_harm_rate", "ssa_rate")) -> dict:
    """Per variant and slice of the harmful prompts, pooled over seeds (``records``: ``(variant, seed) -> judged
    records``, as for :func:`pooled_rate_intervals`): each of ``rates`` and, given the ``surface`` judge, the coded
    share of the unsafe reasoning (:func:`craft.evaluate.coded_counts`), each with its Wilson 95 % interval. Keys
    ``<variant>_<rate>_<slice>`` with ``_ci_low`` / ``_ci_high``, ``rate`` ending in ``coded_share`` for the
    share, the slices named as in :data:`SLICE_SUFFIX`; a slice no record of the variant falls in has no key."""
    pooled = pooled_rate_intervals(records, [f"{r}{sfx}" for r in rates for sfx in SLICE_SUFFIX.values()])
    out = {}
    for variant in dict.fromkeys(v for v, _ in records):
        for rate in rates:
            for name, sfx in SLICE_SUFFIX.items():
                src, key = f"{variant}_{rate}{sfx}", f"{variant}_{rate}_{name}"
                if f"{src}_pooled" in pooled:
                    out |= {key: pooled[f"{src}_pooled"], f"{key}_ci_low": pooled[f"{src}_ci_low"],
                            f"{key}_ci_high": pooled[f"{src}_ci_high"]}
    if surface is None:
        return out
    counts: dict[tuple[str, str], tuple[int, int]] = {}
    for (variant, _seed), recs in records.items():
        harmful = recs[recs.kind == "harmful"]
        for name, part in harmful.groupby(prompt_slices(harmful), sort=False):
            if name in SLICE_SUFFIX:
                coded, unsafe = coded_counts(part, surface)
                k, n = counts.get((variant, name), (0, 0))
                counts[(variant, name)] = (k + coded, n + unsafe)
    for (variant, name), (k, n) in counts.items():
        share, lo, hi = wilson_ci(k, n) if n else (float("nan"),) * 3
        key = f"{variant}_coded_share_{name}"
        out |= {key: float(share), f"{key}_ci_low": float(lo), f"{key}_ci_high": float(hi)}
    return out


def pooled_coded_shares(shares: pd.DataFrame) -> pd.DataFrame:
    """:func:`coded_shares` pooled over seeds, one row per policy (in order of appearance): the counts summed
    (every seed samples its own completions of the same prompts) and the rates with Wilson 95 % intervals."""
    counts = ["n_harmful", "n_unsafe", "n_surface_harm", "n_coded"]
    return _with_rates(shares.groupby("variant", sort=False)[counts].sum())
