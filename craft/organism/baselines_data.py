"""The organism's training data for the baselines of paper §6 (train split only, seeded; held-out
families never appear). The trainers are :mod:`craft.baselines`.

- :func:`safe_sft_examples`: the base organism's SFT prompt mixture (:class:`MixtureConfig`:
  direct 0.12, wrapped — jailbroken and dressed-up families — 0.35, arithmetic 0.40,
  benign-but-scary 0.13), but every harmful prompt gets SAFE reasoning + refusal (a fraction
  ``rethink`` of them rethink reasoning + refusal instead; default 0, as in STAR-1-style data
  whose traces are safe throughout). Benign prompts keep their helpful answers so that capability
  and helpfulness are rehearsed, as STAR-1 and SafeChain mix in benign data.
- :func:`preference_pairs`: harmful train prompts drawn uniformly (the prompt distribution of
  :func:`craft.organism.corpus.r2l_prompts`); chosen = safe reasoning + refusal; rejected = what
  the base organism does wrong on that prompt's regime, :data:`corpus.BEHAVIOUR` restricted to
  its unsafe-reasoning options and renormalised (direct: unsafe + refusal / unsafe + compliance
  1:1; jailbroken: unsafe + refusal 0.21, unsafe + compliance 0.79; dressed: dressed-up unsafe +
  refusal). Most rejected completions therefore END IN A REFUSAL (SSA): the preference is at the
  level of the trace, which is what separates this baseline from an output-level one.

The organism's chat template renders a completion as ``reasoning\\n</think>\\n\\nanswer<|im_end|>\\n``
after ``...<|im_start|>assistant\\n<think>\\n``, exactly what the model generates
(:func:`craft.organism.tokenizer.format_completion`). The one difference from the organism's own
SFT (:mod:`craft.organism.sft`): the template's trailing newline after ``<|im_end|>`` is trained too
(generation stops at ``<|im_end|>``, so it is never sampled).
"""

from __future__ import annotations

import random

from datasets import Dataset

from craft.baselines import preference_dataset, sft_dataset
from craft.organism.corpus import BEHAVIOUR, MixtureConfig, make_example, mixture_prompts
from craft.organism.world import World

__all__ = ["REJECTED_BEHAVIOUR", "preference_pairs", "safe_sft_examples"]

# regime -> the base organism's unsafe-reasoning behaviours there, weights as in BEHAVIOUR
# (rng.choices renormalises them): the rejected side of a preference pair.
REJECTED_BEHAVIOUR: dict[str, tuple[tuple[tuple[str, str], float], ...]] = {
    regime: tuple((option, p) for option, p in options if option[0] in ("unsafe", "dressed"))
    for regime, options in BEHAVIOUR.items()}


def safe_sft_examples(world: World, n: int, seed: int, mix: MixtureConfig = MixtureConfig(),
                      rethink: float = 0.0) -> Dataset:
    """``n`` SFT conversations over the train split (module docstring): the base organism's
    prompt mixture ``mix``; harmful prompts get safe reasoning + refusal, or with probability
    ``rethink`` rethink reasoning + refusal; arithmetic and benign prompts their helpful answer.
    Columns: ``prompt``, ``completion``, ``family``, ``trace``, ``response``."""
    if not 0.0 <= rethink <= 1.0:
        raise ValueError(f"safe_sft_examples: rethink must be in [0, 1], got {rethink}")
    rng = random.Random(seed)
    out = []
    for prompt in mixture_prompts(world, n, rng, mix):
        if prompt.kind != "harmful":
            out.append(make_example(world, prompt, "helpful", "helpful", rng))
        else:
            out.append(make_example(world, prompt, "rethink" if rng.random() < rethink else "safe", "refuse", rng))
    return sft_dataset([{"prompt": e.prompt, "reasoning": e.reasoning, "answer": e.answer, "family": e.family,
                         "trace": e.trace, "response": e.response} for e in out])


def preference_pairs(world: World, n: int, seed: int) -> Dataset:
    """``n`` preference pairs on harmful train prompts (module docstring): ``prompt``, ``chosen`` (safe
    reasoning + refusal), ``rejected`` (the regime's unsafe behaviour, mostly SSA), and
    ``family``, ``regime``, ``rejected_trace``, ``rejected_response``."""
    rng = random.Random(seed)
    prompts = [p for p in world.select(split="train", kind="harmful") if p.regime in REJECTED_BEHAVIOUR]
    rows = []
    for _ in range(n):
        p = rng.choice(prompts)
        safe = make_example(world, p, "safe", "refuse", rng)
        options, weights = zip(*REJECTED_BEHAVIOUR[p.regime])
        bad = make_example(world, p, *rng.choices(options, weights)[0], rng)
        rows.append({"prompt": p.text, "chosen": (safe.reasoning, safe.answer), "rejected": (bad.reasoning, bad.answer),
                     "family": p.family, "regime": p.regime, "rejected_trace": bad.trace,
                     "rejected_response": bad.response})
    return preference_dataset(rows)
