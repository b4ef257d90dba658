"""Batched sampling for evaluation: one decoding loop around the model's own forward (paper §6 decoding).

:func:`craft.evaluate.generate` samples thousands of short completions from small policies. On the
organism (0.4 M parameters) a decoding step is a few MFLOP per sequence, so ``model.generate`` spends
its time on work per *step*, not per token: Python, logits processors over the whole vocabulary,
``torch.multinomial`` drawing one exponential per vocabulary entry, and rows that already ended but
stay in the batch until the longest one ends. This loop keeps the model's forward and its KV cache
(transformers' ``DynamicCache``) and changes the rest:

- **big batches** (every prompt of an evaluation set at once by default), so the per-step cost is paid
  once for hundreds of rows;
- **finished rows leave the batch**: when a tenth of the rows have ended, the cache, mask and
  positions keep only the live ones (``DynamicCache.batch_select_indices``);
- **sampling on the top-k candidates**: temperature, top-k, then top-p over the k sorted candidates,
  then the Gumbel-max trick — the same distribution as HF's temperature → top-k → top-p →
  multinomial, drawn with k random numbers per row instead of one per vocabulary entry;
- **randomness per row, not per batch**: row ``i``'s noise at step ``t`` comes from a generator seeded
  by the settings' seed and the row's chunk, drawn for every row of the chunk at every step, so a
  row's sample never depends on which other rows are still running.

It writes its own loop rather than use ``model.generate`` because ``generate`` offers neither
shrinking the batch nor per-row noise, and a ``LogitsProcessor`` cannot avoid the full-vocabulary
multinomial. Hidden-state capture and streaming stopping criteria (the monitor, R2L rollouts) keep
``model.generate``: their hooks index rows of a fixed batch.

The completions differ from ``model.generate``'s for the same seed (other random numbers); for a
given seed, prompts and chunk size they are the same on the same machine.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

__all__ = ["eos_token_ids", "sample_completions", "sample_next"]

# Rebuild the batch (drop ended rows) once at least this share of its rows has ended.
COMPACT_SHARE = 0.1


def sample_next(logits: Tensor, uniform: Tensor, temperature: float, top_k: int, top_p: float) -> Tensor:
    """Next token ids (B,) from ``logits`` (B, V) with ``uniform`` noise (B, k) in (0, 1).

    Temperature, top-k (``top_k`` 0: every token), then top-p over the candidates sorted by
    probability (the smallest set whose probability reaches ``top_p``; the most likely token always
    stays), then Gumbel-max: ``argmax(log p + g)`` with ``g = −log(−log u)`` samples from ``p``.
    """
    k = logits.shape[-1] if top_k <= 0 else min(top_k, logits.shape[-1])
    if uniform.shape != (logits.shape[0], k):
        raise ValueError(f"uniform noise has shape {tuple(uniform.shape)}; sampling needs ({logits.shape[0]}, {k})")
    values, ids = torch.topk(logits.float() / temperature, k, dim=-1)            # (B, k), sorted descending
    logp = torch.log_softmax(values, dim=-1)
    if top_p < 1.0:
        p = logp.exp()
        before = torch.cumsum(p, dim=-1) - p                                     # probability of better candidates
        logp = logp.masked_fill(before >= top_p, float("-inf"))                  # the first candidate is never dropped
    gumbel = -torch.log(-torch.log(uniform))
    return ids.gather(-1, (logp + gumbel).argmax(-1, keepdim=True)).squeeze(-1)


class _BufferLayer(DynamicLayer):
    """A ``DynamicCache`` layer that writes into a buffer allocated once for the whole generation,
    instead of concatenating a new tensor at every step (whose copies grow with the length)."""

    def __init__(self, capacity: int):
        super().__init__()
        self.capacity, self.length = capacity, 0

    def lazy_initialization(self, key_states: Tensor, value_states: Tensor) -> None:
        b, h, _, d = key_states.shape
        self.device = key_states.device
        self.key_buffer = key_states.new_empty(b, h, self.capacity, d)           # (B, H, capacity, d)
        self.value_buffer = value_states.new_empty(b, h, self.capacity, value_states.shape[-1])
        self.is_initialized = True

    def update(self, key_states: Tensor, value_states: Tensor, *args, **kwargs) -> tuple[Tensor, Tensor]:
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        end = self.length + key_states.shape[-2]
        if end > self.capacity:
            raise RuntimeError(f"cache of {self.capacity} positions is full")
        self.key_buffer[:, :, self.length:end] = key_states
        self.value_buffer[:, :, self.length:end] = value_states
        self.length = end
        self.keys, self.values = self.key_buffer[:, :, :end], self.value_buffer[:, :, :end]
        return self.keys, self.values

    def get_seq_length(self) -> int:
        return self.length

    def batch_select_indices(self, indices: Tensor) -> None:
        self.key_buffer, self.value_buffer = self.key_buffer[indices], self.value_buffer[indices]
        self.keys, self.values = self.key_buffer[:, :, :self.length], self.value_buffer[:, :, :self.length]


def eos_token_ids(model, tokenizer) -> list[int]:
    """The ids that end a generation: the model's ``generation_config.eos_token_id`` (one or a list), else
    the tokenizer's ``eos_token_id``."""
    eos = getattr(model.generation_config, "eos_token_id", None)
    eos = tokenizer.eos_token_id if eos is None else eos
    return [eos] if isinstance(eos, int) else list(eos or [])


