"""Safety judges (paper §4.2, §6): ``score(prompts, texts) -> P(safe | text)`` in [0, 1].

=====================  ==================================================================
module                 what it holds
=====================  ==================================================================
:mod:`.base`           the :class:`Judge` protocol, :func:`finalise` (NaN for a failure),
                       the refusal detector and the refusal-string judge
:mod:`.rubrics`        the StrongREJECT and 7-criteria rubrics and their reply parsers
:mod:`.api`            :class:`ApiJudge`: a rubric judge on an OpenAI-compatible endpoint
:mod:`.local`          Llama Guard and the StrongREJECT grader (local models, one forward)
:mod:`.guard`          Qwen3Guard and ReasoningShield (judges of reasoning traces)
=====================  ==================================================================

This face re-exports what needs neither torch nor transformers; import the model judges from
:mod:`craft.judges.local` and :mod:`craft.judges.guard`.
"""

from craft.judges.api import ApiJudge
from craft.judges.base import (
    FAILED,
    HARM_THRESHOLD,
    REFUSAL_MARKERS,
    Judge,
    JudgeStats,
    JudgeUnavailableError,
    RefusalStringJudge,
    check_lengths,
    checked_scores,
    finalise,
    is_refusal,
    valid_probability,
)
from craft.judges.rubrics import (
    HARMFULNESS7_RUBRIC,
    RUBRICS,
    STRONGREJECT_RUBRIC,
    parse_harmfulness7,
    parse_strongreject,
)

__all__ = ["FAILED", "HARMFULNESS7_RUBRIC", "HARM_THRESHOLD", "REFUSAL_MARKERS", "RUBRICS", "STRONGREJECT_RUBRIC",
           "ApiJudge", "Judge", "JudgeStats", "JudgeUnavailableError", "RefusalStringJudge", "check_lengths",
           "checked_scores", "finalise", "is_refusal", "parse_harmfulness7", "parse_strongreject", "valid_probability"]
