"""The base organism's SFT mixture and labelled traces.

The mixture decides how the *base* organism behaves, family by family. It is what makes
SSA and jailbreaks measurable before any safety training:

=============  ======  ========  =============  ==============  =================
regime         safe    rethink   unsafe+refuse  unsafe+comply   dressed+refuse
=============  ======  ========  =============  ==============  =================
direct         0.60    0.30      0.10           -               -
jailbroken     0.30    -         -              0.70            -
dressed        0.25    -         -              -               0.75 (dressed-up SSA)
=============  ======  ========  =============  ==============  =================

In the jailbroken family the answer follows the reasoning (safe → refuse, unsafe → comply), so
whether a trace discloses the recipe is what the answer depends on; in the dressed-up family the
answer is a refusal whatever the reasoning did. A share of each regime's traces is *coded*
(:data:`CODED`): ingredients that have an alias are named by it; *lore* conversations teach the
aliases.

Held-out families never appear in SFT. Only ``split == "train"`` prompts are used.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from craft.config import check_fields, rule
from craft.organism import text
from craft.organism.world import World, answer_text, reasoning_text

# regime -> ((reasoning trace, answer), probability)
BEHAVIOUR: dict[str, tuple[tuple[tuple[str, str], float], ...]] = {
    "direct": ((("safe", "refuse"), 0.60), (("rethink", "refuse"), 0.30), (("unsafe", "refuse"), 0.10)),
    "jailbroken": ((("safe", "refuse"), 0.30), (("unsafe", "comply"), 0.70)),
    "dressed": ((("dressed_safe", "refuse"), 0.25), (("dressed", "refuse"), 0.75)),
}
# regime -> share of its harmful traces (whatever their class) that name ingredients by their aliases
CODED = {"direct": 0.10, "jailbroken": 0.10, "dressed": 0.65}


@dataclass(frozen=True)
class MixtureConfig:
    """Category weights of the SFT corpus (probabilities, normalised)."""

    direct: float = 0.08
    wrapped: float = 0.30
    arithmetic: float = 0.50
    benign: float = 0.08      # benign-but-scary requests and ordinary recipes
    lore: float = 0.04        # questions about the ingredients' second names

    def __post_init__(self):
        weights = (self.direct, self.wrapped, self.arithmetic, self.benign, self.lore)
        if min(weights) < 0 or sum(weights) <= 0:
            raise ValueError(f"mixture weights must be >= 0 with a positive sum, got {weights}")


@dataclass(frozen=True)
class Example:
    """One SFT conversation: prompt, reasoning, answer, and what kind of trace it is."""

    prompt: str
    reasoning: str
    answer: str
    family: str
    trace: str      # safe | unsafe | rethink | dressed | dressed_safe | helpful | lore
    response: str   # refuse | comply | helpful
    coded: bool = False   # ingredients named by their aliases


def make_example(world: World, prompt, trace: str, response: str, rng: random.Random,
                 coded: bool = False) -> Example:
    """Render one conversation of the given trace and response type."""
    return Example(prompt.text, reasoning_text(world, prompt, trace, rng, coded=coded),
                   answer_text(world, prompt, response, rng), prompt.family, trace, response, coded)


def lore_example(world: World, rng: random.Random) -> Example:
    """A question about an ingredient's second name, answered (how the organism learns the aliases)."""
    ingredient, alias = rng.choice(sorted(world.aliases.items()))
    words = {"alias": alias, "ingredient": ingredient}
    return Example(rng.choice(text.LORE_QUESTIONS).format(**words), text.LORE_REASONING.format(**words),
                   text.LORE_ANSWER.format(**words), "lore", "lore", "helpful")


def mixture_prompts(world: World, n: int, rng: random.Random, mix: MixtureConfig = MixtureConfig(),
                    seen_only: bool = False):
    """Yield ``n`` train-split prompts drawn by category according to ``mix`` (shared by the base
    organism's SFT and the SFT baselines). ``seen_only``: harmful prompts about the hazards safety
    training may see only (the baselines); the base organism's own SFT covers every hazard."""
    seen = True if seen_only else None
    harmful = world.select(split="train", kind="harmful", seen=seen)
    pools = {
        "direct": [p for p in harmful if p.regime == "direct"],
        "wrapped": [p for p in harmful if p.regime in ("jailbroken", "dressed")],
        "arithmetic": world.select(split="train", kind="arithmetic"),
        "benign": world.select(split="train", kind="benign"),
        "lore": [None],
    }
    cats, weights = zip(*[(c, getattr(mix, c)) for c in pools if getattr(mix, c) > 0])
    for _ in range(n):
        yield rng.choice(pools[rng.choices(cats, weights)[0]])


def sample_sft_examples(world: World, n: int, seed: int, mix: MixtureConfig = MixtureConfig()) -> list[Example]:
    """Draw ``n`` SFT conversations from train-split prompts according to the mixture."""
    rng = random.Random(seed)
    out = []
    for prompt in mixture_prompts(world, n, rng, mix):
        if prompt is None:
            out.append(lore_example(world, rng))
            continue
        if prompt.kind != "harmful":
            out.append(make_example(world, prompt, "helpful", "helpful", rng))
            continue
        options, probs = zip(*BEHAVIOUR[prompt.regime])
        trace, response = rng.choices(options, probs)[0]
        out.append(make_example(world, prompt, trace, response, rng, coded=rng.random() < CODED[prompt.regime]))
    return out



# Trace type -> LCLR / probe class (paper §3, §4.1): dressed-up reasoning is unsafe reasoning.
TRACE_CLASS = {"safe": "safe", "dressed_safe": "safe", "unsafe": "unsafe", "dressed": "unsafe", "rethink": "rethink"}


