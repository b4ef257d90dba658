"""Probe stage (notebook 01; ``craft probe``): where do safe, unsafe and rethink reasoning separate?

For every policy of the source (the organism and its twin; the paper's model) and every layer of
``probe.layers``, THE latent (:mod:`craft.latents`) of labelled traces feeds a linear probe
(:mod:`craft.probing`) fitted on held-in traces of the hazards safety training may see. It is
scored on held-out traces of those hazards (in distribution) and — where the source has them — on
traces of *unseen* hazards, whose ingredient vocabulary no probe or head ever trains on: a
validation half chooses the layer (:func:`craft.probing.choose_layer`), a test half reports it.
Where the rethink centroid falls on the safe → unsafe axis is measured on both. The chosen layer
is what ``latent.layer: auto`` means for LCLR, R2L and the monitor. Results are cached in
``run_dir/01_probe_latent_geometry/`` with the identity of the policies, traces and settings.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from craft.io import atomic_write, load_json
from craft.latents import LatentSpec, trace_latents_by_layer
from craft.probing import axis_position, choose_layer, fit_probe, pca_2d
from craft.runs import Artifact, is_main_process, json_hash, locked
from craft.stages.common import Run, free_memory
from craft.stages.completions import evaluate_policies

__all__ = ["SPLITS", "ProbeResult", "probe_identity", "probe_stage", "resolve_latent"]

SPLITS = ("train", "test", "unseen_val", "unseen_test")


@dataclass
class ProbeResult:
    sweep: pd.DataFrame                     # model, layer, accuracy / log-loss / rethink position per split
    chosen: dict[str, int]                  # model -> chosen layer
    pca: dict[str, tuple[np.ndarray, np.ndarray]]   # model -> (held-out points (N, 2), labels (N,))
    metrics: dict                           # flat numbers of notebook 01
    cached: bool


def _traces(run: Run) -> dict[str, list]:
    return {s: run.source.traces("probe", s) for s in SPLITS}


def probe_identity(run: Run) -> dict:
    traces, p = _traces(run), run.params
    return {"models": {n: run.source.policy_fingerprint(m) for n, m in run.source.probe_models().items()},
            "traces": json_hash({s: [dataclasses.asdict(t) for t in ts] for s, ts in traces.items()}),
            "probe": dataclasses.asdict(p.probe), "pool": p.latent.pool, "batch_size": p.latent.batch_size,
            "seed": p.seed}


def _artifact(run: Run) -> Artifact:
    return Artifact(run.stage_dir("probe"), probe_identity(run), recompute=True, what="probe sweep")


def resolve_latent(run: Run) -> LatentSpec:
    """THE latent of this run: ``latent.layer``, or with ``auto`` the layer the probe stage chose
    (which must have run with the current policies, traces and settings)."""
    latent = run.params.latent
    if latent.layer != "auto":
        return LatentSpec(layer=int(latent.layer), pool=latent.pool)
    _artifact(run).require("notebook 01 (or `craft probe --config <params file>`), or set latent.layer to a layer "
                           "number,")
    layer = load_json(run.stage_dir("probe") / "chosen_layer.json")["layer"]
    return LatentSpec(layer=layer, pool=latent.pool)


def _layers(spec, n_layers: int) -> list[int]:
    layers = list(range(n_layers + 1)) if spec == "all" else list(spec)
    bad = [x for x in layers if x > n_layers]
    if bad:
        raise ValueError(f"probe.layers {bad} do not exist: the model has {n_layers} decoder layers (0 = embeddings)")
    return layers


def _features(model, tok, traces, layers, run: Run) -> dict[int, np.ndarray]:
    if not traces:
        return {layer: np.empty((0, 1)) for layer in layers}
    z = trace_latents_by_layer(model, tok, [t.prompt for t in traces], [t.reasoning for t in traces],
                               [t.answer for t in traces], layers, run.params.latent.pool, run.params.latent.batch_size)
    return {layer: v.numpy() for layer, v in z.items()}


def _row(probe, x, y, prefix: str) -> dict:
    if not len(y):
        return {f"{prefix}{k}": float("nan") for k in ("acc", "log_loss", "rethink_position")}
    from sklearn.metrics import log_loss

    proba = probe.predict_proba(x)
    return {f"{prefix}acc": float(probe.score(x, y)),
            f"{prefix}log_loss": float(log_loss(y, proba, labels=probe.classes_)),
            f"{prefix}rethink_position": axis_position(x, y, "rethink") if {"safe", "unsafe", "rethink"} <= set(y)
            else float("nan")}


def _sweep(run: Run, traces: dict, own: list):
    """Fit a probe per (policy, layer) and score it on every split. ``own``: the base policy's own
    labelled samples, read in the same pass through the first policy (the base) and scored by the same
    probes. Returns the sweep, the features and labels by split, and the fitted probes."""
    p, source = run.params, run.source
    labels = {s: np.array([t.label for t in ts]) for s, ts in {**traces, "own": own}.items()}
    rows, feats, probes = [], {}, {}
    for i, (name, path) in enumerate(source.probe_models().items()):
        model, tok = source.load_policy(path)
        layers = _layers(p.probe.layers, model.config.num_hidden_layers)
        sets = {**traces, "own": own} if i == 0 and own else traces
        by_split = {s: _features(model, tok, ts, layers, run) for s, ts in sets.items()}
        del model
        free_memory()
        for layer in layers:
            x = {s: f[layer] for s, f in by_split.items()}
            feats[name, layer] = x
            probe = probes[name, layer] = fit_probe(x["train"], labels["train"], C=p.probe.C, seed=p.seed)
            row = {"model": name, "layer": layer}
            for split, prefix in (("test", ""), ("unseen_val", "unseen_val_"), ("unseen_test", "unseen_")):
                row |= _row(probe, x[split], labels[split], prefix)
            rows.append(row)
    sweep = pd.DataFrame(rows).rename(columns={"acc": "probe_acc_3way", "log_loss": "probe_log_loss"})
    return sweep, feats, labels, probes


def _choose(sweep: pd.DataFrame) -> int:
    """On unseen-hazard validation traces when there are some, else on the in-distribution test."""
    if sweep.unseen_val_acc.notna().any():
        return choose_layer(sweep, acc="unseen_val_acc", loss="unseen_val_log_loss")
    return choose_layer(sweep)


def _compute(run: Run) -> ProbeResult:
    traces = _traces(run)
    # the base policy's own completions (cached), labelled by the source's 3-way judge where it has one
    own = (run.source.own_samples(evaluate_policies(run, {"base": run.source.base_policy()})) or []
           if run.source.labels_own_samples else [])
    sweep, feats, labels, probes = _sweep(run, traces, own)
    names = list(dict.fromkeys(sweep.model))
    chosen = {n: _choose(sweep[sweep.model == n]) for n in names}
    pca = {}
    for n in names:
        x = feats[n, chosen[n]]
        (points,) = pca_2d(x["train"], x["test"], seed=run.params.seed)
        pca[n] = (points, labels["test"])
    first = names[0]
    own_acc = (float(probes[first, chosen[first]].score(feats[first, chosen[first]]["own"], labels["own"]))
               if own else float("nan"))   # NaN where the source cannot label its samples (paper scale)
    metrics = {"chosen_layer": chosen[first], "pool": run.params.latent.pool, "probe_acc_own_samples": own_acc,
               "n_own_samples": len(own), **{f"n_{s}_traces": len(ts) for s, ts in traces.items()}}
    for i, n in enumerate(names):
        prefix = "" if i == 0 else f"{n}_"
        best = sweep[(sweep.model == n) & (sweep.layer == chosen[n])].iloc[0]
        layer0 = sweep[(sweep.model == n) & (sweep.layer == sweep[sweep.model == n].layer.min())].iloc[0]
        if i:
            metrics[f"{prefix}chosen_layer"] = chosen[n]
        metrics |= {f"{prefix}probe_acc_3way": float(best.probe_acc_3way),
                    f"{prefix}probe_acc_3way_unseen": float(best.unseen_acc),
                    f"{prefix}probe_acc_layer0": float(layer0.probe_acc_3way),
                    f"{prefix}probe_acc_layer0_unseen": float(layer0.unseen_acc),
                    f"{prefix}rethink_position": float(best.rethink_position),
                    f"{prefix}rethink_position_unseen": float(best.unseen_rethink_position),
                    f"{prefix}rethink_between": bool(0 < best.rethink_position < 1)}
    return ProbeResult(sweep, chosen, pca, metrics, cached=False)


def probe_stage(run: Run) -> ProbeResult:
    """Run (or load) the probe sweep; see the module docstring."""
    artifact = _artifact(run)
    folder = artifact.path
    with locked(folder):
        if artifact.claim():
            return _load(folder)
        result = _compute(run)
        if is_main_process():
            atomic_write(folder / "layer_sweep.csv", result.sweep.to_csv(index=False))
            atomic_write(folder / "chosen_layer.json", json.dumps(
                {"layer": result.metrics["chosen_layer"], "pool": run.params.latent.pool, "by_model": result.chosen},
                indent=2, sort_keys=True) + "\n")
            atomic_write(folder / "metrics.json", json.dumps(result.metrics, indent=2, sort_keys=True) + "\n")
            np.savez(folder / "pca.npz", **{f"{n}__points": p for n, (p, _) in result.pca.items()},
                     **{f"{n}__labels": y for n, (_, y) in result.pca.items()})
        artifact.finish()
    # read back what was written, so that a fresh sweep and a cached one print the same (sorted keys)
    return dataclasses.replace(_load(folder), cached=False) if is_main_process() else result


def _load(folder) -> ProbeResult:
    chosen = load_json(folder / "chosen_layer.json")["by_model"]
    data = np.load(folder / "pca.npz")
    pca = {n: (data[f"{n}__points"], data[f"{n}__labels"]) for n in chosen}
    return ProbeResult(pd.read_csv(folder / "layer_sweep.csv"), chosen, pca,
                       load_json(folder / "metrics.json"), cached=True)
