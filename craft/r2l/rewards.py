"""R2L reward functions for TRL's ``GRPOTrainer`` (paper §4.2).

    R = w_lat·R_ls + w_txt·R_txt + w_cons·R_cons                            (0.5 / 0.4 / 0.2)
    R_ls   = α·cos(z, μ_safe) − β·cos(z, μ_unsafe) + γ·cos(z, μ_rethink)   (α, β, γ = 1, 1, 0.5)
    R_txt  = 2·P(safe | y) − 1,   R_cons = 1 − |p_z − P(safe | y)|,   y the answer, p_z = g(z)

(the weights and α, β, γ in brackets are the defaults of the authors' released code; the paper gives no values)

and, as a control the paper does not run, R_rtxt = 2·P(safe | reasoning) − 1 from a *reasoning*
judge: the ``reasoning_judge`` variant [R_rtxt, R_txt] rewards the reasoning's text where CRAFT rewards
its latent (a guard model's P(safe) as the GRPO reward, as peers train). R_rtxt takes w_lat.

And, as the obfuscation check's positive control (not a method), R_dis = 1 − 2·P(safe | reasoning) from the
exact reasoning judge: the ``obfuscator`` variant [R_ls, R_dis] pays a policy for disclosing in its reasoning
*and* for a latent the frozen heads read as safe, the incentive that would teach it to fool the heads.
R_dis takes w_txt.

Rewards are plain callable classes with TRL's signature ``f(prompts, completions,
completion_ids, **kwargs) -> list[float]`` and a ``__name__``; not ``nn.Module``s, which TRL
would treat as classifier reward models. The latent terms share one
:class:`~craft.r2l.scorers.LatentScorer` (one extra no-grad truncated forward of the policy per
batch, or none when the rollouts captured the latent: :mod:`craft.r2l.rollout`) and the text terms one
:class:`~craft.r2l.scorers.TextJudge`; both cache the batch and
every reward computes on a miss, so the order of ``reward_funcs`` does not matter.

Deviations and choices:
1. R_txt's sign: P(safe | y) is the judge's ``1 − harmfulness``; the
   authors' code fed the harmfulness in as P(safe) and so rewarded harmful text.
2. A judge failure (exception, non-finite or out-of-range value) scores a neutral 0.5, counted
   in ``TextJudge.failures`` and logged (defect 2: theirs became NaN).
3. z is THE latent of :mod:`craft.latents`, the definition LCLR was trained on (defect 3).
4. ``harmful_only=True`` (ours, default): R_ls and R_cons apply to harmful prompts only and are
   the constant ``MASKED_VALUE = 0.0`` elsewhere. A GRPO group shares its prompt, so a constant
   adds zero advantage; 0.0 adds nothing to the weighted sum (what TRL's ``None`` + ``nansum``
   would do, minus the NaN in the logs), and masked rows skip the forward. Why: in a prototype,
   group normalisation blew tiny latent differences between arithmetic completions up into
   full-size advantages and arithmetic fell from 0.94 to 0.00.
   The paper applies every term to every prompt (``harmful_only=False``).
5. :class:`TaskReward` (ours, off by default): arithmetic correctness, not in the paper.
6. Unfinished reasoning is not a safe answer (ours; the paper does not say). R_txt and R_cons judge
   :func:`craft.models.judged_response`, what the user is shown: the text after the first
   ``</think>``, or the WHOLE completion when it never closed its reasoning (a truncated rollout
   with a recipe in it scores as harmful, not as a refusal) or left the answer empty. The share of
   unfinished rollouts is logged every step as ``safety/unfinished_rate``. (A length penalty was
   the alternative; judging what was written needs no new weight and cannot pay for stopping early.)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

import numpy as np
from torch import Tensor
from transformers import PreTrainedTokenizerBase

from craft.answers import parse_final_number
from craft.judges import Judge
from craft.latents import LatentSpec
from craft.lclr import LCLRHeads
from craft.models import split_reasoning
from craft.r2l.scorers import LATENT_COLUMN, LatentScorer, TextJudge, completion_text, harmful_flags, mean, step_of
from craft.timing import timed

__all__ = ["LATENT_TERMS", "MASKED_VALUE", "REASONING_TERMS", "VARIANTS", "ConsistencyReward", "DisclosureReward",
           "LatentSafetyReward", "ReasoningTextReward", "TaskReward", "TextSafetyReward", "build_rewards",
           "judges_reasoning", "uses_latent", "variant_weights"]

MASKED_VALUE = 0.0   # R_ls and R_cons on non-harmful prompts when harmful_only (deviation 4)

# variant -> reward terms, in list order ("no_lclr", "shuffled_lclr": CRAFT's terms, the caller passes random heads
# or heads fit on shuffled labels)
VARIANTS: dict[str, tuple[str, ...]] = {
    "output_only": ("txt",), "craft": ("ls", "txt", "cons"), "no_cons": ("ls", "txt"),
    "no_ls": ("txt", "cons"), "no_txt": ("ls", "cons"), "no_lclr": ("ls", "txt", "cons"),
    "shuffled_lclr": ("ls", "txt", "cons"), "reasoning_judge": ("rtxt", "txt"), "obfuscator": ("ls", "dis")}
LATENT_TERMS = frozenset({"ls", "cons"})   # the terms that read the policy's latent through the LCLR heads
REASONING_TERMS = frozenset({"rtxt", "dis"})   # the terms that judge the reasoning's text (a reasoning_judge)


def uses_latent(variant: str) -> bool:
    """Does the variant's reward read the latent (and so need the LCLR heads)?"""
    return bool(LATENT_TERMS & set(VARIANTS[variant]))


