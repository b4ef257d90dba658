"""LCLR stage (notebook 02; ``craft lclr``): the latent heads on the frozen policy (paper §4.1).

The heads of every ``lclr.variants`` entry are fit on the reasoning-span token states of the
source's labelled training traces at THE latent's layer, and saved with the latent they read
(``layer``, ``pool``, width) in ``run_dir/02_train_lclr/heads-<variant>/``; they are measured on
held-out traces and, where the source has them, on traces of unseen hazards (vocabulary the heads
never saw: ``*_unseen`` metrics); the first variant's
heads are the ones R2L rewards with. The folder is an :class:`craft.runs.Artifact`: heads fit from
another policy, other traces, another latent or other settings are refused, not reused. Held-out
metrics are computed on every call (they are cheap next to fitting).

Fitting holds every training trace's per-token states in CPU memory (N·T·d·4 bytes: the
token-dropout views need them); at paper scale ``source.max_traces`` bounds N.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from craft.latents import LatentSpec, trace_latents, trace_token_states
from craft.lclr import LCLRConfig, LCLRHeads, load_heads, save_heads
from craft.lclr_metrics import evaluate_heads
from craft.runs import Artifact, is_main_process, json_hash, locked
from craft.stages.common import Run
from craft.stages.evaluate import evaluate_policies, free_memory

__all__ = ["LCLRResult", "heads_dir", "lclr_config", "lclr_stage", "resolve_latent"]


def resolve_latent(run: Run) -> LatentSpec:
    """THE latent of this run: ``latent.layer``, or with ``auto`` the layer the probe stage chose
    (which must have run with the current policies, traces and settings)."""
    from craft.stages.probe import probe_identity

    latent = run.params.latent
    if latent.layer != "auto":
        return LatentSpec(layer=int(latent.layer), pool=latent.pool)
    folder = run.stage_dir("probe")
    Artifact(folder, probe_identity(run), recompute=True, what="probe sweep").require(
        "latent.layer is auto, so run the probe stage first (notebook 01, or `craft probe --config ...`), "
        "or set latent.layer to a layer number")
    return LatentSpec(layer=json.loads((folder / "chosen_layer.json").read_text())["layer"], pool=latent.pool)


def heads_dir(run: Run) -> Path:
    """The heads R2L rewards with: the first LCLR variant's."""
    return run.stage_dir("lclr") / f"heads-{run.params.lclr.variants[0]}"


def lclr_config(run: Run, variant: str, d_model: int, spec: LatentSpec) -> LCLRConfig:
    section = run.params.lclr
    values = {f.name: getattr(section, f.name) for f in dataclasses.fields(LCLRConfig)}
    return LCLRConfig(**{**values, "d_model": d_model, "layer": spec.layer, "pool": spec.pool, "seed": run.params.seed,
                         "variant": variant})


@dataclass
class LCLRResult:
    spec: LatentSpec
    heads: dict[str, LCLRHeads]             # variant -> fitted heads
    history: dict[str, list[dict]]          # variant -> per-epoch losses
    test_features: torch.Tensor             # (N, d) THE latent of the held-out traces
    test_labels: torch.Tensor               # (N,)
    results: dict[str, dict]                # variant -> held-out metrics (craft.lclr_metrics.evaluate_heads)
    unseen: dict[str, dict]                 # variant -> metrics on unseen-hazard traces ({} if the source has none)
    own: dict                               # first variant on the base policy's own samples ({} if none)
    metrics: dict                           # flat numbers of notebook 02
    cached: bool


def _cols(traces):
    return [t.prompt for t in traces], [t.reasoning for t in traces], [t.answer for t in traces]


