"""What a paper-scale params file asks a GPU to compute: the README's *Cost at paper scale* table.

    python scripts/cost_table.py params/paper-qwen3-4b-thinking.yaml

Counts follow from the params file and the public benchmark sizes below. Tokens are upper bounds: every
generation is counted at its full length (``max_completion_length`` / ``evaluate.max_new_tokens``), and
real models stop earlier. GPU-hours divide those tokens by :data:`TOKENS_PER_S`, the low end of the pace
measured for CRAFT GRPO rollouts of a Qwen3-4B-shaped model on one H200 (HF ``generate``, 16 rollouts of
256 tokens per step; README, "Measured on one GPU"). Nothing else here is measured: judge calls and
latent forwards are counted, not timed, and vLLM's pace was never measured by this package.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TOKENS_PER_S = 300          # completion tokens per second per GPU (measured 314-371 on one H200; README)
BENCHMARK_SIZE = {"jbb": 100, "strongreject": 313, "math500": 500, "gsm8k": 1319}   # prompts in each public set
LABELS = 3                  # safe, unsafe, rethink traces for the probe and LCLR


def costs(params) -> list[dict]:
    """One row per stage: what it generates, judges and reads, for ``params`` (a paper-scale :class:`Params`)."""
    from craft.r2l import VARIANTS
    from craft.stages.r2l import HEAD_DRAW_VARIANTS

    s, r, g, e, a, k = params.source, params.r2l, params.r2l.grpo, params.evaluate, params.ablations, params.attacks
    cap = (lambda n: min(n, s.max_eval_prompts)) if s.max_eval_prompts else (lambda n: n)
    traces = LABELS * s.max_traces
    rows = [{"stage": "probe + LCLR latents (01, 02)", "runs": 1, "generations": 0, "tokens": 0, "judge_calls": 0,
             "forwards": 2 * traces, "note": f"one forward per trace, at most {traces} traces, in each notebook"}]
    rollouts = g["max_steps"] * g["per_device_train_batch_size"]
    plans = [("R2L GRPO, main variants (03)", {v: r.n_seeds for v in r.variants}),
             ("R2L GRPO, ablations (05)", {v: a.head_draws if v in HEAD_DRAW_VARIANTS else a.n_seeds
                                           for v in a.variants})]
    if params.monitor.positive_control:      # notebook 06's obfuscator run (trained in notebook 03's pool)
        plans.append(("R2L GRPO, the obfuscation check's positive control (06)", {"obfuscator": 1}))
    for name, seeds in plans:
        n_runs, monitor = sum(seeds.values()), 2 * s.monitor_prompts   # evaluated at the first and the last step
        reasoning_judged = sum(n for v, n in seeds.items() if "rtxt" in VARIANTS[v])   # R_rtxt: a second judge pass
        disclosure = all("dis" in VARIANTS[v] for v in seeds)                       # R_dis instead of R_txt
        rows.append({"stage": name, "runs": n_runs, "generations": n_runs * (rollouts + monitor),
                     "tokens": n_runs * (rollouts * g["max_completion_length"] + monitor * e.max_new_tokens),
                     "judge_calls": n_runs * (rollouts + 2 * monitor) + reasoning_judged * rollouts, "forwards": 0,
                     "note": f"per GPU of a data-parallel launch: {g['max_steps']} steps x "
                             f"{g['per_device_train_batch_size']} rollouts; "
                             + ("R_dis judges each rollout's reasoning" if disclosure else "R_txt judges each rollout")
                             + ("; R_rtxt judges its reasoning" if reasoning_judged else "")})
    policies = 1 + len(r.variants) + len(params.baselines.methods)
    safety = sum(cap(BENCHMARK_SIZE[b]) for b in s.benchmarks) * len(s.attacks)
    capability = sum(cap(BENCHMARK_SIZE[c]) for c in s.capability)
    agreement = len(s.agreement_judges or {}) * safety
    rows.append({"stage": "evaluation (04)", "runs": policies, "generations": policies * (safety + capability),
                 "tokens": policies * (safety + capability) * e.max_new_tokens,
                 "judge_calls": policies * 2 * safety + agreement, "forwards": 0,
                 "note": f"{policies} policies x ({safety} attacked + {capability} capability prompts); reasoning and "
                         f"response judged apart; {agreement} agreement-judge calls on the base policy"})
    units = 3 * k.n_seeds                   # base, output-only and CRAFT
    asr = k.n_goals * k.samples * (1 + len(k.methods))
    gcg = k.gcg.get("num_steps", 0) * k.gcg.get("search_width", 0) if "gcg" in k.methods else 0
    fuzz = k.fuzz.get("query_budget", 0) if "fuzz" in k.methods else 0
    rows.append({"stage": "adaptive attacks (07)", "runs": units, "generations": units * (asr + fuzz),
                 "tokens": units * (asr + fuzz) * e.max_new_tokens, "judge_calls": units * (2 * asr + fuzz),
                 "forwards": units * k.n_goals * gcg,
                 "note": f"GCG: {gcg} candidate forwards per goal; fuzzer: {fuzz} queries; then {asr} fresh samples"})
    return rows


def markdown(params, name: str) -> str:
    """The table for one params file, with totals and GPU-hours at :data:`TOKENS_PER_S`."""
    rows = costs(params)
    out = [f"`{name}`:", "",
           "| stage | runs | generations | completion tokens (upper bound) | GPU-h at 300 tok/s | judge calls | "
           "other forwards | what is counted |", "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        out.append(f"| {row['stage']} | {row['runs']} | {row['generations']:,} | {row['tokens'] / 1e6:,.1f} M | "
                   f"{row['tokens'] / TOKENS_PER_S / 3600:,.0f} | {row['judge_calls']:,} | {row['forwards']:,} | "
                   f"{row['note']} |")
    tokens = sum(r["tokens"] for r in rows)
    out.append(f"| **total** | | {sum(r['generations'] for r in rows):,} | {tokens / 1e6:,.1f} M | "
               f"{tokens / TOKENS_PER_S / 3600:,.0f} | {sum(r['judge_calls'] for r in rows):,} | "
               f"{sum(r['forwards'] for r in rows):,} | |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    from craft.stages import load_params

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("params", nargs="+", type=Path, help="paper-scale params files")
    args = ap.parse_args(argv)
    for path in args.params:
        params = load_params(path)
        if params.scale != "paper":
            print(f"cost_table: {path} is not a paper-scale params file (source.kind: paper)", file=sys.stderr)
            return 2
        print(markdown(params, path.name) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
