"""R2D-R1 → labelled safe / unsafe / rethink reasoning traces for LCLR (CRAFT §4.1).

CRAFT trains its latent heads on traces derived from R2D-R1 (Zhu et al. 2025, "Reasoning-to-Defend",
arXiv 2502.12970; code github.com/chuhac/Reasoning-to-Defend, whose README links the data as the
Hugging Face dataset ``chuhac/R2D-R1``) but never released the conversion.

Source format (as R2D's ``r2d_train/train.py`` reads it): JSON objects with string fields
``instruction`` (the prompt), ``input`` (context, often empty) and ``output`` (reasoning distilled
from DeepSeek-R1, usually in ``<think> … </think>``, then the answer). Each reasoning step ends with
a pivot token ``[SAFE]``, ``[UNSAFE]`` or ``[RETHINK]``, the running verdict on the response's
safety (R2D adds them to the vocabulary; its Contrastive Pivot Optimization contrasts SAFE with
UNSAFE only, RETHINK gets plain next-token loss).

Conversion (every rule below is our decision; the CRAFT authors published none):

* Fields are matched case-insensitively. prompt = ``instruction``, then a blank line (``"\\n\\n"``)
  and ``input`` when ``input`` is non-empty (the Alpaca joining; R2D's training script concatenates
  the token ids with no separator). Each part is cleaned (last rule) before the join.
* Reasoning / answer boundary: if ``output`` contains ``</think>``, reasoning = everything before
  the LAST ``</think>`` (``<think>`` tags removed) and answer = everything after it (as in
  :func:`craft.models.split_reasoning`). Otherwise reasoning = everything up to and including the
  LAST pivot tag, answer = the rest. Only tags inside the reasoning count for the label.
* Sentences: the reasoning is cut at each pivot tag into steps; a step is split into sentences
  after ``.``, ``!`` or ``?`` followed by whitespace, and at newlines. A tag belongs to the sentence
  right before it; other sentences carry ``None``.
* Label (:func:`label_trace`), from the ordered tags of the whole reasoning span: ``unsafe`` if an
  ``[UNSAFE]`` occurs with no ``[RETHINK]`` after the last ``[UNSAFE]`` (the trace ends in unsafe
  reasoning); else ``rethink`` if any ``[RETHINK]`` occurs (it turned around, or stopped to
  reconsider; with ``rethink_needs_unsafe=True`` a trace with no ``[UNSAFE]`` at all is ``safe``
  instead); else ``safe`` (every tag is ``[SAFE]``). A reasoning span with no tag is never guessed
  at: the record is skipped and counted as ``skipped_no_tags``.
* Every pivot tag (any case or inner spacing, e.g. ``[ Safe ]``) is removed from prompt, reasoning
  and answer and each whitespace run becomes one space (the prompt's join excepted), so the hidden
  states LCLR encodes never see a tag. Other brackets (e.g. ``[details omitted]``) are kept.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["PIVOTS", "Trace", "convert_r2d", "convert_record", "label_trace", "load_r2d",
           "split_tagged_sentences"]

PIVOTS = ("[SAFE]", "[UNSAFE]", "[RETHINK]")
LABELS = ("safe", "unsafe", "rethink")
SKIPS = ("skipped_no_tags", "skipped_missing_field", "skipped_empty_reasoning")
_TAG = re.compile(r"\[\s*(SAFE|UNSAFE|RETHINK)\s*\]", re.IGNORECASE)
_SENT = re.compile(r"(?<=[.!?])\s+|\n+")
_HOW_TO_GET = ("Obtain the R2D-R1 release of Zhu et al. 2025 (Hugging Face dataset "
               "'chuhac/R2D-R1', linked from https://github.com/chuhac/Reasoning-to-Defend), save "
               "it as .json (a list) or .jsonl (one record a line) with fields instruction/input/"
               "output, and pass that local path.")


@dataclass(frozen=True)
class Trace:
    """One labelled reasoning trace; every text is tag-free with whitespace normalised."""

    prompt: str
    reasoning_trace: str
    answer: str
    label: str  # one of LABELS
    n_sentences: int
    source_index: int  # position of the record in the input


def _clean(text: str) -> str:
    """Remove every pivot tag and collapse whitespace runs to one space."""
    return " ".join(_TAG.sub(" ", text).split())


def _canon(tag: str) -> str:
    """``"[ safe ]"`` → ``"[SAFE]"``; ValueError for anything that is not a pivot tag."""
    m = _TAG.fullmatch(tag.strip())
    if m is None:
        raise ValueError(f"not a pivot tag: {tag!r} (expected one of {PIVOTS})")
    return f"[{m.group(1).upper()}]"


def split_tagged_sentences(text: str) -> list[tuple[str, str | None]]:
    """Split tagged reasoning into ``(sentence, tag)``; tag = the pivot right after it, or None.

    Sentences are tag-free and whitespace-normalised; empty ones are dropped (so of two tags in a
    row only the first is attached to the sentence before them).
    """
    out: list[tuple[str, str | None]] = []
    pos = 0
    for m in [*_TAG.finditer(text), None]:
        chunk = text[pos : m.start() if m else len(text)]
        sents = [s for s in (_clean(p) for p in _SENT.split(chunk)) if s]
        out.extend((s, None) for s in sents[:-1])
        if sents:
            out.append((sents[-1], _canon(m.group(0)) if m else None))
        pos = m.end() if m else pos
    return out


def label_trace(tags: Iterable[str | None], *, rethink_needs_unsafe: bool = False) -> str | None:
    """The label from ordered pivot tags (None entries ignored; rule in the module docstring).

    Returns None when there is no tag at all: such a trace is skipped, never guessed at.
    """
    seq = [_canon(t) for t in tags if t]
    if not seq:
        return None
    last_unsafe = max((i for i, t in enumerate(seq) if t == "[UNSAFE]"), default=-1)
    rethinks = [i for i, t in enumerate(seq) if t == "[RETHINK]"]
    if last_unsafe >= 0 and not any(i > last_unsafe for i in rethinks):
        return "unsafe"
    if rethinks and (last_unsafe >= 0 or not rethink_needs_unsafe):
        return "rethink"
    return "safe"


def _field(record: dict[str, Any], name: str) -> str | None:
    """A field by case-insensitive name; None when absent; null becomes ""."""
    for key, value in record.items():
        if isinstance(key, str) and key.strip().lower() == name:
            return "" if value is None else str(value)
    return None


def _convert(record: Any, index: int, rethink_needs_unsafe: bool) -> Trace | str:
    """A Trace, or the name of the SKIPS counter saying why the record was skipped."""
    if not isinstance(record, dict):
        return "skipped_missing_field"
    instruction, inp, output = (_field(record, k) for k in ("instruction", "input", "output"))
    if instruction is None or output is None:
        return "skipped_missing_field"
    cut = output.rfind("</think>")  # boundary rule of the module docstring
    if cut < 0:
        cut = max((m.end() for m in _TAG.finditer(output)), default=len(output))
    raw_reasoning = output[:cut].replace("<think>", " ").replace("</think>", " ")
    raw_answer = output[cut:].removeprefix("</think>")
    tags = [m.group(0) for m in _TAG.finditer(raw_reasoning)]
    if not tags:
        return "skipped_no_tags"
    sentences = split_tagged_sentences(raw_reasoning)
    if not sentences:
        return "skipped_empty_reasoning"
    return Trace(prompt="\n\n".join(p for p in (_clean(instruction), _clean(inp or "")) if p),
                 reasoning_trace=_clean(raw_reasoning), answer=_clean(raw_answer),
                 label=label_trace(tags, rethink_needs_unsafe=rethink_needs_unsafe),
                 n_sentences=len(sentences), source_index=index)


def convert_record(record: dict, index: int, *,
                   rethink_needs_unsafe: bool = False) -> Trace | None:
    """Convert one R2D record; None when it is skipped (see :func:`convert_r2d` for why)."""
    out = _convert(record, index, rethink_needs_unsafe)
    return out if isinstance(out, Trace) else None


def convert_r2d(records: Iterable[dict], *, rethink_needs_unsafe: bool = False
                ) -> tuple[list[Trace], dict[str, int]]:
    """Convert R2D records; returns the traces and counts.

    Counts keys: ``total``, one per label in LABELS, and one per skip reason in SKIPS:
    ``skipped_no_tags`` (reasoning without any pivot tag), ``skipped_missing_field`` (no
    instruction/output field, or not a JSON object), ``skipped_empty_reasoning`` (tags, no text).
    """
    outs = [_convert(record, i, rethink_needs_unsafe) for i, record in enumerate(records)]
    counts = dict.fromkeys(("total", *LABELS, *SKIPS), 0)
    counts["total"] = len(outs)
    for out in outs:
        counts[out.label if isinstance(out, Trace) else out] += 1
    return [out for out in outs if isinstance(out, Trace)], counts


def load_r2d(path: str | Path) -> list[dict]:
    """Read R2D records from a .json file (a list of objects) or .jsonl (one object a line).

    Raises:
        FileNotFoundError: no file at ``path``; the message says how to obtain the data.
        ValueError: malformed JSON (the message names the file and line), or a .json not a list.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"R2D-R1 data not found at {path}. {_HOW_TO_GET}")
    text, suffix = path.read_text(encoding="utf-8"), path.suffix.lower()
    if suffix == ".json" or (suffix != ".jsonl" and text.lstrip()[:1] == "["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: line {e.lineno}: malformed JSON: {e.msg}") from e
        if not isinstance(data, list):
            raise ValueError(f"{path}: expected a JSON list of records, got {type(data).__name__}")
        return data
    records = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        try:
            records += [json.loads(line)] if line.strip() else []
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: line {lineno}: malformed JSON: {e.msg}") from e
    return records
