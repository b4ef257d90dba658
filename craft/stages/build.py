"""Build stage (notebook 00; ``craft build``): the base policy every later stage starts from.

Organism scale: build the world, tokenizer, tiny Qwen3 and Llama twin and their SFT
(:func:`craft.organism.build.build_organism`) into ``run_dir/00_build_model_organism/``, an
:class:`craft.runs.Artifact` whose identity is the ``organism`` section and the seed: a changed
setting is refused with the keys that changed, never silently reused. Paper scale: load the policy,
check that the latent layer exists, that it has a chat template and that a greedy completion
splits into reasoning and answer; nothing is trained.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from craft.evaluate import GenerationSettings, generate
from craft.io import atomic_write, load_json
from craft.models import split_reasoning
from craft.runs import Artifact, is_main_process, locked
from craft.stages.common import Run, free_memory
from craft.stages.source import build_identity

__all__ = ["BuildResult", "build_stage"]


@dataclass
class BuildResult:
    info: dict                                       # what was built or loaded (flat numbers and strings)
    sft_logs: dict[str, list[dict]] = field(default_factory=dict)   # organism: "model" and "twin_model" SFT logs
    cached: bool = False

    @property
    def metrics(self) -> dict:
        """What was built or loaded (:attr:`info`)."""
        return dict(self.info)


def build_stage(run: Run) -> BuildResult:
    """Build (or load) the organism, or check the paper-scale policy; see the module docstring."""
    return _organism(run) if run.scale == "organism" else _paper(run)


def _organism(run: Run) -> BuildResult:
    from craft.organism.build import build_organism

    folder = run.stage_dir("build")
    artifact = Artifact(folder, build_identity(run.params), what="organism")
    with locked(folder):
        cached = artifact.claim()
        if not cached:
            info = build_organism(run.params.organism, run.params.seed, folder, progress=run.progress)
            if is_main_process():
                atomic_write(folder / "build.json", json.dumps(info, indent=2, sort_keys=True) + "\n")
            artifact.finish()
    logs = {name: load_json(folder / f"{log}.json")
            for name, log in (("model", "sft_log"), ("twin_model", "twin_sft_log"))
            if (folder / f"{log}.json").is_file()}
    return BuildResult(load_json(folder / "build.json"), logs, cached)


def _paper(run: Run, probe_prompts=("What is 17 + 25?",)) -> BuildResult:
    source, latent = run.source, run.params.latent
    model, tok = source.load_policy()
    n_layers = model.config.num_hidden_layers
    if latent.layer != "auto" and not 0 <= int(latent.layer) <= n_layers:
        raise ValueError(f"latent.layer={latent.layer}, but {source.base_policy()} has {n_layers} decoder layers")
    if not tok.chat_template:
        raise ValueError(f"{source.base_policy()} has no chat template; every prompt is rendered with it")
    settings = GenerationSettings(max_new_tokens=min(run.params.evaluate.max_new_tokens, 256), do_sample=False)
    splits = [split_reasoning(c) for c in generate(model, tok, list(probe_prompts), settings)]
    info = {"model": source.base_policy(),
            "arch": model.config.architectures[0] if model.config.architectures else type(model).__name__,
            "n_params": sum(p.numel() for p in model.parameters()), "num_hidden_layers": n_layers,
            "hidden_size": model.config.hidden_size, "dtype": source.cfg.dtype,
            "closed_think": all(s.closed for s in splits), "answer": splits[0].answer[:200]}
    folder = run.stage_dir("build")
    with locked(folder):
        if is_main_process():
            atomic_write(folder / "policy.json", json.dumps(info, indent=2, sort_keys=True) + "\n")
    del model
    free_memory()
    return BuildResult(info)
