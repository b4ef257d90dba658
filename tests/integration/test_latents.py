"""craft.latents: the one hidden-state definition, checked against a plain full forward on tiny
random Qwen3 and Llama models, for both padding sides, both pools and several layers."""

import pytest
import torch

from craft.latents import (
    CLOSE_TAG,
    LatentSpec,
    TraceBatch,
    encode_traces,
    latents,
    layer_states,
    pool_states,
    reasoning_span_mask,
    trace_latents,
    trace_latents_by_layer,
    trace_latents_by_pool,
    trace_token_states,
)
from craft.models import render_prompt
from craft.organism.corpus import sample_sft_examples
from craft.organism.model import TinyModelConfig, build_model
from craft.organism.tokenizer import train_tokenizer
from craft.organism.world import build_world

N_LAYERS = 4
TINY = dict(hidden_size=32, num_layers=N_LAYERS, num_heads=2, num_kv_heads=1, head_dim=16, intermediate_size=64)
LAYERS = (0, 1, N_LAYERS // 2, N_LAYERS)
ATOL = 1e-5


@pytest.fixture(scope="module")
def examples():
    return sample_sft_examples(build_world(seed=0, n_hazards=4, n_unseen_hazards=1, n_arithmetic=600), 300, seed=0)


@pytest.fixture(scope="module")
def tokenizer(examples):
    return train_tokenizer([f"{e.prompt} {e.reasoning} {e.answer}" for e in examples], vocab_size=400)


@pytest.fixture(scope="module", params=["qwen3", "llama"])
def model(request, tokenizer):
    return build_model(TinyModelConfig(arch=request.param, **TINY), tokenizer, seed=0).eval()


@pytest.fixture(scope="module")
def traces(examples):
    ex = [examples[i] for i in (0, 3, 7, 11, 20)]   # differing lengths, so padding matters
    return [e.prompt for e in ex], [e.reasoning for e in ex], [e.answer for e in ex]


def reference(model, batch, layer, pool):
    """Pooled ``hidden_states[layer]`` of a plain full forward (the definition, computed naively)."""
    pos = (batch.attention_mask.cumsum(-1) - 1).clamp(min=0)
    out = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, position_ids=pos,
                output_hidden_states=True)
    states = out.hidden_states[layer]
    rows = []
    for s, m in zip(states, batch.span_mask):
        span = s[m]
        rows.append(span.mean(0) if pool == "mean" else span[-1])
    return torch.stack(rows)


@pytest.mark.parametrize("padding_side", ["left", "right"])
def test_latents_equal_full_forward_hidden_states(model, tokenizer, traces, padding_side):
    batch = encode_traces(tokenizer, *traces, padding_side=padding_side)
    with torch.no_grad():
        for layer in LAYERS:
            for pool in ("mean", "last"):
                got = latents(model, batch, LatentSpec(layer, pool))
                torch.testing.assert_close(got, reference(model, batch, layer, pool), atol=ATOL, rtol=0)


