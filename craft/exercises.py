"""Checks for the notebooks' exercises.

Every notebook ends with exercises in nbgrader's format: the cell a student fills in holds the instructor's
solution between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` (``make exercises`` writes the student
version, where nbgrader's ``ClearSolutions`` replaces that region with ``raise NotImplementedError()``), and a
check cell after it calls :func:`check` on the student's answer against a value the package computes from
the same run. A right answer prints one line; a wrong or missing one raises :class:`NotYet`, an
``AssertionError``, so the instructor's executed notebook (and CI, which runs it) fails when a solution goes
stale, and a student sees in red what is off.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


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
    print(f"✓ {name}: correct" + (f"; {note}" if note else ""))


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
