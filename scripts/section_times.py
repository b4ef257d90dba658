"""Write each notebook header's runtime and "Sections and time" shares from an executed run (``make section-times``).

The header of every notebook says how long it ran and which share of that time each of its sections (``## ``
headings) took. Those numbers come from papermill's cell durations, which the committed notebooks do not keep
(nbstripout removes them), so no test can compare them with the committed outputs; this script writes them from the
executed notebooks of a from-scratch run instead of by hand:

    make reproduce                                    # from scratch: an empty runs/default
    python scripts/section_times.py runs/default/executed             # show old -> new, write nothing
    python scripts/section_times.py runs/default/executed --apply     # write into notebooks/*.ipynb

A run that found its stages cached measures the cache, not the work: run it from scratch (a share table of such a
run would put the whole notebook in its set-up). ``--apply`` refuses a run whose notebooks disagree with the
committed ones on their section headings (a stale run).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
ROW = re.compile(r"^\| (?!section \|)(?!---)(.+?) \| (< 1 %|\d+ %)(.*?) \|$", re.M)
HEADING = re.compile(r"^## (.+)$", re.M)
RUNTIME = re.compile(r"about (\d+(?:\.\d+)?) min on 2 cores \(measured, (?:an?|on) [^,()]+, from scratch\)")


def section_seconds(nb) -> tuple[list[tuple[str, float]], float]:
    """``[(heading, seconds)]`` of each ``## `` section in order (the cells before the first heading:
    ``"set-up"``) and the notebook's total, summed from papermill's cell durations."""
    sections = [["set-up", 0.0]]
    for cell in nb.cells[1:]:
        if cell.cell_type == "markdown":
            sections += [[m.group(1).strip(), 0.0] for m in HEADING.finditer(cell.source)]
        else:
            sections[-1][1] += float((cell.metadata.get("papermill") or {}).get("duration") or 0.0)
    return [(name, secs) for name, secs in sections], sum(s for _, s in sections)


def headings(nb) -> list[str]:
    """The ``## `` headings of ``nb``'s markdown cells, in order."""
    return [m.group(0) for c in nb.cells if c.cell_type == "markdown" for m in HEADING.finditer(c.source)]


def share(seconds: float, total: float) -> str:
    """A section's share as the header writes it: whole percent, "< 1 %" below one half."""
    p = 100 * seconds / total if total else 0.0
    return "< 1 %" if p < 0.5 else f"{p:.0f} %"


def _key(label: str) -> str:
    return re.sub(r"[`*]", "", label).split(" (")[0].strip().lower()


def cpu_name() -> str:
    """This machine's CPU family as the header names it ("AMD EPYC", "Intel Xeon"), from /proc/cpuinfo."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "CPU"
    m = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
    words = re.sub(r"\((?:R|TM)\)", "", m.group(1)).split() if m else []
    return " ".join(words[:2]) or "CPU"


def new_header(header: str, nb, cpu: str) -> tuple[str, list[str]]:
    """``header`` with each row of its share table and its runtime (papermill's duration of the whole notebook)
    written from ``nb``'s durations, and the changes as lines ``label: old -> new``. A row whose label starts no
    section of ``nb`` raises ValueError."""
    sections, total = section_seconds(nb)
    changes = []

    def row(m: re.Match) -> str:
        label, old, rest = m.group(1), m.group(2), m.group(3)
        hits = [s for name, s in sections if _key(name).startswith(_key(label)[:25])]
        if not hits:
            raise ValueError(f"the header's row {label!r} names no section of the executed notebook")
        new = share(hits[0], total)
        if new != old:
            changes.append(f"{label}: {old} -> {new}")
        return f"| {label} | {new}{rest} |"

    header = ROW.sub(row, header)
    seconds = float((nb.metadata.get("papermill") or {}).get("duration") or total)   # with the kernel's start
    runtime = f"about {seconds / 60:.1f} min on 2 cores (measured, an idle {cpu}, from scratch)"
    m = RUNTIME.search(header)
    if m and m.group(0) != runtime:
        changes.append(f"runtime: {m.group(0)} -> {runtime}")
        header = header.replace(m.group(0), runtime)
    return header, changes


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("executed", type=Path, help="the folder of a from-scratch run's executed notebooks")
    ap.add_argument("--apply", action="store_true", help="write the headers of notebooks/*.ipynb")
    ap.add_argument("--notebooks", type=Path, default=ROOT / "notebooks")
    args = ap.parse_args(argv)
    cpu = cpu_name()
    status = 0
    for path in sorted(args.notebooks.glob("[0-9][0-9]_*.ipynb")):
        executed = args.executed / path.name
        if not executed.is_file():
            print(f"{path.name}: no executed notebook in {args.executed}", file=sys.stderr)
            status = 1
            continue
        committed, ran = nbformat.read(path, as_version=4), nbformat.read(executed, as_version=4)
        if headings(committed) != headings(ran):
            print(f"{path.name}: the executed notebook's sections are not the committed one's (a stale run)",
                  file=sys.stderr)
            status = 1
            continue
        try:
            header, changes = new_header(committed.cells[0].source, ran, cpu)
        except ValueError as e:
            print(f"{path.name}: {e}", file=sys.stderr)
            status = 1
            continue
        print(f"{path.name}: " + ("; ".join(changes) if changes else "unchanged"))
        if args.apply and changes:
            committed.cells[0].source = header
            nbformat.write(committed, path)
    return status


if __name__ == "__main__":
    sys.exit(main())