def test_left_and_right_padding_agree_and_rows_are_independent(model, tokenizer, traces):
    spec = LatentSpec(N_LAYERS // 2, "mean")
    with torch.no_grad():
        left = latents(model, encode_traces(tokenizer, *traces, padding_side="left"), spec)
        right = latents(model, encode_traces(tokenizer, *traces, padding_side="right"), spec)
        alone = torch.cat([latents(model, encode_traces(tokenizer, *([t[i]] for t in traces)), spec)
                           for i in range(len(traces[0]))])
    assert left.shape == (len(traces[0]), TINY["hidden_size"])
    torch.testing.assert_close(left, right, atol=ATOL, rtol=0)
    torch.testing.assert_close(alone, right, atol=ATOL, rtol=0)


def test_batched_encoding_is_each_row_tokenised_on_its_own(tokenizer, traces):
    """One tokenizer call per kind of text gives every row the ids of tokenising it alone: the prompt's
    template, then the tail (repeated prompts, and a reasoning that spells out </think> itself)."""
    prompts, reasonings, answers = (list(t) for t in traces)
    prompts, reasonings, answers = prompts + prompts[:1], reasonings + [f"a {CLOSE_TAG} b"], answers + answers[:1]
    batch = encode_traces(tokenizer, prompts, reasonings, answers)
    for b, (p, r, a) in enumerate(zip(prompts, reasonings, answers)):
        head = tokenizer(render_prompt(tokenizer, p), add_special_tokens=False)["input_ids"]
        tail = tokenizer(f"{r}\n{CLOSE_TAG}\n\n{a}{tokenizer.eos_token}", add_special_tokens=False)["input_ids"]
        n = len(head) + len(tail)
        assert batch.input_ids[b, :n].tolist() == head + tail
        span = batch.span_mask[b].nonzero().squeeze(-1).tolist()
        close = [i for i, t in enumerate(tail) if t == tokenizer.convert_tokens_to_ids(CLOSE_TAG)][r.count(CLOSE_TAG)]
        assert span == list(range(len(head), len(head) + close))
    alone = encode_traces(tokenizer, prompts[:2], reasonings[:2])
    for b in range(2):
        ids = tokenizer(render_prompt(tokenizer, prompts[b]), add_special_tokens=False)["input_ids"]
        ids += tokenizer(reasonings[b], add_special_tokens=False)["input_ids"]
        assert alone.input_ids[b, :len(ids)].tolist() == ids and int(alone.attention_mask[b].sum()) == len(ids)
    assert encode_traces(tokenizer, [], []).input_ids.shape == (0, 0)
    # a list of answers in which some rows have none: those rows are prompt + reasoning, the whole tail the span
    mixed = encode_traces(tokenizer, prompts[:2], reasonings[:2], [None, answers[1]])
    head = tokenizer(render_prompt(tokenizer, prompts[0]), add_special_tokens=False)["input_ids"]
    tail = tokenizer(reasonings[0], add_special_tokens=False)["input_ids"]
    assert mixed.input_ids[0, :len(head) + len(tail)].tolist() == head + tail
    assert mixed.span_mask[0].nonzero().squeeze(-1).tolist() == list(range(len(head), len(head) + len(tail)))
    assert mixed.span_mask[1].nonzero().tolist() == batch.span_mask[1].nonzero().tolist()


@pytest.mark.parametrize("layer", [0, 1, N_LAYERS - 1])
def test_layers_above_the_chosen_one_never_run(model, tokenizer, traces, layer):
    calls = []
    upper = list(model.model.layers[layer:]) + [model.model.norm, model.lm_head]
    handles = [m.register_forward_hook(lambda *_, i=i: calls.append(i)) for i, m in enumerate(upper)]
    try:
        with torch.no_grad():
            latents(model, encode_traces(tokenizer, *traces), LatentSpec(layer))
    finally:
        for h in handles:
            h.remove()
    assert calls == []


def test_last_layer_is_the_post_norm_hidden_state(model, tokenizer, traces):
    batch = encode_traces(tokenizer, *traces)
    pre = []
    h = model.model.layers[-1].register_forward_hook(lambda _m, _a, out: pre.append(out))
    try:
        with torch.no_grad():
            full = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                         position_ids=(batch.attention_mask.cumsum(-1) - 1).clamp(min=0),
                         output_hidden_states=True)
    finally:
        h.remove()
    with torch.no_grad():
        states = layer_states(model, batch.input_ids, batch.attention_mask, N_LAYERS)
    real = batch.attention_mask.bool()
    torch.testing.assert_close(states[real], full.hidden_states[-1][real], atol=ATOL, rtol=0)
    torch.testing.assert_close(states[real], model.model.norm(pre[0])[real], atol=ATOL, rtol=0)
    assert not torch.allclose(states[real], pre[0][real], atol=1e-3)   # the norm really was applied


def test_bad_layer_and_pool_raise(model, tokenizer, traces):
    batch = encode_traces(tokenizer, *traces)
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError):
            LatentSpec(bad)
    with pytest.raises(ValueError, match="mean"):
        LatentSpec(1, "max")
    with pytest.raises(ValueError, match=rf"\[0, {N_LAYERS}\]"):
        latents(model, batch, LatentSpec(N_LAYERS + 1))
    with pytest.raises(ValueError, match=rf"\[0, {N_LAYERS}\]"):
        layer_states(model, batch.input_ids, batch.attention_mask, -1)
    with pytest.raises(ValueError, match="mean"):
        pool_states(torch.zeros(1, 2, 3), torch.ones(1, 2, dtype=torch.bool), "median", torch.ones(1, 2))
    # "max" (prompt-level probes only) is the element-wise max over the span, padding never included
    states = torch.tensor([[[1.0, -5.0], [0.0, 2.0], [9.0, 9.0]]])                    # (1, 3, 2)
    span = torch.tensor([[True, True, False]])
    assert pool_states(states, span, "max", torch.ones(1, 3)).tolist() == [[1.0, 2.0]]


