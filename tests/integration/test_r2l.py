"""craft.r2l end to end at toy scale: TRL GRPO steps with the CRAFT and output-only rewards on a
tiny organism, checkpoint resume, LoRA, and the periodic evaluation callback."""

import copy
import os
import random

import pytest
import torch

from craft.latents import LatentSpec
from craft.organism.judge import OrganismJudge
from craft.r2l import (
    PeriodicEval,
    R2LConfig,
    build_trainer,
    latent_scorer,
    make_prompt_dataset,
    text_judge,
    text_judges,
)
from craft.runs import train

os.environ.setdefault("HF_HUB_OFFLINE", "1")

# 48 tokens: the fixture policy's short recipes and their answers fit, so a group's answers can differ
FAST = {"grpo": dict(max_steps=2, per_device_train_batch_size=8, num_generations=4, max_completion_length=48,
                     logging_steps=1, save_steps=100, learning_rate=1e-3, beta=0.01, lr_scheduler_type="constant")}
# TRL/peft still call the deprecated transformers name when saving; harmless (spike pitfall P5).
pytestmark = [pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning"),
              pytest.mark.slow]


@pytest.fixture(scope="module")
def harmful_ds(world):
    return make_prompt_dataset(world.select(split="train", kind="harmful")[:24])


@pytest.fixture(scope="module")
def mixed_ds(world):
    return make_prompt_dataset(world.select(split="train", kind="harmful")[:12]
                               + world.select(split="train", kind="arithmetic")[:6])


GRPO_KEYS = ("steps", "save_steps")


