"""R2L: GRPO on the policy with the latent, text and consistency rewards (paper §4.2).

We configure TRL's ``GRPOTrainer``; we never fork it. :func:`build_trainer` wires the rewards of
:mod:`craft.r2l.rewards` (one variant: CRAFT, output-only or an ablation), a ``GRPOConfig`` and optional
LoRA, then hands the trainer to the latent scorer. :class:`PeriodicEval` measures held-out metrics
during training (:func:`craft.runs.train` runs it, resuming from the last *complete* checkpoint).

:class:`R2LConfig` holds what ``GRPOConfig`` lacks (variant, reward weights, α/β/γ, where the latent
terms apply, LoRA, seed) and passes ``grpo`` through to ``GRPOConfig`` unchanged, so every TRL
option (``max_steps``, ``learning_rate``, ``beta``, ``num_generations``, ``temperature``,
``use_vllm``, ``loss_type``, …) is available under its own name; the values of a run are in the
params files (``params/organism.yaml``; ``params/paper-*.yaml`` start from the released code's
GRPO values: lr 1e-6, KL 0.01, group 8, T 0.6, top-p 0.95, clip 0.2/0.3).

Deviations: ``harmful_only`` (see :mod:`craft.r2l.rewards`, deviation 4); TRL's default loss
(``loss_type="dapo"``, token-level normalisation) unless ``grpo`` says otherwise; fp32 on CPU;
with ``beta > 0`` an in-memory model is snapshotted to disk so that TRL can build its KL reference.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import tempfile
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from datasets import Dataset
from transformers import PreTrainedModel, PreTrainedTokenizerBase, TrainerCallback
from transformers.trainer_utils import SaveStrategy, SchedulerType
from transformers.training_args import OptimizerNames
from trl import GRPOConfig, GRPOTrainer

from craft.config import ConfigError, check_fields, check_value, coerce, rule
from craft.io import atomic_write, load_json
from craft.judges import Judge
from craft.latents import LatentSpec
from craft.lclr import LCLRHeads
from craft.models import plain_text
from craft.r2l.rewards import VARIANTS, build_rewards, variant_weights
from craft.r2l.rollout import CapturingRollout
from craft.r2l.scorers import LatentScorer, TextJudge, random_heads
from craft.runs import is_main_process
from craft.types import Prompt

__all__ = ["GRPO_RESERVED", "PeriodicEval", "R2LConfig", "build_trainer", "grpo_config", "latent_scorer",
           "lora_config", "make_prompt_dataset", "rollout_for", "text_judge", "text_judges"]

# GRPOConfig keys that craft sets itself (from the variant, the device, the run), never from ``grpo``.
GRPO_RESERVED = ("output_dir", "reward_weights", "use_cpu", "bf16", "fp16", "report_to", "disable_tqdm", "seed",
                 "remove_unused_columns", "activation_checkpointing", "gradient_checkpointing")
_GRPO_FIELDS = {f.name: f.type for f in dataclasses.fields(GRPOConfig)}
# Ranges checked when a config is loaded (GRPOConfig itself would accept most of these silently).
_GRPO_RULES = {"max_steps": rule(ge=1), "learning_rate": rule(gt=0), "beta": rule(ge=0),
               "num_generations": rule(ge=2), "per_device_train_batch_size": rule(ge=1),
               "gradient_accumulation_steps": rule(ge=1), "temperature": rule(gt=0), "top_p": rule(gt=0, le=1),
               "max_completion_length": rule(ge=1), "epsilon": rule(ge=0), "epsilon_high": rule(ge=0),
               "save_steps": rule(gt=0), "logging_steps": rule(gt=0), "vllm_gpu_memory_utilization": rule(gt=0, le=1),
               "vllm_mode": rule(choices=("colocate", "server")),
               # TRL 1.16 reads these only at the first training step (a typo would fail there, after the set-up):
               # the values its docs and code accept, checked at load
               "loss_type": rule(choices=("grpo", "dr_grpo", "dapo", "bnpo", "cispo", "sapo", "luspo", "vespo")),
               "importance_sampling_level": rule(choices=("token", "sequence")),
               "scale_rewards": rule(choices=("group", "batch", "none")),
               "multi_objective_aggregation": rule(choices=("sum_then_normalize", "normalize_then_sum")),
               "lr_scheduler_type": rule(choices=tuple(s.value for s in SchedulerType)),
               "optim": rule(choices=tuple(o.value for o in OptimizerNames)),
               "save_strategy": rule(choices=tuple(s.value for s in SaveStrategy))}
_SIMPLE = (int, float, str, bool, int | None, float | None, str | None)


def _check_grpo(grpo: dict) -> dict:
    """``grpo`` with each key a GRPOConfig field, not reserved, of its field's type and in range."""
    for key, value in grpo.items():
        if key not in _GRPO_FIELDS:
            raise ConfigError(f"grpo.{key} is not a field of trl.GRPOConfig")
        if key in GRPO_RESERVED:
            raise ConfigError(f"grpo.{key} is set by craft (device, variant, run directory), not by the config")
        if _GRPO_FIELDS[key] in _SIMPLE:
            grpo[key] = coerce(f"grpo.{key}", value, _GRPO_FIELDS[key])
        if key in _GRPO_RULES:
            check_value(f"grpo.{key}", grpo[key], _GRPO_RULES[key]["rule"])
    if "max_steps" not in grpo:
        raise ConfigError("grpo.max_steps is required (the number of GRPO optimizer steps)")
    return grpo