def test_hook_is_removed_after_an_exception(model, tokenizer, traces):
    batch = encode_traces(tokenizer, *traces)
    hooked = (model.model.layers[2], model.model.embed_tokens)
    before = [dict(m._forward_hooks) for m in hooked]   # transformers keeps its own capture hooks
    boom = model.model.layers[0].register_forward_pre_hook(lambda *_: (_ for _ in ()).throw(RuntimeError("boom")))
    try:
        with pytest.raises(RuntimeError, match="boom"):
            layer_states(model, batch.input_ids, batch.attention_mask, 3)
    finally:
        boom.remove()
    assert [dict(m._forward_hooks) for m in hooked] == before
    with torch.no_grad():   # and the model still works normally
        assert latents(model, batch, LatentSpec(3)).isfinite().all()


def test_gradients_flow_below_the_layer_unless_the_caller_disables_them(model, tokenizer, traces):
    batch = encode_traces(tokenizer, *traces)
    model.zero_grad()
    latents(model, batch, LatentSpec(2)).square().sum().backward()
    assert model.model.layers[1].mlp.down_proj.weight.grad is not None
    assert model.model.layers[2].mlp.down_proj.weight.grad is None
    model.zero_grad()


def test_span_is_exactly_the_reasoning_tokens(tokenizer, traces):
    prompts, reasonings, answers = traces
    for ans, tail in ((answers, "\n"), (None, "")):
        batch = encode_traces(tokenizer, prompts, reasonings, ans, padding_side="left")
        for ids, m, r in zip(batch.input_ids, batch.span_mask, reasonings):
            assert tokenizer.decode(ids[m]) == r + tail
            assert m.int().diff().ne(0).sum() <= 2   # one contiguous run


def test_reasoning_span_mask_marks_what_encode_traces_marks(tokenizer, traces):
    close = tokenizer.convert_tokens_to_ids("</think>")
    batch = encode_traces(tokenizer, *traces, padding_side="left")
    single = [encode_traces(tokenizer, [p], [""], None) for p in traces[0]]
    prompt_lengths = torch.tensor([b.attention_mask.sum().item() for b in single])
    got = reasoning_span_mask(batch.input_ids, batch.attention_mask, prompt_lengths, close)
    assert torch.equal(got, batch.span_mask)


def test_reasoning_span_mask_on_hand_built_rows():
    C, P = 9, 0   # close token, pad
    ids = torch.tensor([
        [5, 6, 7, 1, 2, 3, P, P],   # no close: whole completion
        [5, 6, 7, 1, 2, C, 4, 8],   # one close
        [5, 6, 7, 1, C, 2, C, 4],   # two closes: split at the last
        [P, P, 5, 6, 7, 1, C, 4],   # left padding
        [P, 5, 6, 7, 1, C, 4, P],   # left-padded prompt, right-padded completion
        [5, C, 7, 1, 2, P, P, P],   # close inside the prompt is ignored
        [5, 6, 7, C, 4, P, P, P],   # empty reasoning
    ])
    mask = (ids != P).long()
    mask[3, :2] = 0
    span = reasoning_span_mask(ids, mask, torch.tensor([3, 3, 3, 3, 3, 3, 3]), C)
    expected = [[1, 2, 3], [1, 2], [1, C, 2], [1], [1], [1, 2], []]
    assert [ids[b][span[b]].tolist() for b in range(len(ids))] == expected


def test_empty_span_falls_back_to_the_last_attended_token(model, tokenizer, traces):
    states = torch.arange(2 * 4 * 3, dtype=torch.float).view(2, 4, 3)
    span = torch.tensor([[0, 1, 1, 0], [0, 0, 0, 0]], dtype=torch.bool)
    attn = torch.tensor([[1, 1, 1, 1], [0, 1, 1, 0]])
    for pool in ("mean", "last"):
        out = pool_states(states, span, pool, attn)
        torch.testing.assert_close(out[1], states[1, 2])
    torch.testing.assert_close(pool_states(states, span, "mean", attn)[0], states[0, 1:3].mean(0))
    # a prompt-only row (empty reasoning, no answer) reads the last prompt token, for either padding side
    prompts = traces[0][:2]
    for side in ("left", "right"):
        batch = encode_traces(tokenizer, prompts, ["", traces[1][1]], None, padding_side=side)
        assert batch.span_mask[0].sum() == 0
        with torch.no_grad():
            got = latents(model, batch, LatentSpec(2, "mean"))[0]
            s = layer_states(model, batch.input_ids, batch.attention_mask, 2)[0]
        last = batch.attention_mask[0].nonzero().max()
        torch.testing.assert_close(got, s[last], atol=ATOL, rtol=0)


