"""Write ``docs/instructor-notes.md`` from the notebooks themselves (``make instructor-notes``).

Everything a teacher needs per notebook is already in it: its runtime line, what a student should
learn, and each exercise's heading (difficulty, time box), its *predict first* question and its
solution's discussion. This script gathers them into one page, so the notes cannot drift from the
notebooks: ``tests/unit/test_course.py`` fails when the committed page differs from this script's output.

    python scripts/instructor_notes.py            # rewrite docs/instructor-notes.md
    python scripts/instructor_notes.py --check    # exit 1 if it is out of date
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "instructor-notes.md"
HEADING = re.compile(r"^### Exercise (\d+\.\d+) · (★☆☆ easy|★★☆ medium|★★★ hard) · ⏱ (\d+) min — (.+)$", re.M)

INTRO = """\
# Instructor notes

Generated from the notebooks by `python scripts/instructor_notes.py` (a test fails when this page and the notebooks
disagree): for every notebook, its runtime, what a student should leave with, and each exercise with its
difficulty, time box, the prediction it asks for and the answer its solution discusses. The course map
([course-map.md](course-map.md)) puts them in a session plan; the [glossary](glossary.md) and the
[misconceptions](misconceptions.md) page are the reference to hand out with them.

**Before the class.** Run `make reproduce` once on the machine the class uses (its time is in the README's
*Two commands*): every exercise reads that run's artifacts, so nothing the students do waits for training. Then
`make lab-student` writes the student copies (`make exercises`: solutions cleared by nbgrader, no outputs) and opens
JupyterLab on them. A student copy runs its notebook's cells against the same run; the cached stages load in
seconds. A class with no time for the full run can use the quick run instead (`make reproduce RUN=quick`, then
`make lab-student RUN=quick`: the copies read `runs/quick/`; its time is in the README's *Teaching and reading*):
one seed, fewer runs and smaller sets, so its numbers, and the answers the checks expect, are not the ones quoted below.

**During the class.** Each exercise's check cell says whether an answer is right and how far off it is, without
printing the expected value. The solution cell of the instructor's notebook (collapsed in JupyterLab and in the book)
is the expected answer; where an exercise also asks a question in words, its discussion is quoted below. Exercises
marked *predict first* work best when the class writes its predictions down before anyone runs a cell.
"""


def _section(source: str, title: str) -> str:
    """The bullet list under a bold header line (``**What you will learn**``) of a notebook's first cell."""
    m = re.search(rf"^\*\*{re.escape(title)}\*\*\n((?:- .*\n(?:  .*\n)*)+)", source + "\n", re.M)
    return m.group(1).rstrip() if m else ""


def _runtime(source: str) -> str:
    m = re.search(r"^\*\*Runtime\.\*\* (.+?)(?: GPU track|$)", source, re.M)
    return m.group(1).strip() if m else ""


def _predict(source: str) -> str:
    m = re.search(r"\*\*Predict first[:.]?\*\*:?\s*(.+?)(?:\n\n|$)", source, re.S)
    return " ".join(m.group(1).split()) if m else ""


def _discussion(cells) -> str:
    for cell in cells:
        if cell.cell_type == "markdown" and "Solution: discussion" in cell.source:
            body = cell.source.split("</summary>", 1)[1].rsplit("</details>", 1)[0]
            return body.replace("### BEGIN SOLUTION", "").replace("### END SOLUTION", "").strip()
    return ""


def notebook_notes(path: Path) -> str:
    nb = nbformat.read(path, as_version=4)
    first = nb.cells[0].source
    title = first.splitlines()[0].lstrip("# ").strip()
    lines = [f"## {title}", "", f"Notebook: `notebooks/{path.name}`.", ""]
    if runtime := _runtime(first):
        lines += [f"**Runtime.** {runtime}", ""]
    if learn := _section(first, "What you will learn"):
        lines += ["**What a student should leave with**", "", learn, ""]
    starts = [i for i, c in enumerate(nb.cells) if c.cell_type == "markdown" and HEADING.search(c.source)]
    rows, details = [], []
    for k, start in enumerate(starts):
        cells = nb.cells[start:starts[k + 1] if k + 1 < len(starts) else len(nb.cells)]
        number, level, minutes, name = HEADING.search(cells[0].source).groups()
        rows.append(f"| {number} | {level} | {minutes} min | {name.strip()} |")
        text = [f"**Exercise {number}** — {name.strip()}", ""]
        if predict := _predict(cells[0].source):
            text += [f"*Predict first:* {predict}", ""]
        if discussion := _discussion(cells):
            text += ["*Expected answer, in words* (the solution's discussion):", "",
                     *[f"> {line}".rstrip() for line in discussion.splitlines()], ""]
        else:
            text += ["*Expected answer:* the number its solution cell computes; the check cell confirms it.", ""]
        details += text
    total = sum(int(HEADING.search(nb.cells[s].source).group(3)) for s in starts)
    lines += [f"**Exercises** ({len(starts)}, {total} min of time boxes)", "",
              "| exercise | difficulty | time box | what |", "|---|---|---|---|", *rows, "", *details]
    return "\n".join(lines)


def render(notebooks: list[Path]) -> str:
    return INTRO + "\n" + "\n".join(notebook_notes(p) for p in notebooks).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 when the page is out of date; write nothing")
    args = ap.parse_args(argv)
    text = render(sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")))
    if args.check:
        if not PAGE.is_file() or PAGE.read_text(encoding="utf-8") != text:
            print(f"{PAGE.relative_to(ROOT)} is out of date: run `python scripts/instructor_notes.py`", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(text, encoding="utf-8")
    print(f"wrote {PAGE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
