"""GRPO step time of CRAFT (R_ls + R_txt + R_cons) vs output-only (R_txt) on the organism.

Both variants start from the same base organism (``runs/<run>/00_build_model_organism``), use
the same R2L config, prompts and seed, and run in this process, alternating
(output-only, craft, output-only, craft, ...) so that machine load hits both alike. The first
``--warmup`` steps of every run are dropped; the statistic is the median seconds per optimizer
step. The latent scorer's share is the time spent in its extra truncated forward divided by the
CRAFT run's training time.

    .venv/bin/python benchmarks/bench_r2l_overhead.py --run-dir runs/default --steps 12 --rounds 2

Needs notebooks 00-02 to have run for ``--run-dir`` (``make reproduce``).
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from transformers import TrainerCallback


class StepTimer(TrainerCallback):
    """Wall-clock seconds of each optimizer step (generation, rewards, backward, update)."""

    def __init__(self):
        self.seconds: list[float] = []
        self._t = 0.0

    def on_step_begin(self, args, state, control, **kwargs):
        self._t = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.seconds.append(time.perf_counter() - self._t)


def load_inputs(run_dir: str):
    """The organism's base policy, LCLR heads (with their latent), judge and training prompts, read
    through the stage code from the run that notebooks 00-02 made (settings: params/organism.yaml)."""
    from craft.lclr import load_heads
    from craft.r2l import make_prompt_dataset
    from craft.stages import load_params, open_run
    from craft.stages.lclr import heads_dir

    run = open_run(load_params(None, run_dir=run_dir), progress=False)
    if not (heads_dir(run) / "heads.safetensors").is_file():
        sys.exit(f"missing {heads_dir(run)}: run notebooks 00-02 first (make reproduce) or pass --run-dir")
    model, tokenizer = run.source.load_policy()
    heads = load_heads(heads_dir(run))
    data = make_prompt_dataset(run.source.train_prompts(run.params.seed))
    return run, model, tokenizer, heads, heads.spec, run.source.judge("reward"), data


def run_once(run, variant: str, base, tokenizer, data, heads, spec, judge, steps: int, seed: int):
    import dataclasses

    from craft.r2l import build_trainer, latent_scorer
    from craft.stages.r2l import r2l_config

    cfg = r2l_config(run, variant, seed)
    cfg = dataclasses.replace(cfg, grpo={**cfg.grpo, "max_steps": steps, "save_steps": 10_000})
    timer = StepTimer()
    with tempfile.TemporaryDirectory() as out:
        trainer = build_trainer(copy.deepcopy(base), tokenizer, data, heads, spec, judge, cfg, out, callbacks=[timer])
        t0 = time.perf_counter()
        trainer.train()
        total = time.perf_counter() - t0
    scorer = latent_scorer(trainer)
    return timer.seconds, total, (scorer.seconds if scorer is not None else 0.0)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run-dir", default="runs/default")
    ap.add_argument("--steps", type=int, default=12, help="optimizer steps per run")
    ap.add_argument("--warmup", type=int, default=2, help="steps dropped at the start of each run")
    ap.add_argument("--rounds", type=int, default=2, help="alternating (output-only, craft) pairs")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="also write the JSON result here")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    run, base, tokenizer, heads, spec, judge, data = load_inputs(args.run_dir)
    steps = {"output_only": [], "craft": []}
    latent_share = []
    for _ in range(args.rounds):
        for variant in steps:
            secs, total, latent = run_once(run, variant, base, tokenizer, data, heads, spec, judge, args.steps,
                                           args.seed)
            steps[variant] += secs[args.warmup:]
            if variant == "craft":
                latent_share.append(latent / total)
    med = {v: statistics.median(s) for v, s in steps.items()}
    result = {"median_s_per_step": med, "ratio_craft_over_output_only": med["craft"] / med["output_only"],
              "latent_scorer_share_of_craft_time": statistics.mean(latent_share),
              "n_steps_measured": {v: len(s) for v, s in steps.items()}, "args": vars(args)}
    print(f"{'variant':<12} {'median s/step':>14} {'steps':>6}")
    for v in steps:
        print(f"{v:<12} {med[v]:>14.3f} {len(steps[v]):>6}")
    print(f"ratio craft / output-only = {result['ratio_craft_over_output_only']:.3f}")
    print(f"latent scorer share of CRAFT training time = {result['latent_scorer_share_of_craft_time']:.3f}")
    print(json.dumps(result))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
