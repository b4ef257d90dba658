"""Write the student version of notebooks: solutions removed, outputs cleared (``make exercises``).

The notebooks carry their exercises in nbgrader's format (see ``craft/exercises.py``). This script runs
nbgrader's own ``ClearSolutions`` preprocessor on each notebook, which replaces every region between
``### BEGIN SOLUTION`` and ``### END SOLUTION`` with ``raise NotImplementedError()`` (in a code cell) or
"YOUR ANSWER HERE" (in a markdown cell marked as a solution), then nbconvert's ``ClearOutputPreprocessor``.
It does not run nbgrader's course database or its ``generate_assignment`` command: those need a course
directory layout; the two preprocessors are what turns an instructor notebook into a student one.

The instructor's solution cells are collapsed (JupyterLab's ``source_hidden``, the book's ``hide-cell``);
the student's copy of such a cell is shown open, since it is where the student writes.

    python scripts/make_exercises.py notebooks/*.ipynb --out build/exercises
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

HIDDEN_TAGS = ("hide-input", "hide-cell", "hide-output")


def student_version(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The student version of an instructor notebook (a new object; ``nb`` is not modified)."""
    from nbconvert.preprocessors import ClearOutputPreprocessor
    from nbgrader.preprocessors import ClearSolutions

    out = _copy(nb)
    resources = {"language": "python"}
    out, resources = ClearSolutions().preprocess(out, resources)
    out, resources = ClearOutputPreprocessor().preprocess(out, resources)
    for cell in out.cells:
        if cell.metadata.get("nbgrader", {}).get("solution"):
            cell.metadata.get("jupyter", {}).pop("source_hidden", None)
            if "jupyter" in cell.metadata and not cell.metadata.jupyter:
                del cell.metadata["jupyter"]
            tags = [t for t in cell.metadata.get("tags", []) if t not in HIDDEN_TAGS]
            cell.metadata["tags"] = tags
    return out


def _copy(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    return nbformat.reads(nbformat.writes(nb), as_version=4)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("notebooks", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, default=Path("build/exercises"), help="folder for the student notebooks")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for path in args.notebooks:
        if not path.is_file():
            print(f"make_exercises: {path} does not exist", file=sys.stderr)
            return 2
        nb = nbformat.read(path, as_version=4)
        n = sum(1 for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution"))
        nbformat.write(student_version(nb), args.out / path.name)
        print(f"{path.name}: {n} solution cell(s) cleared -> {args.out / path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
