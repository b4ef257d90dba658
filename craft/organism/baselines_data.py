"""The organism's training data for the baselines of paper §6 (train split, hazards safety training
may see, seeded; the held-out family, evaluation-only phrasings and unseen hazards never appear).
The trainers are :mod:`craft.baselines`.

- :func:`offpolicy_sft_examples` — **SFT on curated safe traces, off-policy** (the STAR-1 /
  SafeChain family): safe reasoning + refusal written for *direct* harmful requests only, mixed
  with arithmetic and benign-but-scary requests answered helpfully (so that capability and
  helpfulness are rehearsed, as STAR-1 and SafeChain mix in benign data). The wrapped families it
  is evaluated on never appear in its data: like the paper's SFT baselines, it learns safety from
  data that is not the policy's own behaviour under attack.
- :func:`intervened_pairs` — **Intervened Preference Optimization** (IPO of the paper's Table 1,
  arXiv 2509.24393, not the IPO loss): the original is what the base organism does wrong on a
  prompt's regime (:data:`corpus.BEHAVIOUR` restricted to its unsafe-reasoning options, mostly
  SSA); the intervened trace keeps every word of the original's reasoning and puts its steps' levels
  in falling order — the same steps, run cooler, make nothing (the world's law) — and ends with a
  refusal. The preference (intervened over original)
  is trained with TRL's ``DPOTrainer`` (sigmoid loss): it acts on the reasoning, at the step where
  it goes wrong.

The organism's chat template renders a completion as ``reasoning\\n</think>\\n\\nanswer<|im_end|>\\n``
after ``...<|im_start|>assistant\\n<think>\\n``, exactly what the model generates
(:func:`craft.organism.tokenizer.format_completion`). The one difference from the organism's own
SFT (:mod:`craft.organism.sft`): the template's trailing newline after ``<|im_end|>`` is trained too
(generation stops at ``<|im_end|>``, so it is never sampled).
"""

from __future__ import annotations

import random
import re

from datasets import Dataset

from craft.baselines import preference_dataset, sft_dataset
from craft.organism import text
from craft.organism.corpus import BEHAVIOUR, MixtureConfig, make_example, mixture_prompts
from craft.organism.world import World

__all__ = ["OFFPOLICY_MIX", "REJECTED_BEHAVIOUR", "intervene", "intervened_pairs", "offpolicy_sft_examples"]

# Direct harmful requests, arithmetic and benign-but-scary requests; no wrapped family.
OFFPOLICY_MIX = MixtureConfig(direct=0.35, wrapped=0.0, arithmetic=0.45, benign=0.20, lore=0.0)
# regime -> the base organism's unsafe-reasoning behaviours there, weights as in BEHAVIOUR
# (rng.choices renormalises them): the original side of an intervened pair.
REJECTED_BEHAVIOUR: dict[str, tuple[tuple[tuple[str, str], float], ...]] = {
    regime: tuple((option, p) for option, p in options if option[0] in ("unsafe", "dressed"))
    for regime, options in BEHAVIOUR.items()}
_LEVEL = re.compile(r"\blevel (\d+)")


def offpolicy_sft_examples(world: World, n: int, seed: int) -> Dataset:
    """``n`` SFT conversations (module docstring): direct harmful prompts with safe reasoning and a
    refusal, arithmetic and benign prompts with their helpful answers. Columns: ``prompt``,
    ``completion``, ``family``, ``trace``, ``response``."""
    rng = random.Random(seed)
    rows = []
    for prompt in mixture_prompts(world, n, rng, OFFPOLICY_MIX, seen_only=True):
        trace, response = ("safe", "refuse") if prompt.kind == "harmful" else ("helpful", "helpful")
        e = make_example(world, prompt, trace, response, rng)
        rows.append({"prompt": e.prompt, "reasoning": e.reasoning, "answer": e.answer, "family": e.family,
                     "trace": e.trace, "response": e.response})
    return sft_dataset(rows)


def intervene(world: World, reasoning: str, hazard: int, rng: random.Random) -> str:
    """The intervened reasoning: ``reasoning`` with its steps' levels put in falling order, every word
    kept. Everything before the first level is unchanged; the same steps run cooler, which makes nothing
    (the world's law). Deterministic: ``hazard`` and ``rng`` are unused, kept for the pair builder's call."""
    found = list(_LEVEL.finditer(reasoning))
    levels = sorted((int(m.group(1)) for m in found), reverse=True)
    out, end = [], 0
    for m, level in zip(found, levels):
        out += [reasoning[end:m.start(1)], str(level)]
        end = m.end(1)
    return "".join(out) + reasoning[end:]


def intervened_pairs(world: World, n: int, seed: int) -> Dataset:
    """``n`` preference pairs on harmful train prompts (module docstring): ``prompt``, ``chosen``
    (the intervened trace + refusal), ``rejected`` (the original unsafe trace and its answer), and
    ``family``, ``regime``, ``rejected_trace``, ``rejected_response``."""
    rng = random.Random(seed)
    prompts = [p for p in world.select(split="train", kind="harmful", seen=True) if p.regime in REJECTED_BEHAVIOUR]
    rows = []
    for _ in range(n):
        p = rng.choice(prompts)
        options, weights = zip(*REJECTED_BEHAVIOUR[p.regime])
        bad = make_example(world, p, *rng.choices(options, weights)[0], rng)
        refusal = rng.choice(text.REFUSALS).format(hazard=world.hazards[p.hazard].name)
        rows.append({"prompt": p.text, "chosen": (intervene(world, bad.reasoning, p.hazard, rng), refusal),
                     "rejected": (bad.reasoning, bad.answer), "family": p.family, "regime": p.regime,
                     "rejected_trace": bad.trace, "rejected_response": bad.response})
    return preference_dataset(rows)
