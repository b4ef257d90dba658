"""Final-answer checking for capability Pass@1 (paper §6: MATH-500, GSM8K) and the organism's
arithmetic (``the answer is N``).

The MATH-style matching follows the common normalisation (Hendrycks et al. 2021's ``is_equiv``;
Lightman et al. 2023's MATH-500 grader): strings are normalised, then compared exactly, then as
exact rationals when both are simple numbers (int, decimal, a/b, \\frac{a}{b}) -- parsed by our
own regular expressions, never evaluated -- or element by element for tuples and intervals. What
is left goes to Hugging Face's ``math-verify`` for symbolic equivalence (``\\sqrt{8}`` vs
``2\\sqrt{2}``). The normaliser stays in front because math-verify does not read the forms it
handles (``18 dollars``, ``(B)``, ``\\text{Evelyn}``), and because two different numbers are
decided there, never by a symbolic parse.
"""

from __future__ import annotations

import logging
import re
from contextlib import contextmanager
from fractions import Fraction

__all__ = ["SYMBOLIC_MAX_CHARS", "answers_match", "extract_final_answer", "normalize_answer", "parse_final_number",
           "symbolically_equal"]

_ANSWER_NUMBER = re.compile(r"answer is\s*(-?\d+)")


def parse_final_number(answer: str) -> str | None:
    """The number in the last ``answer is N`` of ``answer``, or None (the organism's answer format)."""
    found = _ANSWER_NUMBER.findall(answer)
    return found[-1] if found else None


_BOXED = re.compile(r"\\(?:boxed|fbox)\s*")
_ANSWER_IS = re.compile(r"answer is\s*:?\s*(.+)", re.IGNORECASE)
_HASHES = re.compile(r"####\s*(.+)")
_LAST_NUMBER = re.compile(r"(?:(?<![\w)])-)?(?:\d+(?:,\d{3})*(?:\.\d+)?|\.\d+)")
_DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_FRACTION = re.compile(r"([+-]?)\\frac\{([+-]?\d+(?:\.\d+)?)\}\{([+-]?\d+(?:\.\d+)?)\}")
_SLASH = re.compile(r"([+-]?\d+)/(\d+)")
_TRAILING_WORDS = re.compile(r"(-?[\d,]*\.?\d+)\s+[A-Za-z]+(?:\s+[A-Za-z]+)?")   # "18 dollars"
_BRACKETS = {"(": ")", "[": "]", "\\{": "\\}"}


def _last_boxed(text: str) -> str | None:
    """Content of the last complete ``\\boxed{…}`` (nested braces balanced; ``\\boxed 5`` too)."""
    for m in reversed(list(_BOXED.finditer(text))):
        i = m.end()
        if text[i:i + 1] != "{":
            token = re.match(r"[^\s$]+", text[i:])
            if token:
                return token.group(0)
            continue
        depth = 0
        for j in range(i, len(text)):
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            if depth == 0:
                return text[i + 1:j]
    return None  # none, or every one truncated before its closing brace


def _trim(answer: str) -> str:
    """Cut an ``answer is …`` / ``#### …`` capture at its sentence end; drop $ and **."""
    return re.split(r"\.(?:\s|$)", answer, maxsplit=1)[0].strip().strip("$*").strip()


def extract_final_answer(text: str) -> str | None:
    """The final answer in a completion: the last ``\\boxed{…}``, else the last ``answer is X``,
    else the last ``#### X``, else the last number; None when there is none."""
    boxed = _last_boxed(text)
    if boxed is not None:
        return boxed.strip()
    for pattern in (_ANSWER_IS, _HASHES):
        found = [_trim(a) for a in pattern.findall(text)]
        if found and found[-1]:
            return found[-1]
    numbers = _LAST_NUMBER.findall(text)
    return numbers[-1] if numbers else None


def _fix_fracs(s: str) -> str:
    """``\\frac12`` / ``\\frac1{2}`` / ``\\frac{1}2`` -> ``\\frac{1}{2}``; ``\\sqrt2`` -> ``\\sqrt{2}``."""
    s = re.sub(r"\\frac(\d)(\d)", r"\\frac{\1}{\2}", s)
    s = re.sub(r"\\frac(\d)\{", r"\\frac{\1}{", s)
    s = re.sub(r"\\frac\{([^{}]*)\}(\d)", r"\\frac{\1}{\2}", s)
    return re.sub(r"\\sqrt(\w)", r"\\sqrt{\1}", s)


