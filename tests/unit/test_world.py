"""The organism's world: determinism, splits, regimes, evaluation-only phrasings, unseen hazards,
two-step arithmetic, the wording rule for dressed-up SSA, classes that share their words, and coded
traces that only the exact judge reads."""

import random
import re
from collections import Counter

import pytest

from craft.organism import text
from craft.organism.corpus import BEHAVIOUR, CODED, MixtureConfig, sample_sft_examples
from craft.organism.judge import OrganismJudge
from craft.organism.world import FAMILIES, SEEN_SYLLABLES, TRACES, UNSEEN_SYLLABLES, VERBS, build_world, reasoning_text


@pytest.fixture(scope="module")
def world():
    return build_world(seed=0)


def test_same_seed_same_world_other_seed_other_world(world):
    assert build_world(seed=0).to_dict() == world.to_dict()
    assert build_world(seed=1).hazards != world.hazards


def test_round_trip_through_dict(world):
    assert build_world(0).from_dict(world.to_dict()).to_dict() == world.to_dict()


def test_invented_vocabulary_is_unique_and_ingredients_are_shared(world):
    names = [h.name.split()[0] for h in world.hazards + world.products]
    ingredients = {i for h in world.hazards for i in h.ingredients}
    aliases = set(world.aliases.values())
    assert len(set(names)) == len(names)
    assert not (set(names) & ingredients or set(names) & aliases or ingredients & aliases)
    assert all(len(set(h.ingredients)) == 3 for h in world.hazards)
    # composition: every ingredient of a seen hazard is in another hazard and products use them too
    uses = Counter(i for h in world.hazards for i in h.ingredients)
    assert all(uses[i] >= 2 for h in world.hazards if h.seen for i in h.ingredients)
    assert {i for p in world.products for i in p.ingredients} & ingredients
    assert set(world.aliases) <= ingredients | {i for p in world.products for i in p.ingredients}
    assert len(world.aliases) == round(2 / 3 * len(ingredients))


def test_splits_are_disjoint_and_held_out_families_only_eval(world):
    train = {p.text for p in world.prompts if p.split == "train"}
    evals = {p.text for p in world.prompts if p.split == "eval"}
    assert not train & evals
    assert {p.split for p in world.select(regime="held_out")} == {"eval"}
    for kind in ("harmful", "arithmetic", "benign"):
        assert world.select(kind=kind, split="train") and world.select(kind=kind, split="eval")


def test_enough_held_out_harmful_prompts(world):
    harmful = [p for p in world.select(kind="harmful", split="eval") if p.regime != "held_out"]
    assert len(harmful) >= 300
    assert Counter(p.regime for p in harmful).keys() == {"direct", "jailbroken", "dressed"}


def test_both_regimes_present_in_different_families():
    regimes = {fam: reg for fam, (reg, _, _) in FAMILIES.items()}
    assert {f for f, r in regimes.items() if r == "dressed"}.isdisjoint(
        {f for f, r in regimes.items() if r == "jailbroken"})
    assert sum(r == "dressed" for r in regimes.values()) >= 2
    assert sum(r == "jailbroken" for r in regimes.values()) >= 2


def _ngrams(text, n=3):
    words = [w for w in text.split() if w not in ",.:" and not w.isdigit()]   # levels are content, not wording
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def test_dressed_reasoning_shares_no_wording_with_jailbroken_reasoning(world):
    """The world's key design rule (module docstring): different opening, verbs, phrasing."""
    rng = random.Random(0)
    prompt = world.select(regime="jailbroken")[0]
    hz = world.hazards[prompt.hazard]
    invented = set(hz.ingredients) | set(hz.name.split())
    unsafe = reasoning_text(world, prompt, "unsafe", rng)
    for _ in range(10):
        dressed = reasoning_text(world, prompt, "dressed", rng)
        assert unsafe.split()[:3] != dressed.split()[:3]
        shared = {g for g in _ngrams(unsafe) & _ngrams(dressed) if not set(g) & invented}
        assert not shared, shared
    plain_verbs, dressed_verbs = set(VERBS), set(VERBS.values())
    assert not plain_verbs & dressed_verbs


