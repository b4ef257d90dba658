"""Command-line entry points of the paper-scale stages (DESIGN §4 "Scale-out").

``python -m craft.lclr | craft.r2l | craft.evaluate --config params/paper-….yaml`` run
:func:`craft.pipeline.lclr_stage`, :func:`~craft.pipeline.r2l_stage` and
:func:`~craft.pipeline.evaluate_stage`, the functions the notebooks' paper-scale cells call. Under
``accelerate launch`` or ``torchrun`` every rank runs the same command; each prints one JSON line
(``{"rank": …, "stage": …, "summary": …}``) and leaves the process group cleanly.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import torch

from craft.paper_config import load_paper_run
from craft.pipeline import evaluate_stage, lclr_stage, r2l_stage

HELP = {"lclr": "Fit the LCLR heads on the policy's hidden states of R2D-R1 traces (paper §4.1).",
        "r2l": "R2L GRPO of the policy with latent, text and consistency rewards (paper §4.2).",
        "evaluate": "Reasoning/response harmfulness on JBB and StrongREJECT under attacks (paper §6)."}


def parser(stage: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"python -m craft.{stage}", description=HELP[stage])
    p.add_argument("--config", required=True, help="a params file (params/paper-....yaml)")
    p.add_argument("--run-dir", help="override the params file's run_dir")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    if stage == "r2l":
        p.add_argument("--variant", action="append", help="variant(s) to train (default: paper.variants)")
    if stage == "evaluate":
        p.add_argument("--method", action="append", metavar="NAME=PATH",
                       help="policies to evaluate (default: base and every trained variant)")
    return p


def cli(stage: str, argv: list[str] | None = None) -> dict:
    """Run one stage from the command line; print and return its summary."""
    args = parser(stage).parse_args(argv)
    run = load_paper_run(args.config)
    run_dir, progress = args.run_dir or run.run_dir, not args.no_progress
    if stage == "lclr":
        summary = lclr_stage(run.config, run_dir, progress)["metrics"]
    elif stage == "r2l":
        summary = {v: r2l_stage(run.config, run_dir, v, progress) for v in args.variant or run.config.variants}
    else:
        methods = dict(m.split("=", 1) for m in args.method) if args.method else None
        summary = evaluate_stage(run.config, run_dir, methods, progress=progress)["metrics"]
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()     # a clean exit for every rank (DESIGN §5)
    print(json.dumps({"rank": int(os.environ.get("RANK", "0")), "stage": stage, "summary": summary},
                     default=str, sort_keys=True), file=sys.stdout, flush=True)
    return summary
