"""Safety-training baselines of paper §6: SFT on safe reasoning traces and IPO on trace pairs.

The paper compares CRAFT with (a) SFT on safe reasoning traces (SafeChain, RealSafe-R1, STAR-1),
(b) preference optimisation (IPO) and (c) output-only GRPO, which is :mod:`craft.r2l` with
``variant="output_only"``. This module builds (a) and (b) for the organism with TRL's own
``SFTTrainer`` and ``DPOTrainer(loss_type="ipo")``; we configure them, never fork them.

Data (train split only, seeded; held-out families never appear):

- :func:`safe_sft_examples`: the base organism's SFT prompt mixture (:class:`MixtureConfig`:
  direct 0.12, wrapped — jailbroken and dressed-up families — 0.35, arithmetic 0.40,
  benign-but-scary 0.13), but every harmful prompt gets SAFE reasoning + refusal (a fraction
  ``rethink`` of them rethink reasoning + refusal instead; default 0, as in STAR-1-style data
  whose traces are safe throughout). Benign prompts keep their helpful answers so that capability
  and helpfulness are rehearsed, as STAR-1 and SafeChain mix in benign data.
- :func:`preference_pairs`: harmful train prompts drawn uniformly (the prompt distribution of
  :func:`craft.organism.corpus.r2l_prompts`); chosen = safe reasoning + refusal; rejected = what
  the base organism does wrong on that prompt's regime, :data:`corpus.BEHAVIOUR` restricted to
  its unsafe-reasoning options and renormalised (direct: unsafe + refusal / unsafe + compliance
  1:1; jailbroken: unsafe + refusal 0.21, unsafe + compliance 0.79; dressed: dressed-up unsafe +
  refusal). Most rejected completions therefore END IN A REFUSAL (SSA): the preference is at the
  level of the trace, which is what separates this baseline from an output-level one.

Format: TRL conversational datasets. ``prompt`` is ``[{"role": "user", ...}]``; a completion is
one assistant message ``{"role": "assistant", "content": answer, "reasoning_content": reasoning}``,
which the organism's chat template renders as ``reasoning\\n</think>\\n\\nanswer<|im_end|>\\n``
after the generation prompt ``...<|im_start|>assistant\\n<think>\\n`` — exactly what the model
generates (:func:`craft.organism.tokenizer.format_completion`). TRL tokenises prompt and
prompt + completion through the template and trains on the tokens after their common prefix; for
the organism the prompt's tokens are a strict prefix, so the trained tokens are
``tokenize(format_completion(reasoning, answer))``. The one difference from the organism's own
SFT (:mod:`craft.organism.sft`): the template's trailing newline after ``<|im_end|>`` is trained
too (generation stops at ``<|im_end|>``, so it is never sampled). Templates of real models must
render ``reasoning_content`` (Qwen3's does).

Training (CPU-safe as :func:`craft.r2l.grpo_config`: ``use_cpu``, fp32, no activation
checkpointing, ``report_to="none"``): completion-only loss; i.i.d. random batches
(``train_sampling_strategy="random"``, never ``group_by_length``: length-grouped batches are
homogeneous in task and broke the organism's arithmetic, see :mod:`craft.organism.sft`);
checkpoints every ``save_steps``; ``resume=True`` continues from the last ``checkpoint-*``;
no stdout log lines (TRL's logs stay in ``trainer.state.log_history``) and, in ``train_*``, no
progress bars (a builder's trainer run by hand still shows transformers' checkpoint-writing bar).
The IPO reference is a frozen deep copy of the policy passed in, made when the trainer is built
(TRL would reload ``config._name_or_path`` from disk, which an in-memory organism does not
have). On resume pass the same starting policy again: the checkpoint restores the trained
weights, the copy restores the reference.

Hyper-parameters: :data:`SFT_ORGANISM` / :data:`DPO_ORGANISM` (= the config defaults) are ours
for the 1 M-parameter organism on CPU, untuned; DPO reuses R2L's organism lr 1e-4 (constant),
80 steps and TRL's β = 0.1 (IPO's τ). :data:`SFT_PAPER` / :data:`DPO_PAPER` are starting points for
4–8 B models and are ours too: the CRAFT paper does not state its baselines' training settings,
and we did not have STAR-1's or SafeChain's training scripts to copy theirs.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import datasets.utils.logging
import torch
import transformers.utils.logging
from datasets import Dataset
from transformers import PreTrainedModel, PreTrainedTokenizerBase, PrinterCallback, TrainerCallback
from trl import DPOConfig, DPOTrainer, SFTConfig, SFTTrainer

from craft.organism.corpus import BEHAVIOUR, Example, MixtureConfig, make_example, mixture_prompts
from craft.organism.world import World
from craft.r2l import train as _train

__all__ = ["DPO_ORGANISM", "DPO_PAPER", "DPOBaselineConfig", "REJECTED_BEHAVIOUR", "SFT_ORGANISM",
           "SFT_PAPER", "SFTBaselineConfig", "assistant_message", "dpo_config", "dpo_trainer", "frozen_copy",
           "preference_pairs", "safe_sft_examples", "sft_config", "sft_dataset", "sft_trainer",
           "train_dpo", "train_sft_safe"]

# regime -> the base organism's unsafe-reasoning behaviours there, weights as in BEHAVIOUR
# (rng.choices renormalises them): the rejected side of a preference pair.
REJECTED_BEHAVIOUR: dict[str, tuple[tuple[tuple[str, str], float], ...]] = {
    regime: tuple((option, p) for option, p in options if option[0] in ("unsafe", "dressed"))
    for regime, options in BEHAVIOUR.items()}


# ------------------------------------------------------------------------------------ data

def assistant_message(reasoning: str, answer: str) -> dict:
    """One assistant turn as the chat template reads it: the answer and the ``<think>`` part."""
    return {"role": "assistant", "content": answer, "reasoning_content": reasoning}


def sft_dataset(examples: Sequence[Example]) -> Dataset:
    """TRL conversational prompt-completion rows, plus ``family``/``trace``/``response``."""
    return Dataset.from_list([
        {"prompt": [{"role": "user", "content": e.prompt}],
         "completion": [assistant_message(e.reasoning, e.answer)],
         "family": e.family, "trace": e.trace, "response": e.response} for e in examples])


def safe_sft_examples(world: World, n: int, seed: int, mix: MixtureConfig = MixtureConfig(),
                      rethink: float = 0.0) -> Dataset:
    """``n`` SFT conversations over the train split (module docstring): the base organism's
    prompt mixture ``mix``; harmful prompts get safe reasoning + refusal, or with probability
    ``rethink`` rethink reasoning + refusal; arithmetic and benign prompts their helpful answer."""
    if not 0.0 <= rethink <= 1.0:
        raise ValueError(f"safe_sft_examples: rethink must be in [0, 1], got {rethink}")
    rng = random.Random(seed)
    out = []
    for prompt in mixture_prompts(world, n, rng, mix):
        if prompt.kind != "harmful":
            out.append(make_example(world, prompt, "helpful", "helpful", rng))
        else:
            out.append(make_example(world, prompt, "rethink" if rng.random() < rethink else "safe", "refuse", rng))
    return sft_dataset(out)


def preference_pairs(world: World, n: int, seed: int) -> Dataset:
    """``n`` IPO pairs on harmful train prompts (module docstring): ``prompt``, ``chosen`` (safe
    reasoning + refusal), ``rejected`` (the regime's unsafe behaviour, mostly SSA), and
    ``family``, ``regime``, ``rejected_trace``, ``rejected_response``."""
    rng = random.Random(seed)
    prompts = [p for p in world.select(split="train", kind="harmful") if p.regime in REJECTED_BEHAVIOUR]
    rows = []
    for _ in range(n):
        p = rng.choice(prompts)
        safe = make_example(world, p, "safe", "refuse", rng)
        options, weights = zip(*REJECTED_BEHAVIOUR[p.regime])
        bad = make_example(world, p, *rng.choices(options, weights)[0], rng)
        rows.append({"prompt": [{"role": "user", "content": p.text}],
                     "chosen": [assistant_message(safe.reasoning, safe.answer)],
                     "rejected": [assistant_message(bad.reasoning, bad.answer)],
                     "family": p.family, "regime": p.regime,
                     "rejected_trace": bad.trace, "rejected_response": bad.response})
    return Dataset.from_list(rows)


# ---------------------------------------------------------------------------------- configs

@dataclass(frozen=True)
class SFTBaselineConfig:
    """SFT on safe traces. Defaults: the organism (ours, untuned); :data:`SFT_PAPER` for real models."""

    steps: int = 200                        # optimizer steps
    learning_rate: float = 1e-3
    per_device_train_batch_size: int = 24   # the organism's own SFT batch
    gradient_accumulation_steps: int = 1
    lr_scheduler_type: str = "cosine"
    warmup_steps: int = 10
    weight_decay: float = 0.01
    max_length: int = 160                   # tokens of prompt + completion (the organism's SFT value)
    save_steps: int = 50                    # checkpoint every this many steps
    logging_steps: int = 10
    seed: int = 0

    def __post_init__(self):
        for name in ("steps", "per_device_train_batch_size", "gradient_accumulation_steps", "max_length",
                     "save_steps", "logging_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{type(self).__name__}.{name} must be >= 1, got {getattr(self, name)}")


@dataclass(frozen=True)
class DPOBaselineConfig(SFTBaselineConfig):
    """IPO on (safe, unsafe) trace pairs. Defaults: the organism (ours); :data:`DPO_PAPER` for real models."""

    steps: int = 80                         # as R2L on the organism
    learning_rate: float = 1e-4             # as R2L on the organism
    per_device_train_batch_size: int = 16   # pairs: 32 sequences a step, as R2L's 32 completions
    lr_scheduler_type: str = "constant"
    warmup_steps: int = 0
    weight_decay: float = 0.0
    max_length: int = 256                   # a pair's longer side: unsafe reasoning + compliance
    beta: float = 0.1                       # IPO's τ (TRL's default β); target margin 1/(2τ)

    def __post_init__(self):
        super().__post_init__()
        if self.beta <= 0:
            raise ValueError(f"DPOBaselineConfig.beta must be > 0 (IPO divides by it), got {self.beta}")


SFT_ORGANISM = SFTBaselineConfig()
DPO_ORGANISM = DPOBaselineConfig()
# Ours (not stated by the paper): common full-fine-tuning values for 4–8 B reasoning models.
SFT_PAPER = SFTBaselineConfig(steps=40, learning_rate=1e-5, per_device_train_batch_size=8,
                              gradient_accumulation_steps=16, warmup_steps=4, weight_decay=0.0,
                              max_length=8192, save_steps=10, logging_steps=1)
DPO_PAPER = DPOBaselineConfig(steps=100, learning_rate=5e-7, per_device_train_batch_size=4,
                              gradient_accumulation_steps=16, max_length=8192, save_steps=20, logging_steps=1)


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
    """TRL's ``DPOConfig`` with the IPO loss and β = ``cfg.beta``; ``overrides`` go straight to it."""
    kwargs = dict(_common(cfg, output_dir, disable_tqdm), loss_type=["ipo"], beta=cfg.beta)
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
    """An ``SFTTrainer`` on a :func:`safe_sft_examples` dataset (trains ``model`` in place)."""
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
    """A ``DPOTrainer`` with the IPO loss on a :func:`preference_pairs` dataset. The reference is
    ``ref_model``, or a :func:`frozen_copy` of ``model`` as it is now."""
    ref = frozen_copy(model) if ref_model is None else ref_model
    with _bars_off(disable_tqdm):
        return _quiet(DPOTrainer(model=model, ref_model=ref,
                                 args=dpo_config(cfg, output_dir, disable_tqdm=disable_tqdm, **overrides),
                                 train_dataset=dataset, processing_class=tokenizer, callbacks=list(callbacks)))


def train_sft_safe(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, dataset: Dataset,
                   cfg: SFTBaselineConfig, output_dir: str, *, resume: bool = True,
                   callbacks: Sequence[TrainerCallback] = (), disable_tqdm: bool = True,
                   **overrides) -> PreTrainedModel:
    """Baseline (a): SFT on safe traces for ``cfg.steps`` steps, from the last checkpoint in
    ``output_dir`` when ``resume``. Returns the trained model (``model`` itself, trained in place)."""
    trainer = sft_trainer(model, tokenizer, dataset, cfg, output_dir, callbacks=callbacks,
                          disable_tqdm=disable_tqdm, **overrides)
    with _bars_off(disable_tqdm):
        _train(trainer, resume=resume)
    return trainer.model


def train_dpo(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, dataset: Dataset,
              cfg: DPOBaselineConfig, output_dir: str, *, resume: bool = True,
              callbacks: Sequence[TrainerCallback] = (), disable_tqdm: bool = True,
              **overrides) -> PreTrainedModel:
    """Baseline (b): IPO on trace pairs, reference = a frozen copy of ``model`` at this call, from
    the last checkpoint in ``output_dir`` when ``resume``. Returns the trained model (in place)."""
    trainer = dpo_trainer(model, tokenizer, dataset, cfg, output_dir, callbacks=callbacks,
                          disable_tqdm=disable_tqdm, **overrides)
    with _bars_off(disable_tqdm):
        _train(trainer, resume=resume)
    return trainer.model