def run(base_model, tokenizer, ds, heads, world, out, callbacks=(), **cfg):
    """One short GRPO run; ``steps`` and ``save_steps`` go to ``grpo`` (max_steps, save_steps)."""
    grpo = {**FAST["grpo"], **{("max_steps" if k == "steps" else k): cfg.pop(k) for k in GRPO_KEYS if k in cfg}}
    cfg = {**cfg, "grpo": grpo}
    model = copy.deepcopy(base_model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainer = build_trainer(model, tokenizer, ds, heads, LatentSpec(1), OrganismJudge(world),
                            R2LConfig(**cfg), str(out), callbacks=callbacks)
    train(trainer)
    return trainer, before


def logged(trainer, key):
    return [h[key] for h in trainer.state.log_history if key in h]


def changed(before, model):
    return any(not torch.equal(before[k], v) for k, v in model.state_dict().items() if k in before)


def test_make_prompt_dataset_columns(world):
    ds = make_prompt_dataset(world.select(kind="harmful")[:1] + world.select(kind="arithmetic")[:1])
    assert ds[0]["prompt"] == [{"role": "user", "content": world.select(kind="harmful")[0].text}]
    assert [r["harmful"] for r in ds] == [True, False] and ds[1]["kind"] == "arithmetic"
    assert ds[1]["target"] == world.select(kind="arithmetic")[0].target
    assert {"family", "regime"} <= set(ds.column_names)


def test_scorer_reads_the_latent_of_exactly_the_tokens_trl_generated(base_model, tokenizer, harmful_ds,
                                                                      heads, world, tmp_path):
    trainer = build_trainer(copy.deepcopy(base_model), tokenizer, harmful_ds, heads, LatentSpec(1),
                            OrganismJudge(world), R2LConfig(**FAST), str(tmp_path))
    scorer, prompts = latent_scorer(trainer), [harmful_ds[i]["prompt"] for i in range(3)]
    trl_prompt_ids = [list(ids) for ids in trainer._tokenize_prompts(prompts)[0]]   # what TRL generates from
    assert scorer.prompt_ids(prompts) == trl_prompt_ids
    texts = ("a b\n</think>\n\nno<|im_end|>", "x y", "q r s t\n</think>\n\n")
    comps = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    close = tokenizer.convert_tokens_to_ids("</think>")
    trainer.model.train()
    feats = scorer.features(prompts, comps)                                       # (3, d), one padded batch
    assert trainer.model.training                                                 # mode restored
    for row, (p, c) in enumerate(zip(trl_prompt_ids, comps)):
        with torch.no_grad():
            states = trainer.model(torch.tensor([p + c]), output_hidden_states=True).hidden_states[1][0]
        end = len(p) + (c.index(close) if close in c else len(c))
        torch.testing.assert_close(feats[row], states[len(p):end].mean(0), atol=1e-5, rtol=0)


def test_captured_latents_are_trls_rollouts_and_equal_the_recomputed_ones(base_model, tokenizer, harmful_ds,
                                                                           heads, world, tmp_path):
    """CapturingRollout generates exactly what TRL's own path generates (same seed, same completions)
    and the latents it captured equal the truncated forward's to 1e-5."""
    runs = {}
    for capture in (True, False):
        trainer, _ = run(base_model, tokenizer, harmful_ds, heads, world, tmp_path / str(capture), steps=1,
                         capture_latents=capture)
        runs[capture] = latent_scorer(trainer)
    captured, recomputed = runs[True], runs[False]
    assert (trainer.rollout_func is None) and captured.n_captured > 0 and recomputed.n_captured == 0
    assert captured._key == recomputed._key                          # same step, prompts, completion ids
    for k, v in captured._terms.items():                             # scored before the update, both
        torch.testing.assert_close(v, recomputed._terms[k], atol=1e-5, rtol=0)


def test_craft_two_steps(base_model, tokenizer, harmful_ds, heads, world, tmp_path):
    periodic = PeriodicEval(every=1, fn=lambda step, model: {})
    trainer, before = run(base_model, tokenizer, harmful_ds, heads, world, tmp_path, callbacks=[periodic])
    assert trainer.state.global_step == 2 and changed(before, trainer.model)
    for name in ("r_ls", "r_txt", "r_cons"):
        means = logged(trainer, f"rewards/{name}/mean")
        assert len(means) == 2 and all(torch.isfinite(torch.tensor(means)))
    assert all(torch.isfinite(torch.tensor(logged(trainer, "reward"))))
    assert len(logged(trainer, "safety/ssa_rate")) == 2
    assert all(0.0 <= v <= 1.0 for v in logged(trainer, "safety/ssa_rate_cumulative"))
    assert logged(trainer, "safety/judge_failures") == [0.0, 0.0]
    scorer = latent_scorer(trainer)
    assert scorer.trainer is trainer and scorer.n_captured > 0       # latents from generate ...
    assert scorer.n_forwards <= 2 and (scorer.n_forwards > 0) == (scorer.n_recomputed > 0)  # forward: cut-off rows only
    assert scorer.n_captured + scorer.n_recomputed == 2 * 8          # every row of both steps scored once
    assert [r["step"] for r in periodic.results] == [0, 1, 2]     # start, every step, end (once)


def test_output_only_two_steps(base_model, tokenizer, mixed_ds, heads, world, tmp_path):
    trainer, before = run(base_model, tokenizer, mixed_ds, None, world, tmp_path, variant="output_only")
    assert trainer.state.global_step == 2 and changed(before, trainer.model)
    assert latent_scorer(trainer) is None                            # no latent forward at all
    assert [f.__name__ for f in trainer.reward_funcs] == ["r_txt"]
    means = logged(trainer, "rewards/r_txt/mean")
    assert len(means) == 2 and all(-1.0 <= m <= 1.0 for m in means)
    assert "rewards/r_ls/mean" not in trainer.state.log_history[0]


def test_reasoning_judge_two_steps(base_model, tokenizer, mixed_ds, world, tmp_path):
    """The reasoning-judge control: R_rtxt from the surface judge on the reasoning beside R_txt; no latent."""
    model = copy.deepcopy(base_model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainer = build_trainer(model, tokenizer, mixed_ds, None, None, OrganismJudge(world),
                            R2LConfig(variant="reasoning_judge", grpo=FAST["grpo"]), str(tmp_path),
                            reasoning_judge=OrganismJudge(world, aliases=False))
    train(trainer)
    assert trainer.state.global_step == 2 and changed(before, trainer.model)
    assert latent_scorer(trainer) is None
    assert [f.__name__ for f in trainer.reward_funcs] == ["r_rtxt", "r_txt"]
    for name in ("r_rtxt", "r_txt"):
        means = logged(trainer, f"rewards/{name}/mean")
        assert len(means) == 2 and all(-1.0 <= m <= 1.0 for m in means)
    assert len(logged(trainer, "reasoning_judge/reasoning_harm_rate")) == 2
    answer, reasoning = text_judges(trainer)
    assert text_judge(trainer) is answer and answer.judge_answer and not reasoning.judge_answer
    assert reasoning.calls == 2 * 8 and answer.failures == reasoning.failures == 0


def test_resume_from_the_last_checkpoint(base_model, tokenizer, harmful_ds, heads, world, tmp_path):
    first, _ = run(base_model, tokenizer, harmful_ds, heads, world, tmp_path, save_steps=1)
    assert sorted(d for d in os.listdir(tmp_path) if d.startswith("checkpoint-")) == ["checkpoint-1", "checkpoint-2"]
    w_after_2 = {k: v.clone() for k, v in first.model.state_dict().items()}

    def snapshot(step, model):
        return {"same_as_step_2": all(torch.equal(w_after_2[k], v) for k, v in model.state_dict().items())}

    periodic = PeriodicEval(every=1, fn=snapshot, at_end=False)
    second, _ = run(base_model, tokenizer, harmful_ds, heads, world, tmp_path, save_steps=1, steps=3,
                    callbacks=[periodic])
    assert [r["step"] for r in periodic.results] == [2, 3]          # resumed at 2, finished at 3
    assert periodic.results[0]["same_as_step_2"] and not periodic.results[1]["same_as_step_2"]
    assert second.state.global_step == 3 and "checkpoint-3" in os.listdir(tmp_path)
    assert latent_scorer(second).n_captured + latent_scorer(second).n_recomputed == 8   # one step scored


def test_lora_one_step(base_model, tokenizer, harmful_ds, heads, world, tmp_path):
    pytest.importorskip("peft")
    trainer, before = run(base_model, tokenizer, harmful_ds, heads, world, tmp_path, steps=1,
                          use_lora=True, lora_r=4, lora_alpha=8)
    assert type(trainer.model).__name__.startswith("Peft")
    lora = {k: v for k, v in trainer.model.state_dict().items() if "lora_B" in k}
    assert lora and any(v.abs().sum() > 0 for v in lora.values())   # B starts at zero: it trained
    base = {k.replace(".base_layer", ""): v for k, v in trainer.model.get_base_model().state_dict().items()
            if "lora_" not in k}
    assert base.keys() == before.keys() and all(torch.equal(before[k], v) for k, v in base.items())  # frozen
    assert latent_scorer(trainer).n_captured > 0                     # captured through the peft wrapper too


def test_periodic_eval_restores_mode_and_rng():
    def evaluate(step, model):
        model.eval()
        torch.manual_seed(1234)          # seeded evaluation sampling must not leak into training
        random.seed(99)
        return {"loss": float(step)}

    model, periodic = torch.nn.Linear(2, 2).train(), PeriodicEval(every=5, fn=evaluate)
    torch.manual_seed(0)
    random.seed(0)
    expected_torch, expected_py = torch.rand(3), random.random()
    torch.manual_seed(0)
    random.seed(0)
    periodic._run(5, model)
    periodic._run(5, model)                                          # same step twice: once
    assert model.training and periodic.results == [{"step": 5, "loss": 5.0}]
    assert torch.equal(torch.rand(3), expected_torch) and random.random() == expected_py
    with pytest.raises(ValueError):
        PeriodicEval(every=0, fn=evaluate)