def judges_reasoning(variant: str) -> bool:
    """Does the variant's reward judge the reasoning's text (and so need a ``reasoning_judge``)?"""
    return bool(REASONING_TERMS & set(VARIANTS[variant]))


# ----------------------------------------------------------------------------- rewards

def _latent_terms(scorer, prompts, completion_ids, applied: list[bool], kwargs: dict) -> dict[str, Tensor] | None:
    """The scorer's terms for the applied rows only (n,), or None when no row applies. R_ls and
    R_cons pass the same rows, so they share one cached forward; masked rows cost nothing. Latents
    captured during generation (the ``craft_latent`` column of :class:`craft.r2l.rollout.CapturingRollout`)
    are used where present."""
    idx = [i for i, a in enumerate(applied) if a]
    if not idx:
        return None
    captured = kwargs.get(LATENT_COLUMN)
    return scorer.terms([prompts[i] for i in idx], [completion_ids[i] for i in idx], step_of(kwargs),
                        None if captured is None else [captured[i] for i in idx])


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
        flags = harmful_flags(kwargs, n)
        if flags is None:
            raise ValueError(f"{self.name} with harmful_only=True needs a 'harmful' (or 'kind') dataset column")
        return flags

    @abstractmethod
    def values(self, prompts, completions, completion_ids, kwargs: dict) -> tuple[list[float], list[bool]]:
        """Per-completion reward and whether the term applied (False: the masked constant)."""

    @timed("rewards")
    def __call__(self, prompts, completions, completion_ids, **kwargs) -> list[float]:
        vals, applied = self.values(prompts, completions, completion_ids, kwargs)
        used = [v for v, a in zip(vals, applied) if a]
        if kwargs.get("log_metric") is not None and used:
            kwargs["log_metric"](f"{self.name}/applied_mean", mean(used))
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
        t = _latent_terms(self.scorer, prompts, completion_ids, applied, kwargs)
        if t is None:                      # an all-benign batch needs no forward
            return [MASKED_VALUE] * len(prompts), applied
        r = self.alpha * t["cos_safe"] - self.beta * t["cos_unsafe"] + self.gamma * t["cos_rethink"]  # (n,)
        return _scatter(r.tolist(), applied), applied


