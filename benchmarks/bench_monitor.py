"""Generation with the streaming latent monitor vs plain generation, on the organism.

Both arms generate the same prompts with the same decoding and seeds through the same batch loop
(:func:`craft.evaluate.generate` vs :func:`craft.monitor.monitored_generate`). Arms: ``plain``;
``monitored`` (``action="none"``: the capture hook during generation, p_z of every token scored
after it); ``armed`` (``action="stop"`` with a threshold no p_z reaches: the stopping criterion
scores p_z at every step, as it must to stop, and never fires). All three produce the same tokens.
They run in this process, alternating (plain, monitored, armed, plain, ...) after one warm-up call
each; the statistic is the median wall time per call and the ratios to plain.

    .venv/bin/python benchmarks/bench_monitor.py --run-dir runs/default --prompts 256 --rounds 5

Needs notebooks 00-02 to have run for ``--run-dir`` (``make reproduce``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run-dir", default="runs/default")
    ap.add_argument("--prompts", type=int, default=256, help="prompts per call (the R2L monitor set's first ones)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=5, help="alternating rounds after a warm-up")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None, help="also write the JSON result here")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    from craft.evaluate import GenerationSettings, generate
    from craft.lclr import load_heads
    from craft.monitor import monitored_generate
    from craft.stages import load_params, open_run

    run = open_run(load_params(None, run_dir=args.run_dir), progress=False)
    if not (run.heads_dir() / "heads.safetensors").is_file():
        sys.exit(f"missing {run.heads_dir()}: run notebooks 00-02 first (make reproduce) or pass --run-dir")
    model, tok = run.source.load_policy()
    heads = load_heads(run.heads_dir())
    prompts = [p.text for p in run.source.monitor_prompts()][:args.prompts]
    settings = GenerationSettings(max_new_tokens=args.max_new_tokens, batch_size=args.batch_size, seed=0,
                                  engine="hf")   # the monitor samples with model.generate: the same tokens
    arms = {"plain": lambda: generate(model, tok, prompts, settings),
            "monitored": lambda: monitored_generate(model, tok, prompts, heads, settings).completions,
            "armed": lambda: monitored_generate(model, tok, prompts, heads, settings, threshold=-1.0,
                                                action="stop").completions}
    outputs = {arm: fn() for arm, fn in arms.items()}              # warm-up; and the same tokens either way
    if not outputs["plain"] == outputs["monitored"] == outputs["armed"]:
        sys.exit("monitored generation produced other completions than plain generation")
    seconds = {arm: [] for arm in arms}
    for _ in range(args.rounds):
        for arm, fn in arms.items():
            t0 = time.perf_counter()
            fn()
            seconds[arm].append(time.perf_counter() - t0)
    med = {arm: statistics.median(s) for arm, s in seconds.items()}
    result = {"median_s_per_call": med, "ratio_monitored_over_plain": med["monitored"] / med["plain"],
              "ratio_armed_over_plain": med["armed"] / med["plain"], "seconds": seconds, "args": vars(args)}
    print(f"{'arm':<10} {'median s/call':>14}")
    for arm in arms:
        print(f"{arm:<10} {med[arm]:>14.3f}")
    print(f"ratio monitored / plain = {result['ratio_monitored_over_plain']:.3f}")
    print(f"ratio armed / plain     = {result['ratio_armed_over_plain']:.3f}")
    print(json.dumps(result))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
