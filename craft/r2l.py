"""R2L: GRPO on the policy with the latent, text and consistency rewards (paper §4.2; DESIGN §4, §5).

We configure TRL's ``GRPOTrainer``; we never fork it. :func:`build_trainer` wires the rewards of
:mod:`craft.rewards` (one variant: CRAFT, output-only or an ablation), a CPU-safe ``GRPOConfig``
and optional LoRA, then hands the trainer to the latent scorer. :func:`train` resumes from the
last checkpoint; :class:`PeriodicEval` measures held-out metrics during training.

Two sets of hyper-parameters:

- :data:`PAPER_DEFAULTS`: the released code's GRPO values (lr 1e-6, KL 0.01, group 8, T 0.6,
  top-p 0.95, clip 0.2/0.3, weights 0.5/0.4/0.2, α/β/γ 1/1/0.5). The step count, batch, maximum
  completion length and LoRA rank are not in what we have of the paper: ours (marked below).
  The paper applies every reward term to every prompt, so ``harmful_only=False`` there.
- :data:`ORGANISM_DEFAULTS` (= ``R2LConfig()``): for the 0.9 M-parameter organism on CPU. A
  prototype (notes/organism-prototype.md) moved the organism's safety metrics within 20–25 steps
  at lr 1e-4–2e-4 and let over-refusal drift to 1.0 at 2e-4 while 1e-4 for 80 steps kept it at
  0.02, hence lr 1e-4, 80 steps, KL 0.01 (the prototype recommended KL against that drift),
  4 prompts × 8 generations per step (batch 32), T 1.0 and 128 new tokens (the prototype's
  rollouts; evaluation samples with its own settings), top-p 1.0 (no nucleus cut), the paper's
  clip and weights, R_ls/R_cons on harmful prompts only, 20-step checkpoints.

Deviations: ``harmful_only`` (see :mod:`craft.rewards`, deviation 4); a constant learning rate
(the prototype's; TRL's default linear decay would tie the rate to ``steps`` and change it on a
resumed, extended run); TRL's default loss (``loss_type="dapo"``, token-level normalisation)
with the paper's asymmetric clip (``epsilon``/``epsilon_high``); fp32 on CPU; with ``beta > 0``
an in-memory model is snapshotted to disk so that TRL can build its KL reference.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from datasets import Dataset
from transformers import PreTrainedModel, PreTrainedTokenizerBase, TrainerCallback
from transformers.trainer_utils import get_last_checkpoint
from trl import GRPOConfig, GRPOTrainer

from craft.judges import Judge
from craft.latents import LatentSpec
from craft.lclr import LCLRHeads
from craft.organism.world import Prompt
from craft.rewards import VARIANTS, LatentScorer, build_rewards, random_heads, variant_weights

__all__ = ["ORGANISM_DEFAULTS", "PAPER_DEFAULTS", "PeriodicEval", "R2LConfig", "build_trainer",
           "grpo_config", "latent_scorer", "lora_config", "make_prompt_dataset", "train"]


@dataclass(frozen=True)
class R2LConfig:
    """One R2L run. Defaults: the organism (module docstring); :data:`PAPER_DEFAULTS` for real models."""

    variant: str = "craft"                  # craft | output_only | no_cons | no_ls | no_txt | no_lclr
    steps: int = 80                         # optimizer steps (GRPOConfig.max_steps)
    learning_rate: float = 1e-4
    beta: float = 0.01                      # KL coefficient to the reference policy
    num_generations: int = 8                # group size G
    per_device_train_batch_size: int = 32   # completions per device and step (prompts × G)
    temperature: float = 1.0                # rollout sampling
    top_p: float = 1.0
    max_completion_length: int = 128
    epsilon: float = 0.2                    # clip, lower side
    epsilon_high: float = 0.3               # clip, upper side
    w_lat: float = 0.5                      # reward weights of R_ls, R_txt, R_cons
    w_txt: float = 0.4
    w_cons: float = 0.2
    alpha: float = 1.0                      # R_ls = α·cos_safe − β·cos_unsafe + γ·cos_rethink
    beta_ls: float = 1.0
    gamma: float = 0.5
    harmful_only: bool = True               # R_ls, R_cons on harmful prompts only (ours)
    task_reward: float = 0.0                # weight of the arithmetic TaskReward; 0 = off (ours)
    use_lora: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    lr_scheduler_type: str = "constant"
    save_steps: int = 20                    # checkpoint every this many steps
    logging_steps: int = 5
    seed: int = 0
    use_vllm: bool = False                  # vLLM rollouts (GPU runs only; TRL's use_vllm)
    vllm_mode: str = "colocate"             # colocate (in the trainer's processes) | server (trl vllm-serve)
    vllm_server_base_url: str = ""          # server mode: e.g. http://localhost:8000 (empty: TRL's default host/port)
    vllm_gpu_memory_utilization: float = 0.3  # colocate mode: share of each GPU vLLM may take

    def __post_init__(self):
        if self.variant not in VARIANTS:
            raise ValueError(f"R2LConfig.variant: {self.variant!r} is not one of {list(VARIANTS)}")
        for name in ("steps", "per_device_train_batch_size", "max_completion_length", "save_steps",
                     "logging_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"R2LConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.num_generations < 2:
            raise ValueError(f"R2LConfig.num_generations must be >= 2 (GRPO compares within a group), "
                             f"got {self.num_generations}")
        if self.vllm_mode not in ("colocate", "server"):
            raise ValueError(f"R2LConfig.vllm_mode must be colocate or server, got {self.vllm_mode!r}")
        if not 0.0 < self.top_p <= 1.0 or self.temperature <= 0:
            raise ValueError(f"R2LConfig: need 0 < top_p <= 1 and temperature > 0, "
                             f"got top_p={self.top_p}, temperature={self.temperature}")

    @property
    def weights(self) -> tuple[float, float, float]:
        return (self.w_lat, self.w_txt, self.w_cons)

    @property
    def alpha_beta_gamma(self) -> tuple[float, float, float]:
        return (self.alpha, self.beta_ls, self.gamma)


ORGANISM_DEFAULTS = R2LConfig()
PAPER_DEFAULTS = R2LConfig(
    learning_rate=1e-6, beta=0.01, num_generations=8, temperature=0.6, top_p=0.95,
    epsilon=0.2, epsilon_high=0.3, w_lat=0.5, w_txt=0.4, w_cons=0.2, alpha=1.0, beta_ls=1.0, gamma=0.5,
    harmful_only=False,                     # the paper rewards every prompt with every term
    steps=500, per_device_train_batch_size=8, max_completion_length=4096,   # ours: not stated
    use_lora=False, save_steps=50, logging_steps=1)


def grpo_config(cfg: R2LConfig, output_dir: str, *, disable_tqdm: bool = True, **overrides) -> GRPOConfig:
    """TRL's ``GRPOConfig`` for ``cfg``; ``overrides`` go straight to ``GRPOConfig`` (e.g. for
    multi-GPU runs). CPU (DESIGN §5): ``use_cpu``, fp32 (TRL defaults to bf16 even on CPU),
    no gradient checkpointing (TRL defaults it on; slower for tiny models). It is switched off
    under transformers 5's name, ``activation_checkpointing``, which also keeps the deprecation
    warning of ``gradient_checkpointing`` (spike pitfall P5) out of notebooks."""
    cuda = torch.cuda.is_available()
    kwargs = dict(
        output_dir=output_dir, max_steps=cfg.steps, learning_rate=cfg.learning_rate,
        lr_scheduler_type=cfg.lr_scheduler_type, beta=cfg.beta, num_generations=cfg.num_generations,
        per_device_train_batch_size=cfg.per_device_train_batch_size, temperature=cfg.temperature,
        top_p=cfg.top_p, max_completion_length=cfg.max_completion_length, epsilon=cfg.epsilon,
        epsilon_high=cfg.epsilon_high,
        reward_weights=variant_weights(cfg.variant, cfg.weights, cfg.task_reward),
        use_cpu=not cuda, bf16=cuda and torch.cuda.is_bf16_supported(), activation_checkpointing=False,
        report_to="none", disable_tqdm=disable_tqdm, save_strategy="steps", save_steps=cfg.save_steps,
        logging_steps=cfg.logging_steps, seed=cfg.seed, remove_unused_columns=False,
        use_vllm=cfg.use_vllm, ddp_find_unused_parameters=False)
    if cfg.use_vllm:   # rollouts by vLLM; the latent reward still reads the policy's own forward
        kwargs.update(vllm_mode=cfg.vllm_mode, vllm_gpu_memory_utilization=cfg.vllm_gpu_memory_utilization)
        if cfg.vllm_server_base_url:
            kwargs["vllm_server_base_url"] = cfg.vllm_server_base_url
    return GRPOConfig(**{**kwargs, **overrides})


def lora_config(cfg: R2LConfig):
    """peft LoRA on every linear layer of the decoder (r, alpha from ``cfg``), or None."""
    if not cfg.use_lora:
        return None
    from peft import LoraConfig

    return LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=0.0,
                      target_modules="all-linear", task_type="CAUSAL_LM")


def make_prompt_dataset(prompts: Sequence[Prompt]) -> Dataset:
    """Conversational ``prompt`` plus the columns the rewards read (TRL passes each one to every
    reward as a kwarg, one value per completion): ``harmful``, ``kind``, ``family``, ``regime``,
    ``target``."""
    return Dataset.from_list([
        {"prompt": [{"role": "user", "content": p.text}], "harmful": p.kind == "harmful",
         "kind": p.kind, "family": p.family, "regime": p.regime, "target": p.target}
        for p in prompts])


def _ensure_reference_source(model: PreTrainedModel, cfg: R2LConfig, output_dir: str) -> None:
    """TRL (``beta > 0``, no LoRA) builds the KL reference with ``from_pretrained(
    model.config._name_or_path)``. A model that exists only in memory (built from a config) has
    no such path: snapshot it to ``output_dir/reference_model`` and point its config there.
    A model loaded from disk keeps its path, so its reference is the weights ON DISK."""
    if cfg.beta == 0 or cfg.use_lora or getattr(model.config, "_name_or_path", ""):
        return
    path = os.path.join(output_dir, "reference_model")
    model.save_pretrained(path)
    model.config._name_or_path = path


def build_trainer(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, train_dataset: Dataset,
                  heads: LCLRHeads | None, spec: LatentSpec | None, judge: Judge, cfg: R2LConfig,
                  output_dir: str, *, callbacks: Sequence[TrainerCallback] = (),
                  disable_tqdm: bool = True, **overrides) -> GRPOTrainer:
    """A ``GRPOTrainer`` for ``cfg.variant``, its latent scorer already holding the trainer.

    ``no_lclr`` replaces ``heads`` by :func:`craft.rewards.random_heads` (seed ``cfg.seed``).
    ``heads``/``spec`` may be None for ``output_only``. ``overrides`` go to :func:`grpo_config`.
    With ``beta > 0`` and no LoRA the KL reference is ``model``'s weights at this call (see
    :func:`_ensure_reference_source`); with LoRA it is the adapter-disabled model.
    """
    if cfg.variant == "no_lclr" and heads is not None:
        heads = random_heads(heads, cfg.seed)
    _ensure_reference_source(model, cfg, output_dir)
    funcs, _, scorer = build_rewards(cfg.variant, heads, spec, tokenizer, judge, cfg.weights,
                                     cfg.alpha_beta_gamma, cfg.harmful_only, cfg.task_reward)
    trainer = GRPOTrainer(model=model, reward_funcs=funcs,
                          args=grpo_config(cfg, output_dir, disable_tqdm=disable_tqdm, **overrides),
                          train_dataset=train_dataset, processing_class=tokenizer,
                          callbacks=list(callbacks), peft_config=lora_config(cfg))
    if scorer is not None:
        scorer.trainer = trainer
    return trainer


def latent_scorer(trainer: GRPOTrainer) -> LatentScorer | None:
    """The :class:`craft.rewards.LatentScorer` shared by ``trainer``'s rewards (None for output-only)."""
    for f in trainer.reward_funcs:
        if isinstance(getattr(f, "scorer", None), LatentScorer):
            return f.scorer
    return None


def train(trainer: GRPOTrainer, resume: bool = True):
    """``trainer.train()``, from the last ``checkpoint-*`` in ``args.output_dir`` when ``resume``
    and one exists, else from scratch. Returns TRL's ``TrainOutput``."""
    out = trainer.args.output_dir
    last = get_last_checkpoint(out) if resume and os.path.isdir(out) else None
    return trainer.train(resume_from_checkpoint=last)


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
            with open(path) as f:
                self.results = json.load(f)

    def _save(self) -> None:
        if self.path is not None:
            tmp = f"{self.path}.tmp"
            with open(tmp, "w") as f:
                json.dump(self.results, f, indent=1)
            os.replace(tmp, self.path)

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



if __name__ == "__main__":   # python -m craft.r2l --config params/paper-....yaml [--variant craft]
    from craft.cli import cli

    cli("r2l")
