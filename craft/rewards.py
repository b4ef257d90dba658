"""R2L reward functions for TRL's ``GRPOTrainer`` (paper §4.2; DESIGN §2, §5).

    R = w_lat·R_ls + w_txt·R_txt + w_cons·R_cons                            (0.5 / 0.4 / 0.2)
    R_ls   = α·cos(z, μ_safe) − β·cos(z, μ_unsafe) + γ·cos(z, μ_rethink)   (α, β, γ = 1, 1, 0.5)
    R_txt  = 2·P(safe | y) − 1,   R_cons = 1 − |p_z − P(safe | y)|,   y the answer, p_z = g(z)

Rewards are plain callable classes with TRL's signature ``f(prompts, completions,
completion_ids, **kwargs) -> list[float]`` and a ``__name__``; not ``nn.Module``s, which TRL
would treat as classifier reward models. The latent terms share one :class:`LatentScorer` (one
extra no-grad truncated forward of the policy per batch) and the text terms one
:class:`TextJudge`; both cache the batch and every reward computes on a miss, so the order of
``reward_funcs`` does not matter.

Deviations and choices:
1. R_txt's sign (DESIGN §2, defect 1): P(safe | y) is the judge's ``1 − harmfulness``; the
   authors' code fed the harmfulness in as P(safe) and so rewarded harmful text.
2. A judge failure (exception, non-finite or out-of-range value) scores a neutral 0.5, counted
   in ``TextJudge.failures`` and logged (defect 2: theirs became NaN).
3. z is THE latent of :mod:`craft.latents`, the definition LCLR was trained on (defect 3).
4. ``harmful_only=True`` (ours, default): R_ls and R_cons apply to harmful prompts only and are
   the constant ``MASKED_VALUE = 0.0`` elsewhere. A GRPO group shares its prompt, so a constant
   adds zero advantage; 0.0 adds nothing to the weighted sum (what TRL's ``None`` + ``nansum``
   would do, minus the NaN in the logs), and masked rows skip the forward. Why: in a prototype,
   group normalisation blew tiny latent differences between arithmetic completions up into
   full-size advantages and arithmetic fell from 0.94 to 0.00 (notes/organism-prototype.md).
   The paper applies every term to every prompt (``harmful_only=False``).
5. :class:`TaskReward` (ours, off by default): arithmetic correctness, not in the paper.
6. R_txt judges the answer of :func:`craft.models.split_reasoning`; an unfinished completion
   (no ``</think>``) has the empty answer, which the organism's judge scores safe.
7. Prompt ids are rebuilt as TRL built them: conversational prompts through the chat template
   (as :func:`craft.models.render_prompt`), string prompts tokenised as they are.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor
from transformers import PreTrainedTokenizerBase

from craft.evaluate import parse_final_number
from craft.judges import HARM_THRESHOLD, Judge
from craft.latents import CLOSE_TAG, LatentSpec, TraceBatch, _close_token_id, latents, reasoning_span_mask
from craft.lclr import LCLRHeads
from craft.models import split_reasoning

__all__ = ["MASKED_VALUE", "VARIANTS", "ConsistencyReward", "JudgedBatch", "LatentSafetyReward",
           "LatentScorer", "TaskReward", "TextJudge", "TextSafetyReward", "build_rewards",
           "left_pad_batch", "random_heads", "variant_weights"]

log = logging.getLogger(__name__)

MASKED_VALUE = 0.0   # R_ls and R_cons on non-harmful prompts when harmful_only (deviation 4)
NEUTRAL = 0.5        # P(safe) of a text the judge failed on (deviation 2)

# variant -> reward terms, in list order ("no_lclr": same terms, the caller passes random heads)
VARIANTS: dict[str, tuple[str, ...]] = {
    "output_only": ("txt",), "craft": ("ls", "txt", "cons"), "no_cons": ("ls", "txt"),
    "no_ls": ("txt", "cons"), "no_txt": ("ls", "cons"), "no_lclr": ("ls", "txt", "cons")}


# ----------------------------------------------------------------------------- small helpers

def _user_text(prompt) -> str:
    """The last user message of a conversational prompt, or the string prompt itself."""
    if isinstance(prompt, str):
        return prompt
    users = [m["content"] for m in prompt if m.get("role") == "user"]
    return str(users[-1] if users else prompt[-1]["content"])


def _completion_text(completion) -> str:
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


def _step(kwargs: dict) -> int | None:
    """Optimizer step from TRL's ``trainer_state`` kwarg (part of every cache key)."""
    state = kwargs.get("trainer_state")
    return getattr(state, "global_step", None)


def _harmful_flags(kwargs: dict, n: int) -> list[bool] | None:
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


def _mean(values: Sequence[float]) -> float:
    return float(sum(values) / len(values))


