"""The two scorers the R2L rewards share (paper §4.2): the policy's latent and the text judge.

:class:`LatentScorer` runs one extra no-grad truncated forward of the policy per batch and turns THE
latent (:mod:`craft.latents`) into the LCLR terms (cos to each prototype, p_z); :class:`TextJudge`
applies a :class:`craft.judges.Judge` to the answer and the reasoning of each completion. Both cache
the last batch, so the rewards that read them (``R_ls``, ``R_txt``, ``R_cons`` in
:mod:`craft.r2l.rewards`) cost one pass each whatever their order. A judge failure never yields NaN: it
scores a neutral 0.5 and is counted (the authors' code let a parse failure poison the reward).
Prompt ids are rebuilt as TRL built them: conversational prompts through the chat template (as
:func:`craft.models.render_prompt`), string prompts tokenised as they are.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor
from transformers import PreTrainedTokenizerBase

from craft.judges import HARM_THRESHOLD, Judge, JudgeUnavailableError, checked_scores
from craft.latents import CLOSE_TAG, LatentSpec, TraceBatch, close_token_id, latents, reasoning_span_mask
from craft.lclr import LCLRHeads
from craft.models import judged_response, split_reasoning

__all__ = ["LATENT_COLUMN", "NEUTRAL", "JudgedBatch", "LatentScorer", "TextJudge", "completion_text", "harmful_flags",
           "left_pad_batch", "mean", "random_heads", "step_of"]

log = logging.getLogger(__name__)

NEUTRAL = 0.5        # P(safe) of a text the judge failed on
LATENT_COLUMN = "craft_latent"   # per completion, THE latent captured during generation, or None (craft.r2l.rollout)


# ----------------------------------------------------------------------------- small helpers

def _user_text(prompt) -> str:
    """The last user message of a conversational prompt, or the string prompt itself."""
    if isinstance(prompt, str):
        return prompt
    users = [m["content"] for m in prompt if m.get("role") == "user"]
    return str(users[-1] if users else prompt[-1]["content"])


def completion_text(completion) -> str:
    """Text of a TRL completion: a string, or ``[{"role": "assistant", "content": ...}]``.
    A parsed ``reasoning_content`` (tokenizers with a response schema) is put back before
    ``</think>`` so :func:`split_reasoning` sees the generated layout."""
    if isinstance(completion, str):
        return completion
    msg = completion[-1]
    reasoning = msg.get("reasoning_content")
    return f"{reasoning}\n{CLOSE_TAG}\n\n{msg['content']}" if reasoning else str(msg["content"])


def _prompt_key(prompt) -> tuple | str:
    return prompt if isinstance(prompt, str) else tuple((m["role"], str(m["content"])) for m in prompt)


def step_of(kwargs: dict) -> int | None:
    """Optimizer step from TRL's ``trainer_state`` kwarg (part of every cache key)."""
    state = kwargs.get("trainer_state")
    return getattr(state, "global_step", None)


def harmful_flags(kwargs: dict, n: int) -> list[bool] | None:
    """Per completion: is its prompt harmful? From the ``harmful`` column, else ``kind``."""
    if "harmful" in kwargs:
        flags = [bool(h) for h in kwargs["harmful"]]
    elif "kind" in kwargs:
        flags = [k == "harmful" for k in kwargs["kind"]]
    else:
        return None
    if len(flags) != n:
        raise ValueError(f"got {len(flags)} 'harmful' flags for {n} completions")
    return flags


def mean(values: Sequence[float]) -> float:
    """The plain mean of a non-empty list (a logged rate)."""
    return float(sum(values) / len(values))


# ----------------------------------------------------------------------------- latent scorer