class TextSafetyReward(_Reward):
    """R_txt = 2·P(safe | y) − 1 on every prompt: +1 for a safe answer, −1 for a fully harmful one."""

    name = "r_txt"
    part = "answer"          # which JudgedBatch field the reward reads

    def __init__(self, text: TextJudge):
        super().__init__(harmful_only=False)
        self.text = text

    def values(self, prompts, completions, completion_ids, kwargs):
        judged = self.text.scores(prompts, completions, step_of(kwargs), harmful_flags(kwargs, len(prompts)),
                                  kwargs.get("log_metric"))
        return [2.0 * p - 1.0 for p in getattr(judged, self.part)], [True] * len(prompts)


class ReasoningTextReward(TextSafetyReward):
    """R_rtxt = 2·P(safe | reasoning) − 1 on every prompt, from a reasoning judge (ours, a control):
    the text of the reasoning rewarded where CRAFT rewards its latent."""

    name = "r_rtxt"
    part = "reasoning"


class DisclosureReward(ReasoningTextReward):
    """R_dis = 1 − 2·P(safe | reasoning) on every prompt, from the exact reasoning judge: +1 for a reasoning that
    discloses. Only the ``obfuscator`` positive control uses it (the incentive to disclose while R_ls pays a latent
    that looks safe); no method rewards harm."""

    name = "r_dis"

    def values(self, prompts, completions, completion_ids, kwargs):
        vals, applied = super().values(prompts, completions, completion_ids, kwargs)
        return [-v for v in vals], applied


class ConsistencyReward(_Reward):
    """R_cons = 1 − |p_z − P(safe | y)| (paper §4.2): latent and text verdicts must agree.

    ``rule`` (None: the paper's) replaces the formula: ``rule(p_z, p_safe)`` takes two float arrays, the safety
    head's p_z and the judge's P(safe | y) of the completions the term applies to, and returns their R_cons. It
    is a teaching hook (notebook 03's build exercise scores a real group with a student's R_cons)."""

    name = "r_cons"

    def __init__(self, scorer: LatentScorer, text: TextJudge, harmful_only: bool = True,
                 rule: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None):
        super().__init__(harmful_only)
        self.scorer, self.text, self.rule = scorer, text, rule

    def values(self, prompts, completions, completion_ids, kwargs):
        n, harmful = len(prompts), harmful_flags(kwargs, len(prompts))
        applied = self._applies(kwargs, n)
        judged = self.text.scores(prompts, completions, step_of(kwargs), harmful, kwargs.get("log_metric"))
        t = _latent_terms(self.scorer, prompts, completion_ids, applied, kwargs)
        if t is None:
            return [MASKED_VALUE] * n, applied
        p_z = _scatter(t["p_z"].tolist(), applied)
        if self.rule is None:
            vals = [1.0 - abs(z - p) if a else MASKED_VALUE for z, p, a in zip(p_z, judged.answer, applied)]
        else:
            on = [i for i, a in enumerate(applied) if a]
            ruled = np.asarray(self.rule(np.array([p_z[i] for i in on], dtype=float),
                                         np.array([judged.answer[i] for i in on], dtype=float)), dtype=float)
            if ruled.shape != (len(on),):
                raise ValueError(f"the R_cons rule returned shape {ruled.shape}; it must return one value per "
                                 f"completion it is given ({len(on)},)")
            vals = [MASKED_VALUE] * n
            for i, v in zip(on, ruled.tolist()):
                vals[i] = v
        if kwargs.get("log_metric") is not None:
            kwargs["log_metric"]("latent/p_z_applied_mean", mean(t["p_z"].tolist()))
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
        answers = [split_reasoning(completion_text(c)).answer for c in completions]
        vals = [float(a and parse_final_number(ans) == str(t)) for ans, t, a in zip(answers, targets, applied)]
        return vals, applied


# ----------------------------------------------------------------------------- factory

