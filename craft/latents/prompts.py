"""The latent of a request alone, before any response: prompt-level geometry (notebook 08).

Paper §3 reads the hidden states of reasoning traces; with a real instruct model one can first ask what
its hidden states know about the request itself (is it harmful?), as refusal-direction work does. Each
request is rendered through the chat template (:func:`craft.models.render_prompt`) and read at the
layers asked for. The span pooled over is the request's own tokens and the template's tokens after it,
up to where the model would start its answer, so that ``mean`` and ``max`` pool the request (not a
system prompt the template adds) and ``last`` is the state at the generation prompt's final token, where
the model decides how to answer. The same layer convention and poolings as :mod:`craft.latents.states`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from torch import Tensor, nn
from transformers import PreTrainedTokenizerBase

from craft.latents.states import layers_states, pool_states
from craft.models import plain_text, render_prompt

__all__ = ["REQUEST_POOLS", "encode_requests", "request_latents_by_layer"]

REQUEST_POOLS = ("mean", "last", "max")


def encode_requests(tokenizer: PreTrainedTokenizerBase, requests: Sequence[str]) -> tuple[Tensor, Tensor, Tensor]:
    """Right-padded ``(input_ids, attention_mask, span_mask)`` (each (B, T)) of the rendered requests; the
    span starts at the request's first token (found through the tokenizer's character offsets)."""
    rows = []
    for request in requests:
        text = render_prompt(tokenizer, request)
        start = _request_start(text, plain_text(tokenizer, request))
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        first = next(i for i, (_, end) in enumerate(enc["offset_mapping"]) if end > start)
        rows.append((enc["input_ids"], first))
    T = max(len(ids) for ids, _ in rows)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    input_ids = torch.full((len(rows), T), pad, dtype=torch.long)           # (B, T)
    attention = torch.zeros((len(rows), T), dtype=torch.long)               # (B, T)
    span = torch.zeros((len(rows), T), dtype=torch.bool)                    # (B, T)
    for b, (ids, first) in enumerate(rows):
        input_ids[b, :len(ids)] = torch.tensor(ids)
        attention[b, :len(ids)] = 1
        span[b, first:len(ids)] = True
    return input_ids, attention, span


def _request_start(rendered: str, request: str) -> int:
    """Where the request begins in its rendered prompt; templates may trim its surrounding whitespace
    (Llama 3's does)."""
    for candidate in (request, request.strip()):
        if candidate and candidate in rendered:
            return rendered.rindex(candidate)
    raise ValueError(f"the chat template changed the request {request[:60]!r} beyond trimming whitespace, so its "
                     "tokens cannot be found in the rendered prompt; use a tokenizer whose chat template copies "
                     "the user's message")


@torch.no_grad()
def request_latents_by_layer(model: nn.Module, tokenizer: PreTrainedTokenizerBase, requests: Sequence[str],
                             layers: Sequence[int], pools: Sequence[str] = REQUEST_POOLS,
                             batch_size: int = 16,
                             pool_fns: Mapping[str, Callable[[Tensor, Tensor], Tensor]] | None = None,
                             ) -> dict[tuple[str, int], Tensor]:
    """``{(pool, layer): (N, d) float32 CPU}`` for every pool and layer, from one forward per batch (module
    docstring). The model's train/eval mode is restored afterwards.

    ``pool_fns`` (a hook; None: the package's poolings, :func:`craft.latents.pool_states`) maps a name of ``pools``
    to a pooling of one's own, ``fn(states, span_mask) -> (b, d)``: ``states`` (b, T, d) of a right-padded batch at
    one layer, ``span_mask`` (b, T) bool, True on each row's request and the template's tokens after it (never
    empty). A name it maps replaces the package's rule of that name, or adds a pool."""
    pool_fns = dict(pool_fns or {})
    unknown = [p for p in pools if p not in pool_fns and p not in REQUEST_POOLS]
    if unknown:
        raise ValueError(f"unknown pools {unknown}: choose from {list(REQUEST_POOLS)} or name them in pool_fns")
    out: dict[tuple[str, int], list[Tensor]] = {(p, layer): [] for p in pools for layer in layers}
    was_training, device = model.training, next(model.parameters()).device
    model.eval()
    try:
        for s in range(0, len(requests), batch_size):
            ids, attention, span = (t.to(device) for t in encode_requests(tokenizer, requests[s:s + batch_size]))
            states = layers_states(model, ids, attention, layers)                       # {layer: (b, T, d)}
            for (pool, layer), chunks in out.items():
                z = pool_fns[pool](states[layer], span) if pool in pool_fns else \
                    pool_states(states[layer], span, pool, attention)                   # (b, d)
                chunks.append(z.float().cpu())
    finally:
        model.train(was_training)
    return {key: torch.cat(chunks) if chunks else torch.empty(0) for key, chunks in out.items()}
