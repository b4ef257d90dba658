"""Probe stage (notebook 01; ``craft probe``): where do safe, unsafe and rethink reasoning separate —
and do the hidden states know more than the words?

For every policy of the source (the organism and its twin; the paper's model) and every layer of
``probe.layers``, THE latent (:mod:`craft.latents`) of labelled traces feeds a linear probe
(:mod:`craft.probing`) fitted on held-in traces of the hazards safety training may see. It is
scored on held-out traces of those hazards (in distribution) and — where the source has them — on
traces of *unseen* hazards, whose ingredient vocabulary no probe or head ever trains on: a
validation half chooses the layer (:func:`craft.probing.choose_layer`), a test half reports it.
Where the rethink centroid falls on the safe → unsafe axis is measured on both. The chosen layer
is what ``latent.layer: auto`` means for LCLR, R2L and the monitor.

The same forward passes feed the controls, on the binary task unsafe vs safe: a probe per pooling of
:data:`CONTROL_POOLS` (``mean``, ``last`` — the paper's final token — and ``max``) and layer, scored by
AUROC, true-positive rate at 1 % false positives and 3-way accuracy; a bag of words on the reasoning text
and the layer-0 probe (the token embeddings), which show what the words alone give; and a control task
(one random label per hazard) whose score is what memorising words gives, so that ``selectivity`` is
the probe's score above it. The best pooling and layer are chosen on validation traces, never on test.
Results are cached in ``run_dir/01_probe_latent_geometry/`` with the identity of the policies, traces
and settings.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from craft.io import atomic_write, load_json
from craft.latents import LatentSpec, trace_latents_by_pool
from craft.probing import (
    axis_position,
    binary_probe_scores,
    bow_classifier,
    bow_scores,
    choose_layer,
    fit_probe,
    pca_2d,
    tpr_at_fpr,
)
from craft.runs import Artifact, is_main_process, json_hash, locked
from craft.stages.common import Run, free_memory
from craft.stages.completions import evaluate_policies
from craft.stats import auroc, bootstrap_ci

__all__ = ["CONTROL_POOLS", "SPLITS", "ProbeResult", "probe_identity", "probe_stage", "resolve_latent"]

SPLITS = ("train", "test", "unseen_val", "unseen_test")
CONTROL_POOLS = ("mean", "last", "max")   # the poolings read side by side (THE latent's pool is one of them)


@dataclass
class ProbeResult:
    sweep: pd.DataFrame                     # model, layer, accuracy / log-loss / rethink position per split
    binary: pd.DataFrame                    # model, pool, layer: safe-vs-unsafe AUROC, TPR, 3-way, control task
    controls: pd.DataFrame                  # one row per model: best probe, bag of words, layer 0 (with intervals)
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
            "control_pools": list(CONTROL_POOLS),
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


def _features(model, tok, traces, layers, run: Run) -> dict[tuple[str, int], np.ndarray]:
    """``{(pool, layer): (N, d)}`` for every pool of :data:`CONTROL_POOLS` and every layer, one forward per batch."""
    if not traces:
        return {(pool, layer): np.empty((0, 1)) for pool in CONTROL_POOLS for layer in layers}
    z = trace_latents_by_pool(model, tok, [t.prompt for t in traces], [t.reasoning for t in traces],
                              [t.answer for t in traces], layers, CONTROL_POOLS, run.params.latent.batch_size)
    return {key: v.numpy() for key, v in z.items()}


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
    probes. Returns the 3-way sweep (THE latent's pool), the binary sweep with its controls (every pool of
    :data:`CONTROL_POOLS`), the controls' headline numbers by model (:func:`_controls`), the features
    (THE latent's pool) and labels by split, and the fitted probes."""
    p, source = run.params, run.source
    labels = {s: np.array([t.label for t in ts]) for s, ts in {**traces, "own": own}.items()}
    rows, binary, controls, feats, probes = [], [], {}, {}, {}
    for i, (name, path) in enumerate(source.probe_models().items()):
        model, tok = source.load_policy(path)
        layers = _layers(p.probe.layers, model.config.num_hidden_layers)
        read = sorted({0, *layers})           # the controls always read the embeddings (layer 0)
        sets = {**traces, "own": own} if i == 0 and own else traces
        by_split = {s: _features(model, tok, ts, read, run) for s, ts in sets.items()}
        del model
        free_memory()
        for layer in layers:
            x = {s: f[p.latent.pool, layer] for s, f in by_split.items()}
            feats[name, layer] = x
            probe = probes[name, layer] = fit_probe(x["train"], labels["train"], C=p.probe.C, seed=p.seed)
            row = {"model": name, "layer": layer}
            for split, prefix in (("test", ""), ("unseen_val", "unseen_val_"), ("unseen_test", "unseen_")):
                row |= _row(probe, x[split], labels[split], prefix)
            rows.append(row)
        table = pd.DataFrame(_binary_rows(name, by_split, traces, labels, read, p))
        by_pool = {key: {s: by_split[s][key] for s in SPLITS} for key in by_split["train"]}
        controls[name] = _controls(run, table, by_pool, traces, labels)
        binary.append(table)
    sweep = pd.DataFrame(rows).rename(columns={"acc": "probe_acc_3way", "log_loss": "probe_log_loss"})
    return sweep, pd.concat(binary, ignore_index=True), controls, feats, labels, probes


