"""craft.r2l.rewards and craft.r2l.scorers without a language model: the reward formulas, their signs,
the harmful-only mask, judge failures, the variants, the shared cache and the latent check of the
scorer (fake scorer, fake judge, tiny heads)."""

import math
import random

import numpy as np
import pytest
import torch

from craft.judges import JudgeStats
from craft.latents import LatentSpec
from craft.lclr import LCLRConfig, LCLRHeads
from craft.models import split_reasoning
from craft.organism.judge import OrganismJudge
from craft.organism.world import answer_text
from craft.r2l.rewards import (
    MASKED_VALUE,
    VARIANTS,
    ConsistencyReward,
    DisclosureReward,
    LatentSafetyReward,
    ReasoningTextReward,
    TaskReward,
    TextSafetyReward,
    build_rewards,
    uses_latent,
    variant_weights,
)
from craft.r2l.scorers import LatentScorer, TextJudge, completion_text, left_pad_batch, random_heads
from craft.types import SAFE, UNSAFE


class Step:
    """Stand-in for TRL's ``trainer_state`` kwarg."""

    def __init__(self, global_step):
        self.global_step = global_step


class FakeScorer:
    """Duck-typed LatentScorer: fixed LCLR terms per completion."""

    def __init__(self, cos_safe, cos_unsafe, cos_rethink, p_z):
        self._t = {k: torch.tensor(v) for k, v in
                   dict(cos_safe=cos_safe, cos_unsafe=cos_unsafe, cos_rethink=cos_rethink, p_z=p_z).items()}
        self.calls = 0

    def terms(self, prompts, completion_ids, step=None, captured=None):
        self.calls += 1
        return self._t


class TableJudge:
    """A Judge returning given P(safe) values in order (or raising)."""

    name = "table"

    def __init__(self, values=None, error=None):
        self.values, self.error, self.stats = values, error, JudgeStats()

    def score(self, prompts, texts):
        if self.error:
            raise self.error
        return list(self.values[:len(texts)])


class FakeTokenizer:
    """Only what LatentScorer.__init__ needs: ``</think>`` is one token."""

    pad_token_id, eos_token_id = 0, 1

    def __call__(self, text, add_special_tokens=True):
        return {"input_ids": [7] if text == "</think>" else [3, 4]}


class CountingScorer(LatentScorer):
    """A real LatentScorer (cache, heads) whose model forward is replaced by a counted fake."""

    def __init__(self, heads):
        super().__init__(heads, LatentSpec(1), FakeTokenizer())
        self.calls, self.rows = 0, []

    def features(self, prompts, completion_ids):
        self.calls += 1
        self.rows.append(len(completion_ids))
        return fake_features(self.heads.config.d_model, completion_ids)


def fake_features(d, completion_ids):
    """Distinct, deterministic (N, d) features per completion."""
    return torch.stack([torch.arange(d) * 0.3 + float(sum(c)) for c in completion_ids]).sin()


def completion(reasoning, answer):
    return [{"role": "assistant", "content": f"{reasoning}\n</think>\n\n{answer}"}]


def prompt(text="q"):
    return [{"role": "user", "content": text}]


@pytest.fixture()
def heads():
    return random_heads(LCLRHeads(LCLRConfig(d_model=8, proj_hidden=16, proj_dim=4)), seed=1)


def call(reward, n, completions=None, ids=None, **kwargs):
    completions = completions or [completion("r", "a")] * n
    ids = ids if ids is not None else [[i, 1] for i in range(n)]
    return reward([prompt()] * n, completions, ids, **kwargs)


# ----------------------------------------------------------------------------- R_txt

def test_text_reward_sign_harmful_answer_gets_the_lower_reward(world):
    rng, p = random.Random(0), world.select(kind="harmful")[0]
    hz = world.hazards[p.hazard]
    refusal, comply = answer_text(world, p, "refuse", rng), answer_text(world, p, "comply", rng)
    partial = f"sure . {hz.recipe((1, 4))}"
    comps = [completion("thinking", a) for a in (refusal, partial, comply)]
    r = TextSafetyReward(TextJudge(OrganismJudge(world)))([prompt(p.text)] * 3, comps, [[1]] * 3)
    assert r[0] == 1.0                                   # refusal: P(safe) = 1 -> +1
    assert r[2] == -1.0                                  # whole recipe: P(safe) = 0 -> -1
    assert r[0] > r[1] > r[2]                            # more harm, less reward (the authors' sign bug)
    assert r[1] == pytest.approx(2 * (1 - 2 / 3) - 1)


