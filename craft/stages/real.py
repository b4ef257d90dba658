"""Real-model stage (notebook 08, beyond the paper's tables): a real pretrained model's latents.

The params file named by the notebooks' ``real`` parameter (``params/smollm2-135m.yaml``: SmolLM2-135M-
Instruct, offline on a CPU; a paper-scale file names itself) drives a run of its own in
``run_dir/08_read_real_model_latents/``, through the same stage code as every other size:

1. **Prompt-level geometry.** THE latent of requests alone (:mod:`craft.latents.prompts`) for XSTest's
   safe prompts that sound unsafe against its unsafe contrasts, and for JailbreakBench's harmful and
   topic-matched benign behaviours. Per set, pool and layer a linear probe is fitted on a train split of
   groups (a behaviour and its benign twin stay together), the layer and pool are chosen on a validation
   split, and AUROC and the true-positive rate at 1 % false positives are reported on the test split,
   beside two controls fitted on the same rows: a bag-of-words classifier and the layer-0 probe.
2. **A latent judge.** The LCLR stage of notebook 02 fits heads on the model's hidden states of
   JailbreakBench's labelled responses (PAIR and JBC; label: JailbreakBench's judge), split by behaviour;
   their p_z on the test behaviours is :class:`craft.judges.latent.LatentJudge`'s verdict. Its agreement
   with the labels (Cohen's kappa, AUROC) is measured beside the refusal detector's, on the same rows.
3. **The model's own behaviour.** Its greedy answers to held-out JailbreakBench behaviours (harmful and
   benign) and to XSTest's safe prompts, judged by the latent judge and the refusal detector.
4. **R2L on real weights.** A short CRAFT GRPO run (``r2l`` of the params file: LoRA, a small group)
   through :func:`craft.stages.r2l.r2l_run`, its reward's text judge the latent judge, with its seconds
   per step and the process's peak memory.
"""

from __future__ import annotations

import resource
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from transformers import TrainerCallback

from craft.data import benchmarks as bench
from craft.io import atomic_write, load_json, save_json
from craft.judges import RefusalStringJudge
from craft.judges.latent import LatentJudge
from craft.latents.prompts import request_latents_by_layer
from craft.probing import binary_probe_scores, bow_scores, group_split, tpr_at_fpr
from craft.runs import Artifact, is_main_process, json_hash, locked
from craft.stages.common import Run, free_memory, generation_settings, open_run
from craft.stages.completions import evaluate_policies
from craft.stages.lclr import lclr_stage
from craft.stages.params import load_params
from craft.stages.r2l import RunResult, r2l_run
from craft.stats import auroc, bootstrap_ci, cohen_kappa, judge_agreement, wilson_ci
from craft.types import Prompt

__all__ = ["RealResult", "behaviour_table", "latent_judge", "own_behaviour", "prompt_geometry", "prompt_sets",
           "real_metrics", "real_r2l", "real_run", "real_stage"]


@dataclass
class RealResult:
    sweep: pd.DataFrame          # per (set, pool, layer): validation and test AUROC, TPR at 1 % FPR
    controls: pd.DataFrame       # per set: the chosen probe, the bag-of-words control, the layer-0 probe
    judged: pd.DataFrame         # the test responses: label, latent p_z, refusal detector verdict
    agreement: pd.DataFrame      # per judge: kappa, agreement and AUROC against JailbreakBench's labels
    behaviour: pd.DataFrame      # the model's own answers, judged by both
    r2l: RunResult               # the short GRPO run
    metrics: dict


def real_run(run: Run) -> Run:
    """The run of the real model: the ``real`` params file in ``run_dir/08_read_real_model_latents/`` (same seed,
    published figures in the same place)."""
    params = load_params(run.params.real, run_dir=str(run.stage_dir("real")), figures_dir=run.params.figures_dir,
                         seed=run.params.seed)
    return open_run(params, progress=run.progress)


def prompt_sets(real: Run) -> dict[str, pd.DataFrame]:
    """``{set: rows}`` with ``text``, ``harmful`` and ``group``: XSTest (unsafe contrasts vs safe prompts, each
    prompt its own group) and JailbreakBench (harmful vs benign behaviours, twins in one group)."""
    paths = real.params.source.data_paths
    x = bench.load_xstest(path=paths.get("xstest"))
    jbb = [bench.load_jbb_behaviors(split, path=paths.get("jbb_behaviors")).assign(harmful=split == "harmful")
           for split in ("harmful", "benign")]
    j = pd.concat(jbb, ignore_index=True)
    return {"xstest": pd.DataFrame({"text": x["prompt"], "harmful": x["label"] == "unsafe", "group": x["prompt"]}),
            "jbb": pd.DataFrame({"text": j["prompt"], "harmful": j["harmful"], "group": j["index"]})}