def _valid_probability(v) -> bool:
    try:
        return v is not None and 0.0 <= float(v) <= 1.0   # NaN fails both comparisons
    except (TypeError, ValueError):
        return False


# ----------------------------------------------------------------------------- latent scorer

def left_pad_batch(prompt_ids: Sequence[Sequence[int]], completion_ids: Sequence[Sequence[int]],
                   pad_id: int, close_id: int) -> TraceBatch:
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
    """One no-grad forward of ``trainer.model`` per batch → the LCLR terms of every completion.

    Set ``scorer.trainer = trainer`` once the ``GRPOTrainer`` exists. :meth:`terms` caches the
    last batch (key: step, prompts, completion ids), so R_ls and R_cons cost one truncated
    forward together (``n_forwards`` counts them, ``seconds`` times them). ``max_batch`` splits
    that forward into row chunks for large models (None: all rows at once).
    """

    def __init__(self, heads: LCLRHeads, spec: LatentSpec, tokenizer: PreTrainedTokenizerBase,
                 max_batch: int | None = None):
        self.heads, self.spec, self.tokenizer, self.max_batch = heads, spec, tokenizer, max_batch
        self.trainer = None
        self.close_id = _close_token_id(tokenizer)   # raises unless </think> is one token
        self.n_forwards, self.seconds = 0, 0.0
        self._key, self._terms = None, None

    def prompt_ids(self, prompts: Sequence) -> list[list[int]]:
        """Token ids of each prompt as TRL rendered them (deviation 7), encoded once per distinct prompt."""
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

    def terms(self, prompts: Sequence, completion_ids: Sequence[Sequence[int]],
              step: int | None = None) -> dict[str, Tensor]:
        """``cos_safe``, ``cos_unsafe``, ``cos_rethink``, ``p_z``: each (N,) float32 on CPU."""
        key = (step, tuple(map(_prompt_key, prompts)), tuple(tuple(c) for c in completion_ids))
        if key != self._key:
            t0 = time.perf_counter()
            w = self.heads.safety.linear.weight
            feats = self.features(prompts, completion_ids).to(device=w.device, dtype=w.dtype)  # (N, d)
            self._terms = {k: v.float().cpu() for k, v in self.heads.latent_reward_terms(feats).items()}
            self._key = key
            self.n_forwards += 1
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

    Cached per batch like :class:`LatentScorer`. A failing judge never yields NaN: the value
    becomes 0.5 and ``failures`` grows (deviation 2). On each new batch it logs, through TRL's
    ``log_metric``, the SSA statistics over harmful prompts (reasoning harmful and answer not,
    harmful meaning ``1 − P(safe) >= HARM_THRESHOLD``, as in :mod:`craft.evaluate`), their
    cumulative rate and the cumulative failure count. Set ``judge_reasoning=False`` to skip the
    reasoning pass (no SSA statistics, half the judge cost).
    """

    def __init__(self, judge: Judge, judge_reasoning: bool = True):
        self.judge, self.judge_reasoning = judge, judge_reasoning
        self.failures = 0
        self.ssa_count, self.harmful_count = 0, 0
        self._key, self._batch = None, None

    def _score(self, prompts: list[str], texts: list[str]) -> tuple[list[float], list[bool]]:
        try:
            raw = list(self.judge.score(prompts, texts))
            if len(raw) != len(texts):
                raise ValueError(f"judge returned {len(raw)} scores for {len(texts)} texts")
        except Exception as e:   # any judge error is a neutral score, counted and logged
            log.warning("judge %s failed on a batch of %d texts: %r", getattr(self.judge, "name", "?"), len(texts), e)
            raw = [None] * len(texts)
        ok = [_valid_probability(v) for v in raw]
        self.failures += ok.count(False)
        return [float(v) if good else NEUTRAL for v, good in zip(raw, ok)], ok

    def scores(self, prompts: Sequence, completions: Sequence, step: int | None = None,
               harmful: Sequence[bool] | None = None, log_metric=None) -> JudgedBatch:
        """Judge every completion's answer (and reasoning) for its prompt."""
        texts = [_completion_text(c) for c in completions]
        key = (step, tuple(map(_prompt_key, prompts)), tuple(texts))
        if key == self._key:
            return self._batch
        users, split = [_user_text(p) for p in prompts], [split_reasoning(t) for t in texts]
        answer, ok = self._score(users, [s.answer for s in split])
        if self.judge_reasoning:
            reasoning, ok_r = self._score(users, [s.reasoning for s in split])
            ok = [a and b for a, b in zip(ok, ok_r)]
        else:
            reasoning = [NEUTRAL] * len(texts)
        self._key, self._batch = key, JudgedBatch(answer, reasoning, ok)
        self._log(harmful, log_metric)
        return self._batch

    def _log(self, harmful: Sequence[bool] | None, log_metric) -> None:
        """SSA statistics of the new batch (harmful prompts, judged items) and the failure count."""
        b = self._batch
        if self.judge_reasoning and harmful is not None:
            rows = [(1 - r >= HARM_THRESHOLD, 1 - a >= HARM_THRESHOLD)
                    for r, a, ok, h in zip(b.reasoning, b.answer, b.ok, harmful) if h and ok]
            ssa = [r_harm and not a_harm for r_harm, a_harm in rows]
            self.ssa_count += sum(ssa)
            self.harmful_count += len(rows)
            if log_metric is not None and rows:
                log_metric("safety/ssa_rate", _mean(ssa))
                log_metric("safety/ssa_rate_cumulative", self.ssa_count / self.harmful_count)
                log_metric("safety/reasoning_harm_rate", _mean([r for r, _ in rows]))
                log_metric("safety/response_harm_rate", _mean([a for _, a in rows]))
        if log_metric is not None:
            log_metric("safety/judge_failures", float(self.failures))