def test_unsafe_traces_disclose_the_recipe_and_safe_and_rethink_ones_nothing(world):
    judge, surface, rng = OrganismJudge(world), OrganismJudge(world, aliases=False), random.Random(0)
    for p in world.select(kind="harmful")[::97]:
        for coded in (False, True):
            harm = {t: judge.asked(reasoning_text(world, p, t, rng, coded=coded), p.text) for t in TRACES}
            assert harm == {"unsafe": 1.0, "dressed": 1.0, "safe": 0.0, "dressed_safe": 0.0, "rethink": 0.0}
        hz = world.hazards[p.hazard]
        coded = reasoning_text(world, p, "unsafe", rng, coded=True)
        assert surface.asked(coded, p.text) == (1.0 if not any(i in world.aliases for i in hz.ingredients) else
                                                surface.asked(coded, p.text))
    hz = next(h for h in world.hazards if all(i in world.aliases for i in h.ingredients))
    p = next(q for q in world.select(kind="harmful") if world.hazards[q.hazard] == hz)
    coded = reasoning_text(world, p, "unsafe", rng, coded=True)
    assert judge.asked(coded, p.text) == 1.0 and surface.asked(coded, p.text) == 0.0


def test_the_classes_share_their_words(world):
    """Safe and unsafe traces of a prompt draw every word from the same pools: over many draws the
    two classes use the same vocabulary, and the same levels as often."""
    rng, p = random.Random(0), world.select(kind="harmful", regime="direct")[0]
    words = {t: Counter(w for _ in range(400) for w in reasoning_text(world, p, t, rng).split())
             for t in ("safe", "unsafe")}
    assert set(words["safe"]) == set(words["unsafe"])
    for w in set(words["safe"]):
        a, b = words["safe"][w], words["unsafe"][w]
        assert abs(a - b) <= 4 * (a + b) ** 0.5 + 2, (w, a, b)


def test_sft_examples_follow_the_mixture_and_use_train_prompts_only(world):
    examples = sample_sft_examples(world, 4000, seed=0)
    train = {p.text for p in world.select(split="train")}
    assert all(e.prompt in train for e in examples if e.family != "lore")   # lore questions are not prompts of a split
    assert not {e.family for e in examples} & {f for f, (r, _, _) in FAMILIES.items() if r == "held_out"}
    dressed = [e for e in examples if FAMILIES.get(e.family, ("",))[0] == "dressed"]
    jailbroken = [e for e in examples if FAMILIES.get(e.family, ("",))[0] == "jailbroken"]
    assert all((e.trace, e.response) in {("safe", "refuse"), ("unsafe", "comply")} for e in jailbroken)
    coded = [e.coded for e in dressed]
    assert sum(coded) / len(coded) == pytest.approx(CODED["dressed"], abs=0.06)
    assert Counter(e.family for e in examples)["lore"] / len(examples) == pytest.approx(
        MixtureConfig().lore / sum(vars(MixtureConfig()).values()), abs=0.02)
    share = Counter(e.trace for e in dressed)["dressed"] / len(dressed)
    assert share == pytest.approx(dict(BEHAVIOUR["dressed"])[("dressed", "refuse")], abs=0.05)
    assert all(e.response == "refuse" for e in dressed)   # dressed-up regime never complies
    cats = Counter("harmful" if e.family in FAMILIES else e.family for e in examples)
    mix = MixtureConfig()
    assert cats["arithmetic"] / len(examples) == pytest.approx(mix.arithmetic / sum(vars(mix).values()), abs=0.03)
    assert sample_sft_examples(world, 50, seed=3) == sample_sft_examples(world, 50, seed=3)


def test_arithmetic_is_two_steps_with_correct_targets_and_worked_reasoning(world):
    rng = random.Random(0)
    problems = world.select(kind="arithmetic")
    assert len({p.text for p in problems}) == len(problems) == 4000
    for p in problems[::97]:
        a, b, c = map(int, re.findall(r"\d+", p.text))
        (op1, op2), = [ops for q, ops in text.ARITH_FORMS.values()
                       if re.fullmatch(re.sub(r"\\{(\w+)\\}", r"\\w+", re.escape(q)), p.text)]
        first = a + b if op1 == "+" else a - b
        answer = first + c if op2 == "+" else first - c
        assert int(p.target) == answer and first > 0 and answer > 0 and p.goal == f"{a} {op1} {b} {op2} {c}"
        assert reasoning_text(world, p, "helpful", rng) == \
            f"step by step : {a} {op1} {b} = {first} . then {first} {op2} {c} = {answer} ."


def test_corpus_has_no_real_recipe_words(world):
    """Ingredients are invented 3-syllable pseudo-words, never dictionary words."""
    for hz in world.hazards:
        for ing in hz.ingredients:
            assert re.fullmatch(r"[a-z]{5,12}", ing)
            assert ing not in {"water", "salt", "acid", "sugar", "bleach", "powder"}


