"""The ``craft`` command: run one stage of a params file from the shell.

    craft {build,probe,lclr,r2l,baselines,evaluate,monitor,attacks} --config params/organism.yaml
    python -m craft r2l --config params/paper-qwen3-4b-thinking.yaml --variant craft
    craft fork runs/default runs/no-cons --set r2l.w_cons=0      (then: craft r2l --config runs/no-cons/params.yaml)

Each stage calls the same runner as the notebooks (:mod:`craft.stages`), so the artifacts under
``run_dir`` are the ones the notebooks load. Under ``accelerate launch`` or ``torchrun`` every rank
runs the same command (R2L trains through TRL's own distributed support; only the main process
writes); each rank prints one JSON line (``{"rank": …, "stage": …, "summary": …}``) and leaves
the process group cleanly. The other stages run on one process.
"""

from __future__ import annotations

import argparse
import json
import sys

import torch

HELP = {"build": "Build the base organism, or check the paper-scale policy (notebook 00).",
        "probe": "Probe THE latent of safe/unsafe/rethink traces layer by layer (paper §3; notebook 01).",
        "lclr": "Fit the LCLR heads on the policy's hidden states of labelled traces (paper §4.1; notebook 02).",
        "r2l": "R2L GRPO of the policy with latent, text and consistency rewards (paper §4.2; notebook 03).",
        "baselines": "Train the safety-training baselines (paper §6; notebook 04).",
        "evaluate": "Reasoning and response harmfulness, SSA and capability of every policy (paper §6; notebook 04).",
        "monitor": "Read the reasoning as it streams: latent monitor, stop, obfuscation check (notebook 06).",
        "attacks": "Adaptive attacks (GCG, a GPTFuzzer-style fuzzer) on base, output-only and CRAFT (notebook 07)."}
FORK_HELP = ("Branch a run: copy it into a new folder with changed settings; its stages then reuse every artifact "
             "the change leaves intact and make again the rest.")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="craft", description="Run one stage of a CRAFT params file.")
    sub = p.add_subparsers(dest="stage", required=True, metavar="{" + ",".join([*HELP, "fork"]) + "}")
    for stage, text in HELP.items():
        s = sub.add_parser(stage, help=text, description=text)
        s.add_argument("--config", required=True, help="a params file (params/organism.yaml, params/paper-....yaml)")
        s.add_argument("--run-dir", help="override the params file's run_dir")
        s.add_argument("--no-progress", action="store_true", help="no progress bars")
        s.add_argument("--debug", action="store_true", help="on an error, the whole traceback, not one line")
        if stage == "r2l":
            s.add_argument("--variant", action="append", help="variant(s) to train (default: r2l.variants)")
            s.add_argument("--seed", action="append", type=int,
                           help="seed(s) (default: seed .. seed + r2l.n_seeds - 1)")
            s.add_argument("--ablations", action="store_true",
                           help="train the ablations of notebook 05 into its folder (default variants: "
                                "ablations.variants; seeds: ablations.n_seeds, no_lclr's ablations.head_draws; "
                                "evaluated every ablations.eval_every)")
    f = sub.add_parser("fork", help=FORK_HELP, description=FORK_HELP)
    f.add_argument("source", help="the run folder to branch from (e.g. runs/default)")
    f.add_argument("target", help="a new folder for the fork (e.g. runs/no-cons)")
    f.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a changed setting, e.g. r2l.w_cons=0 or latent.pool=last (repeat for more)")
    f.add_argument("--config", help="the source run's params file (default: the organism, params/organism.yaml)")
    f.add_argument("--debug", action="store_true", help="on an error, the whole traceback, not one line")
    return p



def _fork(args) -> dict:
    from craft.stages.fork import fork_run, parse_set

    changes = parse_set(args.set)
    params = fork_run(args.source, args.target, changes, args.config)
    return {"run_dir": params.run_dir, "params": f"{args.target.rstrip('/')}/params.yaml", "changes": changes}


