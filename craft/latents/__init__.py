"""THE latent of the package (paper §3, §4.1, §4.2): one layer, pooled over the reasoning span.

=====================  ==================================================================
module                 what it holds
=====================  ==================================================================
:mod:`.states`         the definition: :class:`LatentSpec`, the reasoning span, the pooling,
                       :func:`latents` and its batched wrappers over labelled traces
:mod:`.capture`        the same latent read during ``generate`` by a forward hook
                       (:class:`LatentCapture`, :func:`captured_latents`)
=====================  ==================================================================

Probing, LCLR, the R2L reward and the streaming monitor all read the latent through these two
modules, so the representation cannot drift between phases.
"""

from craft.latents.capture import LatentCapture, captured_latents, output_module
from craft.latents.states import (
    CLOSE_TAG,
    POOLS,
    LatentSpec,
    TraceBatch,
    close_token_id,
    decoder_stack,
    encode_traces,
    latents,
    layer_states,
    layers_states,
    pool_states,
    pool_tokens,
    reasoning_span_mask,
    trace_latents,
    trace_latents_by_layer,
    trace_latents_by_pool,
    trace_token_states,
)

__all__ = ["CLOSE_TAG", "POOLS", "LatentCapture", "LatentSpec", "TraceBatch", "captured_latents", "close_token_id",
           "decoder_stack", "encode_traces", "latents", "layer_states", "layers_states", "output_module", "pool_states",
           "pool_tokens", "reasoning_span_mask", "trace_latents", "trace_latents_by_layer",
           "trace_latents_by_pool", "trace_token_states"]
