"""What every stage shares: the run (params, folders, data source) and process set-up.

A stage runner takes a :class:`Run` and returns plain results; the notebooks, the CLI and the
tests call the same runners. What differs between the scales is only the data source
(:func:`make_source`): :class:`craft.organism.source.OrganismSource` or
:class:`craft.paper.source.PaperSource`, chosen by ``params.source.kind``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import torch

from craft import io
from craft.stages.params import Params

__all__ = ["STAGES", "Run", "make_source", "open_run"]

# stage -> its folder under run_dir (one per notebook)
STAGES = {"build": "00_build_model_organism", "probe": "01_probe_latent_geometry", "lclr": "02_train_lclr",
          "r2l": "03_train_r2l_grpo", "evaluate": "04_evaluate_benchmarks", "ablations": "05_ablations_and_theory",
          "monitor": "06_monitor_reasoning", "attacks": "07_run_adaptive_attacks"}


def make_source(params: Params, root: Path):
    """The data source of ``params.source.kind`` (imported here so that method modules never need
    to know which scale they run at)."""
    if params.scale == "organism":
        from craft.organism.source import OrganismSource
        return OrganismSource(params.source, root / STAGES["build"], params.seed)
    from craft.paper.source import PaperSource
    return PaperSource(params.source, params.seed)


@dataclass
class Run:
    """One run: its params, its folder, its data source, and whether to show progress bars."""

    params: Params
    progress: bool = True
    root: Path = field(init=False)

    def __post_init__(self):
        self.root = io.resolve(self.params.run_dir)

    @cached_property
    def source(self):
        return make_source(self.params, self.root)

    @property
    def scale(self) -> str:
        return self.params.scale

    def stage_dir(self, stage: str) -> Path:
        """``run_dir/<notebook stem>/`` of a stage (not created here)."""
        return self.root / STAGES[stage]

    @property
    def metrics(self) -> io.RunDir:
        return io.RunDir(self.root)

    def figure(self, fig, name: str) -> list[Path]:
        """Save ``fig`` under ``run_dir/figures/`` and publish it to ``figures_dir``."""
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