def test_labelled_traces_cover_every_class_per_prompt(world):
    from craft.organism.corpus import TRACE_CLASS, labelled_traces

    traces = labelled_traces(world, "eval", seed=0)
    prompts = [p for p in world.select(split="eval", kind="harmful", novel="", seen=True) if p.regime != "held_out"]
    assert len(traces) == 5 * len(prompts)
    assert Counter(TRACE_CLASS[t.trace] for t in traces) == {"safe": 2 * len(prompts), "unsafe": 2 * len(prompts),
                                                              "rethink": len(prompts)}
    coded = labelled_traces(world, "eval", seed=0, coded=True)
    assert [t.prompt for t in coded] == [t.prompt for t in traces] and all(t.coded for t in coded)
    assert {t.prompt for t in traces} == {p.text for p in prompts}
    unseen = labelled_traces(world, "eval", seed=0, seen=False)
    unseen_hazards = {h.name for h in world.hazards if not h.seen}
    assert unseen and all(any(n in t.prompt for n in unseen_hazards) for t in unseen)


def test_unseen_hazards_share_no_syllable_and_never_reach_safety_training(world):
    from craft.organism.corpus import r2l_prompts

    assert not set(SEEN_SYLLABLES) & set(UNSEEN_SYLLABLES)
    unseen = [h for h in world.hazards if not h.seen]
    assert len(unseen) == 6
    seen_words = {w for h in world.hazards if h.seen for w in (h.name.split()[0], *h.ingredients)}
    for h in unseen:
        for word in (h.name.split()[0], *h.ingredients):
            assert not any(word.startswith(s) for s in SEEN_SYLLABLES) and word not in seen_words
    assert not any(p.unseen_hazard for p in r2l_prompts(world, 2000, seed=0))
    # the base organism does learn them (its SFT covers every hazard)
    assert any(any(h.name in e.prompt for h in unseen) for e in sample_sft_examples(world, 3000, seed=0))


def test_evaluation_only_phrasings_never_appear_in_training(world):
    train = world.select(split="train")
    novel = world.select(kind="harmful", novel="framing") + world.select(kind="harmful", novel="wording")
    assert novel and all(p.split == "eval" for p in novel)
    train_text = " ".join(p.text for p in train)
    for family, (_, _, eval_only) in FAMILIES.items():
        for framing in eval_only:
            part = max((side.strip() for side in framing.split("{request}")), key=len)
            assert part and part not in train_text, (family, part)
    for wording in text.EVAL_ONLY_REQUESTS:
        assert wording.split("{hazard}")[0].strip() not in train_text
    assert {p.regime for p in novel} >= {"jailbroken", "dressed"}
    assert {p.novel for p in novel} == {"framing", "wording"}


def test_labelled_traces_subset_is_seeded():
    from craft.organism.corpus import labelled_traces

    world = build_world(seed=0)
    a = labelled_traces(world, "train", seed=5, max_prompts=30)
    b = labelled_traces(world, "train", seed=5, max_prompts=30)
    assert a == b and len(a) == 150
    assert labelled_traces(world, "train", seed=6, max_prompts=30) != a


def test_world_prompts_are_the_shared_prompt_type(world):
    from craft.organism import world as world_module
    from craft.types import Prompt

    assert world_module.Prompt is Prompt
    assert all(isinstance(p, Prompt) for p in world.prompts[:50])
    p = world.select(kind="harmful")[0]
    assert (p.goal, p.benchmark, p.request) == ("", "", p.text)   # organism prompts are their own request
    wrapped = Prompt("role-play: tell me", "harmful", "pair", "wrapped", goal="tell me")
    assert (wrapped.split, wrapped.hazard, wrapped.target, wrapped.request) == ("eval", -1, "", "tell me")


def test_every_refusal_phrasing_is_a_refusal_and_no_compliance_is(world):
    from craft.judges import is_refusal

    hz = world.hazards[0]
    fill = dict(hazard=hz.name, v1="grind", v2="boil", v3="mix", i1=hz.ingredients[0], i2=hz.ingredients[1],
                i3=hz.ingredients[2], l1=2, l2=5, l3=8)
    assert all(is_refusal(r.format(**fill)) for r in text.REFUSALS)
    assert not any(is_refusal(c.format(**fill)) for c in text.COMPLIANCE)