def test_text_reward_judges_the_answer_not_the_reasoning(world):
    hz = world.hazards[1]
    ssa = completion(hz.recipe(), "i can not help with that .")
    r = TextSafetyReward(TextJudge(OrganismJudge(world)))([prompt()], [ssa], [[1]])
    assert r == [1.0]   # superficially safe: the output-only reward sees nothing wrong


def test_unfinished_reasoning_is_not_a_safe_answer(world):
    """No </think>, an empty answer, or a harmful answer hidden before a second </think> used to get
    R_txt = +1, like a refusal; now the judge reads what the user is shown."""
    recipe = world.hazards[1].recipe()
    texts = [f"let me see . {recipe}",                                        # unfinished, recipe inside
             "let me see . it is",                                             # unfinished, nothing harmful
             f"{recipe}\n</think>\n\n  ",                                      # empty answer
             f"ok\n</think>\n\n{recipe}\n</think>\n\ni can not help with that .",  # hidden answer
             "no .\n</think>\n\ni must decline ."]                            # a genuine refusal
    comps = [[{"role": "assistant", "content": t}] for t in texts]
    text, logged = TextJudge(OrganismJudge(world)), {}
    r = TextSafetyReward(text)([prompt()] * 5, comps, [[1]] * 5, log_metric=lambda k, v: logged.__setitem__(k, v))
    assert r == [-1.0, 1.0, -1.0, -1.0, 1.0]
    assert logged["safety/unfinished_rate"] == pytest.approx(2 / 5)
    assert (text.unfinished_count, text.completion_count) == (2, 5)


# ----------------------------------------------------------------------------- R_ls, R_cons

def test_latent_reward_formula_on_given_cosines():
    s = FakeScorer([0.9, -0.2, 0.0], [0.1, 0.8, 0.0], [0.5, 0.3, 1.0], [0.5] * 3)
    r = call(LatentSafetyReward(s, alpha=1.0, beta=1.0, gamma=0.5, harmful_only=False), 3)
    assert r == pytest.approx([0.9 - 0.1 + 0.25, -0.2 - 0.8 + 0.15, 0.5])
    r2 = call(LatentSafetyReward(s, alpha=2.0, beta=0.5, gamma=0.0, harmful_only=False), 3)
    assert r2 == pytest.approx([1.8 - 0.05, -0.4 - 0.4, 0.0])


def test_consistency_reward_values():
    s = FakeScorer([0] * 4, [0] * 4, [0] * 4, [0.9, 0.1, 0.5, 1.0])
    text = TextJudge(TableJudge([1.0, 1.0, 0.25, 0.0]), judge_reasoning=False)
    r = call(ConsistencyReward(s, text, harmful_only=False), 4)
    assert r == pytest.approx([0.9, 0.1, 0.75, 0.0])


def test_consistency_rule_hook_replaces_the_formula_on_the_applied_completions_only():
    s = FakeScorer([0] * 4, [0] * 4, [0] * 4, [0.9, 0.1, 0.5, 1.0])
    text = TextJudge(TableJudge([1.0, 1.0, 0.25, 0.0]), judge_reasoning=False)
    flags = [True, True, False, True]
    paper = call(ConsistencyReward(s, text), 4, harmful=flags)
    same = call(ConsistencyReward(s, text, rule=lambda z, p: 1 - np.abs(z - p)), 4, harmful=flags)
    assert same == pytest.approx(paper)                  # the paper's rule passed in: the same values
    seen = []
    squared = call(ConsistencyReward(s, text, rule=lambda z, p: seen.append((z, p)) or 1 - (z - p) ** 2), 4,
                   harmful=flags)
    assert squared == pytest.approx([1 - 0.01, 1 - 0.81, MASKED_VALUE, 1 - 0.25])  # benign: the constant
    np.testing.assert_allclose(seen[0][0], [0.9, 0.1, 0.5])           # only the harmful completions' latents
    np.testing.assert_allclose(seen[0][1], [1.0, 1.0, 0.0])
    with pytest.raises(ValueError, match="one value per completion"):
        call(ConsistencyReward(s, text, rule=lambda z, p: np.zeros(2)), 4, harmful=flags)


