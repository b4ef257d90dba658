"""Checks for the notebooks' exercises.

Every notebook ends with exercises in nbgrader's format: the cell a student fills in holds the instructor's
solution between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` (``make exercises`` writes the student
version, where nbgrader's ``ClearSolutions`` replaces that region with ``raise NotImplementedError()``), and a
check cell after it calls :func:`check` on the student's answer against a value the package computes from
the same run. A right answer prints one line; a wrong or missing one raises :class:`NotYet`, an
``AssertionError``, so the instructor's executed notebook (and CI, which runs it) fails when a solution goes
stale, and a student sees in red what is off.

In a notebook the line of a right answer carries the expected numbers in its output's metadata
(``craft_exercise``), never on the page. When nbval executes the instructor notebooks (``make nb-check``),
a check cell whose expected number an output above its exercise prints fails (:func:`answer_leaks`): an
exercise must not give its answer away.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

# Output metadata key of a check's right-answer line: {"name": ..., "expected": [numbers]}.
METADATA_KEY = "craft_exercise"
# What every table prints: too common to give an answer away.
COMMON_FORMS = frozenset({"0.000", "0.00", "-0.000", "-0.00", "1.000", "1.00", "0.500", "0.50", "-1.000", "-1.00"})


class NotYet(AssertionError):
    """The answer is missing or does not match; the message says how."""


def check(name: str, answer, expected, *, tol: float = 1e-6, note: str = "") -> None:
    """Compare a student's ``answer`` with ``expected`` and say so.

    Numbers (and arrays, sequences and mappings of numbers) match within the absolute tolerance ``tol``;
    anything else must be equal. ``note`` is printed after a right answer (what to take away).

    Prints ``✓ <name>: correct`` when the answer matches (and returns nothing, so a check cell shows one line).

    Raises:
        NotYet: the answer is ``None`` / ``...`` (not attempted) or differs; the message gives the answer
            and, for numbers, how far it is off, not the expected value.
    """
    if answer is None or answer is Ellipsis:
        raise NotYet(f"{name}: no answer yet; replace the `raise NotImplementedError()` cell above with your code")
    ok, detail = _matches(answer, expected, tol)
    if not ok:
        raise NotYet(f"{name}: not yet; {detail}")
    _say(f"✓ {name}: correct" + (f"; {note}" if note else ""), name, expected)


# Numbers of an expected value kept in a check's output metadata (the first ones of a large array).
MAX_RECORDED = 64


def _say(line: str, name: str, expected) -> None:
    """Print ``line``; in a notebook kernel, as a display whose metadata holds ``expected``'s numbers."""
    try:
        from IPython import get_ipython
        shell = get_ipython()
    except ImportError:
        shell = None
    if shell is None or not hasattr(shell, "kernel"):
        print(line)
        return
    from IPython.display import display
    display({"text/plain": line}, raw=True,
            metadata={METADATA_KEY: {"name": name, "expected": numbers_of(expected)[:MAX_RECORDED]}})


def numbers_of(x) -> list[float]:
    """The finite numbers (not booleans) in ``x``: a number, array, sequence or mapping of them, in order."""
    if isinstance(x, bool | np.bool_ | str | bytes) or x is None:
        return []
    if isinstance(x, Mapping):
        return [v for k in x for v in numbers_of(x[k])]
    if isinstance(x, int | float | np.number):
        return [float(x)] if np.isfinite(float(x)) else []
    if isinstance(x, np.ndarray):
        if x.dtype.kind not in "fiu":
            return []
        flat = x.astype(float).ravel()
        return [float(v) for v in flat[np.isfinite(flat)]]
    if isinstance(x, Sequence):
        return [v for item in x for v in numbers_of(item)]
    if hasattr(x, "to_numpy"):                   # pandas Series / DataFrame
        return numbers_of(np.asarray(x.to_numpy()))
    return []


def _matches(answer, expected, tol: float) -> tuple[bool, str]:
    if isinstance(expected, Mapping):
        if not isinstance(answer, Mapping) or set(answer) != set(expected):
            return False, f"expected a dict with keys {sorted(expected)}, got {_short(answer)}"
        for k in expected:
            ok, detail = _matches(answer[k], expected[k], tol)
            if not ok:
                return False, f"[{k!r}] {detail}"
        return True, ""
    if _numeric(expected):
        try:
            a = np.asarray(answer, dtype=float)
        except (TypeError, ValueError):
            return False, f"expected a number or array of numbers, got {_short(answer)}"
        e = np.asarray(expected, dtype=float)
        if a.shape != e.shape:
            return False, f"shape {a.shape}, expected shape {e.shape}"
        same_nan = bool(np.array_equal(np.isnan(a), np.isnan(e)))
        diff = np.abs(a - e)[~(np.isnan(a) | np.isnan(e))]
        err = float(diff.max()) if diff.size else 0.0
        if not same_nan:
            return False, f"your value {_short(answer)} has NaN where the expected value has a number, or the reverse"
        if err > tol:
            return False, f"your value {_short(answer)} is off by {err:.3g} (tolerance {tol:g})"
        return True, ""
    return (answer == expected), f"got {_short(answer)}"