def left_pad_batch(prompt_ids: Sequence[Sequence[int]], completion_ids: Sequence[Sequence[int]],
                   pad_id: int, close_id: int | None) -> TraceBatch:
    """Left-padded prompt+completion rows and their reasoning span (completion tokens before
    the last ``close_id``, see :func:`craft.latents.reasoning_span_mask`)."""
    rows = [list(p) + list(c) for p, c in zip(prompt_ids, completion_ids, strict=True)]
    T = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), T), pad_id, dtype=torch.long)     # (B, T)
    attention_mask = torch.zeros((len(rows), T), dtype=torch.long)       # (B, T)
    for b, r in enumerate(rows):
        input_ids[b, T - len(r):] = torch.tensor(r, dtype=torch.long)
        attention_mask[b, T - len(r):] = 1
    prompt_lengths = torch.tensor([len(p) for p in prompt_ids])          # (B,)
    span = reasoning_span_mask(input_ids, attention_mask, prompt_lengths, close_id)  # (B, T)
    return TraceBatch(input_ids, attention_mask, span)


class LatentScorer:
    """THE latent of every completion → its LCLR terms: captured during generation when the rollout
    gave it (:mod:`craft.r2l.rollout`), else one no-grad truncated forward of ``trainer.model``.

    Set ``scorer.trainer = trainer`` once the ``GRPOTrainer`` exists. :meth:`terms` caches the
    last batch (key: step, prompts, completion ids), so R_ls and R_cons cost one truncated
    forward together (``n_forwards`` counts them, ``seconds`` times the terms, ``n_captured`` and
    ``n_recomputed`` count the rows of each kind). ``max_batch`` splits
    that forward into row chunks for large models (None: all rows at once). Heads that record
    their latent (:meth:`craft.lclr.LCLRHeads.check_latent`) must have been fit on ``spec`` and, at
    the first batch, on the policy's width.
    """

    def __init__(self, heads: LCLRHeads, spec: LatentSpec, tokenizer: PreTrainedTokenizerBase,
                 max_batch: int | None = None):
        if heads.config.layer >= 0:
            heads.check_latent(spec, heads.config.d_model)
        self.heads, self.spec, self.tokenizer, self.max_batch = heads, spec, tokenizer, max_batch
        self.trainer = None
        self.close_id = close_token_id(tokenizer)   # None: no reasoning block, the whole completion is read
        self.n_forwards, self.seconds, self.n_captured, self.n_recomputed = 0, 0.0, 0, 0
        self._key, self._terms = None, None

    def prompt_ids(self, prompts: Sequence) -> list[list[int]]:
        """Token ids of each prompt as TRL rendered them, encoded once per distinct prompt."""
        kw = dict(getattr(self.trainer, "chat_template_kwargs", None) or {})
        unique = {_prompt_key(p): p for p in prompts}
        ids = {k: self._encode_prompt(p, kw) for k, p in unique.items()}
        return [ids[_prompt_key(p)] for p in prompts]

    def _encode_prompt(self, prompt, chat_kwargs: dict) -> list[int]:
        if isinstance(prompt, str):   # TRL: processing_class(text=prompts)
            return self.tokenizer(prompt)["input_ids"]
        text = self.tokenizer.apply_chat_template(list(prompt), add_generation_prompt=True, tokenize=False,
                                                  **chat_kwargs)
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def features(self, prompts: Sequence, completion_ids: Sequence[Sequence[int]]) -> Tensor:
        """THE latent (:func:`craft.latents.latents`) of every prompt+completion row. (N, d)."""
        if self.trainer is None:
            raise RuntimeError("LatentScorer.trainer is unset: do `scorer.trainer = trainer` after "
                               "building the GRPOTrainer")
        model = self.trainer.model
        device = next(model.parameters()).device
        width = getattr(getattr(model, "config", None), "hidden_size", None)
        if width is not None and width != self.heads.config.d_model:
            self.heads.check_latent(self.spec, width)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        pids, chunk = self.prompt_ids(prompts), self.max_batch or len(prompts)
        was_training, out = model.training, []
        model.eval()
        try:
            with torch.no_grad():
                for s in range(0, len(prompts), chunk):
                    batch = left_pad_batch(pids[s:s + chunk], completion_ids[s:s + chunk], pad, self.close_id)
                    out.append(latents(model, TraceBatch(*(t.to(device) for t in batch)), self.spec))  # (b, d)
        finally:
            model.train(was_training)
        return torch.cat(out)                                                                       # (N, d)

    def _features(self, prompts: Sequence, completion_ids: Sequence[Sequence[int]],
                  captured: Sequence[Tensor | None] | None) -> Tensor:
        """The captured latent of each row where there is one, the truncated forward's elsewhere."""
        missing = list(range(len(prompts))) if captured is None else [i for i, z in enumerate(captured) if z is None]
        self.n_captured += len(prompts) - len(missing)
        self.n_recomputed += len(missing)
        if len(missing) == len(prompts):
            self.n_forwards += 1
            return self.features(prompts, completion_ids)
        rows = [None if z is None else torch.as_tensor(z, dtype=torch.float32) for z in captured]
        if missing:
            self.n_forwards += 1
            fresh = self.features([prompts[i] for i in missing], [completion_ids[i] for i in missing])
            for i, z in zip(missing, fresh):
                rows[i] = z.float().cpu()
        return torch.stack([r.cpu() for r in rows])                                              # (N, d)

    def terms(self, prompts: Sequence, completion_ids: Sequence[Sequence[int]], step: int | None = None,
              captured: Sequence[Tensor | None] | None = None) -> dict[str, Tensor]:
        """``cos_safe``, ``cos_unsafe``, ``cos_rethink``, ``p_z``: each (N,) float32 on CPU.
        ``captured``: per row, THE latent captured during generation, or None (recomputed)."""
        key = (step, tuple(map(_prompt_key, prompts)), tuple(tuple(c) for c in completion_ids))
        if key != self._key:
            t0 = time.perf_counter()
            w = self.heads.safety.linear.weight
            feats = self._features(prompts, completion_ids, captured).to(device=w.device, dtype=w.dtype)  # (N, d)
            self._terms = {k: v.float().cpu() for k, v in self.heads.latent_reward_terms(feats).items()}
            self._key = key
            self.seconds += time.perf_counter() - t0
        return self._terms


