"""Where a run's time goes: exclusive seconds per kind of work, for the reproduction profile.

``with timed("generation"):`` (or ``@timed("generation")``) charges the block's wall time to
``generation``, minus the time of ``timed`` blocks nested inside it (charged to their own kinds), so
the kinds of one process add up to the time spent in any of them.

When the environment variable ``CRAFT_PROFILE`` names a file, an outermost block that ends two seconds
or more after the last write (and the process, at exit) appends a JSON line
``{"pid", "worker", "seconds": {kind: s}}`` to it. ``make reproduce`` sets it to
``runs/<run>/profile/<notebook>.jsonl`` for every notebook; the worker processes a notebook starts
inherit it. ``benchmarks/profile_reproduce.py`` adds the lines up. Without the variable nothing is
written and the cost is two clock reads a block. (Ours rather than cProfile: it names the paper's
kinds of work, nests across libraries, and costs nothing in a long run.)
"""

from __future__ import annotations

import atexit
import json
import multiprocessing
import os
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

__all__ = ["PROFILE_ENV", "timed", "totals"]

PROFILE_ENV = "CRAFT_PROFILE"

_totals: dict[str, float] = defaultdict(float)     # this process, since it started
_pending: dict[str, float] = defaultdict(float)    # not yet written to the profile file
_stack: list[list] = []                            # open blocks: [kind, seconds of nested blocks]
_written = [time.perf_counter(), False]            # last write; atexit registered
FLUSH_EVERY = 2.0                                  # seconds between writes


@contextmanager
def timed(kind: str):
    """Charge the block's exclusive wall time to ``kind`` (usable as a decorator too)."""
    frame = [kind, 0.0]
    _stack.append(frame)
    start = time.perf_counter()
    try:
        yield
    finally:
        elapsed = time.perf_counter() - start
        _stack.pop()
        _totals[kind] += elapsed - frame[1]
        _pending[kind] += elapsed - frame[1]
        if _stack:
            _stack[-1][1] += elapsed
        elif time.perf_counter() - _written[0] >= FLUSH_EVERY:
            _flush()


def totals() -> dict[str, float]:
    """Exclusive seconds per kind in this process so far."""
    return dict(_totals)


def _flush() -> None:
    path = os.environ.get(PROFILE_ENV)
    if not path or not _pending:
        return
    if not _written[1]:
        atexit.register(_flush)                    # what the last blocks added
        _written[1] = True
    _written[0] = time.perf_counter()
    worker = multiprocessing.parent_process() is not None               # a worker a notebook started
    line = json.dumps({"pid": os.getpid(), "worker": worker,
                       "seconds": {k: round(v, 4) for k, v in sorted(_pending.items())}})
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:          # one short append per outermost block
        f.write(line + "\n")
    _pending.clear()
