"""Notebook helpers: the ``%%only`` cell magic, the check of papermill's parameters, and the package's source
shown under an equation.

Every notebook runs at two scales from the same file: the organism run (default parameters) and the
paper-scale run (``papermill -f params/paper-….yaml``, which sets ``source.kind: paper``). A cell
whose content really differs between the scales (the organism's world, the paper's data) starts with

    %%only organism        or        %%only paper

and runs only in that scale's run; in the other it prints one line saying it was skipped. Cells
without the magic run in both. Load it with ``%load_ext craft.notebook``. The cell body runs through
IPython's own ``run_cell`` (as ``%%capture`` does), so its output, figures and last-expression value
show as usual, and an exception in it fails the cell, so that papermill and nbval see it.

:func:`check_parameters` turns papermill's warning about an unknown parameter (``-p stepz 5``, which
papermill injects and then ignores) into an error that names it.

:func:`check_claims` prints a notebook's claims and asserts them; in a quick run (``budget: quick``, whose sizes
are smaller than those the thresholds were written for) it prints them, marked as the quick run's, and asserts nothing.

:func:`show_source` puts the package's own code for an equation on the page (``inspect.getsource``, rendered as
Markdown, so it shows in the static book too): what the reader sees is what runs, and cannot drift from it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping

SCALES = ("organism", "paper")
INJECTED_HEADER = "# Parameters"      # papermill's first line of the cell it injects


def show_source(*objects):
    """An IPython ``Markdown`` block with the source of each function, method or class in ``objects``, each
    headed by its dotted name."""
    import inspect
    import textwrap

    from IPython.display import Markdown

    blocks = []
    for obj in objects:
        name = f"{obj.__module__}.{obj.__qualname__}"
        code = textwrap.dedent(inspect.getsource(obj)).rstrip()
        blocks.append(f"`{name}`\n\n```python\n{code}\n```")
    return Markdown("\n\n".join(blocks))


def check_claims(claims: Mapping[str, bool], run, *, reported: Iterable[str] = (), width: int = 60) -> list[str]:
    """Print each claim of ``claims`` (name -> held) that is not in ``reported`` as ``<name> <held>``, the name
    padded to ``width``, and raise ``AssertionError`` naming those that failed. ``run`` (a
    :class:`craft.stages.Run`, or its :class:`~craft.stages.Params`) says whether this is a quick run
    (``budget: quick``): then a first line says the claims are the quick run's and nothing is asserted, since the
    thresholds were written for the full run's sizes. ``reported`` claims are left to the notebook to print
    (they may flip with the draw). Returns the failed claims."""
    params = getattr(run, "params", run)
    reported = set(reported)
    quick = params.quick
    if quick:
        print("quick run (budget: quick): one seed, fewer runs, smaller sets; these claims are printed, not asserted")
    for claim, ok in claims.items():
        if claim not in reported:
            print(f"{claim:<{width}} {ok}")
    failed = [k for k, ok in claims.items() if not ok and k not in reported]
    if failed and not quick:
        raise AssertionError(f"claims not met: {failed}")
    return failed


def current_scale(namespace: dict) -> str:
    """``paper`` when the notebook's ``source`` parameter says ``kind: paper``, else ``organism``."""
    source = namespace.get("source") or {}
    return "paper" if isinstance(source, dict) and source.get("kind") == "paper" else "organism"


def only(line: str, cell: str, shell=None) -> None:
    """Body of ``%%only <scale>``: run ``cell`` when the notebook runs at ``scale``."""
    from IPython import get_ipython

    shell = shell or get_ipython()
    scale = line.strip()
    if scale not in SCALES:
        raise ValueError(f"%%only takes one of {list(SCALES)}, got {scale!r}")
    if current_scale(shell.user_ns) != scale:
        print(f"({scale}-scale cell: skipped in the {current_scale(shell.user_ns)} run)")
        return
    shell.run_cell(cell).raise_error()


def assigned_names(source: str) -> list[str]:
    """Names assigned at the top level of a cell's source (``x = …`` or ``x: t = …``)."""
    names = []
    for stmt in ast.parse(source).body:
        if isinstance(stmt, ast.Assign):
            targets = stmt.targets
        else:
            targets = [stmt.target] if isinstance(stmt, ast.AnnAssign) else []
        names += [t.id for t in targets if isinstance(t, ast.Name)]
    return names


def check_parameters(history: Iterable[str] | None = None) -> None:
    """Raise if papermill injected a parameter that the notebook's ``parameters`` cell does not
    declare. ``history`` is the kernel's input history (``In``; read from IPython by default): the
    injected cell starts with ``# Parameters`` and follows the ``parameters`` cell."""
    if history is None:
        from IPython import get_ipython

        history = get_ipython().user_ns.get("In", [])
    cells = [c for c in history if c.strip()]
    for i, cell in enumerate(cells):
        if cell.lstrip().startswith(INJECTED_HEADER) and i > 0:
            declared = set(assigned_names(cells[i - 1]))
            unknown = sorted(set(assigned_names(cell)) - declared)
            if unknown:
                raise NameError(f"unknown parameter(s) {unknown}: this notebook's parameters are {sorted(declared)} "
                                "(papermill only warns and would run with the defaults)")


def load_ipython_extension(ipython) -> None:
    """``%load_ext craft.notebook`` registers ``%%only`` and draws figures inline as images.

    The inline backend is set here, not left to the environment: the Makefile exports
    ``MPLBACKEND=agg`` for headless runs, under which a kernel stores a figure as its text repr
    (``<Figure size ...>``) and a reader of the executed notebook sees no plot. Figures the stages
    save are closed by :func:`craft.io.save_figure`, so a cell that ends with ``fig`` shows it once."""
    ipython.register_magic_function(lambda line, cell: only(line, cell, ipython), "cell", "only")
    ipython.run_line_magic("matplotlib", "inline")