def _summary(stage: str, run) -> dict:
    """The stage's flat ``.metrics`` (R2L has its own summary, in :func:`main`)."""
    from craft.stages import attacks, baselines, build, evaluate, lclr, monitor, probe

    runners = {"build": build.build_stage, "probe": probe.probe_stage, "lclr": lclr.lclr_stage,
               "baselines": baselines.baselines_stage, "monitor": monitor.monitor_stage,
               "attacks": attacks.attacks_stage,
               "evaluate": lambda r: evaluate.evaluate_stage(r, evaluate.default_methods(
                   r, baselines=baselines.trained(r)))}
    if stage not in runners:
        raise ValueError(f"unknown stage {stage!r}")
    return runners[stage](run).metrics


def main(argv: list[str] | None = None) -> dict:
    """Run one stage from the command line; print and return its summary. An error the user can act on
    (a params file, a missing or stale artifact, a model that will not load, a full disk) ends the
    command with one ``error: …`` line and exit status 1; ``--debug`` shows the traceback instead."""
    args = parser().parse_args(argv)
    try:
        return _run(args)
    except Exception as e:
        message = error_line(e)
        if args.debug or message is None:
            raise
        sys.stderr.write(f"error: {message}\n")
        raise SystemExit(1) from None


def console() -> int:
    """The ``craft`` command's entry point: :func:`main`, exit status 0 (its summary is printed, not returned
    to the shell; ``sys.exit`` of a dict would print it again and exit 1)."""
    main()
    return 0


def error_line(e: BaseException) -> str | None:
    """The one line the command prints for ``e``, or None for an error that is a bug (its traceback is
    what helps then). A full disk is named as such, with the file it could not write."""
    import errno

    from craft.config import ConfigError
    from craft.judges import JudgeUnavailableError
    from craft.models import ModelLoadError
    from craft.runs import DamagedFileError, RunLockedError, StaleArtifactError

    if isinstance(e, OSError) and e.errno == errno.ENOSPC:
        where = f" writing {e.filename}" if e.filename else ""
        return f"no space left on device{where}: free some space and run the command again (finished work is kept)"
    known = (ConfigError, StaleArtifactError, RunLockedError, DamagedFileError, ModelLoadError, JudgeUnavailableError,
             FileNotFoundError, PermissionError, ValueError)
    if isinstance(e, known):
        return " ".join(str(e).split("\n")[:1]) if isinstance(e, FileNotFoundError) else str(e).replace("\n", " ")
    return None


def _run(args) -> dict:
    from craft.io import clean_json
    from craft.runs import rank
    from craft.stages import load_params, open_run

    if args.stage == "fork":
        summary = _fork(args)
        sys.stdout.write(json.dumps({"stage": "fork", "summary": summary}, sort_keys=True, default=str) + "\n")
        return summary
    params = load_params(args.config, **({"run_dir": args.run_dir} if args.run_dir else {}))
    run = open_run(params, progress=not args.no_progress)
    if args.stage == "r2l":
        from craft.stages.r2l import ablation_jobs, r2l_stage

        if args.ablations:        # what notebook 05 loads: its own folder, its own evaluation cadence
            a = run.params.ablations
            jobs = ablation_jobs(run, args.variant)
            if args.seed:
                jobs = [(v, s) for v in dict.fromkeys(v for v, _ in jobs) for s in args.seed]
            results = r2l_stage(run, jobs=jobs, stage="ablations", eval_every=a.eval_every)
        else:
            results = r2l_stage(run, args.variant, args.seed)
        summary = {f"{v}-seed{s}": {"steps": r.steps, "world_size": r.world_size, "train_seconds": r.train_seconds,
                                    "cached": r.cached, "path": str(r.path)} for (v, s), r in results.items()}
    else:
        summary = _summary(args.stage, run)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()     # a clean exit for every rank
    record = clean_json({"rank": rank(), "stage": args.stage, "summary": summary})
    line = json.dumps(record, default=str, sort_keys=True)
    sys.stdout.write(line + "\n")          # one write: the ranks' lines never interleave
    sys.stdout.flush()
    return summary
