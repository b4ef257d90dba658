"""Save/load round trip of craft.models.load_model with tiny, locally built models (offline)."""

import time

import huggingface_hub.constants
import pytest
import torch
from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers
from transformers import (
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
    Qwen3Config,
    Qwen3ForCausalLM,
)

from craft.models import ModelLoadError, load_model, render_prompt, split_reasoning

CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n<think>\\n' }}{%- endif %}"
)
WORDS = ["[UNK]", "hello", "world", "how", "do", "i", "help", "no", "user", "assistant", "system", "\n"]


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """No network in these tests; huggingface_hub reads the env var at import, so patch both."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.add_special_tokens(["<|im_start|>", "<|im_end|>", "<|endoftext|>"])
    # Think tags are ordinary (non-special) tokens, as in Qwen3/R1 vocabularies.
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in ("<think>", "</think>")])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    fast.chat_template = CHAT_TEMPLATE
    return fast


def tiny_model(cls_name: str, vocab: int):
    common = dict(
        vocab_size=vocab, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, head_dim=8, intermediate_size=64, max_position_embeddings=64,
    )
    torch.manual_seed(0)
    if cls_name == "Qwen3ForCausalLM":
        return Qwen3ForCausalLM(Qwen3Config(**common))
    return LlamaForCausalLM(LlamaConfig(**common))


@pytest.mark.parametrize("cls_name", ["Qwen3ForCausalLM", "LlamaForCausalLM"])
def test_round_trip(tmp_path, cls_name):
    tok = tiny_tokenizer()
    model = tiny_model(cls_name, len(tok)).eval()
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()

    loaded, loaded_tok = load_model(str(tmp_path))
    assert type(loaded).__name__ == cls_name
    assert not loaded.training
    assert next(loaded.parameters()).dtype == torch.float32
    assert loaded_tok.pad_token == "<|endoftext|>"

    prompt = render_prompt(loaded_tok, "how do i help", system="hello")
    assert prompt.endswith("<think>\n")
    assert prompt.startswith("<|im_start|>system\nhello<|im_end|>\n")
    ids = loaded_tok(prompt, return_tensors="pt").input_ids
    think_id = loaded_tok.convert_tokens_to_ids("<think>")
    assert ids[0, -1].item() == think_id  # tag is one token, not split into pieces
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids).logits, model(ids).logits)


def test_bfloat16_and_pad_fallback(tmp_path):
    tok = tiny_tokenizer()
    tok.pad_token = None
    tiny_model("Qwen3ForCausalLM", len(tok)).save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    model, loaded_tok = load_model(str(tmp_path), dtype="bfloat16")
    assert next(model.parameters()).dtype == torch.bfloat16
    assert loaded_tok.pad_token == loaded_tok.eos_token == "<|im_end|>"


def test_decoded_generation_splits(tmp_path):
    tok = tiny_tokenizer()
    ids = tok("hello world </think> no <|im_end|> help").input_ids
    text = tok.decode(ids, skip_special_tokens=False)
    out = split_reasoning(text)
    assert out.closed and out.reasoning == "hello world" and out.answer == "no"


def test_bad_dtype_raises_before_loading(tmp_path):
    with pytest.raises(ValueError, match="float32"):
        load_model(str(tmp_path / "nowhere"), dtype="fp8")


@pytest.mark.parametrize("rel", ["missing_model", "./missing_model"])
def test_missing_local_path(tmp_path, monkeypatch, rel):
    monkeypatch.chdir(tmp_path)
    path = str(tmp_path / rel) if rel == "missing_model" else rel
    with pytest.raises(ModelLoadError, match="missing_model"):
        load_model(path)


def test_hub_id_offline_fails_fast(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no local directory can shadow the id
    hub_id = "craft-tests-nonexistent/tiny-model-404"
    start = time.monotonic()
    with pytest.raises(ModelLoadError) as err:
        load_model(hub_id)
    assert time.monotonic() - start < 10
    msg = str(err.value)
    assert hub_id in msg and "hub is unreachable" in msg and f"hf download {hub_id}" in msg
    assert err.value.__cause__ is not None


def test_incomplete_local_dir(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="not a complete"):
        load_model(str(tmp_path / "empty"))