# ----------------------------------------------------------------------------- rewards

def _latent_terms(scorer, prompts, completion_ids, applied: list[bool], step) -> dict[str, Tensor] | None:
    """The scorer's terms for the applied rows only (n,), or None when no row applies. R_ls and
    R_cons pass the same rows, so they share one cached forward; masked rows cost nothing."""
    idx = [i for i, a in enumerate(applied) if a]
    if not idx:
        return None
    return scorer.terms([prompts[i] for i in idx], [completion_ids[i] for i in idx], step)


def _scatter(values: list[float], applied: list[bool]) -> list[float]:
    """Per-completion list: the applied rows' ``values`` in order, MASKED_VALUE elsewhere."""
    it = iter(values)
    return [next(it) if a else MASKED_VALUE for a in applied]


class _Reward(ABC):
    """TRL reward callable: ``values(...)`` gives the rewards and where they apply; the mean over
    the applied completions is logged as ``<name>/applied_mean``."""

    name = "reward"

    def __init__(self, harmful_only: bool = False):
        self.__name__ = self.name          # TRL names a callable by its __name__
        self.harmful_only = harmful_only

    def _applies(self, kwargs: dict, n: int) -> list[bool]:
        if not self.harmful_only:
            return [True] * n
        flags = _harmful_flags(kwargs, n)
        if flags is None:
            raise ValueError(f"{self.name} with harmful_only=True needs a 'harmful' (or 'kind') dataset column")
        return flags

    @abstractmethod
    def values(self, prompts, completions, completion_ids, kwargs: dict) -> tuple[list[float], list[bool]]:
        """Per-completion reward and whether the term applied (False: the masked constant)."""

    def __call__(self, prompts, completions, completion_ids, **kwargs) -> list[float]:
        vals, applied = self.values(prompts, completions, completion_ids, kwargs)
        used = [v for v, a in zip(vals, applied) if a]
        if kwargs.get("log_metric") is not None and used:
            kwargs["log_metric"](f"{self.name}/applied_mean", _mean(used))
        return vals


class LatentSafetyReward(_Reward):
    """R_ls = α·cos(z, μ_safe) − β·cos(z, μ_unsafe) + γ·cos(z, μ_rethink) (paper §4.2)."""

    name = "r_ls"

    def __init__(self, scorer: LatentScorer, alpha: float = 1.0, beta: float = 1.0, gamma: float = 0.5,
                 harmful_only: bool = True):
        super().__init__(harmful_only)
        self.scorer, self.alpha, self.beta, self.gamma = scorer, alpha, beta, gamma

    def values(self, prompts, completions, completion_ids, kwargs):
        applied = self._applies(kwargs, len(prompts))
        t = _latent_terms(self.scorer, prompts, completion_ids, applied, _step(kwargs))
        if t is None:                      # an all-benign batch needs no forward
            return [MASKED_VALUE] * len(prompts), applied
        r = self.alpha * t["cos_safe"] - self.beta * t["cos_unsafe"] + self.gamma * t["cos_rethink"]  # (n,)
        return _scatter(r.tolist(), applied), applied


class TextSafetyReward(_Reward):
    """R_txt = 2·P(safe | y) − 1 on every prompt: +1 for a safe answer, −1 for a fully harmful one."""

    name = "r_txt"

    def __init__(self, text: TextJudge):
        super().__init__(harmful_only=False)
        self.text = text

    def values(self, prompts, completions, completion_ids, kwargs):
        judged = self.text.scores(prompts, completions, _step(kwargs), _harmful_flags(kwargs, len(prompts)),
                                  kwargs.get("log_metric"))
        return [2.0 * p - 1.0 for p in judged.answer], [True] * len(prompts)


