"""THE hidden-state function of the package: layer ``L``, pooled over the reasoning span.

CRAFT (arXiv 2603.17305) works on a latent ``z`` of a reasoning trace: §3 probes it (safe, unsafe
and rethink traces are separable), §4.1 trains the LCLR heads on it and §4.2 rewards it in GRPO
(``R_ls``, ``R_cons``); the evaluation's latent monitor reads it too. Every one of those goes
through :func:`latents` (or its batched wrappers), so the representation cannot drift between
phases.

Definition. The hidden state at layer ``layer``, pooled (``pool="mean"`` or ``"last"``) over the
*reasoning span*: the tokens after the generation prompt (which ends with ``<think>\\n``) and
before the closing ``</think>`` token. Without a ``</think>`` (an unfinished trace) every
completion token is reasoning, as in :func:`craft.models.split_reasoning`. An empty span falls
back to the last attended token of the row (see :func:`pool_states`).

Deviation fixed. The authors' code used a different state in each phase:
the mean over the trace after the final norm in LCLR, the mean over prompt+response before the
final norm in R2L, while Theorem 5.1 reasons about the final token. Here there is one definition,
configurable through :class:`LatentSpec` (``layer``, ``pool``), used everywhere.

Layer convention. ``layer`` is an int in ``[0, num_hidden_layers]``: 0 is the embedding output,
``k`` the output of decoder layer ``k`` (``model.model.layers[k-1]``), which equals
``output_hidden_states=True``'s ``hidden_states[k]`` for ``k < num_hidden_layers``. For
``k == num_hidden_layers`` transformers returns the state AFTER the final norm as
``hidden_states[-1]``; we apply ``model.model.norm`` too, so ``layer=num_hidden_layers`` equals
``hidden_states[-1]`` exactly. The forward stops after the requested layer: the layers above it
and the LM head are never computed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor, nn
from transformers import PreTrainedTokenizerBase

from craft.io import bar_options
from craft.models import render_prompt
from craft.timing import timed

__all__ = ["CLOSE_TAG", "POOLS", "LatentSpec", "TraceBatch", "close_token_id", "decoder_stack", "encode_traces",
           "latents", "layer_states", "layers_states", "pool_states", "pool_tokens", "reasoning_span_mask",
           "trace_latents", "trace_latents_by_layer", "trace_latents_by_pool", "trace_token_states"]

POOLS = ("mean", "last")   # THE latent's pools (pool_states also takes "max", for the probe controls)
CLOSE_TAG = "</think>"


@dataclass(frozen=True)
class LatentSpec:
    """Which hidden state is "the latent": decoder ``layer`` (see module docstring), ``pool``."""

    layer: int
    pool: str = "mean"  # "mean" | "last" over the reasoning span

    def __post_init__(self):
        if self.pool not in POOLS:
            raise ValueError(f"unknown pool {self.pool!r}; choose one of {list(POOLS)}")
        if isinstance(self.layer, bool) or not isinstance(self.layer, int) or self.layer < 0:
            raise ValueError(f"layer must be a non-negative int, got {self.layer!r}")


class TraceBatch(NamedTuple):
    """Token ids of prompt+trace rows and the mask of their reasoning tokens."""

    input_ids: Tensor       # (B, T) long
    attention_mask: Tensor  # (B, T) long, 1 = real token
    span_mask: Tensor       # (B, T) bool, True = reasoning token


class _StopForward(Exception):
    """Raised by the capture hook to end the forward once the wanted layer has run."""


def close_token_id(tokenizer: PreTrainedTokenizerBase) -> int | None:
    """The id of ``</think>``, a single (added) token of a reasoning model's tokenizer; None for a model
    without a reasoning block (no ``<think>`` in its chat template and no ``</think>`` token: an instruct
    model such as SmolLM2), whose whole completion is then the span THE latent pools over. A template that
    opens ``<think>`` while ``</think>`` is several tokens is an error: the span could not be found."""
    ids = tokenizer(CLOSE_TAG, add_special_tokens=False)["input_ids"]
    if len(ids) == 1:
        return ids[0]
    if "<think>" in str(getattr(tokenizer, "chat_template", "") or ""):
        raise ValueError(f"{CLOSE_TAG!r} is not a single token for this tokenizer ({ids}), but its chat template "
                         "opens <think>: add </think> as a token so the reasoning span can be found")
    return None


def _tail(tokenizer, reasoning: str, answer: str | None, close_id: int | None) -> str:
    """The text after the prompt: the reasoning alone (no answer), or reasoning, ``</think>``, answer, eos."""
    if answer is None:
        return reasoning
    if close_id is None:
        raise ValueError("this tokenizer has no </think> token, so a trace has no reasoning part apart from its "
                         "answer: pass the whole response as the reasoning and no answer (answers=None)")
    return f"{reasoning}\n{CLOSE_TAG}\n\n{answer}{tokenizer.eos_token}"


def _encode_rows(tokenizer, prompts: Sequence[str], reasonings: Sequence[str], answers: Sequence[str] | None,
                 close_id: int | None) -> list[tuple[list[int], int, int]]:
    """``(ids, n_prompt, n_span)`` per trace; prompt and tail tokenised separately, each kind in one
    tokenizer call (a call per text cost more than the tokenising), each distinct prompt rendered once."""
    answers = [None] * len(reasonings) if answers is None else answers     # a row without an answer: reasoning only
    tails = [_tail(tokenizer, r, a, close_id) for r, a in zip(reasonings, answers)]
    if not tails:
        return []
    distinct = list(dict.fromkeys(prompts))
    rendered = tokenizer([render_prompt(tokenizer, p) for p in distinct], add_special_tokens=False)["input_ids"]
    prompt_ids = dict(zip(distinct, rendered))
    tails_ids = tokenizer(tails, add_special_tokens=False)["input_ids"]
    rows = []
    for prompt, reasoning, answer, tail_ids in zip(prompts, reasonings, answers, tails_ids):
        head = prompt_ids[prompt]
        if answer is None:
            rows.append((head + tail_ids, len(head), len(tail_ids)))
            continue
        # </think> is an added token, so each textual occurrence is one id; ours follows those in the reasoning.
        closes = [i for i, t in enumerate(tail_ids) if t == close_id]
        rows.append((head + tail_ids, len(head), closes[reasoning.count(CLOSE_TAG)]))
    return rows


def encode_traces(tokenizer: PreTrainedTokenizerBase, prompts: Sequence[str], reasonings: Sequence[str],
                  answers: Sequence[str] | None = None, padding_side: str = "right") -> TraceBatch:
    """Tokenise ``render_prompt(prompt) + reasoning + "\\n</think>\\n\\n" + answer + eos`` per row.

    With ``answers=None`` the row is ``render_prompt(prompt) + reasoning`` (no ``</think>``) and the
    whole tail is the span. With answers, the span is every token between the prompt and the
    ``</think>`` token, i.e. it includes the ``"\\n"`` before ``</think>``, exactly as in a generated
    sequence (so :func:`reasoning_span_mask` marks the same tokens). Rows are padded to the batch
    maximum on ``padding_side`` with ``tokenizer.pad_token_id``.
    """
    if padding_side not in ("left", "right"):
        raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
    if len(prompts) != len(reasonings) or (answers is not None and len(answers) != len(prompts)):
        raise ValueError("prompts, reasonings and answers must have the same length")
    close_id = close_token_id(tokenizer)
    rows = _encode_rows(tokenizer, prompts, reasonings, answers, close_id)
    T = max((len(ids) for ids, _, _ in rows), default=0)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    input_ids = torch.full((len(rows), T), pad_id, dtype=torch.long)      # (B, T)
    attention_mask = torch.zeros((len(rows), T), dtype=torch.long)        # (B, T)
    span_mask = torch.zeros((len(rows), T), dtype=torch.bool)             # (B, T)
    for b, (ids, n_prompt, n_span) in enumerate(rows):
        start = T - len(ids) if padding_side == "left" else 0
        input_ids[b, start:start + len(ids)] = torch.tensor(ids, dtype=torch.long)
        attention_mask[b, start:start + len(ids)] = 1
        span_mask[b, start + n_prompt:start + n_prompt + n_span] = True
    return TraceBatch(input_ids, attention_mask, span_mask)


def reasoning_span_mask(input_ids: Tensor, attention_mask: Tensor, prompt_lengths: Tensor,
                        close_token_id: int | None) -> Tensor:
    """Reasoning tokens of generated rows (prompt ids + completion ids, any padding side).

    The completion is every attended token after the first ``prompt_lengths[b]`` attended tokens
    of row ``b``. Reasoning = completion tokens before the LAST ``close_token_id`` of the
    completion (as :func:`craft.models.split_reasoning`), or the whole completion if it has none (always,
    with ``close_token_id`` None: a model without a reasoning block).
    Tokens with ``attention_mask == 0`` (padding, anything masked after eos) are never reasoning.

    Returns:
        (B, T) bool.
    """
    attended = attention_mask.bool()                                               # (B, T)
    completion = attended & (attention_mask.cumsum(-1) > prompt_lengths.view(-1, 1))  # (B, T)
    positions = torch.arange(input_ids.shape[1], device=input_ids.device).expand_as(input_ids)
    if close_token_id is None:
        return completion
    is_close = completion & (input_ids == close_token_id)                          # (B, T)
    last_close = torch.where(is_close, positions, -1).amax(-1, keepdim=True)       # (B, 1)
    before_close = (positions < last_close) | (last_close < 0)                     # (B, T)
    return completion & before_close


def decoder_stack(model: nn.Module) -> nn.Module:
    """The decoder stack (the object with ``.layers``, ``.embed_tokens``, ``.norm``).

    Unwraps DDP-style ``.module`` and peft's ``get_base_model()``; LoRA layers live inside the
    stack's modules, so calling the stack directly still applies them.
    """
    model = getattr(model, "module", model)
    if hasattr(model, "get_base_model"):
        model = model.get_base_model()
    inner = getattr(model, "model", None)
    if inner is not None and hasattr(inner, "layers"):
        return inner
    if hasattr(model, "layers"):
        return model
    raise TypeError(f"cannot find a decoder stack with .layers in {type(model).__name__}")


def _check_layer(layer: int, num_layers: int) -> None:
    if isinstance(layer, bool) or not isinstance(layer, int) or not 0 <= layer <= num_layers:
        raise ValueError(f"layer must be an int in [0, {num_layers}] (0 = embeddings, "
                         f"{num_layers} = final normed output), got {layer!r}")


def layer_states(model: nn.Module, input_ids: Tensor, attention_mask: Tensor, layer: int) -> Tensor:
    """Hidden states at ``layer`` (module-docstring convention), computing nothing above it.

    Gradients flow if the caller is not under ``torch.no_grad()``; this function never disables
    them. Positions come from the attention mask, so left and right padding give the same states.

    Returns:
        (B, T, d) tensor in the model's dtype and device.
    """
    return layers_states(model, input_ids, attention_mask, [layer])[layer]


def layers_states(model: nn.Module, input_ids: Tensor, attention_mask: Tensor, layers: Sequence[int]) -> dict:
    """:func:`layer_states` at several layers from ONE forward that stops after the deepest of them:
    ``{layer: (B, T, d)}``."""
    stack = decoder_stack(model)
    num_layers = len(stack.layers)
    for layer in layers:
        _check_layer(layer, num_layers)
    deepest, captured = max(layers), {}

    def hook_for(layer):
        def hook(_module, _args, output):
            captured[layer] = output[0] if isinstance(output, (tuple, list)) else output
            if layer == deepest:
                raise _StopForward
        return hook

    handles = [(stack.embed_tokens if layer == 0 else stack.layers[layer - 1]).register_forward_hook(hook_for(layer))
               for layer in dict.fromkeys(layers)]
    position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)  # (B, T)
    try:
        stack(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, use_cache=False)
    except _StopForward:
        pass
    finally:
        for handle in handles:
            handle.remove()
    missing = [layer for layer in layers if layer not in captured]
    if missing:
        raise RuntimeError(f"layers {missing} were never reached in the forward of {type(stack).__name__}")
    return {layer: stack.norm(captured[layer]) if layer == num_layers and layer > 0 else captured[layer]
            for layer in layers}                                          # each (B, T, d)


def pool_states(states: Tensor, span_mask: Tensor, pool: str, attention_mask: Tensor) -> Tensor:
    """Pool ``states`` (B, T, d) over ``span_mask`` (B, T): mean of the span, its last token, or the
    element-wise max over it (``max``, for the prompt-level probes of :mod:`craft.latents.prompts` only:
    THE latent is ``mean`` or ``last``, :data:`POOLS`).

    Empty span (no reasoning token in the row): the row falls back to its LAST ATTENDED token
    (largest position with ``attention_mask == 1``) for both pools. For a prompt-only row
    (``encode_traces(..., answers=None)`` with empty reasoning, or a truncated-at-zero generation)
    that is the last prompt token; when an answer follows an empty reasoning it is the final token
    of the sequence, the state Theorem 5.1 reasons about.

    Returns:
        (B, d), same dtype as ``states``.
    """
    if pool not in (*POOLS, "max"):
        raise ValueError(f"unknown pool {pool!r}; choose one of {[*POOLS, 'max']}")
    positions = torch.arange(states.shape[1], device=states.device).expand(states.shape[:2])  # (B, T)
    fallback = torch.where(attention_mask.bool(), positions, -1).amax(-1)                     # (B,)
    empty = ~span_mask.any(-1)                                                                # (B,)
    mask = span_mask.clone()
    mask[empty, fallback[empty]] = True                                                       # (B, T)
    if pool == "last":
        last = torch.where(mask, positions, -1).amax(-1)                                      # (B,)
        return states[torch.arange(states.shape[0], device=states.device), last]              # (B, d)
    if pool == "max":
        return states.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(1)                 # (B, d)
    # masked_fill, not multiply: padded rows of left-padded batches may hold non-finite values.
    total = states.masked_fill(~mask.unsqueeze(-1), 0.0).sum(1)                               # (B, d)
    return total / mask.sum(-1, keepdim=True).to(states.dtype)


def pool_tokens(tokens: Tensor, pool: str) -> Tensor:
    """:func:`pool_states` of one trace's span tokens ``(T, d)`` (T >= 1), e.g. the token states
    LCLR trains on and their token-dropout views. Returns (d,)."""
    if tokens.ndim != 2 or len(tokens) == 0:
        raise ValueError(f"pool_tokens: expected (T >= 1, d) token states, got {tuple(tokens.shape)}")
    if pool not in POOLS:                                       # THE latent's pools only
        raise ValueError(f"unknown pool {pool!r}; choose one of {list(POOLS)}")
    ones = torch.ones(1, len(tokens), dtype=torch.long, device=tokens.device)                 # (1, T)
    return pool_states(tokens[None], ones.bool(), pool, ones)[0]                              # (d,)


@timed("latent reads")
def latents(model: nn.Module, batch: TraceBatch, spec: LatentSpec) -> Tensor:
    """THE latent of each row: layer ``spec.layer`` pooled over the reasoning span. (B, d)."""
    states = layer_states(model, batch.input_ids, batch.attention_mask, spec.layer)  # (B, T, d)
    return pool_states(states, batch.span_mask.to(states.device), spec.pool,
                       batch.attention_mask.to(states.device))


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def _batches(n: int, batch_size: int):
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    return [slice(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]


def _on(batch: TraceBatch, device: torch.device) -> TraceBatch:
    return TraceBatch(*(t.to(device) for t in batch))


def trace_latents(model: nn.Module, tokenizer: PreTrainedTokenizerBase, prompts: Sequence[str],
                  reasonings: Sequence[str], answers: Sequence[str] | None, spec: LatentSpec,
                  batch_size: int = 64, progress: bool = False) -> Tensor:
    """:func:`latents` of many traces, batched, without gradients, in eval mode. (N, d) float32 CPU.

    The model's train/eval mode is restored afterwards.
    """
    return trace_latents_by_layer(model, tokenizer, prompts, reasonings, answers, [spec.layer], spec.pool,
                                  batch_size, progress)[spec.layer]


def trace_latents_by_layer(model: nn.Module, tokenizer: PreTrainedTokenizerBase, prompts: Sequence[str],
                           reasonings: Sequence[str], answers: Sequence[str] | None, layers: Sequence[int],
                           pool: str, batch_size: int = 64, progress: bool = False) -> dict[int, Tensor]:
    """:func:`trace_latents` at several layers from one forward per batch: ``{layer: (N, d)}``, each
    equal to :func:`latents` with ``LatentSpec(layer, pool)`` (the same states, the same pooling)."""
    if pool not in POOLS:
        raise ValueError(f"unknown pool {pool!r}; choose one of {list(POOLS)}")
    z = trace_latents_by_pool(model, tokenizer, prompts, reasonings, answers, layers, (pool,), batch_size, progress)
    return {layer: z[pool, layer] for layer in layers}


def trace_latents_by_pool(model: nn.Module, tokenizer: PreTrainedTokenizerBase, prompts: Sequence[str],
                          reasonings: Sequence[str], answers: Sequence[str] | None, layers: Sequence[int],
                          pools: Sequence[str] = (*POOLS, "max"), batch_size: int = 64,
                          progress: bool = False) -> dict[tuple[str, int], Tensor]:
    """The reasoning span's states at every layer of ``layers``, pooled every way of ``pools`` (``mean``,
    ``last``, ``max``; see :func:`pool_states`), from one forward per batch: ``{(pool, layer): (N, d)}``
    float32 on CPU. The probe stage's controls read all three poolings side by side."""
    from tqdm import tqdm

    bad = [p for p in pools if p not in (*POOLS, "max")]
    if bad:
        raise ValueError(f"unknown pools {bad}; choose from {[*POOLS, 'max']}")
    out: dict[tuple[str, int], list[Tensor]] = {(p, layer): [] for p in pools for layer in layers}
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for sl in tqdm(_batches(len(prompts), batch_size), desc="latents", **bar_options(progress)):
                batch = _on(encode_traces(tokenizer, prompts[sl], reasonings[sl],
                                          None if answers is None else answers[sl]), _device(model))
                states = layers_states(model, batch.input_ids, batch.attention_mask, layers)
                for (pool, layer), chunks in out.items():
                    h = states[layer]
                    z = pool_states(h, batch.span_mask.to(h.device), pool, batch.attention_mask.to(h.device))
                    chunks.append(z.float().cpu())                                        # (b, d)
    finally:
        model.train(was_training)
    width = decoder_stack(model).embed_tokens.weight.shape[1]
    return {key: torch.cat(zs) if zs else torch.empty(0, width) for key, zs in out.items()}


def trace_token_states(model: nn.Module, tokenizer: PreTrainedTokenizerBase, prompts: Sequence[str],
                       reasonings: Sequence[str], answers: Sequence[str] | None, layer: int,
                       batch_size: int = 64) -> list[Tensor]:
    """Per trace, the (T_i, d) float32 CPU states of its reasoning tokens at ``layer`` (for LCLR's
    token-dropout views). ``T_i`` may be 0 (empty reasoning, no fallback here). No gradients."""
    out, was_training = [], model.training
    model.eval()
    try:
        with torch.no_grad():
            for sl in _batches(len(prompts), batch_size):
                batch = _on(encode_traces(tokenizer, prompts[sl], reasonings[sl],
                                          None if answers is None else answers[sl]), _device(model))
                states = layer_states(model, batch.input_ids, batch.attention_mask, layer)  # (b, T, d)
                out.extend(s[m].float().cpu() for s, m in zip(states, batch.span_mask))     # (T_i, d)
    finally:
        model.train(was_training)
    return out
