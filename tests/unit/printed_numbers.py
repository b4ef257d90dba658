"""Whether a number a text quotes (the README's results, a notebook's markdown) is one a run printed.

Shared by ``test_readme.py`` and ``test_notebook_text.py``: the numbers of a text (decimals, and whole numbers
written as a percentage), the numbers an executed notebook's outputs hold, and the rule that matches the one
to the other at the precision the text writes."""

import json
import re
from pathlib import Path

# A decimal, or a whole number followed by "%"; never part of a word, a version or a longer number.
NUMBER = re.compile(r"(?<![\w.])[−-]?\d+\.\d+(?:e[−-]?\d+)?(?![\w.])|(?<![\w.])\d+(?= ?%)")
VALUE = re.compile(r"[−-]?\d+(?:\.\d+)?(?:e[−-]?\d+)?")
# Names, not results: "Theorem 5.1", "Exercise 3.4", "§4.2", "arXiv 2503.11926".
REFERENCE = re.compile(r"(?:Theorem|Definition|Exercises?|Table|Fig\.|Section|§|arXiv) ?\d+(?:\.\d+)*")


def outputs_text(notebook: Path) -> str:
    """Everything a committed notebook printed or displayed (its outputs, not its own text)."""
    parts = []
    for cell in json.loads(notebook.read_text(encoding="utf-8"))["cells"]:
        for out in cell.get("outputs", []):
            parts.append("".join(out.get("text", "")))
            data = out.get("data", {})
            parts += ["".join(data.get(kind, "")) for kind in ("text/plain", "text/html", "text/markdown")]
    return "\n".join(parts)


def values(text: str) -> list[float]:
    """Every number of ``text`` ("−" read as a minus sign)."""
    return [float(v.replace("−", "-")) for v in VALUE.findall(text)]


def printed(token: str, percent: bool, among: list[float]) -> bool:
    """Whether ``token`` (as the text writes it) is one of ``among`` at the text's precision, by size: a text
    says "cuts it by 89 %" or "11 tokens after" where the run prints −89.4 % or a lead of −11. A rate written
    as a percentage also matches the fraction; a number in e-notation matches to its 2 digits."""
    x = abs(float(token.replace("−", "-")))
    if "e" in token:
        return any(v and abs(abs(v) - x) <= 0.051 * x for v in among)
    decimals = len(token.split(".")[1]) if "." in token else 0
    wanted = [(x, decimals)] + ([(x / 100, decimals + 2)] if percent else [])
    return any(round(abs(v), d) == round(w, d) for w, d in wanted for v in among)


def unprinted(text: str, among: list[float]) -> list[str]:
    """Each number of ``text`` that :func:`printed` does not find in ``among``, as ``'number' in: context``
    (references such as "Theorem 5.1" are names, not numbers)."""
    text = REFERENCE.sub(" ", text)
    missing = []
    for m in NUMBER.finditer(text):
        percent = text[m.end():m.end() + 2].strip().startswith("%")
        if not printed(m.group(), percent, among):
            context = " ".join(text[max(0, m.start() - 60):m.end() + 15].split())
            missing.append(f"{m.group()!r} in: …{context}…")
    return missing
