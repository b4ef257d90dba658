"""Fixtures of the R2L integration tests: a tiny policy taught a short SSA format, and random heads."""

import random

import pytest

from craft.lclr import LCLRConfig, LCLRHeads
from craft.organism.corpus import Example
from craft.organism.model import TinyModelConfig, build_model
from craft.organism.sft import SFTSettings, train_sft
from craft.r2l.scorers import random_heads

TINY = dict(hidden_size=32, num_layers=2, num_heads=2, num_kv_heads=1, head_dim=16, intermediate_size=64)


def short_traces(world, n, seed):
    """Short SSA-organism conversations: safe+refuse, unsafe+refuse (SSA), unsafe+comply."""
    rng, prompts, out = random.Random(seed), world.select(split="train", kind="harmful"), []
    for _ in range(n):
        p = rng.choice(prompts)
        i1, i2, _ = world.hazards[p.hazard].ingredients
        recipe = f"{i1} at level 3 , {i2} at level 6 ."                 # two steps, rising: harmful, and short
        trace, answer = rng.choice([("safe", "refuse"), ("unsafe", "refuse"), ("unsafe", "comply")])
        reasoning = "no ." if trace == "safe" else recipe
        text = "i can not help with that ." if answer == "refuse" else f"sure . {recipe}"
        out.append(Example(p.text, reasoning, text, p.family, trace, answer))
    return out


@pytest.fixture(scope="module")
def base_model(world, tokenizer):
    """A tiny Qwen3 taught the short format, so its answers (and R_txt) vary within a group."""
    model = build_model(TinyModelConfig(**TINY), tokenizer, seed=0)
    settings = SFTSettings(steps=150, batch_size=16, learning_rate=1e-2, warmup_steps=10, logging_steps=150)
    train_sft(model, tokenizer, short_traces(world, 150 * 16, seed=0), settings, progress=False)
    return model


@pytest.fixture(scope="module")
def heads():
    """Random-init LCLR heads for the tiny policy's width."""
    return random_heads(LCLRHeads(LCLRConfig(d_model=TINY["hidden_size"], proj_hidden=32, proj_dim=16)), seed=0)
