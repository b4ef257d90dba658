"""What every stage shares: the run (params, folder layout, data source), process set-up, and the
helpers every runner uses (decoding settings, freeing memory, the one-thread worker pool).

A stage runner takes a :class:`Run` and returns a result with its flat ``.metrics``; the notebooks,
the CLI and the tests call the same runners. What differs between the sizes is only the data source
(:func:`craft.stages.source.make_source`), chosen by ``params.source.kind``.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import torch

from craft import io
from craft.evaluate import GenerationSettings
from craft.stages.params import Params
from craft.stages.source import Source, make_source
from craft.timing import timed

__all__ = ["STAGES", "Run", "free_memory", "generation_settings", "open_run", "run_in_workers"]

# stage -> its folder under run_dir (one per notebook)
STAGES = {"build": "00_build_model_organism", "probe": "01_probe_latent_geometry", "lclr": "02_train_lclr",
          "r2l": "03_train_r2l_grpo", "evaluate": "04_evaluate_benchmarks", "ablations": "05_ablations_and_theory",
          "monitor": "06_monitor_reasoning", "attacks": "07_run_adaptive_attacks", "real": "08_read_real_model_latents"}


@dataclass
class Run:
    """One run: its params, its folder and the layout of everything written under it (the only place
    that knows where each stage writes), its data source, and whether to show progress bars."""

    params: Params
    progress: bool = True
    root: Path = field(init=False)

    def __post_init__(self):
        self.root = io.resolve(self.params.run_dir)

    @cached_property
    def source(self) -> Source:
        return make_source(self.params, self.root, self.stage_dir("build"))

    @property
    def scale(self) -> str:
        return self.params.scale

    # ------------------------------------------------------------------ the folder layout
    def stage_dir(self, stage: str) -> Path:
        """``run_dir/<notebook stem>/`` of a stage (not created here)."""
        return self.root / STAGES[stage]

    def heads_dir(self, variant: str | None = None) -> Path:
        """The LCLR heads of ``variant``; by default the first LCLR variant's, the ones R2L rewards with."""
        return self.stage_dir("lclr") / f"heads-{variant or self.params.lclr.variants[0]}"

    def r2l_dir(self, variant: str, seed: int, stage: str = "r2l") -> Path:
        """One R2L run (notebook 03; ``stage="ablations"``: notebook 05's); its policy is ``model/``."""
        return self.stage_dir(stage) / f"{variant}-seed{seed}"

    def baseline_dir(self, method: str, seed: int | None = None) -> Path:
        """One baseline of notebook 04 trained with ``seed`` (default ``seed``, folder ``<method>``; another
        seed: ``<method>-seed<k>``); its policy is ``policy/``."""
        name = method if seed is None or seed == self.params.seed else f"{method}-seed{seed}"
        return self.stage_dir("evaluate") / "baselines" / name

    def attack_dir(self, policy: str, seed: int) -> Path:
        """One (policy, attack seed) unit of notebook 07."""
        return self.stage_dir("attacks") / f"{policy}-seed{seed}"

    def completions_dir(self, name: str, key: str) -> Path:
        """The cached completions of policy ``name`` whose identity hashes to ``key``."""
        return self.root / "cache" / "generations" / f"{name}-{key[:12]}"

    @property
    def metrics(self) -> io.RunDir:
        """``metrics/<notebook>.json`` and ``figures/`` of the run (a quick run's metrics say ``budget: quick``)."""
        return io.RunDir(self.root, stamp={"budget": "quick"} if self.params.quick else None)

    @property
    def budget_note(self) -> str:
        """What a notebook's first line adds for a quick run ("" for the full run)."""
        return (" — the QUICK run (budget: quick): one seed, fewer runs and smaller sets, its numbers are not the "
                "reproduction's" if self.params.quick else "")

    def figure(self, fig, name: str) -> list[Path]:
        """Save ``fig`` under ``run_dir/figures/`` and publish it to ``figures_dir``. A quick run's figure says so
        under it."""
        if self.params.quick:
            fig.text(0.5, -0.01, "quick run (budget: quick): one seed, fewer runs, smaller sets; "
                     "not the reproduction's numbers", ha="center", va="top", fontsize=8, color="firebrick")
        return io.publish(io.save_figure(fig, self.metrics.figures / name), self.params.figures_dir)


def open_run(params: Params, progress: bool = True) -> Run:
    """A :class:`Run`, with the process set up for it: everything seeded from ``params.seed`` and
    deterministic kernels requested; library chatter (transformers' and datasets' own progress bars
    and warnings) off. Organism runs use 2 CPU threads, what CI has: the organism's numbers repeat
    bit for bit only at the same thread count."""
    import datasets.utils.logging
    import transformers

    io.seed_everything(params.seed)
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    datasets.utils.logging.disable_progress_bar()
    logging.getLogger("torch.distributed.elastic").setLevel(logging.WARNING)
    if params.scale == "organism":
        torch.set_num_threads(min(2, os.cpu_count() or 2))
    return Run(params, progress)


def free_memory() -> None:
    """Return freed models' memory (call after ``del model``)."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def generation_settings(run: Run, seed: int | None = None) -> GenerationSettings:
    """The run's decoding (``evaluate`` section), sampled with ``seed`` (default: the run's seed)."""
    values = {f.name: getattr(run.params.evaluate, f.name) for f in dataclasses.fields(GenerationSettings)}
    return GenerationSettings(**{**values, "seed": run.params.seed if seed is None else seed})


def _distributed() -> bool:
    """Under a distributed launch: its process group joined, or about to be (``WORLD_SIZE`` > 1)."""
    return (torch.distributed.is_available() and torch.distributed.is_initialized()) or \
        int(os.environ.get("WORLD_SIZE", "1")) > 1


def run_in_workers(run: Run, fn: Callable, jobs: Sequence[tuple], workers: int, desc: str = "") -> bool:
    """``fn(worker_run, *job)`` for every job, ``workers`` at a time, each in its own spawned process on
    one CPU thread, where ``worker_run`` is :func:`open_run` of the run's params (no progress bars).
    Organism only, in a single process: a tiny model keeps a second core far busier as a second process
    than as a second thread of the same one. A job's numbers depend on the threads it ran with, so a job
    done by a worker repeats bit for bit only when done by a worker again; each is still one seeded
    process: so a single job goes to a worker too (``workers`` > 1), and a run resumed with one job left computes
    what a run from scratch computes. ``fn`` must be a module-level function (it is pickled). With ``desc`` a
    progress bar counts the finished jobs. Returns whether the pool ran (False: fewer than two workers, no job,
    paper scale, or under a distributed launch; the caller then does the jobs itself)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from tqdm import tqdm

    if workers <= 1 or not jobs or run.scale != "organism" or _distributed():
        return False
    workers = min(workers, len(jobs))
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(_in_worker, fn, run.params, job) for job in jobs]
        for future in tqdm(as_completed(futures), total=len(futures), desc=desc or "workers",
                           **io.bar_options(run.progress and bool(desc))):
            future.result()                 # a failed job raises here, with its own traceback
    return True


def _in_worker(fn: Callable, params: Params, job: tuple) -> None:
    """One job of :func:`run_in_workers`, in its worker process."""
    with timed("worker start-up"):
        worker_run = open_run(params, progress=False)
    torch.set_num_threads(1)
    fn(worker_run, *job)
