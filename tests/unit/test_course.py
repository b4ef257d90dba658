"""The course pages: the instructor notes are the notebooks' own (generated), and the course map's paths name
exercises that exist, with their time boxes, and add up to the totals they state."""

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
sys.path.insert(0, str(ROOT / "scripts"))
from instructor_notes import HEADING  # noqa: E402
from instructor_notes import main as instructor_notes  # noqa: E402


def _time_boxes() -> dict[str, int]:
    import nbformat

    boxes = {}
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            for number, _, minutes, _ in HEADING.findall(cell.source) if cell.cell_type == "markdown" else ():
                boxes[number] = int(minutes)
    return boxes


def test_instructor_notes_are_the_notebooks_own(capsys):
    assert instructor_notes(["--check"]) == 0, capsys.readouterr().err


def test_instructor_notes_cover_every_exercise():
    text = (DOCS / "instructor-notes.md").read_text(encoding="utf-8")
    boxes = _time_boxes()
    assert len(boxes) >= 18
    for number in boxes:
        assert f"**Exercise {number}**" in text, f"exercise {number} is missing from the instructor notes"


def _paths() -> dict[str, tuple[int, list[tuple[int, str]]]]:
    """Each path of the course map: its stated total and its (minutes, what) rows."""
    text = (DOCS / "course-map.md").read_text(encoding="utf-8")
    paths = {}
    for block in text.split("\n## ")[1:]:
        title = block.splitlines()[0]
        total = re.search(r"^Total: (\d+) minutes", block, re.M)
        rows = [(int(m), what) for m, what in re.findall(r"^\| (\d+) \| (.+) \|$", block, re.M)]
        if total:
            paths[title] = (int(total.group(1)), rows)
    return paths


def test_course_map_has_a_90_minute_and_a_one_day_path():
    paths = _paths()
    assert [t for t in paths if t.startswith("A 90-minute path")] and [t for t in paths if t.startswith("A one-day")]
    for title, (total, rows) in paths.items():
        assert sum(m for m, _ in rows) == total, f"{title}: its rows add up to {sum(m for m, _ in rows)}, not {total}"
        if title.startswith("A 90-minute"):
            assert total == 90


@pytest.mark.parametrize("title", list(_paths()))
def test_course_map_exercises_exist_with_their_time_boxes(title):
    boxes = _time_boxes()
    _, rows = _paths()[title]
    named = [(m, re.match(r"Exercise (\d+\.\d+)", what)) for m, what in rows]
    assert any(ex for _, ex in named)
    for minutes, ex in named:
        if ex:
            assert ex.group(1) in boxes, f"{title}: exercise {ex.group(1)} does not exist"
            assert minutes == boxes[ex.group(1)], (
                f"{title}: exercise {ex.group(1)} is given {minutes} min; its notebook gives {boxes[ex.group(1)]}")
    if title.startswith("A one-day"):
        assert {ex.group(1) for _, ex in named if ex} == set(boxes), "the one-day path does every exercise"
