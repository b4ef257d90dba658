"""The ``%%only`` cell magic: one notebook, two scales (DESIGN §1, §4).

Every notebook runs at two scales from the same file: the organism run (default parameters)
and the paper-scale run (``papermill -f params/paper-….yaml``, which sets the ``paper``
parameter to a non-empty mapping). A cell that belongs to one scale starts with

    %%only organism        or        %%only paper

and runs only in that scale's run; in the other it prints one line saying it was skipped.
Cells without the magic run in both. Load it with ``%load_ext craft.notebook``.

The cell body runs through IPython's own ``run_cell`` (as ``%%capture`` does), so its output,
figures and last-expression value show as usual, and an exception in it fails the cell, so that
papermill and nbval see it.
"""

from __future__ import annotations

SCALES = ("organism", "paper")


def current_scale(namespace: dict) -> str:
    """``paper`` when the notebook's ``paper`` parameter is a non-empty mapping, else ``organism``."""
    return "paper" if namespace.get("paper") else "organism"


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


def load_ipython_extension(ipython) -> None:
    """``%load_ext craft.notebook`` registers ``%%only``."""
    ipython.register_magic_function(lambda line, cell: only(line, cell, ipython), "cell", "only")
