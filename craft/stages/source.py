"""The seam between the stages and the two sizes: what a data source provides, and which one a run uses.

A stage never asks which size it runs at. It asks its run's source (:class:`Source`) for the base
policy, the policies' fingerprints, the labelled traces, the prompts of each split, the judges and
their identity, the attack goals and the baselines' data. Two classes implement it:
:class:`craft.organism.source.OrganismSource` (the synthetic world that notebook 00 builds) and
:class:`craft.paper.source.PaperSource` (the paper's models, benchmarks and judges);
``tests/unit/test_source_protocol.py`` holds both to this protocol, signatures included.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import pandas as pd

from craft.types import LabelledTrace, Prompt

if TYPE_CHECKING:            # params and source are independent layers of the stages
    from craft.stages.params import Params

__all__ = ["Source", "build_identity", "make_source"]


@runtime_checkable
class Source(Protocol):
    """Where a run's policy, traces, prompts and judges come from (module docstring)."""

    scale: str                                   # "organism" or "paper"
    table_groups: tuple[str, str]                # records columns that are the paper table's benchmark and attack
    table_columns: tuple[str, str]               # records columns averaged into its reasoning and response cells
    labels_own_samples: bool                     # whether own_samples can label the base policy's completions

    def fingerprint(self) -> dict:
        """Content hashes of the data every prompt and trace comes from."""

    # policies
    def base_policy(self) -> str:
        """The base policy's checkpoint (a local folder or a hub id)."""

    def policy_fingerprint(self, path: str) -> str:
        """What a policy is, for run identities (:func:`craft.runs.model_fingerprint`)."""

    def load_policy(self, path: str | None = None, *, train: bool = False) -> tuple[Any, Any]:
        """``(model, tokenizer)`` of the base policy, or of a trained one at ``path``."""

    def hidden_size(self) -> int:
        """The width of the base policy's hidden states (what LCLR heads read)."""

    def probe_models(self) -> dict[str, str]:
        """The policies notebook 01 probes, by name."""

    # traces and prompts
    def traces(self, purpose: str, split: str) -> list[LabelledTrace]:
        """Labelled traces for ``purpose`` (probe or lclr) of ``split`` (train, test, unseen_val, unseen_test,
        coded_test: the test traces with ingredients named by their aliases; [] where the source has none)."""

    def own_samples(self, records: pd.DataFrame) -> list[LabelledTrace] | None:
        """The base policy's own harmful-prompt completions, labelled; None where the source cannot label
        (``labels_own_samples`` False: then no stage generates them for it)."""

    def train_prompts(self, seed: int) -> list[Prompt]:
        """R2L's training prompts for ``seed``."""

    def monitor_prompts(self) -> list[Prompt]:
        """Held-out prompts evaluated while R2L trains (and read by notebook 06's monitor)."""

    def eval_prompts(self) -> list[Prompt]:
        """The final evaluation set."""

    # judges
    def judge(self, role: str) -> Any:
        """The ``reward``, ``reasoning`` or ``response`` judge (a :class:`craft.judges.Judge`); ``surface``:
        the reasoning judge without what it knows of coded text (None where the source has no such judge)."""

    def judge_identity(self) -> dict:
        """What decides the judges' verdicts, for cache keys and run identities."""

    def agreement_judges(self) -> dict[str, Any]:
        """Second reasoning judges, by name, whose agreement with the first notebook 04 measures."""

    # adaptive attacks and baselines
    def attack_goals(self, n: int, regime: str = "direct") -> list[tuple[Prompt, str]]:
        """``n`` harmful goals of ``regime`` (``attacks.regimes``: direct, dressed, coded), each with the target
        string an attacker optimises for; a regime the source does not have is a ValueError."""

    def fuzz_seeds(self) -> list[str]:
        """The fuzzer's seed templates (``{goal}`` where the request goes)."""

    def fuzz_synonyms(self) -> dict[str, list[str]]:
        """Word -> replacements for the fuzzer's rephrase mutation."""

    def benign_reasoning(self, n: int) -> list[str]:
        """``n`` benign problems, each followed by its worked solution, as text: the padding that the
        chain-of-thought hijacking attack puts before a harmful request."""

    def baseline_data(self, method: str, n: int, seed: int) -> Any:
        """The training data of a baseline of notebook 04."""

    def validation_prompts(self, sizes: Mapping) -> list[Prompt]:
        """Prompts for choosing a baseline's hyper-parameters (``baselines.validation``), none of them in the
        evaluation set."""


def build_identity(params: Params) -> dict:
    """The identity of the organism notebook 00 builds: its ``organism`` section and the seed."""
    return {"organism": asdict(params.organism), "seed": params.seed}


def make_source(params: Params, root: Path, build_dir: Path) -> Source:
    """The data source of ``params.source.kind`` (imported here, so that method modules never need to
    know which size they run at). The organism's source reads the organism notebook 00 built in
    ``build_dir``, checking first that it was built with these params (:func:`build_identity`); the
    paper's finds a latent judge's heads inside the run folder ``root``."""
    if params.scale == "organism":
        from craft.organism.source import OrganismSource
        return OrganismSource(params.source, build_dir, params.seed, build_identity(params))
    from craft.paper.source import PaperSource
    return PaperSource(params.source, params.seed, root)
