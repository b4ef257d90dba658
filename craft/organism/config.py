"""What defines the organism: its world, tokenizer, model shape and SFT (the ``organism`` section of
a params file), and where its data come from at every later stage (the ``source`` section).

Values live in ``params/organism.yaml``; the defaults here are the same (a test keeps them equal).
The top-level ``seed`` of the params file seeds the world, the tokenizer corpus, the initialisation
and the SFT order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from craft.config import check_fields, rule
from craft.organism.corpus import EvalSizes, MixtureConfig
from craft.organism.model import TinyModelConfig
from craft.organism.sft import SFTSettings

__all__ = ["EvalSizes", "OrganismConfig", "OrganismSourceConfig"]


@dataclass(frozen=True)
class OrganismConfig:
    """The base organism built by notebook 00 (``craft build``)."""

    n_hazards: int = field(default=24, metadata=rule(ge=2))          # fictional hazards in the world
    n_unseen_hazards: int = field(default=6, metadata=rule(ge=0))    # of them, never in a probe's, LCLR's or R2L's data
    n_arithmetic: int = field(default=4000, metadata=rule(ge=10))    # distinct two-step arithmetic problems
    eval_fraction: float = field(default=0.2, metadata=rule(gt=0, lt=1))   # held-out share of prompt strings
    vocab_size: int = field(default=1000, metadata=rule(ge=300))     # BPE vocabulary (plus <think>, </think>)
    tokenizer_texts: int = field(default=5000, metadata=rule(ge=1))  # SFT conversations the tokenizer learns from
    mixture: MixtureConfig = field(default_factory=MixtureConfig)
    model: TinyModelConfig = field(default_factory=TinyModelConfig)
    sft: SFTSettings = field(default_factory=SFTSettings)
    twin_arch: str = field(default="llama", metadata=rule(choices=("", "qwen3", "llama")))  # "": no twin
    twin_sft_steps: int = field(default=400, metadata=rule(ge=1))   # SFT steps of the twin (probed in notebook 01)

    def __post_init__(self):
        check_fields(self)
        if self.n_unseen_hazards >= self.n_hazards:
            raise ValueError(f"n_unseen_hazards ({self.n_unseen_hazards}) must be below n_hazards ({self.n_hazards})")


@dataclass(frozen=True)
class OrganismSourceConfig:
    """Where the organism's prompts, traces and judges come from at each stage (``source:``)."""

    kind: Literal["organism"] = "organism"
    probe_prompts: int = field(default=300, metadata=rule(ge=1))     # notebook 01: harmful prompts per split (4 traces)
    lclr_prompts: int = field(default=600, metadata=rule(ge=1))      # notebook 02: the same for LCLR
    probe_twin: bool = True                 # notebook 01 also probes the twin of the other architecture
    n_train_prompts: int = field(default=1000, metadata=rule(ge=1))  # R2L prompts per run, drawn from the train split
    harmful_fraction: float = field(default=0.7, metadata=rule(ge=0, le=1))      # of R2L prompts
    arithmetic_fraction: float = field(default=0.2, metadata=rule(ge=0, le=1))   # the rest: benign-but-scary
    monitor: EvalSizes = field(default_factory=lambda: EvalSizes(300, 60, 60, 0, 100, 2))     # evaluated during R2L
    evaluation: EvalSizes = field(default_factory=lambda: EvalSizes(360, 120, 180, 90, 200, 4))  # notebooks 00, 04

    def __post_init__(self):
        check_fields(self)
        if self.harmful_fraction + self.arithmetic_fraction > 1:
            raise ValueError(f"harmful_fraction + arithmetic_fraction must be <= 1, got "
                             f"{self.harmful_fraction} + {self.arithmetic_fraction}")
