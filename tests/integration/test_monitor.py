"""craft.monitor: p_z of every generated token from the states generate computed, the stop and the
refusal it can trigger, left padding, the capture the R2L reward reads, and clear errors when the
heads do not fit the model. On the tiny organism and on the tiny Qwen3 / Llama checkpoints."""

import dataclasses

import pytest
import torch
from paper_fixtures import tiny_policy

from craft.evaluate import GenerationSettings, generate, generate_batches
from craft.latents import LatentCapture, captured_latents, close_token_id, layer_states
from craft.lclr import LCLRConfig, LCLRHeads
from craft.models import load_model, split_reasoning
from craft.monitor import check_heads, monitored_generate

pytestmark = pytest.mark.slow
SETTINGS = GenerationSettings(max_new_tokens=24, batch_size=4, seed=3, engine="hf")   # the monitor: model.generate


def layer_heads(width: int, layer: int = 1, pool: str = "mean") -> LCLRHeads:
    """Random-init heads that record the latent they read (as heads saved by the LCLR stage do)."""
    return LCLRHeads(LCLRConfig(d_model=width, layer=layer, pool=pool, proj_hidden=32, proj_dim=16)).eval()


@pytest.fixture(scope="module")
def prompts(world):
    return [p.text for p in world.select(split="train", kind="harmful")[:6]] + \
           [p.text for p in world.select(split="train", kind="arithmetic")[:2]]


def completion_ids(model, tok, prompts, settings):
    """(prompt ids, completion ids up to the first eos) per prompt, from the same batches and seeds."""
    out = []
    for enc, seq, _, _ in generate_batches(model, tok, prompts, settings):
        P = enc["input_ids"].shape[1]
        for ids, mask, row in zip(enc["input_ids"], enc["attention_mask"], seq[:, P:]):
            row = row.tolist()
            end = next((i + 1 for i, t in enumerate(row) if t == tok.eos_token_id), len(row))
            out.append((ids[mask.bool()].tolist(), row[:end]))
    return out


@pytest.mark.parametrize("pool", ["mean", "last"])
def test_streamed_p_z_is_the_latent_of_each_prefix(base_model, tokenizer, prompts, pool):
    heads = layer_heads(base_model.config.hidden_size, pool=pool)
    mon = monitored_generate(base_model, tokenizer, prompts, heads, SETTINGS)
    assert mon.completions == generate(base_model, tokenizer, prompts, SETTINGS)   # reading changes nothing
    close = close_token_id(tokenizer)
    checked = 0
    for (p_ids, c_ids), traj in zip(completion_ids(base_model, tokenizer, prompts, SETTINGS), mon.p_z):
        n_reason = next((i for i, t in enumerate(c_ids) if t in (close, tokenizer.eos_token_id)), len(c_ids))
        assert len(traj) == min(n_reason, len(c_ids) - 1)                 # the last token is never fed back
        for k in range(len(traj)):
            with torch.no_grad():
                h = layer_states(base_model, torch.tensor([p_ids + c_ids[:k + 1]]),
                                 torch.ones(1, len(p_ids) + k + 1, dtype=torch.long), 1)[0, len(p_ids):]
            z = h.mean(0) if pool == "mean" else h[-1]
            assert traj[k] == pytest.approx(heads.p_safe(z[None]).item(), abs=1e-5)
            checked += 1
    assert checked > 20