# ----------------------------------------------------------------------------- controls (safe vs unsafe)

def _binary(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows of the safe-vs-unsafe task, their label: unsafe = True)."""
    keep = np.isin(labels, ("safe", "unsafe"))
    return keep, labels[keep] == "unsafe"


def control_labels(groups, seed: int) -> dict[str, bool]:
    """The control task's labels (Hewitt & Liang, 2019): one random label per group (organism: per hazard,
    whose ingredient words a trace names), drawn with ``seed``. A probe can score on it only by
    memorising which words go with which group; what it scores on the real task above that is selectivity."""
    distinct = sorted(set(groups))
    draws = np.random.default_rng(seed).permutation(len(distinct)) % 2 == 1   # half and half
    return dict(zip(distinct, draws.tolist()))


def _validation_split(labels: dict) -> str:
    """Where layers and pools are chosen: the unseen-hazard validation traces, else (paper scale: no such
    split) the held-out test traces, which is then said in the metrics."""
    return "unseen_val" if _binary(labels["unseen_val"])[1].size else "test"


def _binary_rows(name: str, by_split: dict, traces: dict, labels: dict, layers, p) -> list[dict]:
    """One row per (pool, layer): the safe-vs-unsafe probe's AUROC on validation, held-out and unseen-hazard
    test traces, its TPR at 1 % FPR, the 3-way accuracy of the same features, and the control task."""
    keep, y = zip(*(_binary(labels[s]) for s in SPLITS))
    keep, y = dict(zip(SPLITS, keep)), dict(zip(SPLITS, y))
    val = _validation_split(labels)
    groups = {s: np.array([t.group for t in traces[s]], dtype=object) for s in ("train", "test")}
    table = control_labels(groups["train"].tolist(), p.seed)
    # the control task is scored on the held-out traces about groups the probe trained on
    known = np.array([g in table for g in groups["test"]], dtype=bool)
    yc_test = np.array([table[g] for g in groups["test"][known]], dtype=bool)
    control = len(set(table.values())) == 2 and len(set(yc_test.tolist())) == 2
    rows = []
    for pool in CONTROL_POOLS:
        for layer in layers:
            x = {s: by_split[s][pool, layer] for s in SPLITS}
            fit_rows = x["train"][keep["train"]]
            present = [s for s in SPLITS[1:] if y[s].size]
            scores = dict(zip(present, binary_probe_scores(fit_rows, y["train"], *(x[s][keep[s]] for s in present),
                                                           C=p.probe.C, seed=p.seed)))
            three_way = fit_probe(x["train"], labels["train"], C=p.probe.C, seed=p.seed)
            row = {"model": name, "pool": pool, "layer": layer,
                   "val_auroc": auroc(y[val], scores[val]) if y[val].size else float("nan")}
            for split, prefix in (("test", "test"), ("unseen_test", "unseen")):
                row |= {f"{prefix}_auroc": auroc(y[split], scores[split]) if y[split].size else float("nan"),
                        f"{prefix}_tpr_at_1pct_fpr": tpr_at_fpr(y[split], scores[split]) if y[split].size
                        else float("nan"),
                        f"{prefix}_acc_3way": float(three_way.score(x[split], labels[split])) if len(labels[split])
                        else float("nan")}
            if control:
                yc = np.array([table[g] for g in groups["train"]])
                (sc,) = binary_probe_scores(x["train"], yc, x["test"][known], C=p.probe.C, seed=p.seed)
                row["control_auroc"] = auroc(yc_test, sc)
            else:
                row["control_auroc"] = float("nan")
            row["selectivity"] = row["test_auroc"] - row["control_auroc"]
            rows.append(row)
    return rows


def _best(binary: pd.DataFrame) -> pd.Series:
    """The (pool, layer) of the best probe among layers >= 1 (layer 0 is a control): the highest validation
    AUROC, ties to the shallower layer, then to the pool's order in :data:`CONTROL_POOLS`."""
    df = binary[binary.layer > 0] if (binary.layer > 0).any() else binary
    df = df.assign(order=df.pool.map(CONTROL_POOLS.index))
    return df.sort_values(["val_auroc", "layer", "order"], ascending=[False, True, True]).iloc[0]


