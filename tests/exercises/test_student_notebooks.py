"""The student notebooks (`make exercises`) execute up to their first exercise (`make test-exercises`).

Each student notebook is the committed notebook with its solutions cleared by nbgrader. It is run with
the CI parameters (`params/ci.yaml` and `params/ci/<notebook>.yaml`, as `make nb-check` runs the
instructor notebooks) in order, in the run folder nb-check leaves behind, where every stage is a cache
hit. Each must stop at its first exercise, with the `NotImplementedError` of the cleared solution, and
nowhere earlier: everything a student reads and runs before the exercises works without the solutions.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest

pytestmark = [pytest.mark.exercises, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
sys.path.insert(0, str(ROOT / "scripts"))
from make_exercises import student_version  # noqa: E402
from prepare_notebooks import parameters, params_files  # noqa: E402


def _ci_parameters(stem: str) -> dict:
    """What `make nb-check` injects: params/ci.yaml, then params/ci/<stem>.yaml."""
    return parameters(params_files(ROOT / "params" / "ci.yaml", stem))


def _first_exercise(nb) -> int:
    return next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("solution")
                and c.cell_type == "code")


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.stem)
def test_student_notebook_runs_up_to_its_first_exercise(nb_path, tmp_path, monkeypatch):
    import papermill
    from papermill.exceptions import PapermillExecutionError

    monkeypatch.chdir(ROOT)
    student = student_version(nbformat.read(nb_path, as_version=4))
    stop = _first_exercise(student)
    src = tmp_path / nb_path.name
    nbformat.write(student, src)
    out = tmp_path / f"executed_{nb_path.name}"
    with pytest.raises(PapermillExecutionError) as err:
        papermill.execute_notebook(str(src), str(out), parameters=_ci_parameters(nb_path.stem),
                                   kernel_name="python3", cwd=str(ROOT), progress_bar=False)
    assert err.value.ename == "NotImplementedError", f"{nb_path.name} failed before its exercises: {err.value}"
    ran = nbformat.read(out, as_version=4)
    failed = [c.source for c in ran.cells if c.get("metadata", {}).get("papermill", {}).get("exception")]
    assert failed == [student.cells[stop].source], (
        f"{nb_path.name}: expected to stop at its first exercise (cell {stop}), stopped at {failed}")
