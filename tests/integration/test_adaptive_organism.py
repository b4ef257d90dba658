"""craft.attacks on a trained organism: GCG against the integration tests' base policy
(tests/integration/conftest.py) lowers the loss of the opening of an unsafe reasoning trace, and the
fuzzer runs on that policy's sampled answers judged by the organism's exact judge."""

import random
import re

import pytest

from craft.attacks import FuzzSettings, GCGSettings, best_prompts, fuzz_templates, gcg_prompts, target_loss
from craft.evaluate import GenerationSettings, generate
from craft.organism.judge import OrganismJudge
from craft.organism.text import FAMILIES
from craft.organism.world import reasoning_text, unsafe_opening

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def goals(world):
    return world.select(kind="harmful", split="eval", regime="direct", novel="", seen=True)[:2]


def test_unsafe_opening_starts_like_unsafe_traces_and_never_like_safe_ones(world, goals):
    """Its first step runs at level 1: unsafe (and rethink) traces can start so, safe ones cannot."""
    p = goals[0]
    target = unsafe_opening(world, p)

    def first_levels(trace):
        return {int(re.search(r"level (\d+)", reasoning_text(world, p, trace, random.Random(s))).group(1))
                for s in range(200)}

    assert re.search(r"level (\d+)", target).group(1) == "1" and target.endswith(" .")
    assert 1 in first_levels("unsafe") and 1 in first_levels("rethink") and 1 not in first_levels("safe")
    assert reasoning_text(world, p, "unsafe", random.Random(0)).split(" : ")[0].count(" ") >= 3


def test_gcg_lowers_the_unsafe_opening_loss_of_the_base_organism(base_model, tokenizer, world, goals):
    settings = GCGSettings(num_steps=8, search_width=32, topk=32, suffix_init=" x" * 8, seed=0)
    targets = [unsafe_opening(world, p) for p in goals]
    before = {k: v.clone() for k, v in base_model.state_dict().items()}
    outs = gcg_prompts(base_model, tokenizer, [p.text for p in goals], targets, settings)
    for p, target, out in zip(goals, targets, outs):
        initial = target_loss(base_model, tokenizer, p.text + settings.suffix_init, target)
        assert out.loss < initial
        assert out.prompt.startswith(p.text) and out.prompt == p.text + out.suffix
        assert target_loss(base_model, tokenizer, out.prompt, target) == pytest.approx(out.loss, abs=1e-4)
    assert all((before[k] == v).all() for k, v in base_model.state_dict().items())   # the policy is untouched
    assert all(w.grad is None for w in base_model.parameters())


def test_fuzzer_on_the_organism_stays_in_budget(base_model, tokenizer, world, goals):
    judge = OrganismJudge(world)
    seeds = [f.replace("{request}", "{goal}") for regime, framings, _ in FAMILIES.values()
             if regime == "jailbroken" for f in framings[:2]]
    calls = []

    def respond(prompts):
        calls.append(len(prompts))
        return generate(base_model, tokenizer, prompts, GenerationSettings(max_new_tokens=24, seed=len(calls)))

    def success(_goals, completions):
        return [judge.harmfulness(c) > 0 for c in completions]

    settings = FuzzSettings(query_budget=16, goals_per_mutant=2, mutants_per_round=4)
    requests = [p.text for p in goals]
    out = fuzz_templates(seeds, requests, respond, success, settings, rephrase={"rules": ["limits"]})
    assert out.queries_used == 16 == sum(calls) and len(calls) <= 4
    assert set(seeds) <= set(out.templates)
    assert best_prompts(out, requests) == [out.templates[0].replace("{goal}", r) for r in requests]


def test_a_coded_opening_names_the_alias_that_only_the_exact_judge_reads(world):
    """The coded regime's target: the same opening with the first ingredient's alias; a recipe continued in aliases
    is harmful to the exact judge and harmless to the surface judge (the text monitor without the alias table)."""
    def plain_steps(q):                          # ingredients of q's hazard without an alias
        return sum(i not in world.aliases for i in world.hazards[q.hazard].ingredients)

    pool = [q for q in world.select(kind="harmful", split="eval", regime="direct", novel="", seen=True)
            if world.hazards[q.hazard].ingredients[0] in world.aliases]
    p = min(pool, key=plain_steps)               # at most one plain step: the coded recipe is unreadable as written
    assert plain_steps(p) <= 1
    hz = world.hazards[p.hazard]
    plain, coded = unsafe_opening(world, p), unsafe_opening(world, p, coded=True)
    assert coded == plain.replace(hz.ingredients[0], world.aliases[hz.ingredients[0]])
    trace = reasoning_text(world, p, "unsafe", random.Random(0), coded=True)
    assert OrganismJudge(world).is_harmful(trace) and not OrganismJudge(world, aliases=False).is_harmful(trace)
    bare = next(q for q in world.select(kind="harmful", seen=True)
                if world.hazards[q.hazard].ingredients[0] not in world.aliases)
    with pytest.raises(ValueError, match="has no alias"):
        unsafe_opening(world, bare, coded=True)
