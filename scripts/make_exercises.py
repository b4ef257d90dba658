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
    python scripts/make_exercises.py notebooks/*.ipynb --out build/exercises --params params/quick.yaml

With ``--params`` (``make exercises RUN=quick``), each student copy also gets that params file's values (and its
per-notebook overrides) injected after its parameters cell, as papermill injects them, so that the copies read
that run's artifacts (e.g. the quick run's, ``runs/quick/``) when opened in JupyterLab.
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


def with_parameters(nb: nbformat.NotebookNode, params: Path, stem: str) -> nbformat.NotebookNode:
    """``nb`` with the values of ``params`` (and ``params/<name>/<stem>.yaml``) injected by papermill's own
    ``parameterize_notebook``; a key the notebook does not declare is an error."""
    from papermill.parameterize import parameterize_notebook
    from prepare_notebooks import parameters, params_files, unknown_keys

    values = parameters(params_files(params, stem))
    unknown = unknown_keys(nb, values, stem)
    if unknown:
        raise ValueError(f"{params}: {sorted(unknown)} are not parameters of {stem}")
    out = _copy(nb)
    out.metadata.setdefault("papermill", {})     # where parameterize_notebook records what it injected
    return parameterize_notebook(out, values)


def _copy(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    return nbformat.reads(nbformat.writes(nb), as_version=4)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("notebooks", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, default=Path("build/exercises"), help="folder for the student notebooks")
    ap.add_argument("--params", type=Path, help="a params file whose values the copies get (e.g. params/quick.yaml)")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for path in args.notebooks:
        if not path.is_file():
            print(f"make_exercises: {path} does not exist", file=sys.stderr)
            return 2
        nb = nbformat.read(path, as_version=4)
        n = sum(1 for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution"))
        student = student_version(nb)
        if args.params:
            if not args.params.is_file():
                print(f"make_exercises: {args.params} does not exist", file=sys.stderr)
                return 2
            student = with_parameters(student, args.params, path.stem)
        nbformat.write(student, args.out / path.name)
        print(f"{path.name}: {n} solution cell(s) cleared -> {args.out / path.name}"
              + (f" (parameters of {args.params})" if args.params else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
