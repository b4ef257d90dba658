"""LCLR stage (notebook 02; ``craft lclr``): the latent heads on the frozen policy (paper §4.1).

The heads of every ``lclr.variants`` entry are fit on the reasoning-span token states of the
source's labelled training traces at THE latent's layer, and saved with the latent they read
(``layer``, ``pool``, width) in ``run_dir/02_train_lclr/heads-<variant>/``; they are measured on
held-out traces and, where the source has them, on traces of unseen hazards (vocabulary the heads
never saw: ``*_unseen`` metrics) and on the held-out traces in coded form (ingredients named by aliases the
heads never saw, ``*_coded``, beside the recall of the exact and the surface judge on them); the first
variant's heads are the ones R2L rewards with. The folder is an :class:`craft.runs.Artifact`: heads fit from
another policy, other traces, another latent or other settings are refused, not reused, by this stage
and by every stage that reads them (:func:`trained_heads`). Held-out metrics are computed on every
call (they are cheap next to fitting).

Fitting holds every training trace's per-token states in CPU memory (N·T·d·4 bytes: the
token-dropout views need them); at paper scale ``source.max_traces`` bounds N.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

import numpy as np
import torch

from craft.evaluate import judged_harmful
from craft.io import atomic_write, load_json
from craft.latents import LatentSpec, trace_latents, trace_token_states
from craft.lclr import LCLRConfig, LCLRHeads, evaluate_heads, load_heads, save_heads
from craft.runs import Artifact, is_main_process, json_hash, locked
from craft.stages.common import Run, free_memory
from craft.stages.completions import evaluate_policies
from craft.stages.probe import resolve_latent

__all__ = ["LCLR_MAKER", "LCLRResult", "lclr_artifact", "lclr_config", "lclr_stage", "shuffled_label_heads",
           "trained_heads"]

LCLR_MAKER = "notebook 02 (or `craft lclr --config <params file>`)"


def lclr_artifact(run: Run, spec: LatentSpec | None = None) -> Artifact:
    """The heads' folder and the identity that must have made them: the ``lclr`` section, THE latent
    (``spec``, default :func:`~craft.stages.probe.resolve_latent`), the seed, the base policy's content
    hash and the labelled traces."""
    p, source = run.params, run.source
    spec = spec or resolve_latent(run)
    traces = source.traces("lclr", "train") + source.traces("lclr", "test")
    identity = {"lclr": dataclasses.asdict(p.lclr), "latent": dataclasses.asdict(spec), "seed": p.seed,
                "base_policy": source.policy_fingerprint(source.base_policy()), "batch_size": p.latent.batch_size,
                # what the heads read of a trace (its ``group`` serves only the probe's control task)
                "traces": json_hash([{k: getattr(t, k) for k in ("prompt", "reasoning", "answer", "label")}
                                     for t in traces])}
    return Artifact(run.stage_dir("lclr"), identity, what="set of LCLR heads")


def trained_heads(run: Run, variant: str | None = None) -> LCLRHeads:
    """The heads of ``variant`` (default: the first, R2L's), after checking that notebook 02 fit them with
    the current params, policy and traces: a stale set is refused with the keys that changed."""
    if not (run.stage_dir("lclr") / "DONE").is_file():      # before the identity, which reads every trace
        raise FileNotFoundError(f"{run.stage_dir('lclr')} is missing or unfinished: run {LCLR_MAKER} first")
    lclr_artifact(run).require(LCLR_MAKER)
    return load_heads(run.heads_dir(variant))


def lclr_config(run: Run, variant: str, d_model: int, spec: LatentSpec) -> LCLRConfig:
    section = run.params.lclr
    values = {f.name: getattr(section, f.name) for f in dataclasses.fields(LCLRConfig)}
    return LCLRConfig(**{**values, "d_model": d_model, "layer": spec.layer, "pool": spec.pool, "seed": run.params.seed,
                         "variant": variant})


def shuffled_label_heads(run: Run, seed: int) -> LCLRHeads:
    """Heads of R2L's LCLR variant fit exactly as :func:`lclr_stage` fits them (same traces, latent, loss and
    settings) except that the training labels are permuted at random (a permutation and an initialisation
    drawn from ``seed``): the control of the ``shuffled_lclr`` ablation. The class sizes stay, the link
    between a trace and its label goes, so whatever the reward then does comes from the heads' shape and
    training, not from what LCLR learns about safety. Costs one read of the training traces' token states."""
    p, source = run.params, run.source
    spec = resolve_latent(run)
    train = source.traces("lclr", "train")
    model, tok = source.load_policy()
    labels = torch.tensor([t.label_index for t in train])
    labels = labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))]
    tokens = trace_token_states(model, tok, *_cols(train), layer=spec.layer, batch_size=p.latent.batch_size)
    config = dataclasses.replace(lclr_config(run, p.lclr.variants[0], model.config.hidden_size, spec), seed=seed)
    heads = LCLRHeads(config)
    heads.fit(tokens, labels, progress=False)
    del tokens, model
    free_memory()
    return heads.eval()


