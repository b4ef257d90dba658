"""Profile of a ``make reproduce`` run: wall time by notebook, and seconds by kind of work.

Reads what the run left behind: the executed notebooks (papermill writes every cell's duration) and
the ``craft.timing`` lines each notebook's processes appended to ``runs/<run>/profile/<notebook>.jsonl``
(``make reproduce`` sets ``CRAFT_PROFILE``). For each notebook: its wall time, the kernel's start-up and
imports (the cell that loads ``craft.notebook``), and the exclusive seconds of each kind of work (SFT,
GRPO optimisation, rollouts, rewards, generation, judging, latent reads, ...) in the notebook's own
process and in the worker processes it started (workers run side by side, so their seconds can exceed
the wall time). ``other`` is the notebook's wall time that no kind and no start-up account for (plotting,
pandas, waiting on workers, small steps).

    .venv/bin/python benchmarks/profile_reproduce.py --run-dir runs/default [--out profile.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path


def notebook_times(path: Path) -> tuple[float, float]:
    """(wall seconds, start-up seconds) of an executed notebook, from papermill's cell durations."""
    nb = json.loads(path.read_text())
    wall = startup = 0.0
    for cell in nb["cells"]:
        seconds = (cell.get("metadata", {}).get("papermill", {}).get("duration") or 0.0)
        wall += seconds
        if cell["cell_type"] == "code" and "load_ext craft.notebook" in "".join(cell["source"]):
            startup += seconds
    return wall, startup


def kind_seconds(path: Path) -> dict[str, dict[str, float]]:
    """``{"notebook" | "workers": {kind: seconds}}`` summed over the lines of one profile file."""
    out: dict[str, dict[str, float]] = {"notebook": defaultdict(float), "workers": defaultdict(float)}
    if path.is_file():
        for line in path.read_text().splitlines():
            entry = json.loads(line)
            side = "workers" if entry.get("worker") else "notebook"
            for kind, s in entry["seconds"].items():
                out[side][kind] += s
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run-dir", default="runs/default")
    ap.add_argument("--out", default=None, help="also write the JSON result here")
    args = ap.parse_args(argv)
    run = Path(args.run_dir)
    executed = sorted((run / "executed").glob("[0-9][0-9]_*.ipynb"))
    if not executed:
        sys.exit(f"no executed notebooks under {run / 'executed'}: run `make reproduce` first")
    rows, kinds = [], set()
    for path in executed:
        wall, startup = notebook_times(path)
        seconds = kind_seconds(run / "profile" / f"{path.stem}.jsonl")
        kinds |= set(seconds["notebook"]) | set(seconds["workers"])
        rows.append({"notebook": path.stem, "wall": wall, "startup": startup,
                     "other": wall - startup - sum(seconds["notebook"].values()),
                     "notebook_kinds": dict(seconds["notebook"]), "worker_kinds": dict(seconds["workers"])})
    kinds = sorted(kinds)
    total = {"wall": sum(r["wall"] for r in rows), "startup": sum(r["startup"] for r in rows),
             "other": sum(r["other"] for r in rows),
             "notebook_kinds": {k: sum(r["notebook_kinds"].get(k, 0.0) for r in rows) for k in kinds},
             "worker_kinds": {k: sum(r["worker_kinds"].get(k, 0.0) for r in rows) for k in kinds}}
    print("seconds; a kind's cell: in the notebook's process + in its workers")
    header = ["notebook", "wall", "start-up", *kinds, "other"]
    print(" | ".join(header))
    for r in [*rows, {"notebook": "total", **total}]:
        cells = [f"{r['notebook_kinds'].get(k, 0.0):.0f}"
                 + (f" + {r['worker_kinds'][k]:.0f}" if r["worker_kinds"].get(k) else "") for k in kinds]
        print(" | ".join([r["notebook"][:24], f"{r['wall']:.0f}", f"{r['startup']:.0f}", *cells, f"{r['other']:.0f}"]))
    result = {"run_dir": str(run), "notebooks": rows, "total": total, "kinds": kinds}
    print(json.dumps(result))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
