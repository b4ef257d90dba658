"""Repository-wide pytest configuration (also covers build/check/, where `make nb-check` runs nbval).

- Tests never download: the Hugging Face offline switches are set at import, before any test
  module imports transformers/datasets/huggingface_hub (the Makefile exports them too).
- nbval does not compare rich outputs that embed random ids or versions (after TransformerLens
  demos/conftest.py); PNG/JPEG are already skipped by nbval itself.
- No exercise gives its answer away: when nbval executes an instructor notebook, a check cell fails
  if a number it expects (``craft.exercises.check`` keeps them in its output's metadata) is printed by
  an output above its exercise, the notebook's sections and the exercises before it.
"""

import os

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


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """After nbval runs a cell: keep its outputs; a check cell fails when an output above its exercise prints
    a number it expects (:func:`craft.exercises.answer_leaks`)."""
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
        from craft.exercises import answer_leaks, output_text, recorded_answers

        start = max((i for i in range(index) if "exercise" in cells[i].metadata.get("tags", [])), default=0)
        above = [(f"cell {i} ({cells[i].source.splitlines()[0][:60]!r})", output_text(outs))
                 for i, outs in sorted(seen.items()) if i < start]
        for name, expected in recorded_answers(outputs):
            leaks = answer_leaks(expected, above)
            assert not leaks, f"{name}: its answer is printed above the exercise: " + "; ".join(leaks)
    return result