def _controls(run: Run, df: pd.DataFrame, feats_by_pool: dict, traces: dict, labels: dict) -> dict:
    """The headline numbers of the controls for one model: the best probe (pool and layer chosen on
    validation), the bag of words on the reasoning text and the layer-0 probe, on held-out and unseen-hazard
    test traces, with 95 % intervals over test prompts (whole prompts resampled; probe and bag of words paired)."""
    p = run.params
    best = _best(df)
    first = df[df.layer == 0].sort_values("val_auroc", ascending=False).iloc[0]
    out = {"probe_choice_split": _validation_split(labels), "probe_best_pool": str(best.pool),
           "probe_best_layer": int(best.layer), "probe_layer0_pool": str(first.pool)}
    for pool in CONTROL_POOLS:
        out[f"probe_auroc_best_unseen_{pool}"] = float(_best(df[df.pool == pool]).unseen_auroc)
        out[f"probe_best_layer_{pool}"] = int(_best(df[df.pool == pool]).layer)
    texts = {s: [t.reasoning for t in traces[s]] for s in SPLITS}
    keep_train, y_train = _binary(labels["train"])
    three_way_bow = _bow_3way(texts, labels, p)
    for split, tag in (("test", "test"), ("unseen_test", "unseen")):
        keep, y = _binary(labels[split])
        if not y.size:
            keys = [f"{k}_{tag}{end}" for k in ("auroc_best", "auroc_bow", "auroc_layer0", "minus_bow")
                    for end in ("", "_lo", "_hi")]
            keys += [f"{k}_{tag}" for k in ("tpr_at_1pct_fpr_best", "tpr_at_1pct_fpr_bow", "acc_3way_best",
                                            "acc_3way_bow")]
            out |= {f"probe_{k}": float("nan") for k in keys}
            continue
        x = feats_by_pool[best.pool, int(best.layer)]
        (probe,) = binary_probe_scores(x["train"][keep_train], y_train, x[split][keep], C=p.probe.C, seed=p.seed)
        x0 = feats_by_pool[first.pool, int(first.layer)]
        (layer0,) = binary_probe_scores(x0["train"][keep_train], y_train, x0[split][keep], C=p.probe.C, seed=p.seed)
        bow = bow_scores([t for t, k in zip(texts["train"], keep_train) if k], y_train,
                         [t for t, k in zip(texts[split], keep) if k], p.probe.C, p.seed)
        groups = np.array([t.prompt for t, k in zip(traces[split], keep) if k], dtype=object)
        for key, scores in (("best", probe), ("bow", bow), ("layer0", layer0)):
            value, lo, hi = bootstrap_ci(auroc, y, scores, groups=groups, seed=p.seed)
            out |= {f"probe_auroc_{key}_{tag}": value, f"probe_auroc_{key}_{tag}_lo": lo,
                    f"probe_auroc_{key}_{tag}_hi": hi}
        gain = bootstrap_ci(lambda yy, a, b: auroc(yy, a) - auroc(yy, b), y, probe, bow, groups=groups, seed=p.seed)
        out |= dict(zip((f"probe_minus_bow_{tag}", f"probe_minus_bow_{tag}_lo", f"probe_minus_bow_{tag}_hi"), gain))
        out |= {f"probe_tpr_at_1pct_fpr_best_{tag}": tpr_at_fpr(y, probe),
                f"probe_tpr_at_1pct_fpr_bow_{tag}": tpr_at_fpr(y, bow),
                f"probe_acc_3way_best_{tag}": float(best[f"{tag}_acc_3way"]),
                f"probe_acc_3way_bow_{tag}": three_way_bow[split]}
    out |= {"probe_control_auroc_best": float(best.control_auroc), "probe_selectivity_best": float(best.selectivity)}
    return out


def _bow_3way(texts: dict, labels: dict, p) -> dict[str, float]:
    """3-way accuracy of the bag of words (:func:`craft.probing.bow_classifier`) on each test split."""
    clf = bow_classifier(texts["train"], labels["train"], p.probe.C, p.seed)
    return {s: float(clf.score(texts[s], labels[s])) if len(labels[s]) else float("nan")
            for s in ("test", "unseen_test")}


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
    sweep, binary, controls, feats, labels, probes = _sweep(run, traces, own)
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
        metrics |= {f"{prefix}{k}": v for k, v in controls[n].items()}
    table = pd.DataFrame([{"model": n, **controls[n]} for n in names])
    return ProbeResult(sweep, binary, table, chosen, pca, metrics, cached=False)


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
            atomic_write(folder / "controls_sweep.csv", result.binary.to_csv(index=False))
            atomic_write(folder / "controls.csv", result.controls.to_csv(index=False))
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
    return ProbeResult(pd.read_csv(folder / "layer_sweep.csv"), pd.read_csv(folder / "controls_sweep.csv"),
                       pd.read_csv(folder / "controls.csv"), chosen, pca,
                       load_json(folder / "metrics.json"), cached=True)