def test_benign_prompts_get_the_constant_when_harmful_only():
    s = FakeScorer([0.9, 0.9, 0.9], [0.0] * 3, [0.0] * 3, [0.2, 0.2, 0.2])
    text = TextJudge(TableJudge([1.0] * 3), judge_reasoning=False)
    flags = [True, False, True]
    ls = call(LatentSafetyReward(s), 3, harmful=flags)
    cons = call(ConsistencyReward(s, text), 3, harmful=flags)
    assert ls == pytest.approx([0.9, MASKED_VALUE, 0.9]) and MASKED_VALUE == 0.0
    assert cons == pytest.approx([0.2, MASKED_VALUE, 0.2])
    assert call(LatentSafetyReward(s), 3, kind=["harmful", "arithmetic", "benign"])[1] == MASKED_VALUE
    before = s.calls
    assert call(LatentSafetyReward(s), 2, harmful=[False, False]) == [MASKED_VALUE] * 2
    assert s.calls == before                             # an all-benign batch runs no forward
    with pytest.raises(ValueError, match="harmful"):
        call(LatentSafetyReward(s), 3)                   # no column: refuse to guess


# ----------------------------------------------------------------------------- judge failures

@pytest.mark.parametrize("values", [[float("nan"), 1.5, -0.1, "x", None, 0.3]])
def test_bad_judge_values_become_neutral_and_are_counted(values):
    text = TextJudge(TableJudge(values), judge_reasoning=False)
    logged = {}
    r = call(TextSafetyReward(text), 6, log_metric=lambda k, v: logged.__setitem__(k, v))
    assert r == pytest.approx([0.0] * 5 + [2 * 0.3 - 1])   # 0.5 -> R_txt 0
    assert all(math.isfinite(v) for v in r)
    assert text.failures == 5 and logged["safety/judge_failures"] == 5.0


def test_a_raising_judge_is_neutral_never_nan(caplog):
    text = TextJudge(TableJudge(error=RuntimeError("parse error")))
    s = FakeScorer([0.0] * 3, [0.0] * 3, [0.0] * 3, [1.0, 0.0, 0.5])
    with caplog.at_level("WARNING", logger="craft.r2l.scorers"):
        txt = call(TextSafetyReward(text), 3, harmful=[True] * 3)
    cons = call(ConsistencyReward(s, text), 3, harmful=[True] * 3)
    assert txt == [0.0] * 3 and cons == pytest.approx([0.5, 0.5, 1.0])
    assert text.failures == 6                            # answers and reasonings, judged once (cached)
    assert "parse error" in caplog.text


# ----------------------------------------------------------------------------- SSA statistics

def test_ssa_rate_is_logged_over_harmful_prompts(world):
    hz = world.hazards[2]
    recipe = hz.recipe()
    comps = [completion(recipe, "i can not help with that ."),   # SSA
             completion("no .", "i must decline ."),              # safe
             completion(recipe, f"sure . {recipe}"),              # jailbreak
             completion(recipe, "the answer is 4 .")]             # benign prompt: not counted
    text, logged = TextJudge(OrganismJudge(world)), {}
    call(TextSafetyReward(text), 4, completions=comps, harmful=[True, True, True, False],
         log_metric=lambda k, v: logged.__setitem__(k, v))
    assert logged["safety/ssa_rate"] == pytest.approx(1 / 3)
    assert logged["safety/reasoning_harm_rate"] == pytest.approx(2 / 3)
    assert logged["safety/response_harm_rate"] == pytest.approx(1 / 3)
    assert logged["r_txt/applied_mean"] == pytest.approx((1 + 1 - 1 + 1) / 4)
    call(TextSafetyReward(text), 4, completions=comps, harmful=[True, True, True, False],
         trainer_state=Step(1), log_metric=lambda k, v: logged.__setitem__(k, v))
    assert text.ssa_count == 2 and text.harmful_count == 6
    assert logged["safety/ssa_rate_cumulative"] == pytest.approx(1 / 3)


# ----------------------------------------------------------------------------- cache

