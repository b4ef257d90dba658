"""Repository-wide pytest configuration (also covers build/check/, where `make nb-check` runs nbval).

- Tests never download: the Hugging Face offline switches are set at import, before any test
  module imports transformers/datasets/huggingface_hub (the Makefile exports them too).
- nbval does not compare rich outputs that embed random ids or versions (after TransformerLens
  demos/conftest.py); PNG/JPEG are already skipped by nbval itself.
- Which exercises give their answer away: when nbval executes an instructor notebook, every check
  cell's expected numbers (``craft.exercises.check`` keeps them in its output's metadata) are looked for
  in the outputs above its exercise, the notebook's sections and the exercises before it. An answer more than
  half of whose numbers are found there (:func:`craft.exercises.given_away`) is listed at the end of the run and
  in ``build/exercise-leaks.json`` (``CRAFT_EXERCISE_LEAKS_FILE``); with ``CRAFT_EXERCISE_LEAKS=fail`` the check
  cell fails instead.
"""

import json
import os
from pathlib import Path

import pytest

for _var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ.setdefault(_var, "1")

NBVAL_SKIP_COMPARE = (
    "text/html",
    "application/javascript",
    "application/vnd.plotly.v1+json",
    "application/vnd.jupyter.widget-view+json",
)


def pytest_collectstart(collector):
    """Extend nbval's per-notebook list of output types that are never compared."""
    if hasattr(collector, "skip_compare"):
        collector.skip_compare = tuple(collector.skip_compare) + tuple(
            m for m in NBVAL_SKIP_COMPARE if m not in collector.skip_compare
        )


LEAKS: list[dict] = []


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """After nbval runs a cell: keep its outputs; for a check cell, list every number it expects that an output
    above its exercise prints when they give its answer away (:func:`craft.exercises.given_away`), or fail
    (``CRAFT_EXERCISE_LEAKS=fail``)."""
    result = yield
    outputs = getattr(item, "test_outputs", None)
    cell = getattr(item, "cell", None)
    if outputs is None or cell is None or not hasattr(item.parent, "nb"):
        return result
    cells = item.parent.nb.cells
    index = next(i for i, c in enumerate(cells) if c is cell)
    seen = item.parent.__dict__.setdefault("_craft_outputs", {})
    seen[index] = list(outputs)
    if "check" in cell.metadata.get("tags", []):
        from craft.exercises import check_leaks

        for name, leaks in check_leaks(cells, index, outputs, seen):
            LEAKS.append({"notebook": Path(str(item.parent.path)).name, "exercise": name, "leaks": leaks})
            assert os.environ.get("CRAFT_EXERCISE_LEAKS") != "fail", (
                f"{name}: its answer is printed above the exercise: " + "; ".join(leaks))
    return result


def pytest_terminal_summary(terminalreporter):
    """The exercises whose answer an output above them prints (nbval runs only)."""
    if not LEAKS:
        return
    terminalreporter.section("exercises whose answer is printed above them")
    for leak in LEAKS:
        terminalreporter.write_line(f"{leak['notebook']}: {leak['exercise']}: " + "; ".join(leak["leaks"]))


def pytest_sessionfinish(session):
    """Write the list to build/exercise-leaks.json when nbval ran a check cell (empty list: none leaks)."""
    if any("check" in getattr(getattr(i, "cell", None), "metadata", {}).get("tags", []) for i in session.items):
        out = Path(os.environ.get("CRAFT_EXERCISE_LEAKS_FILE")
                   or Path(str(session.config.rootpath)) / "build" / "exercise-leaks.json")
        out.parent.mkdir(exist_ok=True)
        out.write_text(json.dumps(LEAKS, indent=1, ensure_ascii=False) + "\n")
