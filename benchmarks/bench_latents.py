"""Truncated forward (craft.latents) vs a full forward with output_hidden_states, on CPU.

Both variants read the same layer (half depth), pooled (mean) over the same span, from the same
random-init model and the same random ids, under ``torch.no_grad()``:

  (a) truncated: ``craft.latents.latents`` — a hook on the layer stops the forward there;
  (b) full: ``model(..., output_hidden_states=True).hidden_states[L]`` (all layers, the final norm
      and the LM head run, every layer's states are kept), then the same ``pool_states``.

Time: median of ``--repeats`` runs after one warm-up, both variants interleaved in this process.
Peak memory: each variant runs once in a fresh ``spawn`` subprocess; peak RSS during the call minus
RSS after the model was built (Linux: VmHWM reset through /proc/self/clear_refs; elsewhere
ru_maxrss, which also counts the build's own transient peak).

    .venv/bin/python benchmarks/bench_latents.py --layers 12 --hidden 512 --seq 256 --batch 8
"""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing as mp
import resource
import statistics
import sys
import time

import torch

VOCAB = 1000


def build(args):
    """Random-init model of the requested shape, random ids, and the inputs both variants use."""
    from craft.latents import LatentSpec, TraceBatch
    from craft.organism.model import ARCHITECTURES

    config_cls, model_cls = ARCHITECTURES[args.arch]
    config = config_cls(vocab_size=VOCAB, hidden_size=args.hidden, intermediate_size=3 * args.hidden,
                        num_hidden_layers=args.layers, num_attention_heads=args.heads,
                        num_key_value_heads=args.kv_heads, head_dim=args.hidden // args.heads,
                        max_position_embeddings=max(args.seq, 32), tie_word_embeddings=True)
    torch.manual_seed(0)
    model = model_cls(config).eval()
    ids = torch.randint(1, VOCAB, (args.batch, args.seq))                    # (B, T)
    attn = torch.ones_like(ids)                                              # (B, T)
    span = torch.zeros_like(ids, dtype=torch.bool)
    span[:, args.seq // 4:] = True                                           # prompt = first quarter
    return model, TraceBatch(ids, attn, span), LatentSpec(args.layers // 2, "mean")


def run_truncated(model, batch, spec):
    from craft.latents import latents

    return latents(model, batch, spec)                                       # (B, d)


def run_full(model, batch, spec):
    from craft.latents import pool_states

    pos = (batch.attention_mask.cumsum(-1) - 1).clamp(min=0)
    out = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, position_ids=pos,
                use_cache=False, output_hidden_states=True)
    return pool_states(out.hidden_states[spec.layer], batch.span_mask, spec.pool, batch.attention_mask)


VARIANTS = {"truncated": run_truncated, "full": run_full}


def _rss_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))
    except (OSError, StopIteration):
        return None


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")   # resets VmHWM (Linux >= 4.0)
        return True
    except OSError:
        return False


def peak_memory_mb(args, variant: str) -> float:
    """Runs in a fresh spawned process: peak RSS of one call above the RSS after the build."""
    torch.set_num_threads(args.threads)
    model, batch, spec = build(args)
    with torch.no_grad():
        small = type(batch)(*(t[:1, :8] for t in batch))
        VARIANTS[variant](model, small, spec)   # lazy one-time initialisation, tiny allocations
        gc.collect()
        base_kb = _rss_kb("VmRSS") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        hwm = _reset_peak() and _rss_kb("VmHWM") is not None
        VARIANTS[variant](model, batch, spec)
        peak_kb = _rss_kb("VmHWM") if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return (peak_kb - base_kb) / 1024


def timed_runs(fn, model, batch, spec, repeats: int) -> list[float]:
    """Wall-clock seconds of each of ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(model, batch, spec)
        times.append(time.perf_counter() - t0)
    return times


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--layers", type=int, default=12)
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--kv-heads", type=int, default=4)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--arch", choices=["qwen3", "llama"], default="qwen3")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (both variants)")
    p.add_argument("--out", default=None, help="also write the JSON result here")
    args = p.parse_args(argv)

    torch.set_num_threads(args.threads)
    model, batch, spec = build(args)
    times = {name: [] for name in VARIANTS}
    with torch.no_grad():
        torch.testing.assert_close(run_truncated(model, batch, spec), run_full(model, batch, spec),
                                   atol=1e-5, rtol=0)   # warm-up, and both read the same latent
        for _ in range(args.repeats):   # interleaved, so background load hits both alike
            for name, fn in VARIANTS.items():
                times[name] += timed_runs(fn, model, batch, spec, 1)
    ctx = mp.get_context("spawn")
    with ctx.Pool(1, maxtasksperchild=1) as pool:
        peaks = {name: pool.apply(peak_memory_mb, (args, name)) for name in VARIANTS}

    med = {name: statistics.median(t) for name, t in times.items()}
    result = {"shape": vars(args) | {"layer": spec.layer, "pool": spec.pool, "vocab": VOCAB},
              "median_s": med, "peak_mb": peaks,
              "speedup": med["full"] / med["truncated"],
              "memory_ratio": peaks["truncated"] / peaks["full"] if peaks["full"] > 0 else None}
    print(f"{'variant':<10} {'median s':>9} {'peak MB':>9}")
    for name in VARIANTS:
        print(f"{name:<10} {med[name]:>9.4f} {peaks[name]:>9.1f}")
    print(f"speedup (full / truncated time) = {result['speedup']:.2f}")
    print(f"memory_ratio (truncated / full peak) = {result['memory_ratio']:.2f}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
