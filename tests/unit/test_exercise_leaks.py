"""No exercise gives its answer away: the check's recorded numbers, and the nbval hook (``conftest.py``) that fails
a check cell whose expected number an output above its exercise prints."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest

from craft.exercises import (
    METADATA_KEY,
    answer_leaks,
    exercise_start,
    given_away,
    notebook_leaks,
    numbers_of,
    output_text,
    printed_forms,
    recorded_answers,
)

ROOT = Path(__file__).resolve().parents[2]


def test_numbers_of_an_expected_value():
    assert numbers_of({"a": 0.25, "b": [1, np.float32(0.5)], "c": "text", "d": True}) == [0.25, 1.0, 0.5]
    assert numbers_of(np.array([[0.1, np.nan], [2, 3]])) == [0.1, 2.0, 3.0]
    assert numbers_of(pd.Series([0.3, 0.7])) == [0.3, 0.7]
    assert numbers_of(["a", "b"]) == [] and numbers_of(None) == [] and numbers_of(float("inf")) == []


def test_printed_forms_leave_out_what_every_table_prints():
    assert printed_forms(0.4123) == ["0.412"]
    assert printed_forms(3.0) == [] and printed_forms(0.5) == [] and printed_forms(1e-5) == []
    assert printed_forms(0.9996) == []                      # 1.000


def test_answer_leaks_find_a_number_printed_above_and_only_then():
    above = [("cell 3", "rate 0.412 [0.390, 0.433]"), ("cell 5", "n = 41, share 0.4127")]
    assert answer_leaks([0.4123], above) == ["0.4123 printed as 0.412 by cell 3"]
    assert answer_leaks([0.4173], above) == []              # 0.417 is printed nowhere
    assert answer_leaks([0.4127], [("cell 5", "n = 41, share 0.4127")]) == []   # 0.413 not as a number
    assert answer_leaks([0.4123], [("cell 7", "rate 0.41")]) == []             # two decimals: not counted


def test_an_answer_is_given_away_when_more_than_half_of_its_numbers_are_printed():
    above = [("cell 3", "rates 0.125 0.188 0.412"), ("cell 4", "n 32")]
    assert given_away([0.4123], above) == ["0.4123 printed as 0.412 by cell 3"]          # one number: printed
    assert given_away([0.125, 0.3, 0.7, 0.9], above) == []                           # one of four: chance
    assert given_away([0.125, 0.1875, 0.7], above) == ["0.125 printed as 0.125 by cell 3",
                                                       "0.1875 printed as 0.188 by cell 3"]   # two of three
    assert given_away([0.125, 0.125, 0.7], above) == []       # repeats count once: one of two distinct
    assert given_away([0.4123, 3.0], above) == ["0.4123 printed as 0.412 by cell 3"]  # whole numbers have no form


def test_outputs_text_and_recorded_answers():
    outputs = [nbformat.v4.new_output("stream", name="stdout", text="x 0.25\n"),
               nbformat.v4.new_output("display_data", data={"text/plain": "✓ Exercise 9.1: correct"},
                                      metadata={METADATA_KEY: {"name": "Exercise 9.1", "expected": [0.25]}}),
               nbformat.v4.new_output("display_data", data={"image/png": "iVBOR"})]
    assert output_text(outputs) == "x 0.25\n\n✓ Exercise 9.1: correct"
    assert recorded_answers(outputs) == [("Exercise 9.1", [0.25])]


def _stored(above: str, expected: float) -> list[dict]:
    """The cells of an executed notebook: an output above the exercise, the exercise, its solution and check."""
    cells = _notebook(above).cells
    cells[0].outputs = [nbformat.v4.new_output("stream", name="stdout", text=above + "\n")]
    cells[4].outputs = [nbformat.v4.new_output("display_data", data={"text/plain": "✓ Exercise 9.1: correct"},
                                               metadata={METADATA_KEY: {"name": "Exercise 9.1",
                                                                        "expected": [expected]}})]
    return cells


def test_notebook_leaks_reads_the_stored_outputs_above_the_exercise():
    cells = _stored("the rate is 0.412", 0.4123)
    assert exercise_start(cells, 4) == 2 and exercise_start(cells, 1) == 0
    assert notebook_leaks(cells) == [{"cell": 4, "exercise": "Exercise 9.1",
                                      "leaks": ["0.4123 printed as 0.412 by cell 0 (\"print('the rate is 0.412')\")"]}]
    assert notebook_leaks(_stored("the rate is 0.399", 0.4123)) == []
    # an output after the exercise (its own solution's) is not above it
    cells = _stored("nothing here", 0.4123)
    cells[3].outputs = [nbformat.v4.new_output("stream", name="stdout", text="0.412\n")]
    assert notebook_leaks(cells) == []


# Answers of the committed run that the rule flags although no output above shows them: their numbers are printed
# above by coincidence (three-decimal values among the hundreds a notebook prints), each entry saying what the
# printed numbers are. A test below fails when an entry is no longer flagged, so the list cannot outlive the outputs
# it excuses.
COINCIDENCES = {
    ("03", "Exercise 3.2"): "the answer is CRAFT seed 0's logged total reward at its last step and the latent terms' "
                            "share of it; above, 0.623 is reasoning-judge GRPO's capability (section 3's table) and "
                            "0.476 its reasoning-judge reward's mean at step 5 (section 4's log), other quantities",
}


@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")), ids=lambda p: p.name[:2])
def test_committed_notebooks_give_no_exercise_answer_away(path):
    """The committed run (what a reader and the book see): every check cell ran and recorded its answer, and no
    answer is printed above its exercise, except the listed coincidences, each still flagged."""
    cells = nbformat.read(path, as_version=4).cells
    checks = [i for i, c in enumerate(cells) if "check" in c.metadata.get("tags", [])]
    assert checks, f"{path.name} has no check cell"
    unrecorded = [i for i in checks if not recorded_answers(cells[i].get("outputs", []))]
    assert not unrecorded, (f"{path.name}: check cells {unrecorded} hold no recorded answer; refresh the committed "
                            "outputs with `make notebooks`")
    leaks = notebook_leaks(cells)
    flagged = {leak["exercise"] for leak in leaks}
    excused = {name for (nb, name) in COINCIDENCES if nb == path.name[:2]}
    assert not [leak for leak in leaks if leak["exercise"] not in excused], (
        f"{path.name}: answers printed above their exercise: {leaks}")
    assert excused <= flagged, f"{path.name}: {sorted(excused - flagged)} no longer flagged: remove from COINCIDENCES"


def _notebook(above: str) -> nbformat.NotebookNode:
    md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    cells = [code(f"print({above!r})"), md("## Exercises"),
             md("### Exercise 9.1 · ★☆☆ easy · ⏱ 5 min — A rate"), code("answer_9_1 = 0.4123"),
             code('from craft.exercises import check\ncheck("Exercise 9.1", answer_9_1, 0.4123, tol=1e-9)')]
    cells[2].metadata["tags"] = ["exercise"]
    cells[4].metadata["tags"] = ["check"]
    return nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                                          "language": "python"}})


@pytest.mark.slow
@pytest.mark.parametrize("above,leaks", [("the rate is 0.412", True), ("the rate is 0.399", False)])
@pytest.mark.parametrize("mode", ["report", "fail"])
def test_nbval_lists_or_fails_a_check_whose_answer_is_printed_above(above, leaks, mode, tmp_path):
    """The hook runs where ``make nb-check`` runs nbval (under the repository's conftest.py): it lists the leak
    (the run's summary and the JSON file), and with CRAFT_EXERCISE_LEAKS=fail the check cell fails."""
    folder = ROOT / "build" / "leak-test" / f"{mode}-{'leak' if leaks else 'clean'}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    nbformat.write(_notebook(above), folder / "exercise.ipynb")
    report = tmp_path / "leaks.json"
    env = {**os.environ, "CRAFT_EXERCISE_LEAKS_FILE": str(report), "CRAFT_EXERCISE_LEAKS": mode}
    command = [sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env", "-p", "no:cacheprovider", "-q",
               str(folder / "exercise.ipynb")]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    shutil.rmtree(folder, ignore_errors=True)
    listed = json.loads(report.read_text())
    if not leaks:
        assert run.returncode == 0 and listed == [], run.stdout[-3000:]
        return
    assert [(x["notebook"], x["exercise"]) for x in listed] == [("exercise.ipynb", "Exercise 9.1")]
    assert [leak.split(" (")[0] for leak in listed[0]["leaks"]] == ["0.4123 printed as 0.412 by cell 0"]
    if mode == "fail":
        assert run.returncode != 0 and "its answer is printed above the exercise" in run.stdout, run.stdout[-3000:]
    else:
        assert run.returncode == 0, run.stdout[-3000:]
        assert "exercises whose answer is printed above them" in run.stdout
        assert "exercise.ipynb: Exercise 9.1: 0.4123 printed as 0.412" in run.stdout
