"""A judge that reads a model's hidden states instead of its words (paper §4.1's heads, used to judge).

CRAFT's idea applied to judging: teacher-force the (request, response) pair through a small real model
and apply LCLR heads (:mod:`craft.lclr`) fit on that model's hidden states of labelled responses to THE
latent of the response (:mod:`craft.latents`: the heads' layer, pooled over the response, which is the
whole completion for a model without a reasoning block). P(safe | text) is the safety head's p_z. It
is offline, cheap (one forward of a 135 M-parameter model), batched, and deterministic; a row whose
p_z is not finite scores NaN and is counted, as every judge's (:func:`craft.judges.base.finalise`).

Its verdicts are decided by the model's weights and the heads: :meth:`LatentJudge.identity` is their
content hashes, so a run that used it is refused when either changes. Notebook 08 fits such heads on
JailbreakBench's labelled responses and measures the judge against those labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from craft.judges.base import JudgeStats, check_lengths, finalise
from craft.judges.local import resolve_model, truncate_tokens
from craft.latents import trace_latents
from craft.lclr import load_heads
from craft.runs import content_hash, model_fingerprint

__all__ = ["LatentJudge"]


class LatentJudge:
    """P(safe | response) = the LCLR safety head on the model's latent of the response (module docstring).

    Args:
        model_or_path: a loaded causal LM, or a local checkpoint folder / hub id.
        heads: the folder of LCLR heads fit on this model (they record the layer and pooling they read).
        tokenizer: with a loaded model, its tokenizer.
        batch_size: (request, response) pairs per forward.
        max_response_tokens: keep the first N tokens of each response (None: all).
    """

    name = "latent"

    def __init__(self, model_or_path, heads: str | Path, *, tokenizer=None, device: str | None = None,
                 dtype: str = "float32", batch_size: int = 16, max_response_tokens: int | None = None):
        self.model_ref = model_or_path if isinstance(model_or_path, (str, Path)) else None
        self.model, self.tokenizer = resolve_model(model_or_path, tokenizer, device, dtype)
        self.heads_path = Path(heads)
        self.heads = load_heads(self.heads_path).eval()
        self.heads.check_latent(self.heads.spec, self.model.config.get_text_config().hidden_size)
        self.batch_size, self.max_response_tokens = batch_size, max_response_tokens
        self.stats = JudgeStats()

    def identity(self) -> dict:
        """What decides its verdicts: the model's weights and the heads (content hashes), and the cut."""
        model = model_fingerprint(str(self.model_ref)) if self.model_ref is not None else "in-memory model"
        return {"kind": "latent", "model": model, "heads": content_hash(self.heads_path),
                "max_response_tokens": self.max_response_tokens}

    @torch.no_grad()
    def p_safe(self, prompts: Sequence[str], texts: Sequence[str]) -> torch.Tensor:
        """(N,) p_z of each response after its request (may hold NaN where the heads' output is not finite)."""
        cut = [truncate_tokens(self.tokenizer, t, self.max_response_tokens) for t in texts]
        z = trace_latents(self.model, self.tokenizer, list(prompts), cut, None, self.heads.spec,
                          batch_size=self.batch_size)                                       # (N, d)
        return self.heads.p_safe(z).float().cpu()

    def score(self, prompts: Sequence[str], texts: Sequence[str]) -> list[float]:
        check_lengths(prompts, texts)
        if not len(texts):
            return []
        return finalise(self.p_safe(prompts, texts).tolist(), self.stats)