def random_heads(like: LCLRHeads, seed: int) -> LCLRHeads:
    """Fresh heads of ``like``'s config (init seeded by ``seed``) with random unit prototypes:
    the "w/o LCLR" ablation (paper §6, Table 3). Same device and dtype as ``like``; eval mode."""
    heads = LCLRHeads(dataclasses.replace(like.config, seed=seed))
    gen = torch.Generator().manual_seed(seed)
    mu = F.normalize(torch.randn(heads.prototypes.mu.shape, generator=gen), dim=-1)   # (3, D)
    heads.prototypes.mu.copy_(mu)
    heads.prototypes.initialised.fill_(True)
    w = like.safety.linear.weight
    return heads.to(device=w.device, dtype=w.dtype).eval()


# ----------------------------------------------------------------------------- text judge

class JudgedBatch(NamedTuple):
    """Judge scores of one batch: P(safe) of each answer and reasoning, and judge success."""

    answer: list[float]      # P(safe | y), the input of R_txt and R_cons
    reasoning: list[float]   # P(safe | reasoning), for the SSA statistics only
    ok: list[bool]           # False where either score is the neutral fallback


class TextJudge:
    """A :class:`craft.judges.Judge` applied to the answer (and reasoning) of each completion.

    Cached per batch like :class:`LatentScorer`. The answer judged is
    :func:`craft.models.judged_response`: a completion that never closed its reasoning, or left its
    answer empty, is judged on all it wrote (an unfinished recipe is not a refusal); the share of
    unfinished completions is logged (``safety/unfinished_rate``) and counted. A failing judge
    (an error or a NaN score) never yields NaN: the value becomes 0.5 and ``failures`` grows. On
    each new batch it logs, through TRL's ``log_metric``, the SSA statistics over harmful prompts
    (reasoning harmful and answer not, harmful meaning ``1 − P(safe) >= HARM_THRESHOLD``, as in
    :mod:`craft.evaluate`), their cumulative rate and the cumulative failure count. Set
    ``judge_reasoning=False`` to skip the reasoning pass (no SSA statistics, half the judge cost), or
    ``judge_answer=False`` to judge the reasoning only (a reasoning judge: its answers are the neutral
    0.5 and it logs the share of harmful-prompt reasoning it calls harmful). Metrics are logged under
    ``log_prefix``.
    """

    def __init__(self, judge: Judge, judge_reasoning: bool = True, judge_answer: bool = True,
                 log_prefix: str = "safety"):
        if not (judge_reasoning or judge_answer):
            raise ValueError("TextJudge: judge the answer, the reasoning or both")
        self.judge, self.judge_reasoning, self.judge_answer = judge, judge_reasoning, judge_answer
        self.log_prefix = log_prefix
        self.failures = self.calls = 0      # texts it could not judge, of the texts it was asked to
        self.ssa_count, self.harmful_count = 0, 0
        self.unfinished_count, self.completion_count = 0, 0
        self._key, self._batch = None, None

    def _score(self, prompts: list[str], texts: list[str]) -> tuple[list[float], list[bool]]:
        try:
            raw = checked_scores(self.judge, prompts, texts)
        except JudgeUnavailableError:
            raise                # no judge at all: stop training, not pay a neutral reward for every text
        except Exception as e:   # any judge error is a neutral score, counted and logged
            log.warning("judge %s failed on a batch of %d texts: %r", getattr(self.judge, "name", "?"), len(texts), e)
            raw = [math.nan] * len(texts)
        ok = [not math.isnan(v) for v in raw]
        self.failures += ok.count(False)
        self.calls += len(texts)
        return [v if good else NEUTRAL for v, good in zip(raw, ok)], ok

    def scores(self, prompts: Sequence, completions: Sequence, step: int | None = None,
               harmful: Sequence[bool] | None = None, log_metric=None) -> JudgedBatch:
        """Judge every completion's answer (and reasoning) for its prompt."""
        texts = [completion_text(c) for c in completions]
        key = (step, tuple(map(_prompt_key, prompts)), tuple(texts))
        if key == self._key:
            return self._batch
        users, split = [_user_text(p) for p in prompts], [split_reasoning(t) for t in texts]
        answer, ok = self._score(users, [judged_response(t) for t in texts]) if self.judge_answer else \
            ([NEUTRAL] * len(texts), [True] * len(texts))
        if self.judge_reasoning:
            reasoning, ok_r = self._score(users, [s.reasoning for s in split])
            ok = [a and b for a, b in zip(ok, ok_r)]
        else:
            reasoning = [NEUTRAL] * len(texts)
        self._key, self._batch = key, JudgedBatch(answer, reasoning, ok)
        self.unfinished_count += sum(not s.closed for s in split)
        self.completion_count += len(split)
        if log_metric is not None:
            log_metric(f"{self.log_prefix}/unfinished_rate", mean([not s.closed for s in split]))
        self._log(harmful, log_metric)
        return self._batch

    def _log(self, harmful: Sequence[bool] | None, log_metric) -> None:
        """SSA statistics of the new batch (harmful prompts, judged items) and the failure count."""
        b, pre = self._batch, self.log_prefix
        if not self.judge_answer:            # a reasoning judge: what it sees in the reasoning of harmful prompts
            rows = [1 - r >= HARM_THRESHOLD for r, ok, h in zip(b.reasoning, b.ok, harmful or []) if h and ok]
            if log_metric is not None and rows:
                log_metric(f"{pre}/reasoning_harm_rate", mean(rows))
        elif self.judge_reasoning and harmful is not None:
            rows = [(1 - r >= HARM_THRESHOLD, 1 - a >= HARM_THRESHOLD)
                    for r, a, ok, h in zip(b.reasoning, b.answer, b.ok, harmful) if h and ok]
            ssa = [r_harm and not a_harm for r_harm, a_harm in rows]
            self.ssa_count += sum(ssa)
            self.harmful_count += len(rows)
            if log_metric is not None and rows:
                log_metric(f"{pre}/ssa_rate", mean(ssa))
                log_metric(f"{pre}/ssa_rate_cumulative", self.ssa_count / self.harmful_count)
                log_metric(f"{pre}/reasoning_harm_rate", mean([r for r, _ in rows]))
                log_metric(f"{pre}/response_harm_rate", mean([a for _, a in rows]))
        if log_metric is not None:
            log_metric(f"{pre}/judge_failures", float(self.failures))
