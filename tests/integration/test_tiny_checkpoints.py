"""craft.testing.tiny: tiny random-init checkpoints of the paper's architectures go through the paper-scale
path (load_model on a directory, the real chat formats, think tags, generate), and the paper
shapes have the paper models' parameter counts."""

import os

import pytest
import torch
from transformers import AutoModelForCausalLM, LlamaForCausalLM, Qwen3ForCausalLM

from craft.models import load_model, render_prompt, split_reasoning
from craft.testing.tiny import build_tiny_checkpoint, build_tokenizer, paper_shape_config

os.environ.setdefault("HF_HUB_OFFLINE", "1")

# arch -> (model class, what the generation prompt ends with, end-of-turn token)
CASES = {
    "qwen3": (Qwen3ForCausalLM, "<|im_end|>\n<|im_start|>assistant\n<think>\n", "<|im_end|>"),
    "llama": (LlamaForCausalLM, "<｜User｜>hi<｜Assistant｜><think>\n", "<｜end▁of▁sentence｜>"),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def checkpoint(request, tmp_path_factory):
    arch = request.param
    path = build_tiny_checkpoint(tmp_path_factory.mktemp(arch) / "ckpt", arch=arch, seed=0)
    model, tok = load_model(str(path))
    return arch, path, model, tok


def test_loads_as_the_paper_architecture(checkpoint):
    arch, path, model, tok = checkpoint
    assert type(model) is CASES[arch][0]
    assert (path / "model.safetensors").is_file() and model.config.vocab_size == len(tok)
    assert model.config.tie_word_embeddings == (arch == "qwen3")   # as in Qwen3-4B / Llama-3.1-8B
    assert tok.eos_token == CASES[arch][2] and tok.pad_token_id is not None


def test_prompt_has_system_text_and_opens_the_think_block(checkpoint):
    arch, _, _, tok = checkpoint
    text = render_prompt(tok, "hi", system="be safe")
    assert "be safe" in text and text.endswith(CASES[arch][1])
    if arch == "qwen3":
        assert text.startswith("<|im_start|>system\nbe safe<|im_end|>\n<|im_start|>user\nhi")
    else:
        assert text.startswith("<｜begin▁of▁sentence｜>be safe<｜User｜>")
        ids = tok(text, add_special_tokens=False)["input_ids"]
        assert ids.count(tok.bos_token_id) == 1                  # the template's bos, once


def test_think_tags_are_single_tokens_that_survive_skip_special(checkpoint):
    arch, _, _, tok = checkpoint
    eos = CASES[arch][2]
    for tag in ("<think>", "</think>"):
        assert len(tok(tag, add_special_tokens=False)["input_ids"]) == 1
    text = "step one</think>\n\nanswer ünïcödé 🙂" + eos
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == text                                # byte-level: any text round-trips
    assert tok.decode(ids, skip_special_tokens=True) == text[: -len(eos)]


def test_split_reasoning_of_a_synthetic_completion(checkpoint):
    arch, _, _, _ = checkpoint
    split = split_reasoning("step one</think>\n\nanswer" + CASES[arch][2] + "junk</think>")
    assert (split.reasoning, split.answer, split.closed) == ("step one", "answer", True)


def test_short_generate(checkpoint):
    _, _, model, tok = checkpoint
    enc = tok(render_prompt(tok, "hi"), return_tensors="pt", add_special_tokens=False)
    out = model.generate(**enc, max_new_tokens=4, do_sample=False)
    new = out[0, enc["input_ids"].shape[1]:]                     # (n_new,), n_new <= 4 (eos may stop it)
    assert 1 <= len(new) <= 4 and int(new.max()) < len(tok)
    assert isinstance(tok.decode(new, skip_special_tokens=True), str)


def test_same_seed_same_weights_other_seed_other_weights(tmp_path):
    paths = [build_tiny_checkpoint(tmp_path / name, arch="llama", seed=seed, num_layers=1)
             for name, seed in (("a", 0), ("b", 0), ("c", 1))]
    blobs = [(p / "model.safetensors").read_bytes() for p in paths]
    assert blobs[0] == blobs[1] and blobs[0] != blobs[2]
    assert (paths[0] / "tokenizer.json").read_bytes() == (paths[1] / "tokenizer.json").read_bytes()


def test_unknown_choices_raise():
    with pytest.raises(ValueError, match="qwen3-4b"):
        paper_shape_config("qwen3-8b")
    with pytest.raises(ValueError, match="r1-distill"):
        build_tokenizer("chatml")


@pytest.mark.parametrize("name, cls, n_params", [("qwen3-4b", Qwen3ForCausalLM, 4.02e9),
                                                  ("llama-8b", LlamaForCausalLM, 8.03e9)])
def test_paper_shapes_have_the_paper_parameter_counts(name, cls, n_params):
    cfg = paper_shape_config(name)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(cfg)
    assert type(model) is cls
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(n_params, rel=0.01)