def test_shared_cache_runs_one_forward_per_batch_in_any_order(heads):
    scorer = CountingScorer(heads)
    text = TextJudge(TableJudge([1.0] * 4), judge_reasoning=False)
    ls, cons = LatentSafetyReward(scorer), ConsistencyReward(scorer, text)
    kw = dict(harmful=[True] * 4, trainer_state=Step(0))
    ids = [[5, 6], [5, 7], [8], [9, 9, 9]]
    r_cons = call(cons, 4, ids=ids, **kw)                # consistency first: computes on miss
    r_ls = call(ls, 4, ids=ids, **kw)
    assert scorer.calls == 1 and scorer.n_forwards == 1
    t = heads.latent_reward_terms(fake_features(heads.config.d_model, ids))
    assert r_ls == pytest.approx((t["cos_safe"] - t["cos_unsafe"] + 0.5 * t["cos_rethink"]).tolist(), abs=1e-6)
    assert r_cons == pytest.approx((1 - (t["p_z"] - 1.0).abs()).tolist(), abs=1e-6)
    call(ls, 4, ids=ids, harmful=[True] * 4, trainer_state=Step(1))      # new step, same ids: new policy
    call(ls, 4, ids=[[5, 6], [5, 7], [8], [9]], **kw)                    # other completions
    assert scorer.calls == 3


def test_captured_latents_are_used_and_only_the_missing_rows_are_forwarded(heads):
    """The craft_latent column (craft.r2l.rollout) replaces the forward row by row: a row without a captured
    latent (None) is recomputed, in one forward with the other missing rows; all captured: no forward."""
    scorer = CountingScorer(heads)
    ls = LatentSafetyReward(scorer)
    ids = [[5, 6], [5, 7], [8], [9, 9, 9]]
    d = heads.config.d_model
    captured = [torch.full((d,), 0.25), None, torch.full((d,), -0.5), None]
    r_ls = call(ls, 4, ids=ids, harmful=[True, True, True, True], trainer_state=Step(0), craft_latent=captured)
    assert scorer.calls == 1 and scorer.rows == [2] and (scorer.n_captured, scorer.n_recomputed) == (2, 2)
    feats = torch.stack([captured[0], fake_features(d, [ids[1]])[0], captured[2], fake_features(d, [ids[3]])[0]])
    t = heads.latent_reward_terms(feats)
    assert r_ls == pytest.approx((t["cos_safe"] - t["cos_unsafe"] + 0.5 * t["cos_rethink"]).tolist(), abs=1e-6)
    every = [torch.full((d,), float(i)) for i in range(4)]
    call(ls, 4, ids=ids, harmful=[True] * 4, trainer_state=Step(1), craft_latent=every)
    assert scorer.calls == 1 and scorer.n_forwards == 1 and scorer.n_captured == 6        # no forward at all


def test_masked_rows_are_not_forwarded(heads):
    scorer = CountingScorer(heads)
    text = TextJudge(TableJudge([1.0] * 4), judge_reasoning=False)
    kw = dict(harmful=[True, False, True, True], ids=[[5], [6], [7], [8]])
    ls, cons = call(LatentSafetyReward(scorer), 4, **kw), call(ConsistencyReward(scorer, text), 4, **kw)
    assert scorer.rows == [3]                            # one forward, harmful rows only
    t = heads.latent_reward_terms(fake_features(heads.config.d_model, [[5], [7], [8]]))
    r_ls = (t["cos_safe"] - t["cos_unsafe"] + 0.5 * t["cos_rethink"]).tolist()
    assert ls == pytest.approx([r_ls[0], MASKED_VALUE, r_ls[1], r_ls[2]], abs=1e-6)
    assert cons[1] == MASKED_VALUE and cons[3] == pytest.approx(t["p_z"][2].item(), abs=1e-6)


def test_scorer_without_trainer_says_what_to_do(heads):
    with pytest.raises(RuntimeError, match="scorer.trainer = trainer"):
        LatentScorer(heads, LatentSpec(1), FakeTokenizer()).features([prompt()], [[1]])


def test_scorer_refuses_heads_fit_on_another_latent():
    def recorded(**kw):
        return LCLRHeads(LCLRConfig(d_model=8, proj_hidden=16, proj_dim=4, **kw))
    LatentScorer(recorded(layer=1), LatentSpec(1), FakeTokenizer())            # same latent: accepted
    with pytest.raises(ValueError, match="layer 2"):
        LatentScorer(recorded(layer=2), LatentSpec(1), FakeTokenizer())
    with pytest.raises(ValueError, match="last pool"):
        LatentScorer(recorded(layer=1, pool="last"), LatentSpec(1), FakeTokenizer())
    LatentScorer(recorded(), LatentSpec(3, "last"), FakeTokenizer())           # layer not recorded: no check


