"""The fuzzer's mutation operators without an LLM (:mod:`craft.attacks.fuzz`, a deviation from GPTFuzzer).

GPTFuzzer asks an LLM to crossover, expand, shorten and rephrase jailbreak templates; offline we have
none, so these act on sentences and words. A template is cut into sentences at ``.``, ``!``, ``?``
followed by white space, ``{goal}`` is always a sentence of its own, and sentences are re-joined with
one space. Each operator returns the mutant, or None when it cannot make a new one; all randomness
comes from the caller's ``numpy.random.Generator``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["GOAL", "MUTATIONS", "crossover", "expand", "rephrase", "sentences", "shorten"]

GOAL = "{goal}"
MUTATIONS = ("crossover", "expand", "shorten", "rephrase")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def sentences(template: str) -> list[str]:
    """``template`` cut into sentences; ``{goal}`` is always a sentence of its own."""
    out: list[str] = []
    for i, part in enumerate(template.split(GOAL)):
        if i:
            out.append(GOAL)
        out += [s for s in _SENTENCE_END.split(part.strip()) if s]
    return out


def _join(parts: Sequence[str]) -> str:
    return " ".join(parts)


def crossover(template: str, other: str, rng: np.random.Generator) -> str | None:
    """First sentences of ``template`` + last sentences of ``other`` (both cut at a sentence
    boundary, neither part empty), holding ``{goal}`` exactly once; None when no cut does."""
    a, b = sentences(template), sentences(other)
    cuts = [(i, j) for i in range(1, len(a) + 1) for j in range(len(b))
            if (a[:i] + b[j:]).count(GOAL) == 1 and _join(a[:i] + b[j:]) not in (template, other)]
    if not cuts:
        return None
    i, j = cuts[rng.integers(len(cuts))]
    return _join(a[:i] + b[j:])


def expand(template: str, other: str, rng: np.random.Generator) -> str | None:
    """A sentence of ``other`` (not its ``{goal}``) in front of ``template``; None when it has none."""
    pool = [s for s in sentences(other) if s != GOAL]
    if not pool:
        return None
    return _join([pool[rng.integers(len(pool))], *sentences(template)])


def shorten(template: str, rng: np.random.Generator) -> str | None:
    """``template`` without one of its sentences that is not ``{goal}``; None when it has none."""
    parts = sentences(template)
    drop = [i for i, s in enumerate(parts) if s != GOAL]
    if not drop:
        return None
    k = drop[rng.integers(len(drop))]
    return _join(parts[:k] + parts[k + 1:])


def _table_pattern(table: Mapping[str, Sequence[str]]) -> re.Pattern | None:
    keys = sorted((k for k, v in table.items() if any(s != k for s in v)), key=len, reverse=True)
    return re.compile(r"\b(" + "|".join(map(re.escape, keys)) + r")\b") if keys else None


def rephrase(template: str, table: Mapping[str, Sequence[str]], rng: np.random.Generator) -> str | None:
    """Words or phrases of ``template`` that are keys of ``table`` replaced by one of their synonyms
    (each match with probability 1/2, at least one; longest keys first; ``{goal}`` untouched);
    None when nothing matches."""
    pattern = _table_pattern(table)
    if pattern is None:
        return None
    parts = sentences(template)
    spots = [(k, m) for k, s in enumerate(parts) if s != GOAL for m in pattern.finditer(s)]
    if not spots:
        return None
    chosen = [rng.random() < 0.5 for _ in spots]
    chosen[rng.integers(len(spots))] = True
    for (k, m), pick in reversed(list(zip(spots, chosen))):      # right to left: offsets stay valid
        if pick:
            options = [s for s in table[m.group(0)] if s != m.group(0)]
            word = options[rng.integers(len(options))]
            parts[k] = parts[k][:m.start()] + word + parts[k][m.end():]
    return _join(parts)