def test_trace_token_states_and_trace_latents(model, tokenizer, traces):
    spec = LatentSpec(2, "mean")
    per_token = trace_token_states(model, tokenizer, *traces, layer=2, batch_size=2)
    batch = encode_traces(tokenizer, *traces)
    assert [t.shape[0] for t in per_token] == batch.span_mask.sum(1).tolist()
    model.train()
    lat = trace_latents(model, tokenizer, *traces, spec, batch_size=2)
    assert model.training   # mode restored
    model.eval()
    assert lat.dtype == torch.float32 and lat.device.type == "cpu"
    torch.testing.assert_close(torch.stack([t.mean(0) for t in per_token]), lat, atol=ATOL, rtol=0)
    with torch.no_grad():
        torch.testing.assert_close(lat, latents(model, batch, spec), atol=ATOL, rtol=0)


def test_several_layers_from_one_forward_equal_one_layer_at_a_time(model, tokenizer, traces):
    """The probe's sweep reads every layer from one forward: the same latents as one call per layer."""
    layers = [0, 1, N_LAYERS]
    calls = []
    handle = model.model.layers[0].register_forward_hook(lambda *_: calls.append(1))
    try:
        by_layer = trace_latents_by_layer(model, tokenizer, *traces, layers, "mean", batch_size=2)
    finally:
        handle.remove()
    assert len(calls) == 3                                  # one forward per batch of 2 (5 traces), not per layer
    for layer in layers:
        torch.testing.assert_close(by_layer[layer], trace_latents(model, tokenizer, *traces, LatentSpec(layer, "mean"),
                                                                  batch_size=2), atol=ATOL, rtol=0)
    with pytest.raises(ValueError, match="layer must be"):
        trace_latents_by_layer(model, tokenizer, *traces, [N_LAYERS + 1], "mean")


def test_every_pool_from_one_forward(model, tokenizer, traces):
    """The probe's controls read mean, last and max side by side from one forward: mean and last equal THE
    latent, max is the element-wise maximum of the span's token states."""
    layers = [0, N_LAYERS]
    calls = []
    handle = model.model.layers[0].register_forward_hook(lambda *_: calls.append(1))
    try:
        z = trace_latents_by_pool(model, tokenizer, *traces, layers, ("mean", "last", "max"), batch_size=5)
    finally:
        handle.remove()
    assert len(calls) == 1 and set(z) == {(p, layer) for p in ("mean", "last", "max") for layer in layers}
    for layer in layers:
        for pool in ("mean", "last"):
            one = trace_latents(model, tokenizer, *traces, LatentSpec(layer, pool))
            torch.testing.assert_close(z[pool, layer], one, atol=ATOL, rtol=0)
        per_token = trace_token_states(model, tokenizer, *traces, layer)
        torch.testing.assert_close(z["max", layer], torch.stack([t.amax(0) for t in per_token]), atol=ATOL, rtol=0)
    with pytest.raises(ValueError, match="unknown pools"):
        trace_latents_by_pool(model, tokenizer, *traces, layers, ("median",))


@pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")  # peft → transformers
def test_peft_wrapped_model(model, tokenizer, traces):
    peft = pytest.importorskip("peft")
    import copy
    cfg = peft.LoraConfig(r=4, target_modules=["q_proj", "v_proj", "down_proj"], init_lora_weights=False)
    wrapped = peft.get_peft_model(copy.deepcopy(model), cfg).eval()
    batch = encode_traces(tokenizer, *traces, padding_side="left")
    with torch.no_grad():
        got = latents(wrapped, batch, LatentSpec(3, "last"))
        plain = latents(model, batch, LatentSpec(3, "last"))
        torch.testing.assert_close(got, reference(wrapped, batch, 3, "last"), atol=ATOL, rtol=0)
    assert not torch.allclose(got, plain, atol=1e-4)   # the LoRA layers were applied


def test_trace_batch_is_a_plain_tuple_of_tensors(tokenizer, traces):
    batch = encode_traces(tokenizer, *traces)
    assert isinstance(batch, TraceBatch) and batch.input_ids.dtype == torch.long
    assert batch.attention_mask.dtype == torch.long and batch.span_mask.dtype == torch.bool
    assert (batch.span_mask <= batch.attention_mask.bool()).all()