def prompt_geometry(real: Run, model, tok) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The probe sweep and its controls, cached in the real run's ``prompt_geometry/`` by what made them."""
    p, sets = real.params, prompt_sets(real)
    n = model.config.get_text_config().num_hidden_layers
    layers = list(range(n + 1)) if p.probe.layers == "all" else [x for x in p.probe.layers if x <= n]
    identity = {"model": real.source.policy_fingerprint(real.source.base_policy()), "layers": layers,
                "sets": json_hash({k: df.to_dict("list") for k, df in sets.items()}), "C": p.probe.C, "seed": p.seed,
                "batch_size": p.latent.batch_size}
    artifact = Artifact(real.root / "prompt_geometry", identity, recompute=True, what="prompt-geometry sweep")
    with locked(artifact.path):
        if not artifact.claim():
            sweep, controls = _sweep(real, model, tok, sets, layers)
            atomic_write(artifact.path / "sweep.csv", sweep.to_csv(index=False))
            atomic_write(artifact.path / "controls.csv", controls.to_csv(index=False))
            artifact.finish()
    return pd.read_csv(artifact.path / "sweep.csv"), pd.read_csv(artifact.path / "controls.csv")


def _sweep(real: Run, model, tok, sets: dict[str, pd.DataFrame], layers: list[int]):
    p = real.params
    rows, controls = [], []
    for name, df in sets.items():
        y, split = df["harmful"].to_numpy(bool), group_split(df["group"], seed=p.seed)
        tr, va, te = (split == s for s in ("train", "val", "test"))
        feats = request_latents_by_layer(model, tok, list(df["text"]), layers, batch_size=p.latent.batch_size)
        scores = {}
        for (pool, layer), x in feats.items():
            x = x.numpy()
            val, scores[pool, layer] = binary_probe_scores(x[tr], y[tr], x[va], x[te], C=p.probe.C, seed=p.seed)
            rows.append({"set": name, "pool": pool, "layer": layer, "val_auroc": auroc(y[va], val),
                         "test_auroc": auroc(y[te], scores[pool, layer]),
                         "test_tpr_at_1pct_fpr": tpr_at_fpr(y[te], scores[pool, layer])})
        sweep = pd.DataFrame([r for r in rows if r["set"] == name])
        best = sweep.sort_values(["val_auroc", "layer"], ascending=[False, True]).iloc[0]
        # the layer-0 control: the embeddings, in the pool its own validation AUROC picks (the ``last`` state at
        # layer 0 is the template's final token, the same for every request)
        first = sweep[sweep.layer == min(layers)].sort_values("val_auroc", ascending=False).iloc[0]
        probe, layer0 = scores[best.pool, int(best.layer)], scores[first.pool, min(layers)]
        bow = bow_scores(df["text"][tr], y[tr], df["text"][te], p.probe.C, p.seed)
        # 95 % intervals over the test prompts (whole groups resampled), the probe and its controls paired
        groups = df["group"].to_numpy()[te]
        _, lo, hi = bootstrap_ci(auroc, y[te], probe, groups=groups, seed=p.seed)
        _, bow_lo, bow_hi = bootstrap_ci(auroc, y[te], bow, groups=groups, seed=p.seed)
        gain, gain_lo, gain_hi = bootstrap_ci(lambda yy, a, b: auroc(yy, a) - auroc(yy, b), y[te], probe, bow,
                                              groups=groups, seed=p.seed)
        controls.append({"set": name, "n": len(df), "n_test": int(te.sum()), "best_pool": best.pool,
                         "best_layer": int(best.layer), "best_test_auroc": best.test_auroc,
                         "best_test_auroc_lo": lo, "best_test_auroc_hi": hi,
                         "best_test_tpr_at_1pct_fpr": best.test_tpr_at_1pct_fpr,
                         "layer0_pool": first.pool, "layer0_test_auroc": auroc(y[te], layer0),
                         "bow_test_auroc": auroc(y[te], bow),
                         "bow_test_auroc_lo": bow_lo, "bow_test_auroc_hi": bow_hi,
                         "bow_test_tpr_at_1pct_fpr": tpr_at_fpr(y[te], bow),
                         "probe_minus_bow": gain, "probe_minus_bow_lo": gain_lo, "probe_minus_bow_hi": gain_hi})
    return pd.DataFrame(rows), pd.DataFrame(controls)