def _numeric(x) -> bool:
    if isinstance(x, bool | str):
        return False
    if isinstance(x, int | float | np.number):
        return True
    if isinstance(x, np.ndarray):
        return x.dtype.kind in "fiub"
    if isinstance(x, Sequence) and x and not isinstance(x, str):
        return all(_numeric(v) for v in x)
    return False


def _short(x, width: int = 80) -> str:
    s = repr(x)
    return s if len(s) <= width else s[: width - 3] + "..."


def printed_forms(x: float) -> list[str]:
    """How a notebook prints ``x`` so that it gives ``x`` away: with three decimals. Two decimals are left out: a
    notebook prints hundreds of numbers, and a two-decimal form of an answer is among them by chance more often than
    not (one in a hundred per printed number). Whole numbers (counts, layer indices) and the values every table
    holds (0, 0.5, 1) are too common to give an answer away: none."""
    if float(x).is_integer():
        return []
    form = f"{x:.3f}"
    return [] if form in COMMON_FORMS else [form]


def output_text(outputs: Iterable[Mapping]) -> str:
    """What a cell's outputs show as text: streams and plain-text reprs (a table's HTML repeats its text)."""
    parts = []
    for out in outputs:
        if out.get("output_type") == "stream":
            text = out.get("text", "")
            parts.append(text if isinstance(text, str) else "".join(text))   # a file's JSON keeps lines
        elif "text/plain" in out.get("data", {}):
            text = out["data"]["text/plain"]
            parts.append(text if isinstance(text, str) else "".join(text))
    return "\n".join(parts)


def recorded_answers(outputs: Iterable[Mapping]) -> list[tuple[str, list[float]]]:
    """``(name, expected numbers)`` of each right-answer line among a check cell's outputs."""
    return [(rec["name"], list(rec["expected"])) for out in outputs
            if (rec := (out.get("metadata") or {}).get(METADATA_KEY))]


def answer_leaks(expected: Sequence[float], above: Iterable[tuple[str, str]]) -> list[str]:
    """Each expected number that a text ``above`` (``(where, text)`` pairs: the outputs before an exercise)
    prints, as ``"<number> printed as <form> by <where>"``."""
    above = list(above)
    found = []
    for x in expected:
        for form in printed_forms(x):
            pattern = re.compile(rf"(?<![\d.]){re.escape(form)}(?!\d)")
            where = next((w for w, text in above if pattern.search(text)), None)
            if where is not None:
                found.append(f"{x!r} printed as {form} by {where}")
                break
    return found


def given_away(expected: Sequence[float], above: Iterable[tuple[str, str]]) -> list[str]:
    """The leaks of :func:`answer_leaks` when they give the answer away, else ``[]``: when more than half of the
    answer's distinct numbers (those with a printed form) are printed above. One number printed by chance among
    many is not the answer: a notebook prints hundreds of rates, and the rates of a few dozen samples take a few
    values (k/16, k/32), so a three-decimal form of one of several numbers is often on the page by coincidence; an
    answer shown above shows most of its numbers. A one-number answer is given away when it is printed."""
    above = list(above)
    forms = {f: x for x in expected for f in printed_forms(x)}
    found = answer_leaks(list(forms.values()), above)
    return found if 2 * len(found) > len(forms) else []


def exercise_start(cells: Sequence[Mapping], index: int) -> int:
    """The index of the exercise a check cell at ``index`` belongs to: the last cell before it tagged
    ``exercise`` (0 when none is). Outputs of the cells before that one are "above the exercise"."""
    return max((i for i in range(index) if "exercise" in (cells[i].get("metadata") or {}).get("tags", [])),
               default=0)


def check_leaks(cells: Sequence[Mapping], index: int, outputs: Iterable[Mapping],
                above: Mapping[int, Iterable[Mapping]]) -> list[tuple[str, list[str]]]:
    """``(name, leaks)`` of each answer the check cell at ``index`` records in ``outputs`` that the outputs of
    the cells above its exercise (``above``: cell index -> outputs; later cells are ignored) give away
    (:func:`given_away`). One rule for the outputs a notebook file holds (:func:`notebook_leaks`) and for those
    nbval sees while it executes the notebooks (``conftest.py``)."""
    start = exercise_start(cells, index)
    texts = [(f"cell {i} ({_first_line(cells[i])!r})", output_text(outs))
             for i, outs in sorted(above.items()) if i < start]
    return [(name, leaks) for name, expected in recorded_answers(outputs) if (leaks := given_away(expected, texts))]


def _first_line(cell: Mapping) -> str:
    source = cell.get("source", "")
    source = source if isinstance(source, str) else "".join(source)
    return (source.splitlines() or [""])[0][:60]


def notebook_leaks(cells: Sequence[Mapping]) -> list[dict]:
    """Every answer of a notebook's stored outputs that the outputs above its exercise give away
    (:func:`check_leaks`): ``{"cell", "exercise", "leaks"}`` per answer."""
    stored = {i: c.get("outputs", []) for i, c in enumerate(cells) if c.get("cell_type") == "code"}
    return [{"cell": index, "exercise": name, "leaks": leaks}
            for index, cell in enumerate(cells) if "check" in (cell.get("metadata") or {}).get("tags", [])
            for name, leaks in check_leaks(cells, index, cell.get("outputs", []), stored)]
