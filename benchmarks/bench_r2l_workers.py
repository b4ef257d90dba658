"""Wall time of a set of R2L runs trained one at a time vs ``r2l.workers`` at a time, on the organism.

The same jobs (``--variants`` x ``--seeds``, ``--steps`` GRPO steps each, evaluated at the first and
last step) are trained twice per round through :func:`craft.stages.r2l.r2l_stage`: once with
``r2l.workers = 1`` (one process, the run's 2 CPU threads) and once with ``r2l.workers = 2`` (two
spawned processes of one thread each). Each configuration starts from a fresh copy of the run's
notebook 00-02 artifacts and completion cache, so both find the base policy's step-0 completions
cached alike; the order alternates between rounds so that machine load hits both. The statistic
is the ratio of the median wall times (sequential / parallel: > 1 means the workers are faster).

    .venv/bin/python benchmarks/bench_r2l_workers.py --run-dir runs/default --steps 10 --rounds 1

Needs notebooks 00-02 (and 00's evaluation cache) to have run for ``--run-dir`` (``make reproduce``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

COPIED = ("00_build_model_organism", "01_probe_latent_geometry", "02_train_lclr", "cache")


def one_config(run_dir: Path, workers: int, variants: list[str], seeds: int, steps: int) -> float:
    """Seconds to train every job with ``workers`` at a time, from a fresh copy of ``run_dir``."""
    from craft.stages import load_params, open_run
    from craft.stages.r2l import r2l_stage

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "run"
        for name in COPIED:
            if (run_dir / name).exists():
                shutil.copytree(run_dir / name, root / name)
        params = load_params(None, run_dir=str(root), figures_dir="",
                             r2l={"workers": workers, "variants": variants, "n_seeds": seeds, "eval_every": 0,
                                  "grpo": {"max_steps": steps}})
        run = open_run(params, progress=False)
        start = time.perf_counter()
        r2l_stage(run)
        return time.perf_counter() - start


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run-dir", default="runs/default")
    ap.add_argument("--variants", nargs="+", default=["output_only", "craft"])
    ap.add_argument("--seeds", type=int, default=2, help="seeds per variant")
    ap.add_argument("--steps", type=int, default=10, help="GRPO steps per run")
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args(argv)
    run_dir = Path(args.run_dir)
    if not (run_dir / "02_train_lclr" / "DONE").is_file():
        sys.exit(f"missing {run_dir}/02_train_lclr: run notebooks 00-02 first (make reproduce) or pass --run-dir")
    times: dict[int, list[float]] = {1: [], 2: []}
    for r in range(args.rounds):
        for workers in ((1, 2) if r % 2 == 0 else (2, 1)):
            times[workers].append(one_config(run_dir, workers, args.variants, args.seeds, args.steps))
            print(f"round {r}: workers={workers}: {times[workers][-1]:.1f} s", flush=True)
    seq, par = statistics.median(times[1]), statistics.median(times[2])
    jobs = len(args.variants) * args.seeds
    print(json.dumps({"jobs": jobs, "steps": args.steps, "sequential_s": round(seq, 1), "workers2_s": round(par, 1),
                      "speedup": round(seq / par, 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