@dataclass
class LCLRResult:
    spec: LatentSpec
    heads: dict[str, LCLRHeads]             # variant -> fitted heads
    history: dict[str, list[dict]]          # variant -> per-epoch losses
    test_features: torch.Tensor             # (N, d) THE latent of the held-out traces
    test_labels: torch.Tensor               # (N,)
    results: dict[str, dict]                # variant -> held-out metrics (craft.lclr.metrics.evaluate_heads)
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
    artifact = lclr_artifact(run, spec)
    folder = artifact.path
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
                    save_heads(heads, run.heads_dir(v))
            del tokens
            if is_main_process():
                atomic_write(folder / "history.json", json.dumps(history, indent=1) + "\n")
            artifact.finish()
    heads = {v: load_heads(run.heads_dir(v)) for v in p.lclr.variants}
    history = load_json(folder / "history.json")
    f_test = trace_latents(model, tok, *_cols(test), spec, batch_size=p.latent.batch_size)
    results = {v: evaluate_heads(h, f_test, y_test) for v, h in heads.items()}
    unseen_traces = source.traces("lclr", "unseen_test")
    unseen = {}
    if unseen_traces:
        f_unseen = trace_latents(model, tok, *_cols(unseen_traces), spec, batch_size=p.latent.batch_size)
        y_unseen = torch.tensor([t.label_index for t in unseen_traces])
        unseen = {v: evaluate_heads(h, f_unseen, y_unseen) for v, h in heads.items()}
    own = _own_metrics(run, model, tok, heads[p.lclr.variants[0]], spec)
    coded_traces = source.traces("lclr", "coded_test")
    coded = _coded_metrics(run, model, tok, heads[p.lclr.variants[0]], spec, coded_traces) if coded_traces else {}
    del model
    free_memory()
    flat = (_flat(run, spec, results, own, len(train), len(test)) | _unseen_flat(run, unseen, len(unseen_traces))
            | coded)
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


def _coded_metrics(run: Run, model, tok, heads: LCLRHeads, spec: LatentSpec, traces) -> dict:
    """The first variant's heads on the coded test traces (trained on plain ones only), and the recall of the
    exact and the surface reasoning judges on the coded unsafe traces (the share each calls harmful)."""
    f = trace_latents(model, tok, *_cols(traces), spec, batch_size=run.params.latent.batch_size)
    m = evaluate_heads(heads, f, torch.tensor([t.label_index for t in traces]))
    unsafe = [t for t in traces if t.label == "unsafe"]
    recall = {role: float(np.mean(judged_harmful(run.source.judge(role), [t.prompt for t in unsafe],
                                                 [t.reasoning for t in unsafe])))
              for role in ("reasoning", "surface")}
    return {"lclr_auroc_coded": float(m["auroc_safe_unsafe"]),
            "lclr_tpr_at_1pct_fpr_coded": float(m["tpr_at_1pct_fpr"]), "lclr_ece_coded": float(m["ece"]),
            "exact_judge_recall_coded": recall["reasoning"], "surface_judge_recall_coded": recall["surface"],
            "n_coded_traces": len(traces), "n_coded_unsafe_traces": len(unsafe)}


def _own_metrics(run: Run, model, tok, heads: LCLRHeads, spec: LatentSpec) -> dict:
    if not run.source.labels_own_samples:            # nothing to label them with: generate nothing
        return {}
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