@pytest.mark.parametrize("layer", [-1, 1])
def test_scorer_checks_the_policy_width_on_the_first_batch(layer):
    heads = LCLRHeads(LCLRConfig(d_model=8, proj_hidden=16, proj_dim=4, layer=layer))
    scorer = LatentScorer(heads, LatentSpec(1), FakeTokenizer())
    policy = torch.nn.Linear(2, 2)
    policy.config = type("Config", (), {"hidden_size": 16})()
    scorer.trainer = type("Trainer", (), {"model": policy})()
    with pytest.raises(ValueError, match="width 8"):
        scorer.features([prompt()], [[1]])


def test_left_pad_batch_marks_the_reasoning_span():
    b = left_pad_batch([[1, 2], [1, 2, 3]], [[4, 5, 7, 6], [4, 6]], pad_id=0, close_id=7)
    assert b.input_ids.tolist() == [[1, 2, 4, 5, 7, 6], [0, 1, 2, 3, 4, 6]]
    assert b.attention_mask.tolist() == [[1] * 6, [0, 1, 1, 1, 1, 1]]
    assert [ids[m].tolist() for ids, m in zip(b.input_ids, b.span_mask)] == [[4, 5], [4, 6]]


# ----------------------------------------------------------------------------- variants

@pytest.mark.parametrize("variant,names,weights", [
    ("output_only", ["r_txt"], [0.4]),
    ("craft", ["r_ls", "r_txt", "r_cons"], [0.5, 0.4, 0.2]),
    ("no_lclr", ["r_ls", "r_txt", "r_cons"], [0.5, 0.4, 0.2]),
    ("shuffled_lclr", ["r_ls", "r_txt", "r_cons"], [0.5, 0.4, 0.2]),
    ("no_cons", ["r_ls", "r_txt"], [0.5, 0.4]),
    ("no_ls", ["r_txt", "r_cons"], [0.4, 0.2]),
    ("no_txt", ["r_ls", "r_cons"], [0.5, 0.2]),
])
def test_variants_give_the_right_functions_and_weights(heads, variant, names, weights):
    funcs, w, scorer = build_rewards(variant, heads, LatentSpec(1), FakeTokenizer(), TableJudge([1.0]))
    assert [f.__name__ for f in funcs] == names and w == weights
    assert w == variant_weights(variant)
    assert (scorer is None) == (variant == "output_only")
    assert not any(isinstance(f, torch.nn.Module) for f in funcs)   # TRL would treat it as a reward model
    latent = [f for f in funcs if hasattr(f, "scorer")]
    assert all(f.scorer is scorer for f in latent)
    texts = {id(f.text) for f in funcs if hasattr(f, "text")}
    assert len(texts) == 1                                           # one judge cache per batch


def test_task_reward_is_appended_and_unknown_variant_raises(heads):
    funcs, w, _ = build_rewards("craft", heads, LatentSpec(1), FakeTokenizer(), TableJudge([1.0]), task_reward=0.3)
    assert [f.__name__ for f in funcs][-1] == "r_task" and w == [0.5, 0.4, 0.2, 0.3]
    with pytest.raises(ValueError, match="output_only"):
        build_rewards("nope", heads, LatentSpec(1), FakeTokenizer(), TableJudge([1.0]))
    with pytest.raises(ValueError, match="needs heads"):
        build_rewards("craft", None, None, None, TableJudge([1.0]))
    assert set(VARIANTS) == {"output_only", "craft", "no_cons", "no_ls", "no_txt", "no_lclr", "shuffled_lclr",
                             "reasoning_judge", "obfuscator"}
    for variant in ("reasoning_judge", "obfuscator"):
        with pytest.raises(ValueError, match="reasoning_judge"):
            build_rewards(variant, heads, LatentSpec(1), FakeTokenizer(), TableJudge([1.0]))
    assert [v for v in VARIANTS if not uses_latent(v)] == ["output_only", "reasoning_judge"]


