"""Safety-training baselines of paper §6: SFT on safe reasoning traces and preference optimisation.

The paper compares CRAFT with (a) SFT on curated safe reasoning traces (SafeChain, RealSafe-R1,
STAR-1), (b) IPO — Intervened Preference Optimization (arXiv 2509.24393): an unsafe trace cut at its
first unsafe step, a safe continuation spliced in, the intervened trace preferred over the original —
and (c) output-only GRPO, which is :mod:`craft.r2l` with ``variant="output_only"``. This module
trains (a) with TRL's own ``SFTTrainer`` and the preference of (b) with TRL's ``DPOTrainer``
(``loss_type`` sigmoid, the DPO loss, by default; ``"ipo"`` is the IPO *loss* of Azar et al., a
different method that shares the acronym); we configure them, never fork them. The data come from the
scale's source (the organism builds them from its world: :mod:`craft.organism.baselines_data`).

Format: TRL conversational datasets. ``prompt`` is ``[{"role": "user", ...}]``; a completion is
one assistant message ``{"role": "assistant", "content": answer, "reasoning_content": reasoning}``,
which a reasoning model's chat template renders as ``reasoning\\n</think>\\n\\nanswer<eos>`` after
the generation prompt — exactly what the model generates. TRL tokenises prompt and prompt +
completion through the template and trains on the tokens after their common prefix. Templates of
real models must render ``reasoning_content`` (Qwen3's does).

Training (CPU-safe as :func:`craft.r2l.grpo_config`: ``use_cpu``, fp32, no activation
checkpointing, ``report_to="none"``): completion-only loss; i.i.d. random batches
(``train_sampling_strategy="random"``, never ``group_by_length``: length-grouped batches are
homogeneous in task and broke the organism's arithmetic, see :mod:`craft.organism.sft`);
checkpoints every ``save_steps``; ``resume=True`` continues from the last complete ``checkpoint-*``;
no stdout log lines (TRL's logs stay in ``trainer.state.log_history``) and, in ``train_*``, no
progress bars. The preference reference is a frozen deep copy of the policy passed in, made when
the trainer is built (TRL would reload ``config._name_or_path`` from disk, which an in-memory model
does not have). On resume pass the same starting policy again: the checkpoint restores the trained
weights, the copy restores the reference.

Hyper-parameters: the config defaults are ours for the organism on CPU; the preference run starts from
R2L's organism lr 1e-4 (constant), 80 steps and TRL's β = 0.1, and notebook 04 chooses its learning rate
on validation prompts (:func:`craft.stages.baselines.tune_stage`). The SFT run is not tuned.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import datasets.utils.logging
import torch
import transformers.utils.logging
from datasets import Dataset
from transformers import PreTrainedModel, PreTrainedTokenizerBase, PrinterCallback, TrainerCallback
from trl import DPOConfig, DPOTrainer, SFTConfig, SFTTrainer

from craft.config import check_fields
from craft.runs import train
from craft.timing import timed

__all__ = ["DPOBaselineConfig", "SFTBaselineConfig", "assistant_message", "dpo_config", "dpo_trainer",
           "frozen_copy", "preference_dataset", "sft_config", "sft_dataset", "sft_trainer", "train_dpo",
           "train_sft"]

# ------------------------------------------------------------------------------------ data

def assistant_message(reasoning: str, answer: str) -> dict:
    """One assistant turn as the chat template reads it: the answer and the ``<think>`` part."""
    return {"role": "assistant", "content": answer, "reasoning_content": reasoning}


def sft_dataset(rows: Sequence[dict]) -> Dataset:
    """TRL conversational prompt-completion rows from dicts with ``prompt``, ``reasoning`` and
    ``answer`` (other keys are kept as columns)."""
    return Dataset.from_list([
        {"prompt": [{"role": "user", "content": r["prompt"]}],
         "completion": [assistant_message(r["reasoning"], r["answer"])],
         **{k: v for k, v in r.items() if k not in ("prompt", "reasoning", "answer")}} for r in rows])


def preference_dataset(rows: Sequence[dict]) -> Dataset:
    """TRL conversational preference rows from dicts with ``prompt``, ``chosen`` and ``rejected``
    (each a ``(reasoning, answer)`` pair; other keys are kept as columns)."""
    return Dataset.from_list([
        {"prompt": [{"role": "user", "content": r["prompt"]}],
         "chosen": [assistant_message(*r["chosen"])], "rejected": [assistant_message(*r["rejected"])],
         **{k: v for k, v in r.items() if k not in ("prompt", "chosen", "rejected")}} for r in rows])


# ---------------------------------------------------------------------------------- configs

@dataclass(frozen=True)
class SFTBaselineConfig:
    """SFT on safe traces. Defaults: the organism (ours, untuned)."""

    steps: int = 120                        # optimizer steps
    learning_rate: float = 1e-3
    per_device_train_batch_size: int = 24   # the organism's own SFT batch
    gradient_accumulation_steps: int = 1
    lr_scheduler_type: str = "cosine"
    warmup_steps: int = 10
    weight_decay: float = 0.01
    max_length: int = 192                   # tokens of prompt + completion (the organism's SFT value)
    save_steps: int = 50                    # checkpoint every this many steps
    logging_steps: int = 10
    seed: int = 0

    def __post_init__(self):
        check_fields(self)
        for name in ("steps", "per_device_train_batch_size", "gradient_accumulation_steps", "max_length",
                     "save_steps", "logging_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.learning_rate > 0 or self.warmup_steps < 0 or self.weight_decay < 0:
            raise ValueError(f"need learning_rate > 0, warmup_steps >= 0 and weight_decay >= 0, got "
                             f"{self.learning_rate}, {self.warmup_steps}, {self.weight_decay}")


@dataclass(frozen=True)
class DPOBaselineConfig(SFTBaselineConfig):
    """Preference optimisation on (preferred, rejected) trace pairs. Defaults: the organism (ours)."""

    steps: int = 80                         # as R2L on the organism
    learning_rate: float = 1e-4             # as R2L on the organism
    per_device_train_batch_size: int = 16   # pairs: 32 sequences a step, as R2L's 32 completions
    lr_scheduler_type: str = "constant"
    warmup_steps: int = 0
    weight_decay: float = 0.0
    max_length: int = 256                   # a pair's longer side: unsafe reasoning + compliance
    beta: float = 0.1                       # TRL's default β (with the ipo loss: τ, target margin 1/(2τ))
    loss_type: str = "sigmoid"              # sigmoid: the DPO loss; ipo: the IPO loss of Azar et al.

    def __post_init__(self):
        super().__post_init__()
        if self.beta <= 0:
            raise ValueError(f"beta must be > 0, got {self.beta}")
        if self.loss_type not in ("sigmoid", "ipo"):
            raise ValueError(f"loss_type must be sigmoid (DPO) or ipo (the IPO loss), got {self.loss_type!r}")


def _common(cfg: SFTBaselineConfig, output_dir: str, disable_tqdm: bool) -> dict:
    """TrainingArguments shared by both trainers (CPU-safe as :func:`craft.r2l.grpo_config`)."""
    cuda = torch.cuda.is_available()
    return dict(
        output_dir=output_dir, max_steps=cfg.steps, learning_rate=cfg.learning_rate,
        per_device_train_batch_size=cfg.per_device_train_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps, lr_scheduler_type=cfg.lr_scheduler_type,
        warmup_steps=cfg.warmup_steps, weight_decay=cfg.weight_decay, max_length=cfg.max_length,
        use_cpu=not cuda, bf16=cuda and torch.cuda.is_bf16_supported(), activation_checkpointing=False,
        train_sampling_strategy="random",   # i.i.d. batches, never group_by_length (module docstring)
        report_to="none", disable_tqdm=disable_tqdm, save_strategy="steps", save_steps=cfg.save_steps,
        logging_steps=cfg.logging_steps, seed=cfg.seed, ddp_find_unused_parameters=False)


def sft_config(cfg: SFTBaselineConfig, output_dir: str, *, disable_tqdm: bool = True, **overrides) -> SFTConfig:
    """TRL's ``SFTConfig``: completion-only loss, no packing; ``overrides`` go straight to it."""
    kwargs = dict(_common(cfg, output_dir, disable_tqdm), completion_only_loss=True, packing=False)
    return SFTConfig(**{**kwargs, **overrides})


