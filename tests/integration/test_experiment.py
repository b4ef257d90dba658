"""craft.experiment: a finished run is cached, another run's directory is refused, an interrupted
run resumes from its checkpoint with its earlier evaluations kept; mean_ci; the R2L prompt sets."""

import math
import os

import pytest
from transformers import TrainerCallback

from craft import io
from craft.evaluate import GenerationSettings
from craft.experiment import mean_ci, run_r2l
from craft.judges import OrganismJudge
from craft.lclr import save_heads
from craft.organism.corpus import eval_prompts, r2l_prompts
from craft.r2l import R2LConfig

pytestmark = pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")
FAST = dict(steps=2, per_device_train_batch_size=8, num_generations=4, max_completion_length=24,
            logging_steps=1, save_steps=2, learning_rate=1e-3)
SETTINGS = GenerationSettings(max_new_tokens=24, seed=3)


@pytest.fixture(scope="module")
def saved(base_model, tokenizer, heads, tmp_path_factory):
    """The tiny policy and random heads on disk, as notebooks 00 and 02 leave them."""
    root = tmp_path_factory.mktemp("organism")
    base_model.save_pretrained(root / "model")
    tokenizer.save_pretrained(root / "model")
    save_heads(heads, root / "heads")
    io.save_json({"layer": 1, "pool": "mean"}, root / "heads" / "latent.json")
    return root


def go(saved, world, out, variant="craft", callbacks=(), **cfg):
    prompts = r2l_prompts(world, 16, seed=0, harmful=0.75, arithmetic=0.25)
    evals = (world.select(split="eval", kind="harmful")[:3] + world.select(split="eval", kind="arithmetic")[:2]
             + world.select(split="eval", kind="benign")[:1])
    return run_r2l(saved / "model", R2LConfig(variant=variant, **{**FAST, **cfg}), prompts, evals,
                   OrganismJudge(world), out, heads_dir=saved / "heads", eval_every=1, settings=SETTINGS,
                   callbacks=callbacks)


def test_finished_run_is_saved_then_loaded_not_retrained(saved, world, tmp_path):
    first = go(saved, world, tmp_path / "run", variant="output_only")
    assert not first.cached and list(first.history.step) == [0, 1, 2]
    assert {"ssa_rate", "arith_accuracy", "n_eval_harmful"} <= set(first.history.columns)
    assert len(first.records) == 6 and any("reward" in row for row in first.log_history)
    assert (tmp_path / "run" / "model" / "model.safetensors").exists()
    assert not list((tmp_path / "run").glob("checkpoint-*"))        # removed once finished
    again = go(saved, world, tmp_path / "run", variant="output_only")
    assert again.cached and again.history.equals(first.history) and again.train_seconds == first.train_seconds


def test_a_directory_of_another_run_is_refused(saved, world, tmp_path):
    go(saved, world, tmp_path / "run", variant="output_only")
    with pytest.raises(ValueError, match="different R2L run"):
        go(saved, world, tmp_path / "run", variant="output_only", learning_rate=5e-4)


def test_latent_variants_need_heads(saved, world, tmp_path):
    with pytest.raises(ValueError, match="needs heads_dir"):
        run_r2l(saved / "model", R2LConfig(variant="craft", **FAST), r2l_prompts(world, 8, 0), eval_prompts(world, 1, 1),
                OrganismJudge(world), tmp_path / "run", settings=SETTINGS)


class Crash(TrainerCallback):
    """Interrupts training at the end of step ``at`` (after that step's evaluation)."""

    def __init__(self, at):
        self.at = at

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.at:
            raise KeyboardInterrupt


class StartStep(TrainerCallback):
    """Records the step training begins at."""

    def on_train_begin(self, args, state, control, **kwargs):
        self.step = state.global_step


def test_interrupted_run_resumes_from_its_checkpoint_keeping_earlier_evaluations(saved, world, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        go(saved, world, out, steps=4, callbacks=[Crash(3)])
    assert os.path.isdir(out / "checkpoint-2") and not (out / "result.json").exists()
    assert [r["step"] for r in io.load_json(out / "history.json")] == [0, 1, 2, 3]
    before = io.load_json(out / "history.json")[:3]
    start = StartStep()
    resumed = go(saved, world, out, steps=4, callbacks=[start])
    assert start.step == 2                                                 # from checkpoint-2
    assert list(resumed.history.step) == [0, 1, 2, 3, 4] and not resumed.cached
    assert resumed.history.iloc[:3].to_dict("records") == before          # kept, not recomputed
    assert io.load_json(out / "result.json")["steps"] == 4
    assert [row["step"] for row in resumed.log_history if "reward" in row] == [1, 2, 3, 4]


def test_mean_ci_is_the_student_t_interval():
    mean, lo, hi = mean_ci([1.0, 2.0, 3.0])
    half = 4.302652729911275 / math.sqrt(3)          # t(0.975, 2) * s / sqrt(n), s = 1
    assert mean == 2.0 and lo == pytest.approx(2 - half) and hi == pytest.approx(2 + half)
    assert mean_ci([0.4]) == (0.4, 0.4, 0.4)
    assert mean_ci([0.0, 0.0, 0.03], bounds=(0.0, 1.0))[1] == 0.0         # a rate's interval stays in [0, 1]


def test_r2l_prompts_mix_and_split(world):
    prompts = r2l_prompts(world, 100, seed=1, harmful=0.6, arithmetic=0.3)
    kinds = [p.kind for p in prompts]
    assert (kinds.count("harmful"), kinds.count("arithmetic"), kinds.count("benign")) == (60, 30, 10)
    assert all(p.split == "train" and p.regime != "held_out" for p in prompts)
    assert prompts == r2l_prompts(world, 100, seed=1, harmful=0.6, arithmetic=0.3)
    with pytest.raises(ValueError, match="sum <= 1"):
        r2l_prompts(world, 10, seed=0, harmful=0.8, arithmetic=0.3)


def test_eval_prompts_are_held_out(world):
    prompts = eval_prompts(world, n_arith=5, benign_repeats=2)
    assert all(p.split == "eval" for p in prompts)
    assert not any(p.regime == "held_out" for p in prompts)
    assert any(p.regime == "held_out" for p in eval_prompts(world, 5, 2, held_out=True))
    benign = world.select(split="eval", kind="benign")
    assert sum(p.kind == "arithmetic" for p in prompts) == 5 and sum(p.kind == "benign" for p in prompts) == 2 * len(benign)