def normalize_answer(s: str) -> str:
    """A canonical string for a final answer (MATH-style; see the section comment above).

    Unwraps ``\\boxed``; drops ``$``, ``\\left``/``\\right``, thin spaces (``\\!``, ``\\,``),
    ``\\%``, degrees, a trailing ``\\text{ unit}``, trailing plain unit words after a number,
    ``\\text{…}`` wrappers, a short ``x =`` prefix, a trailing ``.`` and all spaces; turns
    ``dfrac``/``tfrac`` into ``frac``, ``\\frac12`` into ``\\frac{1}{2}``, ``a/b`` into
    ``\\frac{a}{b}``, ``1,000`` into ``1000`` and ``(B)`` into ``B``.
    """
    s = str(s).strip()
    boxed = _last_boxed(s)
    s = (boxed if boxed is not None else s).replace("\n", " ").replace("\u2212", "-")
    s = re.sub(r"\\(?:left|right)(?![A-Za-z])", "", s)
    s = re.sub(r"\\[!,;: ]", "", s).replace("{,}", ",")
    s = re.sub(r"\^\s*\{?\\circ\}?|\\circ|°", "", s)
    s = s.replace("\\%", "").replace("%", "").replace("\\$", "").replace("$", "")
    s = re.sub(r"(.)\\(?:text|mbox|mathrm)\{\s[^{}]*\}(?:\^\{?\d\}?)?\s*$", r"\1", s)  # 5\text{ cm}^2
    s = re.sub(r"\\(?:text|textbf|textrm|mathrm|mathbf|mbox)\{([^{}]*)\}", r"\1", s).strip()
    unit = _TRAILING_WORDS.fullmatch(s)
    if unit and not re.search(r"\b(?:and|or|to)\b", s):
        s = unit.group(1)
    s = re.sub(r"\\[dt]frac", r"\\frac", s.replace(" ", ""))
    s = _fix_fracs(s).rstrip(".")
    if re.fullmatch(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?", s):
        s = s.replace(",", "")
    lhs, eq, rhs = s.partition("=")
    if eq and len(lhs) <= 2 and "=" not in rhs:
        s = rhs
    s = re.sub(r"^(-?)\.(\d)", r"\g<1>0.\2", s)
    if re.fullmatch(r"\([A-Za-z]\)", s):
        s = s[1]
    slash = _SLASH.fullmatch(s)
    return f"\\frac{{{slash.group(1)}}}{{{slash.group(2)}}}" if slash else s


def _as_number(s: str) -> Fraction | None:
    """An exact rational for a normalised simple number (int, decimal, \\frac{a}{b}), else None."""
    try:
        if _DECIMAL.fullmatch(s):
            return Fraction(s)
        m = _FRACTION.fullmatch(s)
        if m and Fraction(m.group(3)) != 0:
            value = Fraction(m.group(2)) / Fraction(m.group(3))
            return -value if m.group(1) == "-" else value
    except (ValueError, ZeroDivisionError):  # e.g. more digits than int() accepts
        pass
    return None


def _split_tuple(s: str) -> tuple[str, list[str]] | None:
    """(bracket pair, top-level comma-separated items) of a normalised ``(a,b)``-like answer."""
    opener = next((o for o in _BRACKETS if s.startswith(o) and s.endswith(_BRACKETS[o])), None)
    if opener is None:
        return None
    body, items, depth, start = s[len(opener):len(s) - len(_BRACKETS[opener])], [], 0, 0
    for i, ch in enumerate(body):
        depth += (ch in "([{") - (ch in ")]}")
        if ch == "," and depth == 0:
            items.append(body[start:i])
            start = i + 1
    return opener, items + [body[start:]]


def answers_match(pred: str | None, gold: str) -> bool:
    """Whether a predicted final answer (see :func:`extract_final_answer`) equals the gold one:
    equal normalised strings, equal simple numbers (``0.5`` = ``\\frac{1}{2}`` = ``1/2``), or
    tuples/intervals that match element by element."""
    if pred is None:
        return False
    p, g = normalize_answer(pred), normalize_answer(gold)
    if not p or not g:
        return False
    if p == g:
        return True
    a, b = _as_number(p), _as_number(g)
    if a is not None and b is not None:
        return a == b
    tp, tg = _split_tuple(p), _split_tuple(g)
    if tp is not None and tg is not None and len(tp[1]) > 1 and len(tg[1]) > 1:
        return tp[0] == tg[0] and len(tp[1]) == len(tg[1]) and all(answers_match(x, y) for x, y in zip(tp[1], tg[1]))
    return symbolically_equal(p, g)


SYMBOLIC_MAX_CHARS = 200   # longer answers are compared as text only (sympy can take very long on them)


def symbolically_equal(a: str, b: str) -> bool:
    """Hugging Face ``math-verify``'s symbolic equivalence of two final answers written in LaTeX
    (``\\sqrt{8}`` = ``2\\sqrt{2}``); False when either does not parse. No timeouts (math-verify's
    use signals, which only work on the main thread): inputs are capped at ``SYMBOLIC_MAX_CHARS``."""
    if not a or not b or max(len(a), len(b)) > SYMBOLIC_MAX_CHARS:
        return False
    from math_verify import LatexExtractionConfig, parse, verify

    config = [LatexExtractionConfig()]
    with _quiet("math_verify.parser", "math_verify.grader"):   # its "no timeout set" warning: we cap the input
        gold = parse(f"${b}$", extraction_config=config, fallback_mode="no_fallback", parsing_timeout=None)
        pred = parse(f"${a}$", extraction_config=config, fallback_mode="no_fallback", parsing_timeout=None)
        return bool(gold and pred and verify(gold, pred, timeout_seconds=None))


@contextmanager
def _quiet(*names: str):
    """Loggers ``names`` at ERROR for the duration (their levels restored after)."""
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