@dataclass(frozen=True)
class R2LConfig:
    """One R2L run: what GRPOConfig lacks, plus ``grpo`` (GRPOConfig fields, passed through)."""

    variant: str = "craft"   # one of craft.r2l.rewards.VARIANTS
    seed: int = 0                           # TRL's seed (sampling, shuffling); also the no_lclr heads' seed
    w_lat: float = field(default=0.5, metadata=rule(ge=0))    # reward weights of R_ls, R_txt, R_cons
    w_txt: float = field(default=0.4, metadata=rule(ge=0))
    w_cons: float = field(default=0.2, metadata=rule(ge=0))
    alpha: float = field(default=1.0, metadata=rule(ge=0))    # R_ls = α·cos_safe − β·cos_unsafe + γ·cos_rethink
    beta_ls: float = field(default=1.0, metadata=rule(ge=0))
    gamma: float = field(default=0.5, metadata=rule(ge=0))
    harmful_only: bool = True               # R_ls, R_cons on harmful prompts only (ours; the paper: False)
    task_reward: float = field(default=0.0, metadata=rule(ge=0))   # arithmetic TaskReward weight; 0 = off (ours)
    capture_latents: bool = True           # latent reward from the states generate computed (craft.r2l.rollout)
    use_lora: bool = False
    lora_r: int = field(default=16, metadata=rule(ge=1))
    lora_alpha: int = field(default=32, metadata=rule(ge=1))
    grpo: dict = field(default_factory=lambda: {"max_steps": 40})  # trl.GRPOConfig fields

    def __post_init__(self):
        if self.variant not in VARIANTS:
            raise ConfigError(f"variant: {self.variant!r} is not one of {list(VARIANTS)}")
        check_fields(self)
        _check_grpo(self.grpo)
        weights = variant_weights(self.variant, self.weights, self.task_reward)
        if not any(weights):
            raise ConfigError(f"variant {self.variant!r}: every reward weight it uses is 0 ({weights}); nothing would "
                              "be learned (set w_lat, w_txt, w_cons or task_reward)")
        try:      # what TRL's own GRPOConfig refuses (e.g. a batch that does not hold whole groups), now, not at train
            grpo_config(self, os.path.join(tempfile.gettempdir(), "craft-grpo-check"), weights)
        except (ValueError, TypeError) as e:
            raise ConfigError(f"grpo: trl.GRPOConfig refuses these values: {e}") from None

    @property
    def steps(self) -> int:
        return int(self.grpo["max_steps"])

    @property
    def weights(self) -> tuple[float, float, float]:
        return (self.w_lat, self.w_txt, self.w_cons)

    @property
    def alpha_beta_gamma(self) -> tuple[float, float, float]:
        return (self.alpha, self.beta_ls, self.gamma)


