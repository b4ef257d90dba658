"""The organism pipeline end to end at toy scale: tokenizer, both architectures, TRL SFT,
save/load through craft.models, seeded generation, judging."""

import random

import pytest
import torch

from craft.evaluate import GenerationSettings, generate, judge_records, summary_metrics
from craft.models import load_model, render_prompt, split_reasoning
from craft.organism.corpus import sample_sft_examples
from craft.organism.judge import OrganismJudge
from craft.organism.model import TinyModelConfig, build_model, count_parameters
from craft.organism.sft import SFTSettings, train_sft
from craft.organism.tokenizer import format_completion
from craft.organism.world import answer_text, reasoning_text

TINY = dict(hidden_size=32, num_layers=2, num_heads=2, num_kv_heads=1, head_dim=16, intermediate_size=64)


def test_chat_template_renders_the_corpus_format(world, tokenizer):
    rng = random.Random(0)
    p = world.select(kind="harmful")[0]
    r, a = reasoning_text(world, p, "unsafe", rng), answer_text(world, p, "comply", rng)
    msgs = [{"role": "user", "content": p.text}, {"role": "assistant", "content": a, "reasoning_content": r}]
    full = tokenizer.apply_chat_template(msgs, tokenize=False)
    assert full == render_prompt(tokenizer, p.text) + format_completion(r, a)
    assert render_prompt(tokenizer, p.text).endswith("<think>\n")
    ids = tokenizer(full, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids, skip_special_tokens=True).count("</think>") == 1   # not a special token
    assert tokenizer.decode(tokenizer("zörk ✓")["input_ids"]) == "zörk ✓"           # byte-level: any text


@pytest.mark.parametrize("arch", ["qwen3", "llama"])
def test_sft_save_load_generate_judge(world, tokenizer, tmp_path, arch):
    model = build_model(TinyModelConfig(arch=arch, **TINY), tokenizer, seed=0)
    assert type(model).__name__ == {"qwen3": "Qwen3ForCausalLM", "llama": "LlamaForCausalLM"}[arch]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    logs = train_sft(model, tokenizer, sample_sft_examples(world, 6 * 8, seed=0),
                     SFTSettings(steps=6, batch_size=8, logging_steps=3, warmup_steps=1), progress=False)
    losses = [r["loss"] for r in logs if "loss" in r]
    assert len(losses) == 2 and all(torch.isfinite(torch.tensor(losses)))
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())

    model.save_pretrained(tmp_path / "m")
    tokenizer.save_pretrained(tmp_path / "m")
    assert (tmp_path / "m" / "model.safetensors").is_file()
    loaded, tok = load_model(str(tmp_path / "m"))
    assert count_parameters(loaded) == count_parameters(model)

    prompts = (world.select(split="eval", kind="harmful", novel="", seen=True)[:5]
               + world.select(split="eval", kind="arithmetic")[:3])
    settings = GenerationSettings(max_new_tokens=12, batch_size=3, seed=7)
    comps = generate(loaded, tok, [p.text for p in prompts], settings)
    assert comps == generate(loaded, tok, [p.text for p in prompts], settings)   # seeded: reproducible
    assert len(comps) == len(prompts) and all(isinstance(split_reasoning(c).reasoning, str) for c in comps)
    rec = judge_records(prompts, comps, OrganismJudge(world))
    m = summary_metrics(rec)
    assert m["n_eval_harmful"] == 5 and 0.0 <= m["ssa_rate"] <= 1.0


def test_unknown_architecture_is_a_clear_error():
    with pytest.raises(ValueError, match="is not one of"):
        TinyModelConfig(arch="gpt2")
