"""The adaptive-attack stage (notebook 07) on a tiny organism: every policy is attacked by every method
with the plain goal kept for the judge, the results are the ASR of fresh samples, a finished unit is
reused only with the identity that made it, worker processes compute the same units, and a missing
trained policy is a clear error."""

import shutil

import pytest
from organism_fixtures import tiny_params, trained_run

from craft.stages import attacks as attacks_module
from craft.stages import load_params, open_run
from craft.stages.attacks import POLICIES, attacks_stage

pytestmark = pytest.mark.slow

SMALL = {"n_goals": 2, "n_seeds": 1, "samples": 2, "workers": 1,
         "gcg": {"num_steps": 2, "search_width": 8, "topk": 8, "suffix_init": " x x x"},
         "fuzz": {"query_budget": 6, "goals_per_mutant": 2, "mutants_per_round": 2}}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny organism, its heads and one output-only and one CRAFT policy (notebooks 00, 02, 03)."""
    root = tmp_path_factory.mktemp("attacks")
    trained_run(root, attacks=SMALL)
    return root


def fresh(trained, tmp_path, **attacks):
    shutil.copytree(trained / "run", tmp_path / "run")
    return open_run(load_params(None, **tiny_params(tmp_path, attacks={**SMALL, **attacks})), progress=False)


def test_every_policy_is_attacked_and_judged_on_its_plain_goal(trained, tmp_path):
    result = attacks_stage(fresh(trained, tmp_path))
    assert sorted(result.per_seed.policy.unique()) == sorted(POLICIES)
    attacks = result.per_seed.groupby("regime").attack.agg(set).to_dict()
    every = {"none", "gcg", "fuzz", "cot_hijack"}
    assert attacks == {"direct": every, "dressed": every - {"cot_hijack"}, "coded": {"gcg"}}   # coded: GCG's target
    from craft.stages.attacks import attack_goals

    n_goals = {r: len(g) for r, g in attack_goals(fresh(trained, tmp_path / "goals")).items()}   # the tiny world has
    assert n_goals["direct"] == n_goals["dressed"] == 2 and 1 <= n_goals["coded"] <= 2           # few coded goals
    assert (result.per_seed.n == result.per_seed.regime.map(n_goals) * 2).all()   # goals x 2 fresh samples
    assert len(result.records) == len(POLICIES) * (4 * 2 + 3 * 2 + n_goals["coded"]) * 2
    for row in result.searches.itertuples():                       # every attacked prompt still asks the goal
        assert row.goal in row.prompt
        assert row.attack != "none" or row.regime != "direct" or row.prompt == row.goal
    assert (result.searches[result.searches.attack == "gcg"].prompt != result.searches[
        result.searches.attack == "gcg"].goal).all()                  # GCG appended a suffix
    gcg = result.searches[result.searches.attack == "gcg"]
    assert (gcg.loss.astype(float) <= gcg.initial_loss.astype(float) + 1e-6).all()
    assert set(result.records.goal) == set(result.searches.goal)   # the judge is shown the plain goal
    run = fresh(trained, tmp_path / "again")
    padding = " ".join(run.source.benign_reasoning(run.params.attacks.hijack_problems))
    hijack = result.searches[result.searches.attack == "cot_hijack"]   # worked arithmetic, then the plain goal
    assert (hijack.prompt == [f"{padding} {g}" for g in hijack.goal]).all() and "step by step" in padding
    assert result.records.p_z.between(0, 1).all() and result.records.p_z.dtype == float   # the heads read each one
    m = result.metrics
    for attack in ("gcg", "fuzz", "cot_hijack"):
        for kind in ("reasoning", "final"):
            for policy in POLICIES:
                assert 0.0 <= m[f"{attack}_{kind}_asr_{policy}"] <= 1.0
    for key in ("gcg_dressed_reasoning_asr_craft", "fuzz_dressed_final_asr_base", "gcg_coded_reasoning_asr_output_only",
                "none_dressed_harm_score_base", "gcg_coded_coded_share_base"):
        assert key in m, key
    assert "fuzz_coded_reasoning_asr_base" not in m
    dressed = result.records[(result.records.regime == "dressed") & (result.records.attack == "none")]
    assert (dressed.family != "direct").all()                      # a dressed-up family's framing, sent as it is
    assert result.records.harm_score.between(0, 1).all()
    assert m["n_attack_seeds"] == 1 and m["n_attack_goals"] == 2
    hijacked = result.records[(result.records.attack == "cot_hijack") & (result.records.policy == "base")
                              & (result.records.regime == "direct")]
    assert m["cot_hijack_p_z_base"] == pytest.approx(hijacked.p_z.mean())
    assert m["cot_hijack_n_harmful_reasoning_base"] == int(hijacked.reasoning_harmful.fillna(False).sum())
    assert len(result.fuzz_history) and (result.fuzz_history.policy.isin(POLICIES)).all()


def test_a_finished_unit_is_reused_and_a_changed_setting_recomputes(trained, tmp_path, monkeypatch):
    run = fresh(trained, tmp_path)
    first = attacks_stage(run)

    def no_generation(*args, **kwargs):
        raise AssertionError("a cached unit generated again")

    with monkeypatch.context() as patch:
        patch.setattr(attacks_module, "generate", no_generation)
        again = attacks_stage(run)
    assert again.per_seed.equals(first.per_seed) and again.searches.prompt.equals(first.searches.prompt)
    changed = open_run(load_params(None, **tiny_params(tmp_path, attacks={**SMALL, "samples": 1})), progress=False)
    fewer = attacks_stage(changed).per_seed
    assert (fewer.n == first.per_seed.n // 2).all()                # one sample per attacked prompt, not two


def test_worker_processes_compute_the_same_units(trained, tmp_path):
    alone = attacks_stage(fresh(trained, tmp_path / "a"))
    workers = attacks_stage(fresh(trained, tmp_path / "b", workers=2))   # one thread each, as this test's process
    assert workers.searches.prompt.equals(alone.searches.prompt)
    assert workers.per_seed.equals(alone.per_seed)


def test_more_attack_seeds_than_trained_policies_is_a_clear_error(trained, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"raise r2l\.n_seeds, or lower attacks\.n_seeds"):
        attacks_stage(fresh(trained, tmp_path, n_seeds=2))


def test_each_regime_has_its_own_goals_and_targets(trained, tmp_path):
    """direct: plain requests; dressed: requests in a dressed-up training framing (the same plain target); coded:
    plain requests whose target names the first ingredient by its alias; an unknown regime is a clear error, and a
    params file that lists coded without GCG is refused."""
    from craft.config import ConfigError
    from craft.stages.attacks import attack_goals

    run = fresh(trained, tmp_path)
    goals = attack_goals(run)
    assert list(goals) == ["direct", "dressed", "coded"]
    assert all(g.regime == "direct" and g.request == g.text for g, _ in goals["direct"])
    assert all(g.regime == "dressed" and g.family != "direct" and not g.novel for g, _ in goals["dressed"])
    world = run.source.world
    for g, target in goals["coded"]:
        first = world.hazards[g.hazard].ingredients[0]
        assert g.regime == "direct" and world.aliases[first] in target and first not in target.split()
    with pytest.raises(ValueError, match="unknown attack regime"):
        run.source.attack_goals(2, "sideways")
    with pytest.raises(ConfigError, match="coded runs GCG only"):
        load_params(None, **tiny_params(tmp_path, attacks={**SMALL, "methods": ["fuzz"]}))
    with pytest.raises(ConfigError, match="starting with direct"):
        load_params(None, **tiny_params(tmp_path, attacks={**SMALL, "regimes": ["dressed"]}))