def grpo_config(cfg: R2LConfig, output_dir: str, reward_weights: Sequence[float], *, disable_tqdm: bool = True,
                **overrides) -> GRPOConfig:
    """TRL's ``GRPOConfig``: ``cfg.grpo`` plus what craft sets itself (``reward_weights``: those of the
    reward list :func:`craft.r2l.rewards.build_rewards` made), then ``overrides`` (e.g.
    ``save_total_limit``). CPU (no CUDA): ``use_cpu``, fp32 (TRL defaults to bf16 even on CPU). No
    activation checkpointing (TRL defaults it on; slower for small models), switched off under
    transformers 5's name, which also keeps the deprecation warning of ``gradient_checkpointing``
    out of notebooks; set it in ``overrides`` for large models."""
    cuda = torch.cuda.is_available()
    fixed = dict(
        output_dir=output_dir, seed=cfg.seed,
        reward_weights=list(reward_weights),
        use_cpu=not cuda, bf16=cuda and torch.cuda.is_bf16_supported(), activation_checkpointing=False,
        report_to="none", disable_tqdm=disable_tqdm, remove_unused_columns=False)
    defaults = dict(save_strategy="steps", ddp_find_unused_parameters=False)
    return GRPOConfig(**{**defaults, **cfg.grpo, **fixed, **overrides})


def lora_config(cfg: R2LConfig):
    """peft LoRA on every linear layer of the decoder (r, alpha from ``cfg``), or None."""
    if not cfg.use_lora:
        return None
    from peft import LoraConfig

    return LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=0.0,
                      target_modules="all-linear", task_type="CAUSAL_LM")


def make_prompt_dataset(prompts: Sequence[Prompt], tokenizer: PreTrainedTokenizerBase | None = None) -> Dataset:
    """Conversational ``prompt`` plus the columns the rewards read (TRL passes each one to every
    reward as a kwarg, one value per completion): ``harmful``, ``kind``, ``family``, ``regime``,
    ``target``. With the policy's ``tokenizer`` the prompt text is :func:`craft.models.plain_text`: special
    tokens it spells out are escaped, so TRL's chat template never reads them as turn markers."""
    text = (lambda s: plain_text(tokenizer, s)) if tokenizer is not None else (lambda s: s)
    return Dataset.from_list([
        {"prompt": [{"role": "user", "content": text(p.text)}], "harmful": p.kind == "harmful",
         "kind": p.kind, "family": p.family, "regime": p.regime, "target": p.target}
        for p in prompts])


def _ensure_reference_source(model: PreTrainedModel, cfg: R2LConfig, output_dir: str) -> None:
    """TRL (``beta > 0``, no LoRA) builds the KL reference with ``from_pretrained(
    model.config._name_or_path)``. A model that exists only in memory (built from a config) has
    no such path: snapshot it to ``output_dir/reference_model`` and point its config there.
    A model loaded from disk keeps its path, so its reference is the weights ON DISK."""
    if cfg.grpo.get("beta", 0.0) == 0 or cfg.use_lora or getattr(model.config, "_name_or_path", ""):
        return
    path = os.path.join(output_dir, "reference_model")
    model.save_pretrained(path)
    model.config._name_or_path = path


def rollout_for(cfg: R2LConfig, scorer: LatentScorer | None, spec: LatentSpec | None,
                tokenizer: PreTrainedTokenizerBase) -> CapturingRollout | None:
    """The rollout function of a run: :class:`craft.r2l.rollout.CapturingRollout` when the reward has
    latent terms, ``cfg.capture_latents`` is on and TRL generates with the policy itself; None (TRL's
    own rollouts; the reward recomputes the latents) for output-only rewards and for vLLM."""
    if scorer is None or not cfg.capture_latents or cfg.grpo.get("use_vllm", False):
        return None
    return CapturingRollout(spec, tokenizer)


