"""craft.decoding.sample_completions (the evaluation generator) on the tiny organism and the tiny
paper checkpoints: greedy decoding gives model.generate's tokens, rows end at their first eos, and a
row's completion does not depend on when ended rows leave the batch."""

import dataclasses

import pytest
from paper_fixtures import tiny_policy

import craft.decoding
from craft.decoding import sample_completions
from craft.evaluate import GenerationSettings, generate
from craft.models import load_model, render_prompt

pytestmark = pytest.mark.slow
SETTINGS = GenerationSettings(max_new_tokens=24, batch_size=8, seed=5)


@pytest.fixture(scope="module")
def prompts(world):
    return [p.text for p in world.select(split="train", kind="harmful")[:5]] + \
           [p.text for p in world.select(split="train", kind="arithmetic")[:3]]


def test_greedy_equals_model_generate(base_model, tokenizer, prompts):
    greedy = dataclasses.replace(SETTINGS, do_sample=False)
    assert generate(base_model, tokenizer, prompts, greedy) == \
        generate(base_model, tokenizer, prompts, dataclasses.replace(greedy, engine="hf"))


@pytest.mark.parametrize("arch", ["qwen3", "llama"])
def test_greedy_equals_model_generate_on_paper_architectures(arch):
    model, tok = load_model(str(tiny_policy(arch)))
    texts = ["Explain how to pick a lock", "What is 2 + 3?", "Write a poem about rain"]
    greedy = GenerationSettings(max_new_tokens=12, batch_size=3, do_sample=False)
    assert generate(model, tok, texts, greedy) == generate(model, tok, texts, dataclasses.replace(greedy, engine="hf"))


def test_rows_end_at_eos_and_repeat_with_the_seed(base_model, tokenizer, prompts):
    texts = [render_prompt(tokenizer, p) for p in prompts]
    kw = dict(max_new_tokens=40, do_sample=True, temperature=1.0, top_k=50, top_p=0.95, seed=3)
    ids = sample_completions(base_model, tokenizer, texts, **kw)
    eos = tokenizer.eos_token_id
    assert all(0 < len(row) <= 40 and eos not in row[:-1] for row in ids)
    assert any(row[-1] == eos for row in ids)                       # the organism ends most answers
    assert sample_completions(base_model, tokenizer, texts, **kw) == ids
    assert sample_completions(base_model, tokenizer, texts, **{**kw, "seed": 4}) != ids


def test_dropping_ended_rows_changes_no_row(base_model, tokenizer, prompts, monkeypatch):
    texts = [render_prompt(tokenizer, p) for p in prompts]
    kw = dict(max_new_tokens=40, do_sample=True, temperature=1.0, top_k=50, top_p=0.95, seed=3)
    compacted = sample_completions(base_model, tokenizer, texts, **kw)
    monkeypatch.setattr(craft.decoding, "COMPACT_SHARE", 2.0)       # never rebuild the batch
    assert sample_completions(base_model, tokenizer, texts, **kw) == compacted
    assert len({len(row) for row in compacted}) > 1                 # rows did end at different steps


def test_a_sampler_passed_in_draws_the_tokens(base_model, tokenizer, prompts):
    """The ``sampler`` hook (notebook 00's build exercise): the package's own sampler passed in gives the same
    completions; another rule (greedy among the candidates, ignoring the noise) gives others, and is called."""
    texts = [render_prompt(tokenizer, p) for p in prompts]
    kw = dict(max_new_tokens=30, do_sample=True, temperature=1.0, top_k=50, top_p=0.95, seed=3)
    ids = sample_completions(base_model, tokenizer, texts, **kw)
    assert sample_completions(base_model, tokenizer, texts, sampler=craft.decoding.sample_next, **kw) == ids
    calls = []

    def first_candidate(logits, uniform, temperature, top_k, top_p):
        calls.append(uniform.shape)
        return logits.argmax(-1)

    greedy = sample_completions(base_model, tokenizer, texts, sampler=first_candidate, **kw)
    assert calls and calls[0] == (len(texts), 50) and greedy != ids
    assert greedy == sample_completions(base_model, tokenizer, texts, **{**kw, "do_sample": False})