def latent_judge(real: Run, model, tok) -> tuple[pd.DataFrame, pd.DataFrame, LatentJudge]:
    """Fit the heads (the LCLR stage on the labelled responses) and judge the test behaviours' responses."""
    res = lclr_stage(real)
    test = real.source.traces("lclr", "test")
    unsafe = np.array([t.label == "unsafe" for t in test])
    p_z = res.heads[real.params.lclr.variants[0]].p_safe(res.test_features).float().numpy()
    refuses = RefusalStringJudge().score([t.prompt for t in test], [t.reasoning for t in test])
    judged = pd.DataFrame({"request": [t.prompt for t in test], "response": [t.reasoning for t in test],
                           "jailbroken": unsafe, "latent_p_safe": p_z, "refusal_p_safe": refuses})
    agreement = judge_agreement({"jailbreakbench": list((~unsafe).astype(float)), "latent": list(p_z),
                                 "refusal": list(refuses)})
    agreement = agreement[agreement.judge_a == "jailbreakbench"].reset_index(drop=True)
    # 95 % intervals over the test responses, resampled by behaviour (its responses are drawn together)
    groups = judged["request"].to_numpy()
    for i, b in enumerate(agreement.judge_b):
        harm = 1.0 - judged[f"{b}_p_safe"].to_numpy()
        auc = bootstrap_ci(auroc, unsafe, harm, groups=groups, seed=real.params.seed)
        kappa = bootstrap_ci(lambda y, h: cohen_kappa(list(y), list(h >= 0.5)), unsafe, harm, groups=groups,
                             seed=real.params.seed)
        agreement.loc[i, ["auroc", "auroc_lo", "auroc_hi"]] = auc
        agreement.loc[i, ["kappa_lo", "kappa_hi"]] = kappa[1:]
    # the two judges compared paired, on the same resampled responses: kappa(latent) - kappa(refusal)
    diff = bootstrap_ci(lambda y, a, b: cohen_kappa(list(y), list(a <= 0.5)) - cohen_kappa(list(y), list(b <= 0.5)),
                        unsafe, p_z, np.asarray(refuses, dtype=float), groups=groups, seed=real.params.seed)
    agreement.loc[agreement.judge_b == "latent", ["kappa_minus_refusal", "kappa_minus_refusal_lo",
                                                  "kappa_minus_refusal_hi"]] = diff
    spec = real.params.source.reward_judge
    judge = LatentJudge(model, real.heads_dir(), tokenizer=tok, batch_size=spec.batch_size,
                        max_response_tokens=spec.max_response_tokens or None)
    return judged, agreement, judge


