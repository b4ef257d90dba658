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

from craft import baselines
from craft.config import from_dict
from craft.runs import Artifact, is_main_process, json_hash, locked
from craft.stages.common import Run, free_memory, run_in_workers

__all__ = ["BASELINES_MAKER", "Baselines", "baselines_stage", "trained"]

BASELINES_MAKER = "notebook 04 (or `craft baselines --config <params file>`)"

# method -> (trainer config, its params key, the params key of its data size, trainer)
_TRAIN = {"sft_offpolicy": (baselines.SFTBaselineConfig, "sft", "sft_examples", baselines.train_sft),
          "intervened_po": (baselines.DPOBaselineConfig, "dpo", "dpo_pairs", baselines.train_dpo)}


class Baselines(dict):
    """``{method: policy folder}`` of :func:`baselines_stage`, with the size of each one's training data."""

    def __init__(self, policies: dict[str, str], sizes: dict[str, int],
                 seeds: dict[tuple[str, int], str] | None = None):
        super().__init__(policies)
        self.sizes = sizes
        self.seeds = dict(seeds or {})      # (method, seed) -> policy folder, every seed's

    @property
    def metrics(self) -> dict:
        """``<method>_policy`` (its folder) and ``<method>_n_examples`` (the conversations of SFT, the
        preference pairs of IPO, it was trained on)."""
        return {**{f"{m}_policy": path for m, path in self.items()},
                **{f"{m}_n_examples": n for m, n in self.sizes.items()}}


def baselines_stage(run: Run) -> Baselines:
    """Train (or load) every baseline of ``baselines.methods``; see the module docstring.

    With ``baselines.workers`` > 1 (organism) the baselines still to train are trained that many at a
    time, each in its own one-thread process (:func:`~craft.stages.common.run_in_workers`); a
    baseline's numbers depend on the threads it trained with."""
    methods, seeds = run.params.baselines.methods, run.params.seeds
    todo = [(m, s) for s in seeds for m in methods if not _artifact(run, m, s).done]
    run_in_workers(run, _train, todo, run.params.baselines.workers)
    every = {(m, s): _train(run, m, s) for s in seeds for m in methods}
    return Baselines({m: every[(m, run.params.seed)] for m in methods},
                     {m: len(_data(run, m, run.params.seed)) for m in methods}, every)


def _config(run: Run, method: str, seed: int):
    cls, key, _, _ = _TRAIN[method]
    return from_dict(cls, {**getattr(run.params.baselines, key), "seed": seed}, where=f"baselines.{key}.")


def _data(run: Run, method: str, seed: int):
    return run.source.baseline_data(method, getattr(run.params.baselines, _TRAIN[method][2]), seed)


def _artifact(run: Run, method: str, seed: int) -> Artifact:
    """The folder of ``method`` trained with ``seed`` and the identity that made it: config, base policy
    and data hashes."""
    source = run.source
    identity = {"method": method, "config": _config(run, method, seed).__dict__,
                "base_policy": source.policy_fingerprint(source.base_policy()),
                "data": json_hash(_data(run, method, seed).to_list())}
    return Artifact(run.baseline_dir(method, seed), identity, what=f"{method} baseline (seed {seed})")


def _train(run: Run, method: str, seed: int) -> str:
    """Train ``method`` with ``seed`` (or load it when finished with the same identity); its policy folder."""
    artifact = _artifact(run, method, seed)
    folder = artifact.path
    with locked(folder):
        if not artifact.claim():
            model, tokenizer = run.source.load_policy(train=True)
            model = _TRAIN[method][3](model, tokenizer, _data(run, method, seed), _config(run, method, seed),
                                      str(folder / "trainer"))
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
    settings, data or base policy is refused with the keys that changed."""
    seed = run.params.seed if seed is None else seed
    return {m: str(run.baseline_dir(m, seed) / "policy") for m in run.params.baselines.methods
            if _artifact(run, m, seed).finished(BASELINES_MAKER)}