def build_trainer(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, train_dataset: Dataset,
                  heads: LCLRHeads | None, spec: LatentSpec | None, judge: Judge, cfg: R2LConfig,
                  output_dir: str, *, callbacks: Sequence[TrainerCallback] = (),
                  disable_tqdm: bool = True, reasoning_judge: Judge | None = None, **overrides) -> GRPOTrainer:
    """A ``GRPOTrainer`` for ``cfg.variant``, its latent scorer already holding the trainer.

    ``no_lclr`` replaces ``heads`` by :func:`craft.r2l.scorers.random_heads` (seed ``cfg.seed``).
    ``heads``/``spec`` may be None for the variants without latent terms (``output_only``,
    ``reasoning_judge``, whose R_rtxt reads the reasoning through ``reasoning_judge``). ``overrides`` go
    to :func:`grpo_config`.
    With latent terms and ``cfg.capture_latents`` the rollouts are :class:`craft.r2l.rollout.CapturingRollout`
    (the policy's own ``generate``, its latents kept for the reward); with ``use_vllm`` they are
    TRL's vLLM rollouts and the reward recomputes the latents with a truncated forward.
    With ``beta > 0`` and no LoRA the KL reference is ``model``'s weights at this call (see
    :func:`_ensure_reference_source`); with LoRA it is the adapter-disabled model.
    """
    if cfg.variant == "no_lclr" and heads is not None:
        heads = random_heads(heads, cfg.seed)
    _ensure_reference_source(model, cfg, output_dir)
    funcs, weights, scorer = build_rewards(cfg.variant, heads, spec, tokenizer, judge, cfg.weights,
                                     cfg.alpha_beta_gamma, cfg.harmful_only, cfg.task_reward, reasoning_judge)
    with warnings.catch_warnings():   # TRL marks rollout_func experimental; ours is tested against its own path
        warnings.filterwarnings("ignore", message="You are using 'rollout_func'", category=UserWarning)
        # with LoRA, TRL 1.16 calls this deprecated transformers name while it wraps the model
        warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
        trainer = GRPOTrainer(model=model, reward_funcs=funcs,
                              args=grpo_config(cfg, output_dir, weights, disable_tqdm=disable_tqdm, **overrides),
                              train_dataset=train_dataset, processing_class=tokenizer,
                              callbacks=list(callbacks), peft_config=lora_config(cfg),
                              rollout_func=rollout_for(cfg, scorer, spec, tokenizer))
    if scorer is not None:
        scorer.trainer = trainer
    return trainer


def text_judges(trainer: GRPOTrainer) -> list[TextJudge]:
    """The :class:`craft.r2l.scorers.TextJudge` s of ``trainer``'s rewards, each once: the one its text and
    consistency rewards share (it judges the answer) first, then a reasoning judge's."""
    found = {id(f.text): f.text for f in trainer.reward_funcs if isinstance(getattr(f, "text", None), TextJudge)}
    return sorted(found.values(), key=lambda t: not t.judge_answer)


def text_judge(trainer: GRPOTrainer) -> TextJudge | None:
    """The :class:`craft.r2l.scorers.TextJudge` shared by ``trainer``'s text and consistency rewards."""
    return next((t for t in text_judges(trainer) if t.judge_answer), None)


def latent_scorer(trainer: GRPOTrainer) -> LatentScorer | None:
    """The :class:`craft.r2l.scorers.LatentScorer` shared by ``trainer``'s rewards (None for output-only)."""
    for f in trainer.reward_funcs:
        if isinstance(getattr(f, "scorer", None), LatentScorer):
            return f.scorer
    return None


class PeriodicEval(TrainerCallback):
    """Call ``fn(step, model) -> dict`` every ``every`` optimizer steps, at the start of training
    (step 0, or the resumed step) and, with ``at_end``, at the last step; ``results`` keeps
    ``{"step": step, **fn(...)}`` in order (one call per step at most).

    The model's train/eval mode and the torch, CUDA and Python RNG states are restored after
    each call, so evaluating (e.g. seeded sampling) does not change the training run. With
    ``path``, the results are written there (JSON) after every call and read back on
    construction, so a resumed run keeps the evaluations made before its checkpoint (later ones
    are dropped when training begins: they will be made again).
    """

    def __init__(self, every: int, fn: Callable[[int, torch.nn.Module], dict], at_end: bool = True,
                 path: str | os.PathLike | None = None):
        if every < 1:
            raise ValueError(f"PeriodicEval.every must be >= 1, got {every}")
        self.every, self.fn, self.at_end, self.path = every, fn, at_end, path
        self.results: list[dict] = []
        if path is not None and os.path.exists(path):
            self.results = load_json(path)

    def _save(self) -> None:
        if self.path is not None and is_main_process():
            atomic_write(self.path, json.dumps(self.results, indent=1))

    def _run(self, step: int, model) -> None:
        if model is None or (self.results and self.results[-1]["step"] == step):
            return
        was_training, py_state = model.training, random.getstate()
        devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
        try:
            with torch.random.fork_rng(devices=devices):
                self.results.append({"step": step, **self.fn(step, model)})
            self._save()
        finally:
            random.setstate(py_state)
            model.train(was_training)

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.results = [r for r in self.results if r["step"] <= state.global_step]
        self._run(state.global_step, model)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step % self.every == 0:
            self._run(state.global_step, model)

    def on_train_end(self, args, state, control, model=None, **kwargs):
        if self.at_end:
            self._run(state.global_step, model)