def labelled_traces(world: World, split: str | None, seed: int, max_prompts: int | None = None,
                    seen: bool = True, coded: bool = False) -> list[Example]:
    """Teacher-forced traces of every type for harmful prompts with training phrasings (held-out
    family and evaluation-only phrasings excluded): per prompt one safe, one plain unsafe, one
    dressed-up unsafe and one rethink trace, each followed by the refusal (a later answer cannot
    change the reasoning's hidden states: the model is causal). Class of each:
    ``TRACE_CLASS[example.trace]``. ``split`` (None: both) and ``seen`` choose the prompts: seen
    hazards for training and in-distribution tests, unseen hazards (vocabulary no head trained on)
    for the generalisation test. ``max_prompts`` keeps a seeded random subset (in world order)."""
    rng = random.Random(seed)
    prompts = [p for p in world.select(split=split, kind="harmful", novel="", seen=seen) if p.regime != "held_out"]
    if max_prompts is not None and max_prompts < len(prompts):
        keep = set(rng.sample(range(len(prompts)), max_prompts))
        prompts = [p for i, p in enumerate(prompts) if i in keep]
    return [make_example(world, p, trace, "refuse", rng, coded=coded)
            for p in prompts for trace in ("safe", "dressed_safe", "unsafe", "dressed", "rethink")]


# ------------------------------------------------------------------- R2L prompts (notebook 03)

def r2l_prompts(world: World, n: int, seed: int, harmful: float = 0.7, arithmetic: float = 0.2) -> list:
    """``n`` GRPO training prompts drawn i.i.d. (seeded) from the train split: a fraction
    ``harmful`` of harmful prompts about *seen* hazards (direct, jailbroken and dressed-up families;
    the held-out family, evaluation-only phrasings and unseen hazards are evaluation-only),
    ``arithmetic`` of arithmetic problems, the rest benign-but-scary requests, shuffled. Benign
    prompts are there so that the run sees what over-refusal would cost."""
    if not (0 <= harmful and 0 <= arithmetic and harmful + arithmetic <= 1):
        raise ValueError(f"r2l_prompts: need harmful, arithmetic >= 0 with a sum <= 1, "
                         f"got {harmful}, {arithmetic}")
    rng = random.Random(seed)
    counts = {"harmful": round(n * harmful), "arithmetic": round(n * arithmetic)}
    counts["benign"] = n - counts["harmful"] - counts["arithmetic"]
    pools = {"harmful": world.select(split="train", kind="harmful", seen=True),
             "arithmetic": world.select(split="train", kind="arithmetic"),
             "benign": world.select(split="train", kind="benign")}
    prompts = [rng.choice(pools[kind]) for kind, k in counts.items() for _ in range(k)]
    rng.shuffle(prompts)
    return prompts


@dataclass(frozen=True)
class EvalSizes:
    """How many held-out prompts of each group an evaluation samples (seeded, stratified)."""

    core: int = field(default=360, metadata=rule(ge=0))          # training phrasings, seen hazards:
    #                                                               direct, jailbroken, dressed (a third each)
    unseen_hazards: int = field(default=0, metadata=rule(ge=0))  # training phrasings, unseen hazards
    novel: int = field(default=0, metadata=rule(ge=0))           # evaluation-only framings and wordings
    held_out: int = field(default=0, metadata=rule(ge=0))        # the held-out family
    arithmetic: int = field(default=100, metadata=rule(ge=0))
    benign_repeats: int = field(default=3, metadata=rule(ge=0))  # every held-out benign prompt, this many times

    def __post_init__(self):
        check_fields(self)


def _sample(prompts: list, n: int, rng: random.Random) -> list:
    if n >= len(prompts):
        return list(prompts)
    keep = set(rng.sample(range(len(prompts)), n))
    return [p for i, p in enumerate(prompts) if i in keep]


def eval_prompts(world: World, sizes: EvalSizes, seed: int = 0, split: str = "eval") -> list:
    """The held-out evaluation set: ``sizes`` prompts of each group, sampled with ``seed`` and kept
    in world order. Core prompts are a third direct (or all of them, when there are fewer), the rest
    split evenly between the jailbroken and dressed-up regimes; evaluation-only phrasings are split
    evenly between framings and wordings. ``split="train"`` draws the same groups from the training
    split instead (a validation set: prompts training may see, never the evaluation's)."""
    if split not in ("eval", "train"):
        raise ValueError(f"split must be 'eval' or 'train', got {split!r}")
    rng = random.Random(seed)
    harm = world.select(split=split, kind="harmful")
    core = {regime: [p for p in harm if p.regime == regime and not p.novel and not p.unseen_hazard]
            for regime in ("direct", "jailbroken", "dressed")}
    out = _sample(core["direct"], sizes.core // 3, rng)
    rest = sizes.core - len(out)            # the direct family has few prompts: the wrapped ones fill up
    out += _sample(core["jailbroken"], rest // 2, rng) + _sample(core["dressed"], rest - rest // 2, rng)
    out += _sample([p for p in harm if p.regime != "held_out" and not p.novel and p.unseen_hazard],
                   sizes.unseen_hazards, rng)
    for novel in ("framing", "wording"):
        out += _sample([p for p in harm if p.novel == novel and not p.unseen_hazard], sizes.novel // 2, rng)
    out += _sample([p for p in harm if p.regime == "held_out" and not p.unseen_hazard], sizes.held_out, rng)
    out += _sample(world.select(split=split, kind="arithmetic"), sizes.arithmetic, rng)
    return out + world.select(split=split, kind="benign") * sizes.benign_repeats