@torch.no_grad()
def sample_completions(model, tokenizer, texts: Sequence[str], *, max_new_tokens: int, do_sample: bool,
                       temperature: float, top_k: int, top_p: float, seed: int,
                       sampler: Callable[..., Tensor] = sample_next) -> list[list[int]]:
    """Generated token ids of each templated prompt in ``texts`` (one batch; ids up to and including
    the first end-of-sequence token, or ``max_new_tokens`` of them).

    ``sampler(logits, uniform, temperature, top_k, top_p) -> (B,)`` draws the next tokens when sampling
    (default :func:`sample_next`; another rule, e.g. one a reader writes, is called the same way)."""
    device = model.device
    enc = tokenizer(list(texts), return_tensors="pt", padding=True, padding_side="left", add_special_tokens=False)
    mask = enc["attention_mask"].to(device)                                      # (B, P)
    ids = enc["input_ids"].to(device)                                            # (B, P)
    n = ids.shape[0]
    k = model.config.vocab_size if top_k <= 0 else min(top_k, model.config.vocab_size)
    noise = torch.Generator(device="cpu").manual_seed(seed)
    eos = torch.tensor(eos_token_ids(model, tokenizer), dtype=torch.long, device=device)
    rows = torch.arange(n, device=device)                                        # live rows' indices in texts
    out: list[list[int]] = [[] for _ in range(n)]
    cache = DynamicCache(config=model.config)
    if all(type(layer) is DynamicLayer for layer in cache.layers):      # sliding-window layers keep their own
        cache.layers = [_BufferLayer(ids.shape[1] + max_new_tokens) for _ in cache.layers]
    positions = (mask.cumsum(-1) - 1).clamp(min=0)                               # left padding: first real token is 0
    logits = model(input_ids=ids, attention_mask=mask, position_ids=positions, cache=cache,
                   use_cache=True, logits_to_keep=1).logits[:, -1]               # (B, V)
    positions = positions[:, -1:]
    done = torch.zeros(n, dtype=torch.bool, device=device)                     # live row has ended
    for _ in range(max_new_tokens):
        if do_sample:
            uniform = torch.rand(n, k, generator=noise).clamp_(min=1e-10).to(device)  # every row's, every step
            nxt = sampler(logits, uniform[rows], temperature, top_k, top_p)
        else:
            nxt = logits.argmax(-1)
        for row, token, finished in zip(rows.tolist(), nxt.tolist(), done.tolist()):
            if not finished:
                out[row].append(token)
        done = done | torch.isin(nxt, eos)
        if bool(done.all()):
            break
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=-1)          # (B, P + t)
        positions = positions + 1
        if done.float().mean() >= COMPACT_SHARE:
            keep = (~done).nonzero().squeeze(-1)
            cache.batch_select_indices(keep)
            rows, mask, positions, nxt, done = rows[keep], mask[keep], positions[keep], nxt[keep], done[keep]
        logits = model(input_ids=nxt[:, None], attention_mask=mask, position_ids=positions, cache=cache,
                       use_cache=True).logits[:, -1]                             # (B, V)
    return out