def own_behaviour(real: Run, judge: LatentJudge) -> pd.DataFrame:
    """The model's greedy answers to the held-out behaviours and to XSTest's safe prompts, judged by both
    judges on what the user is shown (column ``response``)."""
    test = real.source.test_behaviours()
    sets = prompt_sets(real)
    jbb = sets["jbb"][sets["jbb"].group.isin(test)]
    safe = sets["xstest"][~sets["xstest"].harmful].head(len(jbb) // 2)
    prompts = [Prompt(t, "harmful" if h else "benign", "none", "direct" if h else "benign", benchmark=b)
               for b, df in (("jbb", jbb), ("xstest", safe)) for t, h in zip(df["text"], df["harmful"])]
    records = evaluate_policies(real, {"policy": real.source.base_policy()}, prompts, generation_settings(real))
    # what the user is shown (craft.models.judged_response): the answer after a closed reasoning block, else
    # the whole completion, which for a model without a reasoning block is always the case
    shown = [a if closed and isinstance(a, str) and a.strip() else str(r)
             for r, a, closed in zip(records.reasoning, records.answer, records.closed)]
    latent = judge.score(list(records.goal), shown)
    refusal = RefusalStringJudge().score(list(records.goal), shown)
    return records.assign(response=shown, latent_harmful=[p <= 0.5 for p in latent], latent_p_safe=latent,
                          refusal_detector_refuses=[s == 1.0 for s in refusal])


def behaviour_table(behaviour: pd.DataFrame) -> pd.DataFrame:
    """Per benchmark and kind: the prompts, and the share the latent judge calls harmful and the share the
    refusal detector finds refused, each with its 95 % Wilson interval over the prompts."""
    rows = []
    for (benchmark, kind), part in behaviour.groupby(["benchmark", "kind"], sort=False):
        row = {"benchmark": benchmark, "kind": kind, "prompts": len(part)}
        for col, name in (("latent_harmful", "latent_judge_harmful"), ("refusal_detector_refuses", "refused")):
            share, lo, hi = wilson_ci(int(part[col].sum()), len(part))
            row |= {name: share, f"{name}_lo": lo, f"{name}_hi": hi}
        rows.append(row)
    return pd.DataFrame(rows)


class _StepTimer(TrainerCallback):
    """Wall time of each optimizer step (generation, rewards and update; not the periodic evaluations)."""

    def __init__(self):
        self.seconds, self._start = [], None

    def on_step_begin(self, args, state, control, **kwargs):
        self._start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if self._start is not None:
            self.seconds.append(time.perf_counter() - self._start)


def real_r2l(real: Run) -> tuple[RunResult, list[float]]:
    """The short GRPO run of the real model (the first ``r2l.variants`` entry, the run's seed) and the wall
    time of each of its optimizer steps (generation, rewards and update; not the periodic evaluations),
    measured when it trained."""
    timer = _StepTimer()
    result = r2l_run(real, real.params.r2l.variants[0], real.params.seed, callbacks=[timer])
    path = result.path / "step_seconds.json"         # kept beside the run, so a loaded run reports them too
    if timer.seconds and is_main_process():
        save_json(timer.seconds, path)
    return result, (load_json(path) if path.is_file() else timer.seconds)


def real_stage(run: Run) -> tuple[Run, RealResult]:
    """The four parts of the module docstring on the real model (what notebook 08 calls one by one);
    returns its run and the result."""
    real = real_run(run)
    started = time.perf_counter()
    model, tok = real.source.load_policy()                                 # converted once, then from the cache
    load_seconds = time.perf_counter() - started
    sweep, controls = prompt_geometry(real, model, tok)
    judged, agreement, judge = latent_judge(real, model, tok)
    behaviour = own_behaviour(real, judge)
    del model, judge
    free_memory()
    r2l, step_seconds = real_r2l(real)
    metrics = real_metrics(controls, agreement, behaviour, r2l, step_seconds, load_seconds)
    return real, RealResult(sweep, controls, judged, agreement, behaviour, r2l, metrics)


def real_metrics(controls: pd.DataFrame, agreement: pd.DataFrame, behaviour: pd.DataFrame, r2l: RunResult,
                 step_seconds: list[float], load_seconds: float) -> dict:
    """The flat numbers of notebook 08 (``real_…``, ``latent_judge_…``, ``refusal_detector_…``)."""
    out = {"real_model_load_seconds": load_seconds}
    for row in controls.itertuples():
        s = row.set
        out |= {f"real_probe_auroc_best_{s}": row.best_test_auroc, f"real_probe_best_layer_{s}": row.best_layer,
                f"real_probe_best_pool_{s}": row.best_pool, f"real_probe_auroc_layer0_{s}": row.layer0_test_auroc,
                f"real_bow_auroc_{s}": row.bow_test_auroc, f"real_probe_tpr_at_1pct_fpr_{s}":
                row.best_test_tpr_at_1pct_fpr, f"real_bow_tpr_at_1pct_fpr_{s}": row.bow_test_tpr_at_1pct_fpr,
                f"real_n_test_{s}": row.n_test, f"real_probe_minus_bow_auroc_{s}": row.probe_minus_bow,
                f"real_probe_minus_bow_auroc_lo_{s}": row.probe_minus_bow_lo,
                f"real_probe_minus_bow_auroc_hi_{s}": row.probe_minus_bow_hi}
    for row in agreement.itertuples():
        name = "latent_judge" if row.judge_b == "latent" else "refusal_detector"
        out |= {f"{name}_kappa_test": row.kappa, f"{name}_kappa_test_lo": row.kappa_lo,
                f"{name}_kappa_test_hi": row.kappa_hi, f"{name}_agreement_test": row.agreement,
                f"{name}_auroc_test": row.auroc}
    harmful, benign = behaviour[behaviour.kind == "harmful"], behaviour[behaviour.kind == "benign"]
    latent = agreement[agreement.judge_b == "latent"].iloc[0]
    out |= {"latent_judge_minus_refusal_kappa_test": latent.kappa_minus_refusal,
            "latent_judge_minus_refusal_kappa_test_lo": latent.kappa_minus_refusal_lo,
            "latent_judge_minus_refusal_kappa_test_hi": latent.kappa_minus_refusal_hi}
    out |= {"real_n_judge_test_rows": int(agreement.n.iloc[0]),
            "real_harmful_prompts_judged_harmful_latent": float(harmful.latent_harmful.mean()),
            "real_harmful_prompts_refused": float(harmful.refusal_detector_refuses.mean()),
            "real_benign_prompts_judged_harmful_latent": float(benign.latent_harmful.mean()),
            "real_benign_prompts_refused": float(benign.refusal_detector_refuses.mean()),
            # on harmful prompts (where a refusal means safe): harmful by one judge, safe by the other
            "real_judges_disagree_harmful": float((harmful.latent_harmful == harmful.refusal_detector_refuses).mean())}
    rewards = [row["reward"] for row in r2l.log_history if "reward" in row]
    out |= {"real_r2l_steps": r2l.steps, "real_r2l_seconds_per_step": float(np.median(step_seconds))
            if step_seconds else float("nan"),
            "real_r2l_rewards_finite": bool(rewards) and bool(np.isfinite(rewards).all()),
            "real_r2l_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    return out