def lclr_stage(run: Run) -> LCLRResult:
    """Fit (or load) the heads and measure them; see the module docstring."""
    p, source = run.params, run.source
    spec = resolve_latent(run)
    train, test = source.traces("lclr", "train"), source.traces("lclr", "test")
    identity = {"lclr": dataclasses.asdict(p.lclr), "latent": dataclasses.asdict(spec), "seed": p.seed,
                "base_policy": source.policy_fingerprint(source.base_policy()), "batch_size": p.latent.batch_size,
                "traces": json_hash([dataclasses.asdict(t) for t in train + test])}
    folder = run.stage_dir("lclr")
    artifact = Artifact(folder, identity, what="set of LCLR heads")
    model, tok = source.load_policy()
    y_train = torch.tensor([t.label_index for t in train])
    y_test = torch.tensor([t.label_index for t in test])
    with locked(folder):
        cached = artifact.claim()
        if not cached:
            tokens = trace_token_states(model, tok, *_cols(train), layer=spec.layer, batch_size=p.latent.batch_size)
            history = {}
            for v in p.lclr.variants:
                heads = LCLRHeads(lclr_config(run, v, model.config.hidden_size, spec))
                history[v] = heads.fit(tokens, y_train, progress=run.progress)
                if is_main_process():
                    save_heads(heads, folder / f"heads-{v}")
            del tokens
            if is_main_process():
                (folder / "history.json").write_text(json.dumps(history, indent=1) + "\n")
            artifact.finish()
    heads = {v: load_heads(folder / f"heads-{v}") for v in p.lclr.variants}
    history = json.loads((folder / "history.json").read_text())
    f_test = trace_latents(model, tok, *_cols(test), spec, batch_size=p.latent.batch_size)
    results = {v: evaluate_heads(h, f_test, y_test) for v, h in heads.items()}
    unseen_traces = source.traces("lclr", "unseen_test")
    unseen = {}
    if unseen_traces:
        f_unseen = trace_latents(model, tok, *_cols(unseen_traces), spec, batch_size=p.latent.batch_size)
        y_unseen = torch.tensor([t.label_index for t in unseen_traces])
        unseen = {v: evaluate_heads(h, f_unseen, y_unseen) for v, h in heads.items()}
    own = _own_metrics(run, model, tok, heads[p.lclr.variants[0]], spec)
    del model
    free_memory()
    flat = _flat(run, spec, results, own, len(train), len(test)) | _unseen_flat(run, unseen, len(unseen_traces))
    return LCLRResult(spec, heads, history, f_test, y_test, results, unseen, own, flat, cached)


def _unseen_flat(run: Run, unseen: dict, n: int) -> dict:
    """``lclr_<metric>_unseen`` of the first variant and ``<variant>_<metric>_unseen`` of the others
    (the safe-vs-unsafe AUROC is ``auroc`` here: ``lclr_auroc_unseen``)."""
    if not unseen:
        return {}
    first, *others = run.params.lclr.variants
    short = {"auroc_safe_unsafe": "auroc"}
    m = {f"lclr_{short.get(k, k)}_unseen": float(v) for k, v in unseen[first].items()}
    for v in others:
        m |= {f"{v}_{short.get(k, k)}_unseen": float(unseen[v][k]) for k in ("acc_3way", "auroc_safe_unsafe", "ece")}
    return m | {"n_unseen_traces": n}


def _own_metrics(run: Run, model, tok, heads: LCLRHeads, spec: LatentSpec) -> dict:
    own = run.source.own_samples(evaluate_policies(run, {"base": run.source.base_policy()}))
    if not own:
        return {}
    f_own = trace_latents(model, tok, *_cols(own), spec, batch_size=run.params.latent.batch_size)
    return evaluate_heads(heads, f_own, torch.tensor([t.label_index for t in own]))


def _flat(run: Run, spec: LatentSpec, results: dict, own: dict, n_train: int, n_test: int) -> dict:
    first, *others = run.params.lclr.variants
    m = {f"lclr_{k}": v for k, v in results[first].items()}
    for v in others:
        m |= {f"{v}_{k}": results[v][k] for k in ("acc_3way", "auroc_safe_unsafe", "ece")}
    m |= {f"own_{k}": own[k] for k in ("acc_3way", "auroc_safe_unsafe", "ece") if k in own}
    m |= {"layer": spec.layer, "n_train_traces": n_train, "n_test_traces": n_test}
    return {k: float(v) if isinstance(v, (float, np.floating)) else v for k, v in m.items()}
