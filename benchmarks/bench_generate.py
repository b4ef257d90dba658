"""The evaluation generator (craft.decoding, ``engine: batched``) vs plain ``model.generate``, on the organism.

Both arms sample completions for the same prompts with the same decoding (T 0.6, top-k 50, top-p 0.95,
128 new tokens) in this process, alternating after one warm-up call each: ``generate`` is
``model.generate`` in batches of ``--hf-batch-size`` (what every evaluation used before), ``batched`` is
:func:`craft.evaluate.generate` with the run's engine and batch size. They draw different random
numbers, so their completions differ; the statistic is generated tokens per second (median over
rounds) and the ratio ``batched / generate``.

Beside them, the FLOP bound: the machine's float32 matmul rate, measured here on a square product,
divided by the organism's FLOPs per generated token (2 x its weights, and the attention over an
average context) -- the rate at which decoding would run if it did nothing but arithmetic.

    .venv/bin/python benchmarks/bench_generate.py --run-dir runs/default --prompts 512 --rounds 3

Needs notebook 00 to have run for ``--run-dir`` (``make reproduce``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

import torch


def matmul_flops_per_second(n: int = 1024, repeats: int = 5) -> float:
    """Best float32 rate of an (n, n) @ (n, n) product on this machine's torch threads."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * n ** 3 / best


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def flops_per_token(config, context: float) -> float:
    """Forward FLOPs of one generated token: 2 per weight of the decoder and the output layer, plus
    the attention scores and mixing over ``context`` cached positions."""
    d, layers, vocab = config.hidden_size, config.num_hidden_layers, config.vocab_size
    heads, kv, hd = config.num_attention_heads, config.num_key_value_heads, config.head_dim
    per_layer = d * heads * hd + 2 * d * kv * hd + heads * hd * d + 3 * d * config.intermediate_size
    attention = 2 * 2 * heads * hd * context
    return 2 * (layers * per_layer + d * vocab) + layers * attention


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run-dir", default="runs/default")
    ap.add_argument("--prompts", type=int, default=512, help="prompts per call (the evaluation set's first ones)")
    ap.add_argument("--hf-batch-size", type=int, default=64, help="model.generate's batch (the old default)")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds after a warm-up")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (notebook workers use one)")
    ap.add_argument("--out", default=None, help="also write the JSON result here")
    args = ap.parse_args(argv)

    from craft.evaluate import generate
    from craft.stages import load_params, open_run
    from craft.stages.common import generation_settings

    run = open_run(load_params(None, run_dir=args.run_dir), progress=False)
    torch.set_num_threads(args.threads)        # after open_run, which sets the run's own
    if not (Path(args.run_dir) / "00_build_model_organism" / "DONE").is_file():
        sys.exit(f"no organism under {args.run_dir}: run notebook 00 first (make reproduce) or pass --run-dir")
    model, tok = run.source.load_policy()
    prompts = [p.text for p in run.source.eval_prompts()][:args.prompts]
    batched = generation_settings(run)
    arms = {"generate": dataclasses.replace(batched, engine="hf", batch_size=args.hf_batch_size), "batched": batched}

    def tokens(texts):   # generated tokens, counted the same way for both arms (+1: the end-of-sequence token)
        return sum(len(tok(t, add_special_tokens=False)["input_ids"]) + 1 for t in texts)

    counts = {arm: tokens(generate(model, tok, prompts, s)) for arm, s in arms.items()}   # warm-up
    seconds = {arm: [] for arm in arms}
    for _ in range(args.rounds):
        for arm, s in arms.items():
            seconds[arm].append(_timed(lambda s=s: generate(model, tok, prompts, s)))
    rate = {arm: counts[arm] / statistics.median(seconds[arm]) for arm in arms}
    prompt_tokens = statistics.mean(len(tok(p)["input_ids"]) for p in prompts)
    per_token = flops_per_token(model.config, context=prompt_tokens + 0.5 * counts["batched"] / len(prompts))
    bound = matmul_flops_per_second() / per_token
    result = {"prompts": len(prompts), "threads": args.threads, "hf_batch_size": args.hf_batch_size,
              "batched_batch_size": batched.batch_size,
              "tokens": counts, "median_seconds": {a: statistics.median(v) for a, v in seconds.items()},
              "tokens_per_second": rate, "speedup_batched_over_generate": rate["batched"] / rate["generate"],
              "flops_per_token": per_token, "flop_bound_tokens_per_second": bound,
              "share_of_flop_bound": {arm: rate[arm] / bound for arm in arms}}
    print(f"{'arm':10s} {'tokens':>8s} {'median s':>9s} {'tokens/s':>9s} {'of FLOP bound':>14s}")
    for arm in arms:
        print(f"{arm:10s} {counts[arm]:8d} {result['median_seconds'][arm]:9.2f} {rate[arm]:9.0f} "
              f"{rate[arm] / bound:14.2%}")
    print(f"FLOP bound {bound:,.0f} tokens/s ({per_token / 1e6:.2f} MFLOP per token); "
          f"batched / generate = {result['speedup_batched_over_generate']:.2f}x")
    print(json.dumps(result))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
