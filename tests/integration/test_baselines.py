"""craft.baselines at toy scale (paper §6 baselines): the off-policy safe-trace SFT data and the
intervened preference pairs judged by the organism's exact judge, their rendering through the chat
template, a few TRL SFT and DPO steps on the tiny policy, and resume after an interruption."""

import copy
import os
from collections import Counter

import datasets.utils.logging
import pytest
import torch
from transformers import TrainerCallback

from craft.baselines import (
    DPOBaselineConfig,
    SFTBaselineConfig,
    dpo_trainer,
    sft_trainer,
    train_dpo,
    train_sft,
)
from craft.judges import is_refusal
from craft.models import render_prompt
from craft.organism.baselines_data import intervened_pairs, offpolicy_sft_examples
from craft.organism.judge import OrganismJudge
from craft.organism.tokenizer import format_completion
from craft.runs import train

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# TRL still calls the deprecated transformers name when saving; harmless (spike pitfall P5).
pytestmark = [pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning"),
              pytest.mark.slow]

FAST = dict(steps=3, per_device_train_batch_size=4, learning_rate=1e-3, logging_steps=1, save_steps=100,
            warmup_steps=0)


@pytest.fixture(scope="module")
def sft_ds(world):
    return offpolicy_sft_examples(world, 300, seed=0)


@pytest.fixture(scope="module")
def pairs(world):
    return intervened_pairs(world, 120, seed=0)


def text_of(message: dict) -> tuple[str, str]:
    return message["reasoning_content"], message["content"]


def weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_offpolicy_sft_is_safe_direct_only_and_keeps_benign_data(world, sft_ds):
    judge = OrganismJudge(world)
    train_texts = {p.text for p in world.select(split="train")}
    seen_texts = {p.text for p in world.select(split="train", kind="harmful", seen=True)}
    harmful = [r for r in sft_ds if r["trace"] != "helpful"]
    for r in harmful:
        reasoning, answer = text_of(r["completion"][0])
        assert judge.harmfulness(reasoning) == 0.0 and judge.harmfulness(answer) == 0.0
        assert r["trace"] == "safe" and r["response"] == "refuse" and is_refusal(answer)
        assert r["prompt"][0]["content"] in seen_texts                  # no unseen hazard
    # Off-policy: only direct requests; the wrapped families it is evaluated on never appear.
    assert set(Counter(r["family"] for r in sft_ds)) == {"direct", "arithmetic", "benign", "recipe"}
    assert all(r["prompt"][0]["content"] in train_texts for r in sft_ds)
    assert 0.25 < len(harmful) / len(sft_ds) < 0.45                    # mixture: 0.35 harmful
    benign = [r for r in sft_ds if r["trace"] == "helpful"]
    assert benign and not any(is_refusal(text_of(r["completion"][0])[1]) for r in benign)
    again = offpolicy_sft_examples(world, 20, seed=3)["completion"]
    assert offpolicy_sft_examples(world, 20, seed=3)["completion"] == again


def test_completion_renders_as_the_model_generates_it(tokenizer, sft_ds, pairs):
    """The template renders prompt + completion as render_prompt + format_completion, and the
    prompt's tokens are a prefix: TRL trains on exactly tokenize(format_completion(...))."""
    rows = [(r["prompt"], r["completion"]) for r in sft_ds.select(range(40))]
    rows += [(r["prompt"], r[side]) for r in pairs.select(range(10)) for side in ("chosen", "rejected")]
    for prompt, completion in rows:
        full = tokenizer.apply_chat_template(prompt + completion, tokenize=False)
        head, tail = render_prompt(tokenizer, prompt[0]["content"]), format_completion(*text_of(completion[0]))
        assert full == head + tail
        ids = lambda s: tokenizer(s, add_special_tokens=False)["input_ids"]  # noqa: E731
        assert ids(head) + ids(tail) == ids(full)


def test_intervened_pairs_cut_the_original_at_its_first_unsafe_step(world, pairs):
    judge = OrganismJudge(world)
    seen_texts = {p.text for p in world.select(split="train", kind="harmful", seen=True)}
    for r in pairs:
        (good_r, good_a), (bad_r, bad_a) = text_of(r["chosen"][0]), text_of(r["rejected"][0])
        assert r["prompt"][0]["content"] in seen_texts
        assert judge.is_harmful(bad_r)                                  # the original: unsafe reasoning
        assert judge.harmfulness(good_r) == 0.0 and judge.harmfulness(good_a) == 0.0 and is_refusal(good_a)
        # the intervened trace keeps every word of the original and runs its steps at falling levels
        assert [w for w in good_r.split() if not w.isdigit()] == [w for w in bad_r.split() if not w.isdigit()]
        assert is_refusal(bad_a) == (r["rejected_response"] == "refuse")
    kinds = Counter((r["regime"], r["rejected_trace"], r["rejected_response"]) for r in pairs)
    assert {k[0] for k in kinds} == {"direct", "jailbroken", "dressed"}
    assert all(trace == "dressed" and resp == "refuse" for reg, trace, resp in kinds if reg == "dressed")
    ssa = sum(n for (_, _, resp), n in kinds.items() if resp == "refuse")
    assert ssa / len(pairs) > 0.4                  # most originals refuse: SSA, not jailbreaks


