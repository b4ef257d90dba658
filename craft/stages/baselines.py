"""Baselines stage (notebook 04; ``craft baselines``): safety training that CRAFT is compared with.

``sft_offpolicy``: SFT on curated safe traces written for direct harmful requests (STAR-1 style,
TRL's ``SFTTrainer``); ``intervened_po``: Intervened Preference Optimization (the paper's IPO baseline,
arXiv 2509.24393; TRL's ``DPOTrainer`` on intervened-over-original trace pairs).
Each method of ``baselines.methods`` is trained from the source's base policy on the source's data
(:meth:`baseline_data`) with :mod:`craft.baselines`, once per seed of the R2L runs (``r2l.n_seeds``: a
seed draws the training data and the trainer's order, as a GRPO seed draws its prompts and rollouts),
into ``run_dir/04_evaluate_benchmarks/baselines/<method>/`` for the run's ``seed`` and
``<method>-seed<k>/`` for the others (an :class:`craft.runs.Artifact`: config, base policy and data
hashes; an interrupted run resumes from its last complete checkpoint). Returns ``{method: policy
folder}`` of the run's seed, with every seed's folder in ``.seeds``.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from craft import baselines
from craft.config import from_dict
from craft.evaluate import summary_metrics
from craft.runs import Artifact, is_main_process, json_hash, locked
from craft.stages.common import Run, free_memory, run_in_workers
from craft.stages.completions import evaluate_policies

__all__ = ["BASELINES_MAKER", "Baselines", "Tuning", "baselines_stage", "choose_learning_rate", "trained",
           "tune_stage"]

BASELINES_MAKER = "notebook 04 (or `craft baselines --config <params file>`)"

# method -> (trainer config, its params key, the params key of its data size, trainer)
_TRAIN = {"sft_offpolicy": (baselines.SFTBaselineConfig, "sft", "sft_examples", baselines.train_sft),
          "intervened_po": (baselines.DPOBaselineConfig, "dpo", "dpo_pairs", baselines.train_dpo)}


class Baselines(dict):
    """``{method: policy folder}`` of :func:`baselines_stage`, with the size of each one's training data."""

    def __init__(self, policies: dict[str, str], sizes: dict[str, int],
                 seeds: dict[tuple[str, int], str] | None = None, tuning: Tuning | None = None):
        super().__init__(policies)
        self.sizes = sizes
        self.seeds = dict(seeds or {})      # (method, seed) -> policy folder, every seed's
        self.tuning = tuning                # Intervened PO's validation choice (None: nothing tuned)

    @property
    def metrics(self) -> dict:
        """``<method>_policy`` (its folder) and ``<method>_n_examples`` (the conversations of SFT, the
        preference pairs of IPO, it was trained on)."""
        return {**{f"{m}_policy": path for m, path in self.items()},
                **{f"{m}_n_examples": n for m, n in self.sizes.items()},
                **(self.tuning.metrics if self.tuning else {})}


# Intervened PO's learning rate is chosen on validation prompts (``baselines.validation``, never the evaluation
# set) among ``baselines.dpo_learning_rates``, by a rule fixed before any candidate ran: among the candidates whose
# over-refusal is at most MAX_OVER_REFUSAL and whose capability is at most MAX_CAPABILITY_DROP below the base
# policy's (the bounds notebook 04 holds CRAFT to), the one with the least harmful reasoning, ties to the higher
# capability, then to the earlier candidate; when none is within both bounds, the one with the least over-refusal
# (then the smallest capability drop).
TUNED = "intervened_po"
MAX_OVER_REFUSAL = 0.10
MAX_CAPABILITY_DROP = 0.10


