"""The exercises: the check helper, their format in every notebook, and the student version's content.

Executing the student notebooks is `tests/exercises/` (`make test-exercises`)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest

from craft import paper_numbers
from craft.exercises import NotYet, check

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
sys.path.insert(0, str(ROOT / "scripts"))
from make_exercises import main as make_exercises_main  # noqa: E402
from make_exercises import student_version  # noqa: E402

HEADING = re.compile(r"^### Exercise (\d+)\.(\d+) · (★☆☆ easy|★★☆ medium|★★★ hard) · ⏱ \d+ min — \S", re.M)


# --- craft.exercises.check ---------------------------------------------------------------------

def test_check_accepts_within_tolerance_and_says_so(capsys):
    assert check("Exercise 9.1", 0.5004, 0.5, tol=1e-3, note="well done") is None
    assert capsys.readouterr().out.strip() == "✓ Exercise 9.1: correct; well done"


@pytest.mark.parametrize("answer", [None, ...])
def test_check_unanswered(answer):
    with pytest.raises(NotYet, match="no answer yet"):
        check("Exercise 9.1", answer, 1.0)


@pytest.mark.parametrize("answer, expected, match", [
    (0.6, 0.5, "off by 0.1"),
    ([1.0, 2.0], [1.0, 2.5], "off by 0.5"),
    (np.ones(3), np.ones(4), "shape"),
    ("up", "down", "got 'up'"),
    ({"a": 1.0}, {"a": 1.0, "b": 2.0}, "keys"),
    ({"a": 1.0, "b": 3.0}, {"a": 1.0, "b": 2.0}, r"\['b'\] your value"),
    ("abc", 1.0, "expected a number"),
    (float("nan"), 1.0, "NaN where"),
])
def test_check_rejects_with_what_is_off(answer, expected, match):
    with pytest.raises(NotYet, match=match):
        check("Exercise 9.1", answer, expected, tol=1e-3)


def test_check_is_an_assertion_so_a_stale_solution_fails_the_run():
    assert issubclass(NotYet, AssertionError)


def test_check_does_not_reveal_the_expected_number():
    with pytest.raises(NotYet) as err:
        check("Exercise 9.1", 0.25, 0.8125)
    assert "0.8125" not in str(err.value)


# --- craft.paper_numbers -----------------------------------------------------------------------

def test_paper_headline_rederives_from_table1_within_a_point():
    rel = paper_numbers.relative_improvement()
    for part, stated in paper_numbers.HEADLINE.items():
        assert abs(rel[part] - stated) <= 0.01, (part, rel[part], stated)


def test_paper_table1_avg_column_is_the_mean_of_its_cells():
    t = paper_numbers.table1()
    cells = t[["JBB R", "JBB Resp", "SR R", "SR Resp"]].mean(axis=1)
    assert np.allclose(cells, t["avg"], atol=0.0015)


def test_paper_tables_are_fresh_copies():
    t = paper_numbers.table3()
    t.loc["CRAFT", "JBB R"] = -1.0
    assert paper_numbers.table3().loc["CRAFT", "JBB R"] == 0.121
    with pytest.raises(KeyError, match="unknown model"):
        paper_numbers.table1("GPT-2")


# --- the exercises in the notebooks --------------------------------------------------------------

def _exercises(nb) -> list[list]:
    """The cells of each exercise: from its `exercise` heading to the next one (or the end)."""
    groups = []
    for cell in nb.cells:
        if "exercise" in cell.metadata.get("tags", []) and cell.cell_type == "markdown":
            groups.append([])
        if groups:
            groups[-1].append(cell)
    return groups


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_notebook_has_two_or_more_complete_exercises(nb_path):
    nb = nbformat.read(nb_path, as_version=4)
    exercises = _exercises(nb)
    assert len(exercises) >= 2, f"{nb_path.name} has {len(exercises)} exercise(s); needs at least 2"
    number = int(nb_path.name[:2])
    for k, cells in enumerate(exercises, start=1):
        m = HEADING.search(cells[0].source)
        first = cells[0].source.splitlines()[0]
        assert m, f"{nb_path.name}: exercise heading {first!r} lacks number, difficulty or time box"
        assert (int(m[1]), int(m[2])) == (number, k), f"{nb_path.name}: exercise {m[1]}.{m[2]} should be {number}.{k}"
        kinds = [c.metadata.get("tags", []) for c in cells]
        assert any("hint" in t for t in kinds), f"exercise {number}.{k}: no hint cell"
        hints = [c for c in cells if "hint" in c.metadata.get("tags", [])]
        assert all("<details>" in c.source for c in hints), f"exercise {number}.{k}: the hint is not collapsible"
        solutions = [c for c in cells if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("solution")]
        assert len(solutions) == 1, f"exercise {number}.{k}: needs exactly one solution code cell"
        sol = solutions[0]
        assert "### BEGIN SOLUTION" in sol.source and "### END SOLUTION" in sol.source
        assert sol.metadata.get("jupyter", {}).get("source_hidden") and "hide-cell" in sol.metadata["tags"], (
            f"exercise {number}.{k}: the solution cell and its output are not collapsed (JupyterLab and the book)")
        checks = [c for c in cells if "check" in c.metadata.get("tags", [])]
        assert checks and all("check(" in c.source for c in checks), f"exercise {number}.{k}: no check cell"
        assert cells.index(sol) < cells.index(checks[0]), f"exercise {number}.{k}: check before the solution"


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_notebook_has_a_build_and_an_intervene_exercise(nb_path):
    """Not only read-outs: in each notebook the student writes something the package then uses ("Build:") and
    changes one setting, predicts and measures ("Intervene:"); the heading says which."""
    kinds = [re.search(r"— (Build|Intervene):", cells[0].source) for cells in _exercises(nbformat.read(nb_path, 4))]
    found = {m[1] for m in kinds if m}
    assert found == {"Build", "Intervene"}, f"{nb_path.name} lacks a {sorted({'Build', 'Intervene'} - found)} exercise"


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.stem)
def test_exercises_come_last_and_nothing_after_them_is_a_claim(nb_path):
    nb = nbformat.read(nb_path, as_version=4)
    first = next(i for i, c in enumerate(nb.cells) if "exercise" in c.metadata.get("tags", []))
    assert not any("# NBVAL_CHECK_OUTPUT" in c.source for c in nb.cells[first:]), (
        f"{nb_path.name}: the checked cell must come before the exercises")
    assert not any(c.source.startswith("## ") and "Exercises" not in c.source.splitlines()[0]
                   for c in nb.cells[first:] if c.cell_type == "markdown"), (
        f"{nb_path.name}: a section follows the exercises; they must be the last section")


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.stem)
def test_student_version_has_no_solution_and_no_output(nb_path):
    nb = nbformat.read(nb_path, as_version=4)
    student = student_version(nb)
    assert len(student.cells) == len(nb.cells)
    for before, after in zip(nb.cells, student.cells, strict=True):
        assert "BEGIN SOLUTION" not in after.source
        assert not after.get("outputs"), "the student version keeps no output"
        if before.metadata.get("nbgrader", {}).get("solution"):
            if after.cell_type == "code":
                assert after.source.rstrip().endswith("raise NotImplementedError()")
                assert "hide-cell" not in after.metadata.get("tags", [])
        else:
            assert after.source == before.source
    assert nbformat.read(nb_path, as_version=4) == nb, "student_version modified its input"


def test_make_exercises_writes_the_student_notebooks(tmp_path, capsys):
    assert make_exercises_main([str(p) for p in NOTEBOOKS] + ["--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.glob("*.ipynb")) == [p.name for p in NOTEBOOKS]
    assert make_exercises_main([str(tmp_path / "missing.ipynb"), "--out", str(tmp_path)]) == 2
    assert "does not exist" in capsys.readouterr().err


def _code(source: str) -> str:
    """A cell's Python: cell magics (``%%only organism``) and line magics dropped."""
    return "\n".join("" if line.lstrip().startswith("%") else line for line in source.splitlines())


def _bound(tree) -> set[str]:
    """Every name a cell binds at its top level or anywhere (assignments, imports, defs, loop targets)."""
    import ast

    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
    return names


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.stem)
def test_a_check_cell_needs_nothing_only_a_solution_defines(nb_path):
    """In the student copy the solutions are cleared: a check cell may read the exercise's `answer_*` and what
    the notebook's other cells define, never a name (an import, a helper) that only a solution cell binds."""
    import ast
    import builtins

    nb = nbformat.read(nb_path, as_version=4)
    defined = set(dir(builtins)) | {"display", "get_ipython"}
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        tree = ast.parse(_code(cell.source))
        if cell.metadata.get("nbgrader", {}).get("solution"):
            defined |= {n for n in _bound(tree) if n.startswith("answer_")}     # what the student writes
            continue
        if "check" in cell.metadata.get("tags", []):
            used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
            missing = sorted(used - defined - _bound(tree))
            assert not missing, (f"{nb_path.name}: a check cell ({cell.source.splitlines()[-1][:60]!r}…) reads "
                                 f"{missing}, which only a solution defines: the student copy fails there")
        defined |= _bound(tree)
