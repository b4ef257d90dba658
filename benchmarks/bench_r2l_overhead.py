"""GRPO step time of CRAFT (R_ls + R_txt + R_cons) vs output-only (R_txt) on the organism.

Three arms: output-only; CRAFT with its latents captured during generation (``capture_latents``,
the default: :class:`craft.r2l.rollout.CapturingRollout`); CRAFT recomputing them with a second,
truncated forward (``capture_latents: false``, what vLLM rollouts do). All start from the same base
organism (``runs/<run>/00_build_model_organism``), use the same R2L config, prompts and seed, and
run in this process, alternating (output-only, captured, recomputed, output-only, ...) so that
machine load hits them alike. By default the learning rate is 1e-30 (GRPOConfig needs > 0; an Adam
step that small is below float32 resolution): the policy stays the base policy,
so every arm samples exactly the same completions (same seed) and the ratios measure what the
rewards cost; with training, the arms' completions (and so their lengths and step times) drift apart
after the first step. The first ``--warmup`` steps of every run are dropped; the statistic is the
median seconds per optimizer step. The latent scorer's share is the time spent scoring the
latents (the second forward, when there is one) divided by the run's training time.

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

    run = open_run(load_params(None, run_dir=run_dir), progress=False)
    if not (run.heads_dir() / "heads.safetensors").is_file():
        sys.exit(f"missing {run.heads_dir()}: run notebooks 00-02 first (make reproduce) or pass --run-dir")
    model, tokenizer = run.source.load_policy()
    heads = load_heads(run.heads_dir())
    data = make_prompt_dataset(run.source.train_prompts(run.params.seed))
    return run, model, tokenizer, heads, heads.spec, run.source.judge("reward"), data


ARMS = {"output_only": ("output_only", True), "craft_captured": ("craft", True), "craft_recomputed": ("craft", False)}


def run_once(run, arm: str, base, tokenizer, data, heads, spec, judge, steps: int, seed: int, lr: float):
    import dataclasses

    from craft.r2l import build_trainer, latent_scorer
    from craft.stages.r2l import r2l_config

    variant, capture = ARMS[arm]
    cfg = r2l_config(run, variant, seed)
    grpo = {**cfg.grpo, "max_steps": steps, "save_steps": 10_000, "learning_rate": lr}
    cfg = dataclasses.replace(cfg, capture_latents=capture, grpo=grpo)
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
    ap.add_argument("--rounds", type=int, default=2, help="alternating (output-only, captured, recomputed) rounds")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--learning-rate", type=float, default=1e-30,
                    help="1e-30 (default; GRPOConfig needs > 0): below float32 resolution, so the policy stays the "
                         "base and every arm samples the same completions; the ratios then measure the rewards' cost. "
                         "The run's own rate (1e-4) trains, and the arms' completion lengths drift apart")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="also write the JSON result here")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    run, base, tokenizer, heads, spec, judge, data = load_inputs(args.run_dir)
    steps = {arm: [] for arm in ARMS}
    latent_share = {arm: [] for arm in ARMS if arm != "output_only"}
    for _ in range(args.rounds):
        for arm in steps:
            secs, total, latent = run_once(run, arm, base, tokenizer, data, heads, spec, judge, args.steps, args.seed,
                                           args.learning_rate)
            steps[arm] += secs[args.warmup:]
            if arm in latent_share:
                latent_share[arm].append(latent / total)
    med = {v: statistics.median(s) for v, s in steps.items()}
    result = {"median_s_per_step": med,
              "ratio_craft_over_output_only": med["craft_captured"] / med["output_only"],
              "ratio_craft_recomputed_over_output_only": med["craft_recomputed"] / med["output_only"],
              "latent_scorer_share": {a: statistics.mean(v) for a, v in latent_share.items()},
              "n_steps_measured": {v: len(s) for v, s in steps.items()}, "args": vars(args)}
    print(f"{'arm':<18} {'median s/step':>14} {'steps':>6}")
    for v in steps:
        print(f"{v:<18} {med[v]:>14.3f} {len(steps[v]):>6}")
    print(f"ratio CRAFT (captured latents) / output-only = {result['ratio_craft_over_output_only']:.3f}")
    print(f"ratio CRAFT (second forward) / output-only   = {result['ratio_craft_recomputed_over_output_only']:.3f}")
    for a, v in result["latent_scorer_share"].items():
        print(f"latent scoring share of {a} training time = {v:.3f}")
    print(json.dumps(result))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
