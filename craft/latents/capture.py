"""THE latent read during ``model.generate``: a forward hook on the latent's layer (:mod:`craft.latents.states`).

transformers has no hidden-state streaming during generation (``output_hidden_states`` returns every
layer at the end), so :class:`LatentCapture` keeps the output of the latent's layer of every forward
while it is active: inside ``generate`` that is the prompt (prefill) and then one token per step, so
no second forward pass is needed. :func:`captured_latents` pools what it kept into THE latent of each
generated row, with the same span and pooling as a second forward. The streaming monitor
(:mod:`craft.monitor.stream`) and the R2L rollouts (:mod:`craft.r2l.rollout`) both read through it.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from craft.latents.states import decoder_stack, pool_states, reasoning_span_mask

__all__ = ["LatentCapture", "captured_latents", "output_module"]


def output_module(model: nn.Module, layer: int) -> nn.Module:
    """The module whose output is THE latent's ``layer`` (:mod:`craft.latents` convention): the
    embeddings for 0, decoder layer ``layer`` below the top, the final norm for the top layer."""
    stack = decoder_stack(model)
    n = len(stack.layers)
    if isinstance(layer, bool) or not isinstance(layer, int) or not 0 <= layer <= n:
        raise ValueError(f"layer must be an int in [0, {n}] (0 = embeddings, {n} = final normed output), "
                         f"got {layer!r}")
    return stack.embed_tokens if layer == 0 else stack.norm if layer == n else stack.layers[layer - 1]


class LatentCapture:
    """Context manager: while active, the output of ``layer`` of every forward of ``model`` is kept.

    Inside ``generate`` the first chunk is the prompt (B, P, d) and each later one a step (B, 1, d).
    :attr:`chunks` holds them detached, on the model's device, in its dtype.
    """

    def __init__(self, model: nn.Module, layer: int):
        self.module = output_module(model, layer)
        self.chunks: list[Tensor] = []
        self._handle = None

    def _hook(self, _module, _args, output) -> None:
        h = output[0] if isinstance(output, (tuple, list)) else output
        self.chunks.append(h.detach())

    def __enter__(self) -> LatentCapture:
        self.chunks = []
        self._handle = self.module.register_forward_hook(self._hook)
        return self

    def __exit__(self, *exc) -> None:
        self._handle.remove()
        self._handle = None

    def states(self) -> Tensor:
        """Every captured chunk concatenated along time: (B, sum of chunk lengths, d)."""
        if not self.chunks:
            raise RuntimeError("LatentCapture saw no forward: run the model inside the `with` block")
        return torch.cat(self.chunks, dim=1)


def captured_latents(states: Tensor, input_ids: Tensor, attention_mask: Tensor, prompt_length: int,
                     close_id: int | None, pool: str) -> Tensor:
    """THE latent of each generated row from the states captured during ``generate``. (B, d) float32.

    ``states`` (B, T - 1, d): the captured chunks of a generate call whose output ``input_ids`` is
    (B, T) (prompt left-padded to ``prompt_length``); ``attention_mask`` (B, T): 1 on the prompt's
    real tokens and on the completion up to its first eos. The span and the pooling are
    :func:`craft.latents.reasoning_span_mask` and :func:`craft.latents.pool_states`, as in a second
    forward. The last token has no state: a row whose latent would read it is NaN (recompute it).
    """
    B, T = input_ids.shape
    if states.shape[:2] != (B, T - 1):
        raise ValueError(f"expected states for the first {T - 1} tokens of {B} rows, got {tuple(states.shape)}")
    full = torch.cat([states.float(), states.new_full((B, 1, states.shape[-1]), torch.nan).float()], dim=1)
    prompt_lengths = attention_mask[:, :prompt_length].sum(-1)                          # (B,)
    span = reasoning_span_mask(input_ids, attention_mask, prompt_lengths, close_id)     # (B, T)
    return pool_states(full, span, pool, attention_mask)                               # (B, d)
