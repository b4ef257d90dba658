"""R2L rollouts that keep the latent: the policy's own ``generate``, with the monitor's capture hook.

The CRAFT reward (paper §4.2) needs THE latent of every completion (:mod:`craft.latents`). Without
this module it costs a second, truncated forward of the policy per batch
(:class:`craft.r2l.scorers.LatentScorer`). The policy has already computed those states while
generating, so :class:`CapturingRollout` keeps them: it is a TRL 1.16 ``rollout_func`` (TRL's one
documented way to replace the generation step; it forwards any extra field of its output to the
reward functions as a keyword) that does what ``GRPOTrainer``'s own transformers path does (chat
template, left padding, ``unwrap_model_for_generation``, the trainer's ``generation_config``, cut at
the first eos) inside a :class:`craft.latents.LatentCapture`, and returns each row's latent as the
``craft_latent`` column. Same prompts, same seed: the same completions as TRL's own path.

The reward reads ``craft_latent`` (:meth:`LatentScorer.terms`); a row whose latent needs the state
of its very last token (a completion cut at the length limit before ``</think>``: the last sampled
token is never fed back) carries ``None`` and is recomputed by the truncated forward, as is
everything when rollouts come from vLLM (``use_vllm``: :func:`craft.r2l.trainer.build_trainer` installs no
rollout function then). Not supported: tools, environments and multimodal prompts.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch
from torch.nn.utils.rnn import pad_sequence

from craft.latents import LatentCapture, LatentSpec, captured_latents, close_token_id
from craft.r2l.scorers import LATENT_COLUMN
from craft.timing import timed

__all__ = ["LATENT_COLUMN", "CapturingRollout"]


def _left_pad(rows: list[list[int]], pad_id: int, multiple: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, P) left-padded ids and attention mask, P rounded up to ``multiple`` as TRL pads."""
    width = max(len(r) for r in rows)
    if multiple:
        width = -(-width // multiple) * multiple
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for b, r in enumerate(rows):
        ids[b, width - len(r):] = torch.tensor(r, dtype=torch.long)
        mask[b, width - len(r):] = 1
    return ids, mask


class CapturingRollout:
    """``rollout_func(prompts, trainer) -> {"prompt_ids", "completion_ids", "logprobs", "craft_latent"}``.

    ``spec`` is the latent the reward's heads read. ``n_captured`` / ``n_fallback`` count the rows
    whose latent came from the capture / was left to the truncated forward.
    """

    def __init__(self, spec: LatentSpec, tokenizer):
        self.spec, self.close_id = spec, close_token_id(tokenizer)
        self.n_captured = self.n_fallback = 0

    def _prompt_ids(self, prompts: list, trainer) -> list[list[int]]:
        tok = trainer.processing_class
        if isinstance(prompts[0], str):
            return tok(text=prompts)["input_ids"]
        out = tok.apply_chat_template(conversation=prompts, chat_template=trainer.chat_template,
                                      add_generation_prompt=True, tokenize=True, return_dict=True,
                                      **trainer.chat_template_kwargs)
        return [list(ids) for ids in out["input_ids"]]

    @timed("rollouts")
    def __call__(self, prompts: list, trainer) -> dict:
        from trl.models import unwrap_model_for_generation

        if trainer.tools or trainer.environments is not None:
            raise ValueError("CapturingRollout does not support tools or environments; build the trainer with "
                             "capture_latents=False")
        prompt_ids = self._prompt_ids(prompts, trainer)
        pad_id = trainer.processing_class.pad_token_id
        ids, mask = _left_pad(prompt_ids, pad_id, trainer.pad_to_multiple_of)
        device = trainer.accelerator.device
        dist = getattr(trainer, "_dist", None)   # FSDP2: TRL gathers the full parameters for generation too
        with (unwrap_model_for_generation(trainer.model_wrapped, trainer.accelerator,
                                          gather_deepspeed3_params=trainer.args.ds3_gather_for_generation,
                                          generation_kwargs=trainer.generation_kwargs,
                                          gradient_checkpointing_kwargs=trainer.args.gradient_checkpointing_kwargs)
              as model, torch.no_grad(),
              dist.summon_full_params(trainer.model_wrapped, recurse=False) if dist is not None else nullcontext(),
              LatentCapture(model, self.spec.layer) as capture):
            seq = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device),
                                 generation_config=trainer.generation_config)              # (B, P + T)
        P = ids.shape[1]
        completion_ids = self._cut(seq[:, P:].cpu(), trainer.eos_token_ids)
        latents = self._latents(capture, seq, mask, completion_ids)
        return {"prompt_ids": prompt_ids, "completion_ids": completion_ids, "logprobs": None,
                LATENT_COLUMN: latents}

    @staticmethod
    def _cut(completions: torch.Tensor, eos_ids) -> list[list[int]]:
        """Each row up to and including its first eos (TRL's completion mask)."""
        out = []
        for row in completions.tolist():
            end = next((i + 1 for i, t in enumerate(row) if t in eos_ids), len(row))
            out.append(row[:end])
        return out

    def _latents(self, capture: LatentCapture, seq: torch.Tensor, prompt_mask: torch.Tensor,
                 completion_ids: list[list[int]]) -> list[torch.Tensor | None]:
        if seq.shape[1] == prompt_mask.shape[1]:      # nothing generated
            self.n_fallback += len(completion_ids)
            return [None] * len(completion_ids)
        done = pad_sequence([torch.ones(len(c), dtype=torch.long) for c in completion_ids], batch_first=True)
        T = seq.shape[1] - prompt_mask.shape[1]
        done = torch.nn.functional.pad(done, (0, T - done.shape[1]))
        attention = torch.cat([prompt_mask, done], dim=1).to(seq.device)                  # (B, P + T)
        z = captured_latents(capture.states(), seq, attention, prompt_mask.shape[1], self.close_id,
                             self.spec.pool).cpu()                                          # (B, d)
        ok = z.isfinite().all(-1)
        self.n_captured += int(ok.sum())
        self.n_fallback += int((~ok).sum())
        return [row if good else None for row, good in zip(z, ok.tolist())]
