"""Reading the reasoning as it streams: p_z of every generated token, from ``generate`` itself.

Beyond the paper, on its §3 premise (the hidden states of safe, unsafe and rethink reasoning are
separable): if they are, a monitor can read them *while* the model reasons, before the harmful text
is written. This module reads THE latent (:mod:`craft.latents`: one layer, pooled over the reasoning
span) during ``model.generate`` and applies the LCLR heads (:mod:`craft.lclr`) to it at every step.

- :class:`craft.latents.LatentCapture`: the forward hook on the latent's layer that keeps that
  layer's output of every forward while active (the prompt, then one token per step).
- :class:`LatentMonitor`: a transformers ``StoppingCriteria`` that, after each step, folds the state
  of the newest reasoning token into the running latent of the reasoning read so far (the same
  pooling as :func:`craft.latents.pool_states`: the running mean for ``pool="mean"``, the newest
  token for ``"last"``), scores p_z = P(safe | z), and, with a threshold, stops each row whose p_z
  falls to it. The running latent after ``k`` reasoning tokens is exactly THE latent of the unfinished
  trace made of those ``k`` tokens.
- :func:`monitored_generate`: :func:`craft.evaluate.generate` (same batches, same seeds, same
  sampling) with a monitor on every batch: completions, per-token p_z, where the alarm fired, and
  the stopped completions closed as asked (``action``: ``none``, ``stop``, ``refuse``). With
  ``none`` nothing has to be decided during generation, so only the capture runs inside it and
  :func:`replay_p_z` scores every step at once afterwards (the same numbers, fewer small calls).

Timing. The state of a token is computed when that token is fed back in, i.e. at the step that
samples the *next* token: the monitor is one token behind the text. An alarm raised on the state of
reasoning token ``j`` takes effect after token ``j + 1`` is sampled, so a stopped completion keeps
``j + 2`` tokens; :attr:`MonitoredBatch.alarm` is that count (the length of the kept completion).
The last token of a generation is never fed back, so it has no state (rows whose latent needs it
are marked, see :func:`craft.latents.captured_latents`). The running latent reads reasoning tokens until the
first ``</think>``; :func:`craft.latents.reasoning_span_mask` ends the span at the last one (the
two differ only for a completion that writes ``</think>`` twice).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase, StoppingCriteria, StoppingCriteriaList

from craft.decoding import eos_token_ids
from craft.evaluate import GenerationSettings, generate_batches
from craft.latents import CLOSE_TAG, LatentCapture, close_token_id, decoder_stack
from craft.lclr import LCLRHeads
from craft.timing import timed

__all__ = ["ACTIONS", "LatentMonitor", "MonitoredBatch", "check_heads", "monitored_generate", "replay_alarms",
           "replay_p_z"]

ACTIONS = ("none", "stop", "refuse")


def check_heads(heads: LCLRHeads, model: nn.Module) -> int:
    """The heads' layer, after checking that they read a latent this model has: their recorded layer
    exists in it and their width is its hidden size. A clear error otherwise."""
    cfg = heads.config
    width = decoder_stack(model).embed_tokens.weight.shape[1]
    n_layers = len(decoder_stack(model).layers)
    if cfg.layer < 0:
        raise ValueError("these LCLR heads do not record the layer they were fit on; refit them with "
                         "craft.stages.lclr (heads saved by it record layer, pool and width)")
    if cfg.d_model != width or cfg.layer > n_layers:
        raise ValueError(f"the heads were fit on layer {cfg.layer} of a model of width {cfg.d_model}, but this model "
                         f"has width {width} and {n_layers} layers: use the heads fit on this model "
                         "(notebook 02 / `craft lclr`) or load the model they were fit on")
    return cfg.layer


class LatentMonitor(StoppingCriteria):
    """p_z of the reasoning read so far, after every generation step (module docstring).

    Args:
        capture: the active :class:`LatentCapture` of the heads' layer.
        heads: LCLR heads (p_z = P(safe | z)).
        prompt_length: the padded prompt length P of the batch.
        close_id: the ``</think>`` token id; eos_ids: the ids that end a row.
        threshold: a row alarms once its p_z is <= threshold after at least ``min_tokens`` reasoning
            tokens (None: no alarm, p_z is only recorded).
        stop: end a row at its alarm (False: record the alarm, let the row go on).

    After ``generate``: :attr:`p_z` is a list over steps of (B,) tensors (NaN where the step's token
    is not a reasoning token), :attr:`alarm` the (B,) kept-completion length at the alarm (-1: none).
    """

    def __init__(self, capture: LatentCapture, heads: LCLRHeads, prompt_length: int, close_id: int | None,
                 eos_ids: Sequence[int], threshold: float | None = None, min_tokens: int = 1, stop: bool = True):
        self.capture, self.heads, self.P, self.stop = capture, heads, prompt_length, stop
        self.close_id, self.eos_ids = close_id, torch.tensor(list(eos_ids))
        self.threshold, self.min_tokens, self.pool = threshold, min_tokens, heads.config.pool
        self.p_z: list[Tensor] = []
        self._sum = self._count = self._open = self._stop_ids = self.alarm = None

    def _start(self, batch: int, width: int, device) -> None:
        self._sum = torch.zeros(batch, width, dtype=torch.float32, device=device)     # (B, d)
        self._count = torch.zeros(batch, 1, dtype=torch.float32, device=device)       # (B, 1)
        self._open = torch.ones(batch, dtype=torch.bool, device=device)               # (B,) reasoning not closed
        stops = [*self.eos_ids.tolist(), *([] if self.close_id is None else [self.close_id])]
        self._stop_ids = torch.tensor(stops, device=device)                           # (E,)
        self.alarm = torch.full((batch,), -1, dtype=torch.long, device=device)        # (B,)

    @torch.no_grad()
    def __call__(self, input_ids: Tensor, scores, **kwargs) -> Tensor:
        step = len(self.capture.chunks) - 1           # 0: after the prefill; k: state of completion token k - 1
        if step == 0:
            self._start(input_ids.shape[0], self.capture.chunks[0].shape[-1], input_ids.device)
            return self._stopped()
        j = step - 1
        token = input_ids[:, self.P + j, None]                                         # (B, 1)
        self._open &= ~(token == self._stop_ids).any(-1)                               # eos or </think>: stop reading
        reading = self._open                                                           # (B,)
        weight = reading.unsqueeze(-1).float()                                         # (B, 1)
        h = self.capture.chunks[-1][:, -1].float()                                     # (B, d)
        self._count += weight
        if self.pool == "mean":
            self._sum.addcmul_(h, weight)
            z = self._sum / self._count.clamp(min=1.0)
        else:
            z = h
        heads = self.heads                               # the heads' forward without its input checks (hot loop)
        p = torch.sigmoid(heads.safety(heads.projection(z.to(heads.safety.linear.weight.dtype)))).float()  # (B,)
        self.p_z.append(torch.where(reading, p, torch.nan))
        if self.threshold is not None:
            fire = reading & (self.alarm < 0) & (p <= self.threshold)
            if self.min_tokens > 1:
                fire &= self._count.squeeze(-1) >= self.min_tokens
            self.alarm.masked_fill_(fire, j + 2)
        return self._stopped()

    def _stopped(self) -> Tensor:
        return (self.alarm >= 0) & self.stop

    def trajectories(self) -> list[list[float]]:
        """Per row, p_z after each of its reasoning tokens (in order; no NaN)."""
        if not self.p_z:
            return [[] for _ in range(0 if self.alarm is None else len(self.alarm))]
        grid = torch.stack(self.p_z, dim=1).cpu()                                      # (B, steps)
        return [row[~row.isnan()].tolist() for row in grid]


@dataclass
class MonitoredBatch:
    """What :func:`monitored_generate` returns, one entry per prompt."""

    completions: list[str]                 # the text generated (stopped rows: cut; refuse: closed with a refusal)
    raw: list[str]                         # the text generated, before the action closed it
    p_z: list[list[float]]                 # per reasoning token read, the running p_z
    alarm: list[int] = field(default_factory=list)   # kept completion length at the alarm, -1: no alarm
    n_tokens: list[int] = field(default_factory=list)  # completion tokens kept (to the first eos or the stop)
    ids: list[list[int]] = field(default_factory=list)  # those tokens' ids (before a refusal was added)


@timed("generation")
def monitored_generate(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, prompts: Sequence[str],
                       heads: LCLRHeads, settings: GenerationSettings = GenerationSettings(), *,
                       threshold: float | None = None, action: str = "none", refusal: str = "I can't help with that.",
                       min_tokens: int = 1, progress: bool = False) -> MonitoredBatch:
    """:func:`craft.evaluate.generate` with the latent monitor on every batch, through ``model.generate``
    whatever ``settings.engine`` says (the capture hook and the stopping criterion index the rows of a
    fixed batch).

    ``action``: ``none`` records p_z (and, with a threshold, where the alarm would fire) and changes
    nothing (the completions equal :func:`~craft.evaluate.generate`'s with ``engine="hf"``);
    ``stop`` ends a row at its alarm (the row keeps the tokens sampled so far; rows that never alarm
    are the same as without the monitor, since sampling draws for every row of the batch either way);
    ``refuse`` stops likewise and closes the reasoning with ``</think>`` and ``refusal``.
    """
    if action not in ACTIONS:
        raise ValueError(f"action must be one of {list(ACTIONS)}, got {action!r}")
    if action != "none" and threshold is None:
        raise ValueError(f"action {action!r} needs a threshold on p_z")
    layer = check_heads(heads, model)
    close_id = close_token_id(tokenizer)
    eos_ids = eos_token_ids(model, tokenizer)
    out = MonitoredBatch([], [], [])
    heads.eval()

    def per_batch(enc):
        capture = LatentCapture(model, layer)
        if action == "none":     # nothing to decide while generating: p_z of every step at once, afterwards
            return capture, {}
        monitor = LatentMonitor(capture, heads, enc["input_ids"].shape[1], close_id, eos_ids, threshold, min_tokens)
        return capture, {"stopping_criteria": StoppingCriteriaList([monitor])}

    for enc, seq, capture, kwargs in generate_batches(model, tokenizer, prompts, settings, progress, per_batch):
        P = enc["input_ids"].shape[1]
        new = seq[:, P:]                                                               # (B, T)
        if action == "none":
            grid = replay_p_z(capture.chunks[1:], new, heads, close_id, eos_ids)           # (B, T - 1)
            alarms = replay_alarms(grid, threshold, min_tokens)
            trajectories = [row[~row.isnan()].tolist() for row in grid.cpu()]
        else:
            monitor = kwargs["stopping_criteria"][0]
            alarms, trajectories = monitor.alarm.tolist(), monitor.trajectories()
        del capture.chunks[:]   # read; free the memory
        texts = tokenizer.batch_decode(new, skip_special_tokens=True)
        for row, text, a in zip(new, texts, alarms):
            ids = row.tolist()
            n = next((i + 1 for i, t in enumerate(ids) if t in eos_ids), len(ids))
            n = min(n, a) if a >= 0 and action != "none" else n
            out.raw.append(text)
            out.n_tokens.append(n)
            out.ids.append(ids[:n])
            out.alarm.append(a)
            if a >= 0 and action == "refuse":
                kept = tokenizer.decode(ids[:a], skip_special_tokens=True)
                text = f"{kept}\n{CLOSE_TAG}\n\n{refusal}"
            out.completions.append(text)
        out.p_z += trajectories
    return out


@torch.no_grad()
def replay_p_z(steps: Sequence[Tensor], completion: Tensor, heads: LCLRHeads, close_id: int | None,
               eos_ids: Sequence[int]) -> Tensor:
    """What :class:`LatentMonitor` records, computed at once after ``generate``: ``steps`` are the
    captured step chunks (each (B, 1, d): the states of completion tokens 0, 1, ...), ``completion``
    the generated ids (B, T). Returns (B, len(steps)) p_z, NaN where the token is not reasoning."""
    if not steps:
        return torch.empty(completion.shape[0], 0)
    h = torch.cat(list(steps), dim=1).float()                                          # (B, S, d)
    tokens = completion[:, :h.shape[1]]                                                # (B, S)
    ended = torch.isin(tokens, torch.tensor(list(eos_ids), device=tokens.device))
    if close_id is not None:                                                         # no </think>: eos ends reading
        ended |= tokens == close_id
    reading = (ended.long().cumsum(-1) == 0).to(h.device)                             # (B, S)
    if heads.config.pool == "mean":
        count = reading.long().cumsum(-1).clamp(min=1).unsqueeze(-1)                   # (B, S, 1)
        z = (h * reading.unsqueeze(-1)).cumsum(1) / count                              # (B, S, d)
    else:
        z = h
    p = heads.p_safe(z.reshape(-1, z.shape[-1])).float().reshape(z.shape[:2])         # (B, S)
    return torch.where(reading, p.to(h.device), torch.nan)


def replay_alarms(grid: Tensor, threshold: float | None, min_tokens: int = 1) -> list[int]:
    """:attr:`LatentMonitor.alarm` from a :func:`replay_p_z` grid: the kept-completion length at the
    first reasoning token ``j`` (``min_tokens`` read) with p_z <= threshold, ``j + 2``; -1 if none."""
    if threshold is None or grid.shape[1] == 0:
        return [-1] * grid.shape[0]
    count = (~grid.isnan()).long().cumsum(-1)
    fire = (grid <= threshold) & (count >= min_tokens)                                 # NaN compares False
    first = torch.where(fire.any(-1), fire.float().argmax(-1), -3)
    return (first + 2).clamp(min=-1).tolist()