def choose_learning_rate(table: pd.DataFrame, base: Mapping[str, float]) -> float:
    """The ``learning_rate`` of ``table`` (one row per candidate, in grid order: ``learning_rate``,
    ``reasoning_harm_rate``, ``over_refusal_rate``, ``capability_accuracy``) that the rule above picks, ``base``
    the base policy's ``capability_accuracy`` on the same prompts."""
    drop = base["capability_accuracy"] - table.capability_accuracy
    ok = (table.over_refusal_rate <= MAX_OVER_REFUSAL) & (drop <= MAX_CAPABILITY_DROP)
    if ok.any():
        ranked = table[ok].sort_values(["reasoning_harm_rate", "capability_accuracy"], ascending=[True, False],
                                       kind="stable")
        return float(ranked.learning_rate.iloc[0])
    ranked = table.assign(drop=drop).sort_values(["over_refusal_rate", "drop"], kind="stable")
    return float(ranked.learning_rate.iloc[0])


@dataclass
class Tuning:
    """Intervened PO's candidates on the validation prompts and the learning rate the rule chose."""

    table: pd.DataFrame       # one row per policy: the base, then each candidate in grid order
    learning_rate: float
    n_prompts: int            # validation prompts (each candidate sampled once on each)

    @property
    def metrics(self) -> dict:
        """``intervened_po_tuned_learning_rate``, ``n_validation_prompts`` and each candidate's validation rates
        (``intervened_po_validation_<rate>_lr<lr>``)."""
        out = {f"{TUNED}_tuned_learning_rate": self.learning_rate, "n_validation_prompts": self.n_prompts}
        for row in self.table[self.table.learning_rate.notna()].itertuples():
            for rate in ("reasoning_harm_rate", "over_refusal_rate", "capability_accuracy"):
                out[f"{TUNED}_validation_{rate}_lr{row.learning_rate:g}"] = float(getattr(row, rate))
        return out


def tune_stage(run: Run, train: bool = True) -> Tuning | None:
    """Train (or load) Intervened PO once per candidate learning rate on the run's seed, sample and judge each
    candidate and the base policy on the validation prompts, and choose (the rule above). None when there is
    nothing to tune (no ``intervened_po`` among the methods, or no candidates). ``train=False``: None as well when
    a candidate is not trained yet."""
    grid, seed = run.params.baselines.dpo_learning_rates, run.params.seed
    if TUNED not in run.params.baselines.methods or not grid:
        return None
    todo = [(TUNED, seed, lr, True) for lr in grid if not _artifact(run, TUNED, seed, lr, tune=True).done]
    if todo and not train:
        return None
    run_in_workers(run, _train, todo, run.params.baselines.workers)
    policies = {f"{TUNED}-lr{lr:g}": _train(run, TUNED, seed, lr, True) for lr in grid}
    prompts = run.source.validation_prompts(run.params.baselines.validation)
    records = evaluate_policies(run, {"base": run.source.base_policy(), **policies}, prompts,
                                workers=run.params.evaluate.workers)
    rows = []
    for name, lr in [("base", float("nan"))] + [(f"{TUNED}-lr{lr:g}", lr) for lr in grid]:
        m = summary_metrics(records[records.method == name])
        rows.append({"policy": name, "learning_rate": lr, **{k: float(m[k]) for k in
                     ("reasoning_harm_rate", "ssa_rate", "over_refusal_rate", "capability_accuracy")}})
    table = pd.DataFrame(rows)
    chosen = choose_learning_rate(table.iloc[1:], table.iloc[0])
    return Tuning(table.assign(chosen=table.learning_rate == chosen), chosen, len(prompts))


def baselines_stage(run: Run) -> Baselines:
    """Train (or load) every baseline of ``baselines.methods``; see the module docstring. Intervened PO's learning
    rate is first chosen on the validation prompts (:func:`tune_stage`) when ``baselines.dpo_learning_rates`` lists
    candidates; every seed then trains with the chosen one (``.tuning``).

    With ``baselines.workers`` > 1 (organism) the baselines still to train are trained that many at a
    time, each in its own one-thread process (:func:`~craft.stages.common.run_in_workers`); a
    baseline's numbers depend on the threads it trained with."""
    tuning = tune_stage(run)
    lr = {TUNED: tuning.learning_rate} if tuning else {}
    methods, seeds = run.params.baselines.methods, run.params.seeds
    todo = [(m, s, lr.get(m)) for s in seeds for m in methods if not _artifact(run, m, s, lr.get(m)).done]
    run_in_workers(run, _train, todo, run.params.baselines.workers)
    every = {(m, s): _train(run, m, s, lr.get(m)) for s in seeds for m in methods}
    return Baselines({m: every[(m, run.params.seed)] for m in methods},
                     {m: len(_data(run, m, run.params.seed)) for m in methods}, every, tuning)


