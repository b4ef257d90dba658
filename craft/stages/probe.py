"""Probe stage (notebook 01; ``craft probe``): where do safe, unsafe and rethink reasoning separate?

For every policy of the source (the organism and its twin; the paper's model) and every layer of
``probe.layers``, THE latent (:mod:`craft.latents`) of held-in and held-out labelled traces feeds a
linear probe (:mod:`craft.probing`): held-out 3-way accuracy and log-loss, and where the rethink
centroid falls on the safe → unsafe axis. The best layer per policy (:func:`craft.probing.choose_layer`)
is what ``latent.layer: auto`` means for LCLR, R2L and the monitor. The results are cached in
``run_dir/01_probe_latent_geometry/`` with the identity of the policies, traces and settings.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from craft.latents import LatentSpec, trace_latents
from craft.probing import axis_position, choose_layer, fit_probe, pca_2d, probe_metrics
from craft.runs import Artifact, is_main_process, json_hash, locked
from craft.stages.common import Run
from craft.stages.evaluate import evaluate_policies, free_memory

__all__ = ["ProbeResult", "features", "probe_identity", "probe_stage"]


@dataclass
class ProbeResult:
    sweep: pd.DataFrame                     # model, layer, probe_acc_3way, probe_log_loss, rethink_position
    chosen: dict[str, int]                  # model -> chosen layer
    pca: dict[str, tuple[np.ndarray, np.ndarray]]   # model -> (held-out points (N, 2), labels (N,))
    metrics: dict                           # flat numbers of notebook 01
    cached: bool


def features(model, tokenizer, traces, spec: LatentSpec, batch_size: int) -> np.ndarray:
    """THE latent of each labelled trace, teacher-forced through ``model``. (N, d)."""
    return trace_latents(model, tokenizer, [t.prompt for t in traces], [t.reasoning for t in traces],
                         [t.answer for t in traces], spec, batch_size=batch_size).numpy()


def _traces(run: Run):
    return run.source.traces("probe", "train"), run.source.traces("probe", "test")


def probe_identity(run: Run) -> dict:
    train, test = _traces(run)
    p = run.params
    return {"models": {n: run.source.policy_fingerprint(m) for n, m in run.source.probe_models().items()},
            "traces": json_hash([dataclasses.asdict(t) for t in train + test]), "probe": dataclasses.asdict(p.probe),
            "pool": p.latent.pool, "batch_size": p.latent.batch_size, "seed": p.seed}


def _layers(spec, n_layers: int) -> list[int]:
    layers = list(range(n_layers + 1)) if spec == "all" else list(spec)
    bad = [x for x in layers if x > n_layers]
    if bad:
        raise ValueError(f"probe.layers {bad} do not exist: the model has {n_layers} decoder layers (0 = embeddings)")
    return layers


def _sweep(run: Run, train, test):
    p, source = run.params, run.source
    y_train = np.array([t.label for t in train])
    y_test = np.array([t.label for t in test])
    rows, feats, models = [], {}, source.probe_models()
    for name, path in models.items():
        model, tok = source.load_policy(path)
        for layer in _layers(p.probe.layers, model.config.num_hidden_layers):
            spec = LatentSpec(layer=layer, pool=p.latent.pool)
            f_train, f_test = (features(model, tok, t, spec, p.latent.batch_size) for t in (train, test))
            feats[name, layer] = (f_train, f_test)
            probe = probe_metrics(f_train, y_train, f_test, y_test, C=p.probe.C, seed=p.seed)
            rows.append({"model": name, "layer": layer, "probe_acc_3way": probe["acc"],
                         "probe_log_loss": probe["log_loss"],
                         "rethink_position": axis_position(f_test, y_test, "rethink") if "rethink" in y_test
                         else float("nan")})
        del model
        free_memory()
    return pd.DataFrame(rows), feats, y_train, y_test


def _own_accuracy(run: Run, first: str, layer: int, f_train, y_train) -> tuple[float, int]:
    """Probe accuracy on the base policy's own sampled completions (organism: labelled by its exact
    judge), or NaN where the source cannot label them."""
    source = run.source
    base = evaluate_policies(run, {"base": source.base_policy()})
    own = source.own_samples(base)
    if not own:
        return float("nan"), 0
    model, tok = source.load_policy(source.probe_models()[first])
    spec = LatentSpec(layer=layer, pool=run.params.latent.pool)
    f_own = features(model, tok, own, spec, run.params.latent.batch_size)
    probe = fit_probe(f_train, y_train, C=run.params.probe.C, seed=run.params.seed)
    return float(probe.score(f_own, np.array([t.label for t in own]))), len(own)


def _compute(run: Run) -> ProbeResult:
    train, test = _traces(run)
    sweep, feats, y_train, y_test = _sweep(run, train, test)
    names = list(dict.fromkeys(sweep.model))
    chosen = {n: choose_layer(sweep[sweep.model == n]) for n in names}
    pca = {}
    for n in names:
        f_train, f_test = feats[n, chosen[n]]
        (points,) = pca_2d(f_train, f_test, seed=run.params.seed)
        pca[n] = (points, y_test)
    own_acc, n_own = _own_accuracy(run, names[0], chosen[names[0]], feats[names[0], chosen[names[0]]][0], y_train)
    metrics = {"chosen_layer": chosen[names[0]], "pool": run.params.latent.pool}
    for i, n in enumerate(names):
        best = sweep[(sweep.model == n) & (sweep.layer == chosen[n])].iloc[0]
        prefix = "" if i == 0 else f"{n}_"
        if i:
            metrics[f"{prefix}chosen_layer"] = chosen[n]
        metrics |= {f"{prefix}probe_acc_3way": float(best.probe_acc_3way),
                    f"{prefix}rethink_position": float(best.rethink_position),
                    f"{prefix}rethink_between": bool(0 < best.rethink_position < 1)}
        if i == 0:
            metrics |= {"probe_acc_own_samples": own_acc, "n_own_samples": n_own,
                        "n_train_traces": len(train), "n_test_traces": len(test)}
    return ProbeResult(sweep, chosen, pca, metrics, cached=False)


def probe_stage(run: Run) -> ProbeResult:
    """Run (or load) the probe sweep; see the module docstring."""
    folder = run.stage_dir("probe")
    artifact = Artifact(folder, probe_identity(run), recompute=True, what="probe sweep")
    with locked(folder):
        if artifact.claim():
            return _load(folder)
        result = _compute(run)
        if is_main_process():
            result.sweep.to_csv(folder / "layer_sweep.csv", index=False)
            (folder / "chosen_layer.json").write_text(json.dumps(
                {"layer": result.metrics["chosen_layer"], "pool": run.params.latent.pool, "by_model": result.chosen},
                indent=2, sort_keys=True) + "\n")
            (folder / "metrics.json").write_text(json.dumps(result.metrics, indent=2, sort_keys=True) + "\n")
            np.savez(folder / "pca.npz", **{f"{n}__points": p for n, (p, _) in result.pca.items()},
                     **{f"{n}__labels": y for n, (_, y) in result.pca.items()})
        artifact.finish()
    return result


def _load(folder) -> ProbeResult:
    chosen = json.loads((folder / "chosen_layer.json").read_text())["by_model"]
    data = np.load(folder / "pca.npz")
    pca = {n: (data[f"{n}__points"], data[f"{n}__labels"]) for n in chosen}
    return ProbeResult(pd.read_csv(folder / "layer_sweep.csv"), chosen, pca,
                       json.loads((folder / "metrics.json").read_text()), cached=True)
