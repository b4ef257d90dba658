"""Types shared by both scales: prompts, trace labels and labelled traces.

The organism (``craft.organism``) and the paper-scale data (``craft.paper``) both produce these, and
every method module (latents, LCLR, rewards, evaluation) consumes them, so that no method module
needs to know which scale it runs at.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["KINDS", "LABEL_NAMES", "RETHINK", "SAFE", "UNSAFE", "LabelledTrace", "Prompt"]

# Trace classes of paper §3-§4.1, in the order the LCLR heads and probes index them.
SAFE, UNSAFE, RETHINK = 0, 1, 2
LABEL_NAMES = ("safe", "unsafe", "rethink")

# What a prompt asks for: harmful requests (judged for harm), benign requests that must be answered
# (over-refusal), and capability problems with a checkable answer (arithmetic, MATH-500, GSM8K).
KINDS = ("harmful", "benign", "arithmetic", "capability")


@dataclass(frozen=True)
class Prompt:
    """One user prompt, with everything a judge or a metric needs to know about it.

    ``family`` is the attack family (organism) or attack name (paper: none, pap, pair), or the task
    for benign and capability prompts; ``regime`` groups families (organism: direct, jailbroken,
    dressed, held_out; paper: direct for the plain goal, wrapped for an attacked one; "benign" for
    non-harmful prompts). ``goal`` is the plain request behind an attacked prompt (what a judge is
    shown with the response); empty means the text itself.
    """

    text: str
    kind: str                   # one of KINDS
    family: str
    regime: str
    split: str = "eval"         # "train" | "eval"
    hazard: int = -1            # organism: index into World.hazards for harmful prompts
    target: str = ""            # capability: the gold answer; benign: the helpful answer (organism)
    goal: str = ""              # the plain request (empty: ``text``)
    benchmark: str = ""         # paper scale: jbb | strongreject | math500 | gsm8k
    novel: str = ""             # organism: "framing" | "wording" for evaluation-only phrasings
    unseen_hazard: bool = False  # organism: a hazard no probe, LCLR head or R2L run trains on

    @property
    def request(self) -> str:
        """What a judge is shown as the user's request: the goal, or the text itself."""
        return self.goal or self.text


@dataclass(frozen=True)
class LabelledTrace:
    """A reasoning trace with its class, for probing and LCLR (teacher-forced through the policy)."""

    prompt: str
    reasoning: str
    answer: str
    label: str                  # one of LABEL_NAMES
    group: str = ""             # what the trace is about (organism: the hazard), for the probe's control task

    @property
    def label_index(self) -> int:
        return LABEL_NAMES.index(self.label)