def _config(run: Run, method: str, seed: int, learning_rate: float | None = None):
    cls, key, _, _ = _TRAIN[method]
    values = {**getattr(run.params.baselines, key), "seed": seed}
    if learning_rate is not None:
        values["learning_rate"] = learning_rate
    return from_dict(cls, values, where=f"baselines.{key}.")


def _data(run: Run, method: str, seed: int):
    return run.source.baseline_data(method, getattr(run.params.baselines, _TRAIN[method][2]), seed)


def _artifact(run: Run, method: str, seed: int, learning_rate: float | None = None, tune: bool = False) -> Artifact:
    """The folder of ``method`` trained with ``seed`` (and ``learning_rate``, when given; ``tune``: a candidate of
    :func:`tune_stage`, under ``baselines/tune/``) and the identity that made it: config, base policy and data
    hashes."""
    source = run.source
    identity = {"method": method, "config": _config(run, method, seed, learning_rate).__dict__,
                "base_policy": source.policy_fingerprint(source.base_policy()),
                "data": json_hash(_data(run, method, seed).to_list())}
    if tune:
        folder = run.baseline_dir("tune") / f"{method}-lr{learning_rate:g}"
        return Artifact(folder, identity, what=f"{method} candidate (learning rate {learning_rate:g})")
    return Artifact(run.baseline_dir(method, seed), identity, what=f"{method} baseline (seed {seed})")


def _train(run: Run, method: str, seed: int, learning_rate: float | None = None, tune: bool = False) -> str:
    """Train ``method`` with ``seed`` (or load it when finished with the same identity); its policy folder. A
    finished candidate of :func:`tune_stage` with the same identity (the chosen one, on the run's seed) is copied,
    not trained again: the same data, seed and settings give the same weights."""
    artifact = _artifact(run, method, seed, learning_rate, tune)
    folder = artifact.path
    candidate = None if tune or learning_rate is None else _artifact(run, method, seed, learning_rate, tune=True)
    with locked(folder):
        if artifact.claim():
            return str(folder / "policy")
        if candidate is not None and candidate.done:
            if is_main_process():
                shutil.copytree(candidate.path / "policy", folder / "policy")
        else:
            model, tokenizer = run.source.load_policy(train=True)
            model = _TRAIN[method][3](model, tokenizer, _data(run, method, seed),
                                      _config(run, method, seed, learning_rate), str(folder / "trainer"))
            if is_main_process():
                model.save_pretrained(folder / "policy")
                tokenizer.save_pretrained(folder / "policy")
                shutil.rmtree(folder / "trainer", ignore_errors=True)
            del model
            free_memory()
        artifact.finish()
    return str(folder / "policy")


def trained(run: Run, seed: int | None = None) -> dict[str, str]:
    """``{method: policy folder}`` of the baselines already trained in this run with ``seed`` (default the
    run's; none is trained here), each checked against the current params: a baseline trained with other
    settings, data or base policy is refused with the keys that changed. Intervened PO counts once its
    candidates are trained and its choice made (:func:`tune_stage`, which may sample the validation prompts)."""
    seed = run.params.seed if seed is None else seed
    lr, methods = {}, list(run.params.baselines.methods)
    if TUNED in methods and run.params.baselines.dpo_learning_rates:
        tuning = tune_stage(run, train=False)
        if tuning is None:
            methods.remove(TUNED)
        else:
            lr[TUNED] = tuning.learning_rate
    return {m: str(run.baseline_dir(m, seed) / "policy") for m in methods
            if _artifact(run, m, seed, lr.get(m)).finished(BASELINES_MAKER)}