def test_intervene_keeps_every_word_and_makes_the_levels_fall(world):
    import random as _random

    from craft.organism.baselines_data import intervene
    from craft.organism.judge import OrganismJudge
    from craft.organism.world import reasoning_text

    judge, rng = OrganismJudge(world), _random.Random(0)
    p = world.select(kind="harmful", regime="dressed", split="train")[0]
    for trace in ("unsafe", "dressed"):
        bad = reasoning_text(world, p, trace, rng)
        good = intervene(world, bad, p.hazard, rng)
        assert judge.asked(bad, p.text) == 1.0 and judge.asked(good, p.text) == 0.0
        assert [w for w in good.split() if not w.isdigit()] == [w for w in bad.split() if not w.isdigit()]
        assert good[:bad.index("level")] == bad[:bad.index("level")]


def test_sft_steps_train_on_the_completion_only(base_model, tokenizer, sft_ds, tmp_path):
    model = copy.deepcopy(base_model)
    before = weights(model)
    trainer = sft_trainer(model, tokenizer, sft_ds, SFTBaselineConfig(**FAST), str(tmp_path))
    rows = {tuple(r["input_ids"]): r for r in trainer.train_dataset}
    batch = next(iter(trainer.get_train_dataloader()))                  # the collator TRL trains with
    for ids, labels, mask in zip(batch["input_ids"], batch["labels"], batch["attention_mask"]):
        n = int(mask.sum())
        ids, labels = ids[:n].tolist(), labels[:n].tolist()
        row = rows[tuple(ids)]
        k = len(tokenizer(render_prompt(tokenizer, row["prompt"][0]["content"]))["input_ids"])
        assert labels[:k] == [-100] * k and labels[k:] == ids[k:]      # prompt masked, completion trained
        full = tokenizer(render_prompt(tokenizer, row["prompt"][0]["content"])
                         + format_completion(*text_of(row["completion"][0])))["input_ids"]
        assert ids == full[:trainer.args.max_length]                    # cut at max_length, never elsewhere
    assert trainer.args.train_sampling_strategy == "random" and not trainer.args.bf16
    train(trainer, resume=False)
    assert trainer.state.global_step == 3 and not same(before, weights(model))
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert len(losses) == 3 and all(torch.isfinite(torch.tensor(losses)))


def test_preference_steps_move_the_policy_and_keep_the_reference(base_model, tokenizer, pairs, tmp_path):
    model = copy.deepcopy(base_model)
    before = weights(model)
    cfg = DPOBaselineConfig(**FAST)
    trainer = dpo_trainer(model, tokenizer, pairs, cfg, str(tmp_path))
    assert trainer.args.loss_type == ["sigmoid"] and trainer.args.beta == cfg.beta
    assert dpo_trainer(copy.deepcopy(base_model), tokenizer, pairs, DPOBaselineConfig(**FAST, loss_type="ipo"),
                       str(tmp_path / "ipo")).args.loss_type == ["ipo"]   # the IPO loss, labelled as such
    assert trainer.ref_model is not model and not any(p.requires_grad for p in trainer.ref_model.parameters())
    train(trainer, resume=False)
    assert trainer.state.global_step == 3 and not same(before, weights(model))
    assert same(before, weights(trainer.ref_model))                     # the reference never moves
    logs = [h for h in trainer.state.log_history if "rewards/margins" in h]
    assert len(logs) == 3 and all("rewards/chosen" in h and "loss" in h for h in logs)
    assert logs[0]["rewards/margins"] == pytest.approx(0.0, abs=1e-5)   # step 1: policy == reference
    assert logs[-1]["rewards/margins"] != logs[0]["rewards/margins"]


class InterruptAfterSave(TrainerCallback):
    """Raise KeyboardInterrupt once the checkpoint of step ``at`` is on disk."""

    def __init__(self, at: int):
        self.at = at

    def on_save(self, args, state, control, **kwargs):
        if state.global_step == self.at:
            raise KeyboardInterrupt


class Record(TrainerCallback):
    def __init__(self):
        self.start, self.steps, self.start_weights = None, [], None

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.start, self.start_weights = state.global_step, weights(model)

    def on_step_end(self, args, state, control, **kwargs):
        self.steps.append(state.global_step)


@pytest.mark.parametrize("kind", ["sft", "dpo"])
def test_resume_after_an_interruption(kind, base_model, tokenizer, sft_ds, pairs, tmp_path, capfd):
    fn, ds, cfg = ((train_sft, sft_ds, SFTBaselineConfig(**{**FAST, "save_steps": 1})) if kind == "sft" else
                   (train_dpo, pairs, DPOBaselineConfig(**{**FAST, "save_steps": 1})))
    first, bars = copy.deepcopy(base_model), datasets.utils.logging.is_progress_bar_enabled()
    capfd.readouterr()
    with pytest.raises(KeyboardInterrupt):
        fn(first, tokenizer, ds, cfg, str(tmp_path), callbacks=[InterruptAfterSave(2)])
    assert sorted(d for d in os.listdir(tmp_path) if d.startswith("checkpoint-")) == ["checkpoint-1", "checkpoint-2"]
    record = Record()
    model = fn(copy.deepcopy(base_model), tokenizer, ds, cfg, str(tmp_path), callbacks=[record])
    assert record.start == 2 and record.steps == [3]                    # continued from step 2, ran step 3
    assert same(record.start_weights, weights(first))                   # the weights of checkpoint-2
    assert "checkpoint-3" in os.listdir(tmp_path) and not same(weights(first), weights(model))
    out, err = capfd.readouterr()
    assert out == "" and "it/s" not in err                              # no log lines, no progress bars
    assert datasets.utils.logging.is_progress_bar_enabled() == bars     # and the bar setting is restored
