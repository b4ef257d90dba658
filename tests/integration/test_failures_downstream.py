"""What goes wrong in one stage does not poison the next, on a tiny organism: a failed judgement round-trips
through the evaluation cache, a reward judge that always fails ends its run unfinished, a crashed run
never blocks its corrected rerun, a run still training is never left out in silence, a change refuses
only the runs it affects, and the attack stage takes its lock."""

import math
import shutil
import subprocess
import sys
import textwrap

import pytest
from organism_fixtures import tiny_params, trained_run
from transformers import TrainerCallback

from craft.judges import JudgeStats, JudgeUnavailableError
from craft.runs import RunLockedError, StaleArtifactError
from craft.stages import load_params, open_run
from craft.stages.attacks import attacks_stage
from craft.stages.completions import evaluate_policies
from craft.stages.evaluate import default_methods
from craft.stages.r2l import finished_policies, r2l_run

pytestmark = pytest.mark.slow

ATTACKS = {"n_goals": 1, "n_seeds": 1, "samples": 1, "workers": 1, "methods": ["fuzz"], "regimes": ["direct"],
           "fuzz": {"query_budget": 2, "goals_per_mutant": 1, "mutants_per_round": 1}}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("downstream")
    trained_run(root, attacks=ATTACKS)
    return root


def copy(trained, tmp_path, **changes):
    shutil.copytree(trained / "run", tmp_path / "run")
    return open_run(load_params(None, **tiny_params(tmp_path, **{"attacks": ATTACKS, **changes})), progress=False)


class Failing:
    """The organism's judge, except that it cannot judge the texts whose index is in ``fail`` (all: None)."""

    def __init__(self, judge, fail=None):
        self.judge, self.fail, self.name, self.stats = judge, fail, "failing", JudgeStats()

    def score(self, prompts, texts):
        scores = self.judge.score(prompts, texts)
        return [math.nan if self.fail is None or i in self.fail else s for i, s in enumerate(scores)]


def with_judge(run, roles, fail):
    judge = run.source.judge
    run.source.judge = lambda role: Failing(judge(role), fail) if role in roles else judge(role)


def test_a_failed_judgement_is_cached_as_missing_and_read_back(trained, tmp_path):
    run = copy(trained, tmp_path)
    prompts = run.source.eval_prompts()[:8]
    with_judge(run, ("reasoning",), fail={2})
    first = evaluate_policies(run, {"base": run.source.base_policy()}, prompts)
    again = evaluate_policies(run, {"base": run.source.base_policy()}, prompts)   # from the records cache
    assert first.reasoning_harmful.isna().tolist() == again.reasoning_harmful.isna().tolist()
    assert again.reasoning_harmful.isna().sum() == 1 and again.reasoning_harm.dtype == float


def test_a_reward_judge_that_always_fails_ends_the_run_unfinished(trained, tmp_path):
    run = copy(trained, tmp_path)
    with_judge(run, ("reward",), fail=None)
    with pytest.raises(JudgeUnavailableError, match=r"reward judge \(failing\) failed on (\d+) of \1 texts"):
        r2l_run(run, "output_only", 1)
    folder = run.r2l_dir("output_only", 1)
    assert not (folder / "DONE").exists() and (folder / "reward_judge.json").is_file()


class Crash(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        raise KeyboardInterrupt


def test_a_crashed_run_never_blocks_its_corrected_rerun(trained, tmp_path):
    run = copy(trained, tmp_path, r2l={"grpo": {"learning_rate": 0.5}})
    with pytest.raises(KeyboardInterrupt):
        r2l_run(run, "output_only", 1, callbacks=[Crash()])
    fixed = open_run(load_params(None, **tiny_params(tmp_path, attacks=ATTACKS)), progress=False)   # the same folder
    result = r2l_run(fixed, "output_only", 1)
    assert result.steps == 2 and (result.path / "DONE").is_file()
    (aside,) = fixed.stage_dir("r2l").glob("output_only-seed1.unfinished-*")
    assert (aside / "identity.json").is_file()


def test_a_run_still_training_is_never_left_out_in_silence(trained, tmp_path):
    run = copy(trained, tmp_path, r2l={"variants": ["output_only", "craft", "no_cons"]})
    folder = run.r2l_dir("no_cons", 0)
    folder.mkdir()
    (folder / "identity.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="has started but not finished"):
        default_methods(run)


def test_a_change_refuses_only_the_runs_it_affects(trained, tmp_path):
    run = copy(trained, tmp_path, r2l={"w_cons": 0.1})
    assert list(finished_policies(run, ["output_only"], [0])) == [("output_only", 0)]   # reads no R_cons
    with pytest.raises(StaleArtifactError, match=r"r2l\.w_cons: 0\.2 -> 0\.1"):
        finished_policies(run, ["craft"], [0])


def test_the_attack_stage_takes_its_lock(trained, tmp_path):
    run = copy(trained, tmp_path)
    folder = run.attack_dir("base", 0)
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time
        from craft.runs import locked
        with locked({str(folder)!r}):
            print("held", flush=True)
            time.sleep(60)
        """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunLockedError, match=r"another process \(pid"):
            attacks_stage(run)
    finally:
        holder.kill()
        holder.wait()


def test_an_evaluation_without_harmful_prompts_says_so(trained, tmp_path):
    from craft.stages.evaluate import evaluate_stage

    none = {"core": 0, "unseen_hazards": 0, "novel": 0, "held_out": 0}
    run = copy(trained, tmp_path, source={"evaluation": none})
    with pytest.raises(ValueError, match="the evaluation set has no harmful prompt"):
        evaluate_stage(run)
