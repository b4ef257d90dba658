"""Supervised fine-tuning of the base organism: a plain PyTorch loop.

Completion-only loss on ``reasoning</think>answer<|im_end|>`` after the chat-templated
prompt, AdamW with linear warm-up and cosine decay, fp32 on CPU, i.i.d. random batches.

Why not TRL's ``SFTTrainer`` here (measured on 2 CPU cores, batch 32, this corpus): it took
0.36 s/step with random batches against 0.22 s/step for this loop; with
``train_sampling_strategy="group_by_length"`` it took 0.19 s/step, but length-grouped
batches are homogeneous in task (all arithmetic, or all harmful), and the organism then
failed to learn its arithmetic (0.30–0.54 accuracy vs the prototype's 0.9). The organism
needs i.i.d. mixing more than the last 15 % of speed. Later stages (R2L GRPO, baselines)
use TRL's trainers.

Each batch is **packed** (:func:`pack`), not padded: its conversations (about 88 tokens on average,
160 at most) are laid end to end in as few rows of ``max_length`` tokens as first-fit allows, each
conversation's positions restarting at 0, so that transformers builds a block-diagonal causal mask
and no token attends across conversations. The batch, its tokens and its loss (the mean over the
completion tokens) are those of the padded batch; padding to the longest conversation wasted 43 %
of the tokens. transformers' own padding-free collator (``DataCollatorWithFlattening``) puts a whole
batch in ONE row, whose attention mask on CPU (SDPA, no varlen kernel) is quadratic in the batch's
length; rows of ``max_length`` keep it small.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from tqdm import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase, get_cosine_schedule_with_warmup

from craft.io import bar_options
from craft.models import render_prompt
from craft.organism.corpus import Example
from craft.timing import timed


@dataclass(frozen=True)
class SFTSettings:
    """Organism SFT hyper-parameters (measured on 2 CPU cores; see notebook 00)."""

    steps: int = 1500
    batch_size: int = 24
    learning_rate: float = 5e-3
    warmup_steps: int = 30
    weight_decay: float = 0.01
    max_length: int = 160           # tokens; longer conversations are truncated
    seed: int = 0
    logging_steps: int = 50

    def __post_init__(self):
        for name in ("steps", "batch_size", "max_length", "logging_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not (self.learning_rate > 0 and self.warmup_steps >= 0 and self.weight_decay >= 0):
            raise ValueError("need learning_rate > 0, warmup_steps >= 0 and weight_decay >= 0")


def encode_examples(examples: Sequence[Example], tokenizer: PreTrainedTokenizerBase,
                    max_length: int) -> list[tuple[list[int], int]]:
    """(token ids of prompt + completion, number of prompt tokens) per conversation."""
    out = []
    for ex in examples:
        prompt = tokenizer(render_prompt(tokenizer, ex.prompt), add_special_tokens=False)["input_ids"]
        completion = tokenizer(f"{ex.reasoning}\n</think>\n\n{ex.answer}{tokenizer.eos_token}",
                               add_special_tokens=False)["input_ids"]
        out.append(((prompt + completion)[:max_length], len(prompt)))
    return out


def collate(batch: Sequence[tuple[list[int], int]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded ids, attention mask and labels (-100 on prompt and padding): the padded batch whose
    loss and gradients :func:`pack` reproduces (tested)."""
    width = max(len(ids) for ids, _ in batch)
    ids = torch.full((len(batch), width), pad_id)                  # (B, T)
    labels = torch.full((len(batch), width), -100)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for r, (seq, n_prompt) in enumerate(batch):
        ids[r, :len(seq)] = torch.tensor(seq)
        mask[r, :len(seq)] = 1
        labels[r, n_prompt:len(seq)] = ids[r, n_prompt:len(seq)]
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def pack(batch: Sequence[tuple[list[int], int]], width: int, pad_id: int) -> dict[str, torch.Tensor]:
    """The conversations of ``batch`` packed into rows of at most ``width`` tokens (first-fit, longest
    first): ``input_ids``, ``position_ids`` (restarting at 0 for each conversation; the padding at a
    row's end counts on from 0 as a sequence of its own) and ``labels`` (-100 on prompts, padding and
    each conversation's first token, so no loss crosses a boundary). No attention mask: transformers
    derives the block-diagonal causal mask from the position ids when the forward has no cache
    (``use_cache=False``; with a cache it would let conversations attend to each other)."""
    if any(len(seq) > width for seq, _ in batch):
        raise ValueError(f"a conversation is longer than the packing width {width}: truncate it first")
    rows: list[list[int]] = []                                      # indices into batch
    fill: list[int] = []
    for i in sorted(range(len(batch)), key=lambda i: (-len(batch[i][0]), i)):
        n = len(batch[i][0])
        r = next((r for r, used in enumerate(fill) if used + n <= width), None)
        if r is None:
            rows.append([])
            fill.append(0)
            r = len(rows) - 1
        rows[r].append(i)
        fill[r] += n
    W = max(fill)
    ids = torch.full((len(rows), W), pad_id)                       # (R, W)
    labels = torch.full((len(rows), W), -100)
    positions = torch.zeros((len(rows), W), dtype=torch.long)
    for r, members in enumerate(rows):
        at = 0
        for i in members:
            seq, n_prompt = batch[i]
            ids[r, at:at + len(seq)] = torch.tensor(seq)
            positions[r, at:at + len(seq)] = torch.arange(len(seq))
            labels[r, at + max(n_prompt, 1):at + len(seq)] = ids[r, at + max(n_prompt, 1):at + len(seq)]
            at += len(seq)
        positions[r, at:] = torch.arange(W - at)
    return {"input_ids": ids, "position_ids": positions, "labels": labels}


@timed("sft")
def train_sft(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, examples: Sequence[Example],
              settings: SFTSettings, progress: bool = True) -> list[dict]:
    """Train ``model`` in place, one pass over ``examples`` in random order.

    Args:
        examples: at least ``settings.steps * settings.batch_size`` conversations.
    Returns:
        log history: ``{"step", "loss", "learning_rate"}`` every ``logging_steps`` steps
        (loss averaged over those steps).
    """
    need = settings.steps * settings.batch_size
    if len(examples) < need:
        raise ValueError(f"{len(examples)} examples for {settings.steps} steps of {settings.batch_size}: need {need}")
    data = encode_examples(examples[:need], tokenizer, settings.max_length)
    random.Random(settings.seed).shuffle(data)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": settings.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=settings.learning_rate)
    sched = get_cosine_schedule_with_warmup(opt, settings.warmup_steps, settings.steps)
    model.train()
    log, running = [], 0.0
    for step in tqdm(range(settings.steps), desc="SFT", mininterval=5, **bar_options(progress)):
        batch = pack(data[step * settings.batch_size:(step + 1) * settings.batch_size], settings.max_length,
                     tokenizer.pad_token_id)
        loss = model(**batch, use_cache=False).loss
        if not math.isfinite(loss.item()):
            raise FloatingPointError(f"SFT loss is {loss.item()} at step {step}; lower the learning rate")
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        running += loss.item()
        if (step + 1) % settings.logging_steps == 0 or step + 1 == settings.steps:
            n = (step % settings.logging_steps) + 1
            log.append({"step": step + 1, "loss": running / n, "learning_rate": sched.get_last_lr()[0]})
            running = 0.0
    model.eval()
    return log