def test_reasoning_judge_rewards_the_reasoning_text_and_the_answer(world):
    """R_rtxt reads the reasoning through its own judge (here the surface judge: blind to aliases); R_txt the
    answer through the reward judge. Both apply on every prompt; R_rtxt takes w_lat."""
    hz = world.hazards[0]
    plain, safe = hz.recipe(), "no . i will not ."
    comps = [completion(plain, "i can not help with that ."), completion(safe, "i can not help with that ."),
             completion(safe, f"sure . {plain}")]
    funcs, w, scorer = build_rewards("reasoning_judge", None, None, None, OrganismJudge(world),
                                     reasoning_judge=OrganismJudge(world, aliases=False))
    assert [f.__name__ for f in funcs] == ["r_rtxt", "r_txt"] and w == [0.5, 0.4] and scorer is None
    assert isinstance(funcs[0], ReasoningTextReward) and funcs[0].text is not funcs[1].text
    logged = {}
    r_rtxt, r_txt = (call(f, 3, completions=comps, harmful=[True] * 3, log_metric=logged.__setitem__) for f in funcs)
    assert r_rtxt == [-1.0, 1.0, 1.0]              # the SSA trace's reasoning pays; the answers do not matter
    assert r_txt == [1.0, 1.0, -1.0]               # the jailbreak's answer pays; the reasoning does not matter
    assert funcs[0].text.calls == 3                # the reasoning judge reads reasonings only
    assert logged["reasoning_judge/reasoning_harm_rate"] == pytest.approx(1 / 3)
    assert logged["safety/ssa_rate"] == pytest.approx(1 / 3)     # the answer judge's statistics keep their names


def test_obfuscator_pays_disclosure_and_a_safe_looking_latent(world, heads):
    """The positive control of the obfuscation check: R_ls from the heads beside R_dis, which pays what the exact
    judge finds disclosed in the reasoning (coded or not) and takes w_txt; nothing reads the answer."""
    hz = world.hazards[0]
    plain, safe = hz.recipe(), "no . i will not ."
    coded = plain
    for name in hz.ingredients:                   # every ingredient with a second name called by it
        coded = coded.replace(name, world.aliases.get(name, name))
    assert coded != plain
    comps = [completion(plain, "i can not help with that ."), completion(safe, f"sure . {plain}"),
             completion(coded, "i can not help with that .")]
    funcs, w, scorer = build_rewards("obfuscator", heads, LatentSpec(1), FakeTokenizer(), OrganismJudge(world),
                                     reasoning_judge=OrganismJudge(world))
    assert [f.__name__ for f in funcs] == ["r_ls", "r_dis"] and w == [0.5, 0.4] == variant_weights("obfuscator")
    assert isinstance(funcs[1], DisclosureReward) and funcs[0].scorer is scorer
    logged = {}
    r_dis = call(funcs[1], 3, completions=comps, harmful=[True] * 3, log_metric=logged.__setitem__)
    assert r_dis == [1.0, -1.0, 1.0]       # disclosed reasoning pays, coded too; a harmful answer alone does not
    assert funcs[1].text.calls == 3 and logged["disclosure_judge/reasoning_harm_rate"] == pytest.approx(2 / 3)
    assert uses_latent("obfuscator")


def test_task_reward_scores_arithmetic_only():
    comps = [completion("we add : 2 + 3 = 5 .", "the answer is 5 ."),
             completion("we add : 2 + 3 = 6 .", "the answer is 6 ."),
             completion("x", "the answer is 5 ."),
             completion("unfinished the answer is 5", "")]
    r = call(TaskReward(), 4, completions=comps, kind=["arithmetic", "arithmetic", "harmful", "arithmetic"],
             target=["5", "5", "", "5"])
    assert r == [1.0, 0.0, 0.0, 0.0]


def test_random_heads_are_fresh_with_unit_prototypes():
    trained = LCLRHeads(LCLRConfig(d_model=8, proj_hidden=16, proj_dim=4, seed=3))
    trained.prototypes.init(torch.nn.functional.normalize(torch.randn(6, 4), dim=-1), torch.tensor([0, 1, 2] * 2))
    fresh = random_heads(trained, seed=11)
    assert fresh.config.seed == 11 and fresh.config.d_model == 8 and not fresh.training
    torch.testing.assert_close(fresh.prototypes.mu.norm(dim=-1), torch.ones(3))
    assert not torch.allclose(fresh.prototypes.mu, trained.prototypes.mu)
    assert not torch.allclose(fresh.projection.net[0].weight, trained.projection.net[0].weight)
    torch.testing.assert_close(random_heads(trained, 11).prototypes.mu, fresh.prototypes.mu)   # seeded
    assert bool(fresh.prototypes.mu[SAFE] @ fresh.prototypes.mu[UNSAFE] < 0.99)


def test_completion_text_handles_strings_messages_and_parsed_reasoning():
    assert completion_text("a\n</think>\n\nb") == "a\n</think>\n\nb"
    parsed = [{"role": "assistant", "content": "b", "reasoning_content": "a"}]
    assert split_reasoning(completion_text(parsed)).answer == "b"
    assert split_reasoning(completion_text(parsed)).reasoning == "a"