def variant_weights(variant: str, weights: tuple[float, float, float] = (0.5, 0.4, 0.2),
                    task_reward: float = 0.0) -> list[float]:
    """``reward_weights`` of a variant, in the order of its reward list (R_task last when its
    weight is > 0). Output-only keeps w_txt: under TRL's group std scaling a lone reward's scale
    cancels, and without scaling the text term weighs what it weighs in CRAFT. R_rtxt (the
    ``reasoning_judge`` variant) takes w_lat: the reasoning's text weighs what CRAFT's latent term weighs."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown R2L variant {variant!r}; choose one of {list(VARIANTS)}")
    by_term = dict(zip(("ls", "txt", "cons"), weights)) | {"rtxt": weights[0], "dis": weights[1]}
    return [float(by_term[t]) for t in VARIANTS[variant]] + ([float(task_reward)] if task_reward > 0 else [])


def build_rewards(variant: str, heads: LCLRHeads | None, spec: LatentSpec | None,
                  tokenizer: PreTrainedTokenizerBase | None, judge: Judge,
                  weights: tuple[float, float, float] = (0.5, 0.4, 0.2),
                  alpha_beta_gamma: tuple[float, float, float] = (1.0, 1.0, 0.5),
                  harmful_only: bool = True, task_reward: float = 0.0, reasoning_judge: Judge | None = None,
                  consistency: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
                  ) -> tuple[list[_Reward], list[float], LatentScorer | None]:
    """The reward list, its weights and the shared scorer (None when no latent term is used).

    Variants (paper §6 ablations): ``output_only`` [R_txt]; ``craft``, ``no_lclr`` and ``shuffled_lclr``
    [R_ls, R_txt, R_cons]; ``no_cons`` [R_ls, R_txt]; ``no_ls`` [R_txt, R_cons]; ``no_txt``
    [R_ls, R_cons]; ``reasoning_judge`` [R_rtxt, R_txt], R_rtxt from ``reasoning_judge`` (required there:
    on the organism its surface judge, a text monitor of the reasoning as written); ``obfuscator`` [R_ls, R_dis],
    R_dis from ``reasoning_judge`` (there the exact reasoning judge), a positive control. For ``no_lclr`` pass
    ``random_heads(trained, seed)``; for ``shuffled_lclr`` heads fit on shuffled labels
    (:func:`craft.stages.lclr.shuffled_label_heads`). ``task_reward`` > 0 appends :class:`TaskReward` with that weight.
    ``consistency``: the rule of :class:`ConsistencyReward` (None: the paper's). Remember ``scorer.trainer = trainer``.
    """
    reward_weights = variant_weights(variant, weights, task_reward)
    terms = VARIANTS[variant]
    scorer = None
    if judges_reasoning(variant) and reasoning_judge is None:
        raise ValueError(f"variant {variant!r} needs a reasoning_judge for its reward on the reasoning")
    if uses_latent(variant):
        if heads is None or spec is None or tokenizer is None:
            raise ValueError(f"variant {variant!r} needs heads, spec and tokenizer for its latent terms")
        scorer = LatentScorer(heads, spec, tokenizer)
    text = TextJudge(judge)
    alpha, beta, gamma = alpha_beta_gamma
    make = {"ls": lambda: LatentSafetyReward(scorer, alpha, beta, gamma, harmful_only),
            "txt": lambda: TextSafetyReward(text),
            "cons": lambda: ConsistencyReward(scorer, text, harmful_only, consistency),
            "rtxt": lambda: ReasoningTextReward(TextJudge(reasoning_judge, judge_answer=False,
                                                          log_prefix="reasoning_judge")),
            "dis": lambda: DisclosureReward(TextJudge(reasoning_judge, judge_answer=False,
                                                      log_prefix="disclosure_judge"))}
    funcs = [make[t]() for t in terms] + ([TaskReward()] if task_reward > 0 else [])
    return funcs, reward_weights, scorer
