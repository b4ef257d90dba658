"""Build the base organism (notebook 00): world, tokenizer, a tiny Qwen3 and its Llama twin, SFT.

:func:`build_organism` writes into ``out`` (the caller's artifact folder): ``world.json``,
``model/`` and ``twin_model/`` (safetensors and tokenizer), ``sft_log.json`` and
``twin_sft_log.json``, and returns what it built. The SFT mixture that plants the organism's
behaviour, family by family, is :data:`craft.organism.corpus.BEHAVIOUR`.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

from craft.organism.config import OrganismConfig
from craft.organism.corpus import sample_sft_examples
from craft.organism.model import build_model, count_parameters
from craft.organism.sft import train_sft
from craft.organism.tokenizer import train_tokenizer
from craft.organism.world import build_world

__all__ = ["build_organism"]


def _save(model, tokenizer, path: Path) -> None:
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)


def build_organism(cfg: OrganismConfig, seed: int, out: Path, progress: bool = True) -> dict:
    """Build the world, train the tokenizer, build and SFT the model (and its twin); save them in ``out``.

    Returns ``{"arch", "n_params", "build_seconds", "sft_final_loss", "twin_arch", "twin_params",
    "twin_build_seconds", "twin_sft_final_loss"}`` (twin keys only with a twin). ``build_seconds``
    covers tokenizer + model + SFT, not the world or the twin.
    """
    world = build_world(seed=seed, n_hazards=cfg.n_hazards, eval_fraction=cfg.eval_fraction,
                        n_unseen_hazards=cfg.n_unseen_hazards, n_arithmetic=cfg.n_arithmetic)
    (out / "world.json").write_text(json.dumps(world.to_dict(), indent=2, sort_keys=True) + "\n")
    examples = sample_sft_examples(world, cfg.sft.steps * cfg.sft.batch_size, seed=seed, mix=cfg.mixture)
    start = time.perf_counter()
    corpus = [f"{e.prompt} {e.reasoning} {e.answer}" for e in examples[:cfg.tokenizer_texts]]
    tokenizer = train_tokenizer(corpus, vocab_size=cfg.vocab_size)
    model = build_model(cfg.model, tokenizer, seed=seed)
    log = train_sft(model, tokenizer, examples, dataclasses.replace(cfg.sft, seed=seed), progress=progress)
    info = {"arch": type(model).__name__, "n_params": count_parameters(model),
            "build_seconds": round(time.perf_counter() - start, 1),
            "sft_final_loss": [r["loss"] for r in log if "loss" in r][-1]}
    _save(model, tokenizer, out / "model")
    (out / "sft_log.json").write_text(json.dumps(log) + "\n")
    if cfg.twin_arch:
        start = time.perf_counter()
        twin = build_model(dataclasses.replace(cfg.model, arch=cfg.twin_arch), tokenizer, seed=seed)
        twin_log = train_sft(twin, tokenizer, examples,
                             dataclasses.replace(cfg.sft, steps=cfg.twin_sft_steps, seed=seed), progress=progress)
        _save(twin, tokenizer, out / "twin_model")
        (out / "twin_sft_log.json").write_text(json.dumps(twin_log) + "\n")
        info.update(twin_arch=type(twin).__name__, twin_params=count_parameters(twin),
                    twin_build_seconds=round(time.perf_counter() - start, 1),
                    twin_sft_final_loss=[r["loss"] for r in twin_log if "loss" in r][-1])
    return info
