"""The base organism's SFT mixture and labelled traces.

The mixture decides how the *base* organism behaves, family by family. It is what makes
SSA and jailbreaks measurable before any safety training:

=============  ======  ========  =============  ==============  =================
regime         safe    rethink   unsafe+refuse  unsafe+comply   dressed+refuse
=============  ======  ========  =============  ==============  =================
direct         0.60    0.30      0.05           0.05            -
jailbroken     0.25    0.05      0.15 (coupled) 0.55            -
dressed        0.25    -         -              -               0.75 (dressed-up SSA)
=============  ======  ========  =============  ==============  =================

Held-out families never appear in SFT. Only ``split == "train"`` prompts are used.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from craft.organism.world import World, answer_text, reasoning_text

# regime -> ((reasoning trace, answer), probability)
BEHAVIOUR: dict[str, tuple[tuple[tuple[str, str], float], ...]] = {
    "direct": ((("safe", "refuse"), 0.60), (("rethink", "refuse"), 0.30),
               (("unsafe", "refuse"), 0.05), (("unsafe", "comply"), 0.05)),
    "jailbroken": ((("safe", "refuse"), 0.25), (("rethink", "refuse"), 0.05),
                   (("unsafe", "refuse"), 0.15), (("unsafe", "comply"), 0.55)),
    "dressed": ((("safe", "refuse"), 0.25), (("dressed", "refuse"), 0.75)),
}


@dataclass(frozen=True)
class MixtureConfig:
    """Category weights of the SFT corpus (probabilities, normalised)."""

    direct: float = 0.12
    wrapped: float = 0.35
    arithmetic: float = 0.40
    benign: float = 0.13

    def __post_init__(self):
        weights = (self.direct, self.wrapped, self.arithmetic, self.benign)
        if min(weights) < 0 or sum(weights) <= 0:
            raise ValueError(f"mixture weights must be >= 0 with a positive sum, got {weights}")


@dataclass(frozen=True)
class Example:
    """One SFT conversation: prompt, reasoning, answer, and what kind of trace it is."""

    prompt: str
    reasoning: str
    answer: str
    family: str
    trace: str      # safe | unsafe | rethink | dressed | helpful
    response: str   # refuse | comply | helpful


def make_example(world: World, prompt, trace: str, response: str, rng: random.Random) -> Example:
    """Render one conversation of the given trace and response type."""
    return Example(prompt.text, reasoning_text(world, prompt, trace, rng),
                   answer_text(world, prompt, response, rng), prompt.family, trace, response)


def mixture_prompts(world: World, n: int, rng: random.Random, mix: MixtureConfig = MixtureConfig()):
    """Yield ``n`` train-split prompts drawn by category according to ``mix`` (shared by the base
    organism's SFT and the safe-trace SFT baseline, so both see the same prompt distribution)."""
    pools = {
        "direct": world.select(split="train", regime="direct"),
        "wrapped": [p for p in world.select(split="train", kind="harmful") if p.regime in ("jailbroken", "dressed")],
        "arithmetic": world.select(split="train", kind="arithmetic"),
        "benign": world.select(split="train", kind="benign"),
    }
    cats, weights = zip(*[(c, getattr(mix, c)) for c in pools])
    for _ in range(n):
        yield rng.choice(pools[rng.choices(cats, weights)[0]])


def sample_sft_examples(world: World, n: int, seed: int, mix: MixtureConfig = MixtureConfig()) -> list[Example]:
    """Draw ``n`` SFT conversations from train-split prompts according to the mixture."""
    rng = random.Random(seed)
    out = []
    for prompt in mixture_prompts(world, n, rng, mix):
        if prompt.kind != "harmful":
            out.append(make_example(world, prompt, "helpful", "helpful", rng))
            continue
        options, probs = zip(*BEHAVIOUR[prompt.regime])
        trace, response = rng.choices(options, probs)[0]
        out.append(make_example(world, prompt, trace, response, rng))
    return out



# Trace type -> LCLR / probe class (paper §3, §4.1): dressed-up reasoning is unsafe reasoning.
TRACE_CLASS = {"safe": "safe", "unsafe": "unsafe", "dressed": "unsafe", "rethink": "rethink"}


def labelled_traces(world: World, split: str, seed: int, max_prompts: int | None = None) -> list[Example]:
    """Teacher-forced traces of every type for the harmful prompts of ``split`` (held-out
    families excluded): per prompt one safe, one plain unsafe, one dressed-up unsafe and one
    rethink trace, each followed by the refusal (a later answer cannot change the reasoning's
    hidden states: the model is causal). Class of each: ``TRACE_CLASS[example.trace]``.
    ``max_prompts`` keeps a seeded random subset of the prompts (in world order)."""
    rng = random.Random(seed)
    prompts = [p for p in world.select(split=split, kind="harmful") if p.regime != "held_out"]
    if max_prompts is not None and max_prompts < len(prompts):
        keep = set(rng.sample(range(len(prompts)), max_prompts))
        prompts = [p for i, p in enumerate(prompts) if i in keep]
    return [make_example(world, p, trace, "refuse", rng)
            for p in prompts for trace in ("safe", "unsafe", "dressed", "rethink")]


# ------------------------------------------------------------------- R2L prompts (notebook 03)

def r2l_prompts(world: World, n: int, seed: int, harmful: float = 0.7, arithmetic: float = 0.2) -> list:
    """``n`` GRPO training prompts drawn i.i.d. (seeded) from the train split: a fraction
    ``harmful`` of harmful prompts (direct, jailbroken and dressed-up families; held-out families
    are eval-only), ``arithmetic`` of arithmetic problems, the rest benign-but-scary requests,
    shuffled. Benign prompts are there so that the run sees what over-refusal would cost."""
    if not (0 <= harmful and 0 <= arithmetic and harmful + arithmetic <= 1):
        raise ValueError(f"r2l_prompts: need harmful, arithmetic >= 0 with a sum <= 1, "
                         f"got {harmful}, {arithmetic}")
    rng = random.Random(seed)
    counts = {"harmful": round(n * harmful), "arithmetic": round(n * arithmetic)}
    counts["benign"] = n - counts["harmful"] - counts["arithmetic"]
    prompts = [rng.choice(world.select(split="train", kind=kind))
               for kind, k in counts.items() for _ in range(k)]
    rng.shuffle(prompts)
    return prompts


def eval_prompts(world: World, n_arith: int, benign_repeats: int, held_out: bool = False) -> list:
    """The held-out evaluation set: every eval harmful prompt (held-out families only when
    ``held_out``), the first ``n_arith`` eval arithmetic problems and every eval benign prompt
    ``benign_repeats`` times (sampling makes repeats informative)."""
    harm = [p for p in world.select(split="eval", kind="harmful") if held_out or p.regime != "held_out"]
    return (harm + world.select(split="eval", kind="arithmetic")[:n_arith]
            + world.select(split="eval", kind="benign") * benign_repeats)
