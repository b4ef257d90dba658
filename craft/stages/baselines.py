"""Baselines stage (notebook 04; ``craft baselines``): safety training that CRAFT is compared with.

``sft_offpolicy``: SFT on curated safe traces written for direct harmful requests (STAR-1 style,
TRL's ``SFTTrainer``); ``intervened_po``: Intervened Preference Optimization (the paper's IPO baseline,
arXiv 2509.24393; TRL's ``DPOTrainer`` on intervened-over-original trace pairs).
Each method of ``baselines.methods`` is trained from the source's base policy on the source's data
(:meth:`baseline_data`) with :mod:`craft.baselines`, into ``run_dir/04_evaluate_benchmarks/
baselines/<method>/`` (an :class:`craft.runs.Artifact`: config, base policy and data hashes; an
interrupted run resumes from its last complete checkpoint). Returns ``{method: policy folder}``.
"""

from __future__ import annotations

import shutil

from craft import baselines
from craft.config import from_dict
from craft.runs import Artifact, is_main_process, json_hash, locked
from craft.stages.common import Run
from craft.stages.evaluate import free_memory

__all__ = ["baselines_stage", "trained"]

# method -> (trainer config, its params key, the params key of its data size, trainer)
_TRAIN = {"sft_offpolicy": (baselines.SFTBaselineConfig, "sft", "sft_examples", baselines.train_sft),
          "intervened_po": (baselines.DPOBaselineConfig, "dpo", "dpo_pairs", baselines.train_dpo)}


def baselines_stage(run: Run) -> dict[str, str]:
    """Train (or load) every baseline of ``baselines.methods``; see the module docstring."""
    section, source, out = run.params.baselines, run.source, {}
    for method in section.methods:
        cls, key, size, train = _TRAIN[method]
        cfg = from_dict(cls, {**getattr(section, key), "seed": run.params.seed}, where=f"baselines.{key}.")
        data = source.baseline_data(method, getattr(section, size), run.params.seed)
        identity = {"method": method, "config": cfg.__dict__,
                    "base_policy": source.policy_fingerprint(source.base_policy()),
                    "data": json_hash(data.to_list())}
        folder = run.stage_dir("evaluate") / "baselines" / method
        artifact = Artifact(folder, identity, what=f"{method} baseline")
        with locked(folder):
            if not artifact.claim():
                model, tokenizer = source.load_policy(train=True)
                model = train(model, tokenizer, data, cfg, str(folder / "trainer"))
                if is_main_process():
                    model.save_pretrained(folder / "policy")
                    tokenizer.save_pretrained(folder / "policy")
                    shutil.rmtree(folder / "trainer", ignore_errors=True)
                del model
                free_memory()
                artifact.finish()
        out[method] = str(folder / "policy")
    return out


def trained(run: Run) -> dict[str, str]:
    """``{method: policy folder}`` of the baselines already trained in this run (none is trained here)."""
    folder = run.stage_dir("evaluate") / "baselines"
    return {m: str(folder / m / "policy") for m in run.params.baselines.methods if (folder / m / "DONE").is_file()}