def dpo_config(cfg: DPOBaselineConfig, output_dir: str, *, disable_tqdm: bool = True, **overrides) -> DPOConfig:
    """TRL's ``DPOConfig`` with ``cfg.loss_type`` and β = ``cfg.beta``; ``overrides`` go straight to it."""
    kwargs = dict(_common(cfg, output_dir, disable_tqdm), loss_type=[cfg.loss_type], beta=cfg.beta)
    return DPOConfig(**{**kwargs, **overrides})


# --------------------------------------------------------------------------------- trainers

def _quiet(trainer):
    trainer.remove_callback(PrinterCallback)   # with disable_tqdm it would print every log dict
    return trainer


@contextmanager
def _bars_off(off: bool) -> Iterator[None]:
    """When ``off``, no datasets ``map`` or transformers shard-writing progress bars inside the
    block (they write to stderr, which nbval compares); the previous settings are restored after."""
    libs = (datasets.utils.logging, transformers.utils.logging)
    was = [lib.is_progress_bar_enabled() for lib in libs]
    if off:
        for lib in libs:
            lib.disable_progress_bar()
    try:
        yield
    finally:
        for lib, on in zip(libs, was):
            (lib.enable_progress_bar if on else lib.disable_progress_bar)()


def sft_trainer(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, dataset: Dataset,
                cfg: SFTBaselineConfig, output_dir: str, *, callbacks: Sequence[TrainerCallback] = (),
                disable_tqdm: bool = True, **overrides) -> SFTTrainer:
    """An ``SFTTrainer`` on a dataset of :func:`sft_dataset` rows (trains ``model`` in place)."""
    with _bars_off(disable_tqdm):   # TRL tokenises the dataset here
        return _quiet(SFTTrainer(model=model, args=sft_config(cfg, output_dir, disable_tqdm=disable_tqdm, **overrides),
                                 train_dataset=dataset, processing_class=tokenizer, callbacks=list(callbacks)))