def test_stop_cuts_at_the_alarm_and_leaves_the_other_rows_alone(base_model, tokenizer, prompts):
    heads = layer_heads(base_model.config.hidden_size)
    free = monitored_generate(base_model, tokenizer, prompts, heads, SETTINGS)
    lows = sorted(min(t) for t in free.p_z if t)
    threshold = (lows[len(lows) // 2 - 1] + lows[len(lows) // 2]) / 2     # some rows alarm, some do not
    record = monitored_generate(base_model, tokenizer, prompts, heads, SETTINGS, threshold=threshold)
    stopped = monitored_generate(base_model, tokenizer, prompts, heads, SETTINGS, threshold=threshold, action="stop")
    assert record.completions == free.completions and record.alarm == stopped.alarm
    assert 0 < sum(a >= 0 for a in stopped.alarm) < len(prompts)
    ids = completion_ids(base_model, tokenizer, prompts, SETTINGS)
    for (_, c_ids), a, text, before in zip(ids, stopped.alarm, stopped.completions, free.completions):
        if a < 0:
            assert text == before
        else:
            assert text == tokenizer.decode(c_ids[:a], skip_special_tokens=True)
    refused = monitored_generate(base_model, tokenizer, prompts, heads, SETTINGS, threshold=threshold,
                                 action="refuse", refusal="i can not help with that .")
    for a, text, raw in zip(refused.alarm, refused.completions, refused.raw):
        if a >= 0:
            assert split_reasoning(text).answer == "i can not help with that ." and split_reasoning(text).closed
        else:
            assert text == raw


def test_alarm_is_the_first_token_at_or_below_the_threshold(base_model, tokenizer, prompts):
    heads = layer_heads(base_model.config.hidden_size)
    free = monitored_generate(base_model, tokenizer, prompts, heads, SETTINGS)
    threshold = sorted(v for t in free.p_z for v in t)[len(free.p_z)]
    record = monitored_generate(base_model, tokenizer, prompts, heads, SETTINGS, threshold=threshold, min_tokens=2)
    for traj, a in zip(free.p_z, record.alarm):
        hits = [k for k, v in enumerate(traj) if v <= threshold and k + 1 >= 2]
        assert a == (hits[0] + 2 if hits else -1)      # fired on token k's state, effective after token k + 1


def test_left_padding_gives_the_same_p_z_as_one_prompt_at_a_time(base_model, tokenizer, prompts):
    heads = layer_heads(base_model.config.hidden_size)
    greedy = dataclasses.replace(SETTINGS, do_sample=False)
    batched = monitored_generate(base_model, tokenizer, prompts, heads, greedy)
    alone = monitored_generate(base_model, tokenizer, prompts, heads, dataclasses.replace(greedy, batch_size=1))
    assert batched.completions == alone.completions
    for a, b in zip(batched.p_z, alone.p_z):
        assert a == pytest.approx(b, abs=1e-5)


def test_captured_latents_equal_a_second_forward(base_model, tokenizer, prompts):
    close, spec_layer = close_token_id(tokenizer), 1
    for enc, seq, capture, _ in generate_batches(base_model, tokenizer, prompts, SETTINGS,
                                                 per_batch=lambda enc: (LatentCapture(base_model, spec_layer), {})):
        P = enc["input_ids"].shape[1]
        done = torch.ones_like(seq[:, P:])
        for b, row in enumerate(seq[:, P:].tolist()):
            if tokenizer.eos_token_id in row:
                done[b, row.index(tokenizer.eos_token_id) + 1:] = 0
        mask = torch.cat([enc["attention_mask"], done], 1)
        z = captured_latents(capture.states(), seq, mask, P, close, "mean")
        ok = z.isfinite().all(-1)
        assert ok.any()
        with torch.no_grad():
            h = layer_states(base_model, seq, mask, spec_layer)
        from craft.latents import pool_states, reasoning_span_mask
        span = reasoning_span_mask(seq, mask, enc["attention_mask"].sum(-1), close)
        ref = pool_states(h, span, "mean", mask)
        torch.testing.assert_close(z[ok], ref[ok], atol=1e-5, rtol=0)
        last_needed = span[:, -1] | ~span.any(-1)          # rows whose latent reads the unfed last token
        assert torch.equal(~ok, last_needed)


def test_heads_that_do_not_fit_the_model_are_refused(base_model, tokenizer, prompts):
    width, n_layers = base_model.config.hidden_size, base_model.config.num_hidden_layers
    with pytest.raises(ValueError, match="width"):
        monitored_generate(base_model, tokenizer, prompts, layer_heads(width + 8), SETTINGS)
    with pytest.raises(ValueError, match="layers"):
        check_heads(layer_heads(width, layer=n_layers + 1), base_model)
    with pytest.raises(ValueError, match="do not record the layer"):
        check_heads(LCLRHeads(LCLRConfig(d_model=width, proj_hidden=8, proj_dim=4)), base_model)
    with pytest.raises(ValueError, match="action"):
        monitored_generate(base_model, tokenizer, prompts, layer_heads(width), SETTINGS, action="halt")
    with pytest.raises(ValueError, match="threshold"):
        monitored_generate(base_model, tokenizer, prompts, layer_heads(width), SETTINGS, action="stop")


@pytest.mark.parametrize("arch", ["qwen3", "llama"])
def test_paper_architectures_stream_and_stop(arch):
    model, tok = load_model(str(tiny_policy(arch)))
    heads = layer_heads(model.config.hidden_size, layer=model.config.num_hidden_layers)   # the final normed layer
    prompts = ["Explain how to pick a lock", "What is 2 + 3?", "Write a poem about rain"]
    settings = GenerationSettings(max_new_tokens=12, batch_size=3, seed=0, engine="hf")
    free = monitored_generate(model, tok, prompts, heads, settings)
    assert free.completions == generate(model, tok, prompts, settings)
    assert all(len(t) > 0 for t in free.p_z) and all(0.0 <= v <= 1.0 for t in free.p_z for v in t)
    stopped = monitored_generate(model, tok, prompts, heads, settings, threshold=1.0, action="stop")
    assert stopped.alarm == [2, 2, 2]                  # p_z <= 1 always: the first state alarms every row
    assert all(n <= 2 for n in stopped.n_tokens)
