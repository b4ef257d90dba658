"""Baselines stage (notebook 04; ``craft baselines``): safety training that CRAFT is compared with.

``sft_offpolicy``: SFT on curated safe traces written for direct harmful requests (STAR-1 style,
TRL's ``SFTTrainer``); ``intervened_po``: Intervened Preference Optimization (the paper's IPO baseline,
arXiv 2509.24393; TRL's ``DPOTrainer`` on intervened-over-original trace pairs).
Each method of ``baselines.methods`` is trained from the source's base policy on the source's data
(:meth:`baseline_data`) with :mod:`craft.baselines`, into ``run_dir/04_evaluate_benchmarks/
baselines/<method>/`` (an :class:`craft.runs.Artifact`: config, base policy and data hashes; an
interrupted run resumes from its last complete checkpoint). Returns ``{method: policy folder}``.
"""

from __future__ import annotations

import shutil

from craft import baselines
from craft.config import from_dict
from craft.runs import Artifact, is_main_process, json_hash, locked
from craft.stages.common import Run
from craft.stages.evaluate import free_memory

__all__ = ["baselines_stage", "trained"]

# method -> (trainer config, its params key, the params key of its data size, trainer)
_TRAIN = {"sft_offpolicy": (baselines.SFTBaselineConfig, "sft", "sft_examples", baselines.train_sft),
          "intervened_po": (baselines.DPOBaselineConfig, "dpo", "dpo_pairs", baselines.train_dpo)}


def baselines_stage(run: Run) -> dict[str, str]:
    """Train (or load) every baseline of ``baselines.methods``; see the module docstring.

    With ``baselines.workers`` > 1 (organism) the baselines still to train are trained that many at a
    time, each in its own spawned process on one CPU thread, as R2L's runs are
    (:func:`craft.stages.r2l.r2l_stage`); a baseline's numbers depend on the threads it trained with."""
    todo = [m for m in run.params.baselines.methods if not _artifact(run, m).done]
    workers = min(run.params.baselines.workers, len(todo))
    if workers > 1 and run.scale == "organism":
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            for future in [pool.submit(_worker, run.params, method) for method in todo]:
                future.result()             # a failed baseline raises here, with its own traceback
    return {method: _train(run, method) for method in run.params.baselines.methods}


def _config(run: Run, method: str):
    cls, key, _, _ = _TRAIN[method]
    return from_dict(cls, {**getattr(run.params.baselines, key), "seed": run.params.seed}, where=f"baselines.{key}.")


def _data(run: Run, method: str):
    return run.source.baseline_data(method, getattr(run.params.baselines, _TRAIN[method][2]), run.params.seed)


def _artifact(run: Run, method: str) -> Artifact:
    """The folder of ``method`` and the identity that made it: config, base policy and data hashes."""
    source = run.source
    identity = {"method": method, "config": _config(run, method).__dict__,
                "base_policy": source.policy_fingerprint(source.base_policy()),
                "data": json_hash(_data(run, method).to_list())}
    return Artifact(run.stage_dir("evaluate") / "baselines" / method, identity, what=f"{method} baseline")


def _train(run: Run, method: str) -> str:
    """Train ``method`` (or load it when finished with the same identity); its policy folder."""
    artifact, folder = _artifact(run, method), run.stage_dir("evaluate") / "baselines" / method
    with locked(folder):
        if not artifact.claim():
            model, tokenizer = run.source.load_policy(train=True)
            model = _TRAIN[method][3](model, tokenizer, _data(run, method), _config(run, method),
                                      str(folder / "trainer"))
            if is_main_process():
                model.save_pretrained(folder / "policy")
                tokenizer.save_pretrained(folder / "policy")
                shutil.rmtree(folder / "trainer", ignore_errors=True)
            del model
            free_memory()
            artifact.finish()
    return str(folder / "policy")


def _worker(params, method: str) -> None:
    """One baseline in a worker process of :func:`baselines_stage` (one CPU thread)."""
    import torch

    from craft.stages.common import open_run

    worker_run = open_run(params, progress=False)
    torch.set_num_threads(1)
    _train(worker_run, method)


def trained(run: Run) -> dict[str, str]:
    """``{method: policy folder}`` of the baselines already trained in this run (none is trained here)."""
    folder = run.stage_dir("evaluate") / "baselines"
    return {m: str(folder / m / "policy") for m in run.params.baselines.methods if (folder / m / "DONE").is_file()}
