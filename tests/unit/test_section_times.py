"""``scripts/section_times.py`` writes a notebook header's runtime and section shares from an executed run."""

import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
from section_times import main, new_header, section_seconds, share  # noqa: E402

HEADER = """# 09 · A notebook

**Sections and time** (share of this notebook's runtime):

| section | share |
|---|---|
| set-up (parameters, `open_run`) | 50 % |
| 1. Train | 40 % (the runs) |
| What this shows | < 1 % |

**Runtime.** CPU track: about 9.9 min on 2 cores (measured, an idle Intel Xeon, from scratch).
"""


def _executed(durations: dict[str, list[float]], total: float | None = None) -> nbformat.NotebookNode:
    md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    cells = [md(HEADER)]
    for heading, secs in durations.items():
        if heading != "set-up":
            cells.append(md(f"## {heading}\n\nText."))
        for d in secs:
            cells.append(code("pass"))
            cells[-1].metadata["papermill"] = {"duration": d}
    nb = nbformat.v4.new_notebook(cells=cells)
    if total is not None:
        nb.metadata["papermill"] = {"duration": total}
    return nb


def test_shares_and_runtime_come_from_the_cell_durations():
    nb = _executed({"set-up": [3.0], "1. Train": [80.0, 16.0], "What this shows": [0.2]}, total=120.0)
    assert section_seconds(nb) == ([("set-up", 3.0), ("1. Train", 96.0), ("What this shows", 0.2)], 99.2)
    assert share(0.2, 99.2) == "< 1 %" and share(96.0, 99.2) == "97 %"
    header, changes = new_header(HEADER, nb, "AMD EPYC")
    assert "| set-up (parameters, `open_run`) | 3 % |" in header
    assert "| 1. Train | 97 % (the runs) |" in header and "| What this shows | < 1 % |" in header
    assert "about 2.0 min on 2 cores (measured, an idle AMD EPYC, from scratch)" in header     # papermill's 120 s
    assert len(changes) == 3 and changes[0] == "set-up (parameters, `open_run`): 50 % -> 3 %"


def test_a_row_that_names_no_section_is_refused():
    nb = _executed({"set-up": [1.0], "1. Fit": [1.0]})
    with pytest.raises(ValueError, match="names no section"):
        new_header(HEADER, nb, "AMD EPYC")


def test_apply_writes_the_committed_header_and_refuses_a_stale_run(tmp_path, capsys):
    committed, executed = tmp_path / "notebooks", tmp_path / "executed"
    committed.mkdir(), executed.mkdir()
    nb = _executed({"set-up": [3.0], "1. Train": [96.0], "What this shows": [1.0]}, total=100.0)
    nbformat.write(nb, executed / "09_a.ipynb")
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
    nbformat.write(nb, committed / "09_a.ipynb")
    assert main([str(executed), "--notebooks", str(committed)]) == 0
    assert "50 % -> 3 %" in capsys.readouterr().out
    assert nbformat.read(committed / "09_a.ipynb", as_version=4).cells[0].source == HEADER   # no --apply: unchanged
    assert main([str(executed), "--notebooks", str(committed), "--apply"]) == 0
    assert "| 1. Train | 96 % (the runs) |" in nbformat.read(committed / "09_a.ipynb", as_version=4).cells[0].source
    nb.cells[2].source = "## 1. Fit"                                                  # the run is not this notebook
    nbformat.write(nb, committed / "09_a.ipynb")
    assert main([str(executed), "--notebooks", str(committed)]) == 1
    assert "a stale run" in capsys.readouterr().err


def test_the_committed_headers_have_the_rows_and_runtime_the_script_writes():
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        header = nbformat.read(path, as_version=4).cells[0].source
        sections = [line[3:] for c in nbformat.read(path, as_version=4).cells if c.cell_type == "markdown"
                    for line in c.source.splitlines() if line.startswith("## ")]
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(header)] + [
            nbformat.v4.new_markdown_cell(f"## {s}") for s in sections])
        new_header(header, nb, "CPU")            # raises when a row names no section
        assert "**Sections and time**" in header and "on 2 cores (measured, an idle" in header, path.name
