"""Inject a params file into notebooks with papermill, without executing them (`make nb-params`, `make nb-check`).

    python scripts/prepare_notebooks.py --params params/ci.yaml --out build/check notebooks/*.ipynb
    python scripts/prepare_notebooks.py --params params/*.yaml --out build/params --suffix notebooks/*.ipynb

This is ``papermill --prepare-only NB OUT -f params/X.yaml [-f params/X/<stem>.yaml]`` for each notebook and
params file, run through papermill's own Python API in one process (one papermill start per pair cost about
two seconds, forty times). Like papermill, later files update the top level of earlier ones. Unlike papermill,
which only warns about a key the notebook's ``parameters`` cell does not declare (and then runs with the
default), an unknown key is an error here, as is a notebook whose parameters cell papermill cannot parse.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml


def params_files(params: Path, stem: str) -> list[Path]:
    """``params`` and, when it exists, its per-notebook override ``params/<name>/<stem>.yaml``."""
    extra = params.with_suffix("") / f"{stem}.yaml"
    return [params, extra] if extra.is_file() else [params]


def parameters(files: list[Path]) -> dict:
    """The parameters papermill injects for ``-f`` files, merged in order at the top level."""
    merged: dict = {}
    for f in files:
        merged.update(yaml.safe_load(f.read_text()) or {})
    return merged


def unknown_keys(nb, values: dict, name: str) -> list[str]:
    """The keys of ``values`` that the parameters cell of ``nb`` (a notebook node named ``name``) does not declare,
    as papermill's own inspection reads that cell; a notebook without one is an error."""
    from papermill.inspection import _infer_parameters

    declared = {p.name for p in _infer_parameters(nb)}
    if not declared:
        raise ValueError(f"{name}: papermill finds no parameters cell (a code cell tagged `parameters`)")
    return sorted(set(values) - declared)


def prepare(notebook: Path, files: list[Path], out: Path) -> list[str]:
    """Write ``notebook`` with the parameters of ``files`` injected to ``out``; return the unknown keys."""
    import papermill
    from papermill.iorw import load_notebook_node

    values = parameters(files)
    unknown = unknown_keys(load_notebook_node(str(notebook)), values, str(notebook))
    papermill.execute_notebook(str(notebook), str(out), parameters=values, prepare_only=True, progress_bar=False,
                               log_output=False)
    return unknown


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("notebooks", nargs="+", type=Path)
    ap.add_argument("--params", nargs="+", type=Path, required=True, help="params files (per-notebook overrides "
                    "params/<name>/<stem>.yaml are added automatically)")
    ap.add_argument("--out", type=Path, required=True, help="folder for the prepared notebooks")
    ap.add_argument("--suffix", action="store_true", help="name outputs <stem>__<params>.ipynb (several params files)")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    failures = []
    for nb in args.notebooks:
        for params in args.params:
            name = f"{nb.stem}__{params.stem}.ipynb" if args.suffix else nb.name
            try:
                unknown = prepare(nb, params_files(params, nb.stem), args.out / name)
            except Exception as e:   # report every notebook, then fail
                failures.append(f"{nb.name} with {params}: {type(e).__name__}: {e}")
                continue
            if unknown:
                failures.append(f"{nb.name} with {params}: unknown parameter(s) {unknown} (papermill would only warn "
                                "and run with the defaults)")
    folders = {nb.parent for nb in args.notebooks}
    for extra in sorted(p for params in args.params for p in params.with_suffix("").glob("*.yaml")):
        if not any((folder / f"{extra.stem}.ipynb").is_file() for folder in folders):
            failures.append(f"{extra}: no notebook named {extra.stem}.ipynb")
    for line in failures:
        print(f"prepare_notebooks: {line}", file=sys.stderr)
    if not failures:
        print(f"prepare_notebooks: ok ({len(args.notebooks)} notebooks x {len(args.params)} params files)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