class ConsistencyReward(_Reward):
    """R_cons = 1 − |p_z − P(safe | y)| (paper §4.2): latent and text verdicts must agree."""

    name = "r_cons"

    def __init__(self, scorer: LatentScorer, text: TextJudge, harmful_only: bool = True):
        super().__init__(harmful_only)
        self.scorer, self.text = scorer, text

    def values(self, prompts, completions, completion_ids, kwargs):
        n, harmful = len(prompts), _harmful_flags(kwargs, len(prompts))
        applied = self._applies(kwargs, n)
        judged = self.text.scores(prompts, completions, _step(kwargs), harmful, kwargs.get("log_metric"))
        t = _latent_terms(self.scorer, prompts, completion_ids, applied, _step(kwargs))
        if t is None:
            return [MASKED_VALUE] * n, applied
        p_z = _scatter(t["p_z"].tolist(), applied)
        vals = [1.0 - abs(z - p) if a else MASKED_VALUE for z, p, a in zip(p_z, judged.answer, applied)]
        if kwargs.get("log_metric") is not None:
            kwargs["log_metric"]("latent/p_z_applied_mean", _mean(t["p_z"].tolist()))
        return vals, applied


class TaskReward(_Reward):
    """1.0 when an arithmetic prompt's answer ends in ``the answer is <target>``, else 0.0; 0.0
    (constant, zero advantage) on other prompts. Ours, off by default (deviation 5). Reads the
    ``kind`` and ``target`` dataset columns."""

    name = "r_task"

    def values(self, prompts, completions, completion_ids, kwargs):
        kinds, targets = kwargs.get("kind"), kwargs.get("target")
        if kinds is None or targets is None:
            raise ValueError("TaskReward needs the 'kind' and 'target' dataset columns")
        applied = [k == "arithmetic" for k in kinds]
        answers = [split_reasoning(_completion_text(c)).answer for c in completions]
        vals = [float(a and parse_final_number(ans) == str(t)) for ans, t, a in zip(answers, targets, applied)]
        return vals, applied


# ----------------------------------------------------------------------------- factory

def variant_weights(variant: str, weights: tuple[float, float, float] = (0.5, 0.4, 0.2),
                    task_reward: float = 0.0) -> list[float]:
    """``reward_weights`` of a variant, in the order of its reward list (R_task last when its
    weight is > 0). Output-only keeps w_txt: under TRL's group std scaling a lone reward's scale
    cancels, and without scaling the text term weighs what it weighs in CRAFT."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown R2L variant {variant!r}; choose one of {list(VARIANTS)}")
    by_term = dict(zip(("ls", "txt", "cons"), weights))
    return [float(by_term[t]) for t in VARIANTS[variant]] + ([float(task_reward)] if task_reward > 0 else [])


def build_rewards(variant: str, heads: LCLRHeads | None, spec: LatentSpec | None,
                  tokenizer: PreTrainedTokenizerBase | None, judge: Judge,
                  weights: tuple[float, float, float] = (0.5, 0.4, 0.2),
                  alpha_beta_gamma: tuple[float, float, float] = (1.0, 1.0, 0.5),
                  harmful_only: bool = True, task_reward: float = 0.0,
                  ) -> tuple[list[_Reward], list[float], LatentScorer | None]:
    """The reward list, its weights and the shared scorer (None when no latent term is used).

    Variants (paper §6 ablations): ``output_only`` [R_txt]; ``craft`` and ``no_lclr``
    [R_ls, R_txt, R_cons]; ``no_cons`` [R_ls, R_txt]; ``no_ls`` [R_txt, R_cons]; ``no_txt``
    [R_ls, R_cons]. For ``no_lclr`` pass ``random_heads(trained, seed)``. ``task_reward`` > 0
    appends :class:`TaskReward` with that weight. Remember ``scorer.trainer = trainer``.
    """
    reward_weights = variant_weights(variant, weights, task_reward)
    terms = VARIANTS[variant]
    scorer = None
    if "ls" in terms or "cons" in terms:
        if heads is None or spec is None or tokenizer is None:
            raise ValueError(f"variant {variant!r} needs heads, spec and tokenizer for its latent terms")
        scorer = LatentScorer(heads, spec, tokenizer)
    text = TextJudge(judge)
    alpha, beta, gamma = alpha_beta_gamma
    make = {"ls": lambda: LatentSafetyReward(scorer, alpha, beta, gamma, harmful_only),
            "txt": lambda: TextSafetyReward(text),
            "cons": lambda: ConsistencyReward(scorer, text, harmful_only)}
    funcs = [make[t]() for t in terms] + ([TaskReward()] if task_reward > 0 else [])
    return funcs, reward_weights, scorer