def frozen_copy(model: PreTrainedModel) -> PreTrainedModel:
    """A deep copy of ``model`` in eval mode with ``requires_grad=False``: the IPO reference."""
    ref = copy.deepcopy(model).eval()
    for p in ref.parameters():
        p.requires_grad_(False)
    return ref


def dpo_trainer(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, dataset: Dataset,
                cfg: DPOBaselineConfig, output_dir: str, *, ref_model: PreTrainedModel | None = None,
                callbacks: Sequence[TrainerCallback] = (), disable_tqdm: bool = True, **overrides) -> DPOTrainer:
    """A ``DPOTrainer`` with ``cfg.loss_type`` on a :func:`preference_dataset`. The reference is
    ``ref_model``, or a :func:`frozen_copy` of ``model`` as it is now."""
    ref = frozen_copy(model) if ref_model is None else ref_model
    with _bars_off(disable_tqdm):
        return _quiet(DPOTrainer(model=model, ref_model=ref,
                                 args=dpo_config(cfg, output_dir, disable_tqdm=disable_tqdm, **overrides),
                                 train_dataset=dataset, processing_class=tokenizer, callbacks=list(callbacks)))


@timed("baseline training")
def train_sft(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, dataset: Dataset,
                   cfg: SFTBaselineConfig, output_dir: str, *, resume: bool = True,
                   callbacks: Sequence[TrainerCallback] = (), disable_tqdm: bool = True,
                   **overrides) -> PreTrainedModel:
    """Baseline (a): SFT on curated safe traces for ``cfg.steps`` steps, from the last checkpoint in
    ``output_dir`` when ``resume``. Returns the trained model (``model`` itself, trained in place)."""
    trainer = sft_trainer(model, tokenizer, dataset, cfg, output_dir, callbacks=callbacks,
                          disable_tqdm=disable_tqdm, **overrides)
    with _bars_off(disable_tqdm):
        train(trainer, resume=resume)
    return trainer.model


@timed("baseline training")
def train_dpo(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, dataset: Dataset,
              cfg: DPOBaselineConfig, output_dir: str, *, resume: bool = True,
              callbacks: Sequence[TrainerCallback] = (), disable_tqdm: bool = True,
              **overrides) -> PreTrainedModel:
    """Baseline (b): preference optimisation on trace pairs (``cfg.loss_type``), reference = a frozen
    copy of ``model`` at this call, from
    the last checkpoint in ``output_dir`` when ``resume``. Returns the trained model (in place)."""
    trainer = dpo_trainer(model, tokenizer, dataset, cfg, output_dir, callbacks=callbacks,
                          disable_tqdm=disable_tqdm, **overrides)
    with _bars_off(disable_tqdm):
        train(trainer, resume=resume)
    return trainer.model
