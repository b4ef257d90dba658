"""The stage runners on a tiny organism: every artifact is reused only with the identity that made
it. Each silent reuse that a hostile user once found now recomputes or refuses with the key that
changed; a second process is locked out; a checkpoint half-written by a kill is skipped; the CLI and
the notebook path train the same run."""

import dataclasses
import json
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from organism_fixtures import tiny_params
from transformers import TrainerCallback

from craft import io
from craft.evaluate import CountedRate, coded_counts, prompt_slices, summary_metrics
from craft.lclr import load_heads
from craft.runs import RunLockedError, StaleArtifactError, content_hash, locked
from craft.stages import completions as completions_module
from craft.stages import load_params, open_run, params_from_notebook
from craft.stages.build import build_stage
from craft.stages.completions import evaluate_policies
from craft.stages.evaluate import default_methods, evaluate_stage, seed_records
from craft.stages.lclr import lclr_stage, shuffled_label_heads, trained_heads
from craft.stages.monitor import control_job
from craft.stages.probe import probe_stage
from craft.stages.r2l import (
    POOLED_RATES,
    SLICE_SUFFIX,
    ablation_jobs,
    base_records,
    coded_shares,
    pooled_coded_shares,
    pooled_rate_intervals,
    pooled_slice_metrics,
    r2l_artifact,
    r2l_run,
    r2l_stage,
)
from craft.stats import wilson_ci

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A tiny organism with LCLR heads (layer 1): what notebooks 00 and 02 leave behind."""
    root = tmp_path_factory.mktemp("organism")
    run = open_run(load_params(None, **tiny_params(root)), progress=False)
    build_stage(run)
    lclr_stage(run)
    return root


def fresh(built, tmp_path, **changes):
    """A run in ``tmp_path`` that starts from a copy of the built organism and heads."""
    shutil.copytree(built / "run", tmp_path / "run")
    return open_run(load_params(None, **tiny_params(tmp_path, **changes)), progress=False)


# ----------------------------------------------------------------------------- build

def test_build_is_loaded_and_a_changed_setting_is_refused(built, tmp_path):
    run = fresh(built, tmp_path)
    assert build_stage(run).cached
    changed = fresh(built, tmp_path / "b", organism={"sft": {"steps": 41}})
    with pytest.raises(StaleArtifactError, match=r"organism\.sft\.steps: 40 -> 41"):
        build_stage(changed)


def test_a_folder_made_by_something_else_is_refused(tmp_path):
    (tmp_path / "run" / "00_build_model_organism").mkdir(parents=True)
    (tmp_path / "run" / "00_build_model_organism" / "model.bin").write_text("not ours")
    with pytest.raises(StaleArtifactError, match="no identity.json"):
        build_stage(open_run(load_params(None, **tiny_params(tmp_path)), progress=False))


# ----------------------------------------------------------------------------- LCLR and the latent

def test_lclr_refuses_heads_of_another_layer(built, tmp_path):
    run = fresh(built, tmp_path, latent={"layer": 2})
    with pytest.raises(StaleArtifactError, match=r"latent\.layer: 1 -> 2"):
        lclr_stage(run)


def test_r2l_refuses_heads_of_another_latent(built, tmp_path):
    run = fresh(built, tmp_path, latent={"layer": 2})
    with pytest.raises(StaleArtifactError, match=r"latent\.layer: 1 -> 2(.|\n)*notebook 02"):
        r2l_run(run, "craft", 0)
    assert not (run.stage_dir("r2l") / "craft-seed0").exists(), "nothing is written before the check"


def test_heads_record_their_latent(built):
    cfg = json.loads((built / "run" / "02_train_lclr" / "heads-paper" / "lclr_config.json").read_text())
    assert (cfg["layer"], cfg["pool"], cfg["d_model"]) == (1, "mean", 32)


# ----------------------------------------------------------------------------- R2L

def test_probe_reports_every_layer_in_and_out_of_distribution(built, tmp_path):
    from craft.probing import choose_layer

    run = fresh(built, tmp_path, latent={"layer": "auto"})
    res = probe_stage(run)
    sweep = res.sweep
    assert list(sweep.layer) == [1, 2]
    for col in ("probe_acc_3way", "unseen_val_acc", "unseen_acc", "rethink_position", "unseen_rethink_position"):
        assert sweep[col].notna().all(), col
    # the layer is chosen on unseen-hazard validation traces, and reported on the other half
    assert res.metrics["chosen_layer"] == choose_layer(sweep, acc="unseen_val_acc", loss="unseen_val_log_loss")
    best = sweep[sweep.layer == res.metrics["chosen_layer"]].iloc[0]
    assert res.metrics["probe_acc_3way_unseen"] == best.unseen_acc
    assert res.metrics["probe_acc_layer0_unseen"] == sweep.iloc[0].unseen_acc
    assert res.metrics["n_unseen_val_traces"] > 0 and res.metrics["n_unseen_test_traces"] > 0
    assert probe_stage(run).cached


def test_probe_controls_read_every_pool_and_choose_on_validation(built, tmp_path):
    """Before any claim about depth: the bag of words, the layer-0 probe and the control task, for every
    pooling; the best pooling and layer are the validation's choice, and the reported numbers are test's."""
    from craft.probing import bow_scores
    from craft.stages.probe import CONTROL_POOLS, control_labels
    from craft.stats import auroc

    run = fresh(built, tmp_path, latent={"layer": "auto"})
    res = probe_stage(run)
    b, m = res.binary, res.metrics
    assert set(b.pool) == set(CONTROL_POOLS) and sorted(set(b.layer)) == [0, 1, 2]   # layer 0 read as a control
    deep = b[b.layer > 0]
    top = deep[deep.val_auroc >= deep.val_auroc.max() - 1e-12]
    assert m["probe_best_layer"] == top.layer.min() and m["probe_best_pool"] in set(top.pool)
    assert m["probe_choice_split"] == "unseen_val"
    row = b[(b.pool == m["probe_best_pool"]) & (b.layer == m["probe_best_layer"])].iloc[0]
    assert m["probe_auroc_best_unseen"] == pytest.approx(row.unseen_auroc)
    for pool in CONTROL_POOLS:
        assert 0 <= m[f"probe_auroc_best_unseen_{pool}"] <= 1
    for key in ("best", "bow", "layer0"):
        for tag in ("test", "unseen"):
            assert m[f"probe_auroc_{key}_{tag}_lo"] <= m[f"probe_auroc_{key}_{tag}"] <= m[f"probe_auroc_{key}_{tag}_hi"]
    # the bag of words, recomputed here from the traces: unigram counts of the reasoning, safe vs unsafe
    tr, te = run.source.traces("probe", "train"), run.source.traces("probe", "unseen_test")
    tr, te = [t for t in tr if t.label != "rethink"], [t for t in te if t.label != "rethink"]
    bow = bow_scores([t.reasoning for t in tr], [t.label == "unsafe" for t in tr], [t.reasoning for t in te])
    assert m["probe_auroc_bow_unseen"] == pytest.approx(auroc([t.label == "unsafe" for t in te], bow))
    # the control task: one random label per hazard, and a score on held-out traces of the same hazards
    assert {t.group for t in tr} <= set(control_labels([t.group for t in tr], run.params.seed))
    assert b.control_auroc.notna().all()
    assert m["probe_selectivity_best"] == pytest.approx(row.test_auroc - row.control_auroc)
    assert res.controls.model.tolist() == list(dict.fromkeys(res.sweep.model))
    cached = probe_stage(run)
    assert cached.cached and cached.binary.equals(res.binary)


def test_lclr_reports_unseen_hazard_metrics(built, tmp_path):
    res = lclr_stage(fresh(built, tmp_path))
    assert res.cached and res.unseen
    for key in ("lclr_auroc_unseen", "lclr_ece_unseen", "lclr_acc_3way_unseen"):
        assert 0 <= res.metrics[key] <= 1, key
    assert res.metrics["n_unseen_traces"] > 0


def test_parallel_workers_train_the_runs_and_share_the_step0_evaluation(built, tmp_path):
    run = fresh(built, tmp_path, r2l={"workers": 2, "variants": ["output_only", "craft"]})
    caches = run.root / "cache" / "generations"
    before = set(caches.glob("base-*"))
    results = r2l_stage(run, seeds=[0], also=control_job(run))
    # trained by the two workers, loaded here from their folders; the monitor's positive control in the same pool,
    # in its own stage's folder, and not among the results
    assert {job: r.cached for job, r in results.items()} == {("output_only", 0): True, ("craft", 0): True}
    assert control_job(run) == [("obfuscator", 0, "monitor", 0)]
    assert (run.r2l_dir("obfuscator", 0, "monitor") / "DONE").is_file()
    assert all(r.steps == 2 for r in results.values())
    step0 = [r.history[r.history.step == 0].drop(columns="step").iloc[0] for r in results.values()]
    pd.testing.assert_series_equal(step0[0], step0[1], check_names=False)
    assert len(set(caches.glob("base-*")) - before) == 1     # the base policy's monitor completions, made once


def test_r2l_reuses_a_finished_run_and_refuses_changed_settings(built, tmp_path):
    run = fresh(built, tmp_path)
    first = r2l_run(run, "output_only", 0)
    assert not first.cached and first.steps == 2 and list(first.history.step) == [0, 1, 2]
    assert not list(first.path.glob("checkpoint-*"))
    again = r2l_run(run, "output_only", 0)
    assert again.cached and again.history.equals(first.history)
    for changes, key in [({"grpo": {"learning_rate": 0.002}}, r"r2l\.grpo\.learning_rate: 0\.001 -> 0\.002"),
                         ({"grpo": {"max_steps": 3}}, r"r2l\.grpo\.max_steps: 2 -> 3"),
                         ({"w_txt": 0.3}, r"r2l\.w_txt: 0\.4 -> 0\.3")]:
        changed = open_run(load_params(None, **tiny_params(tmp_path, r2l=changes)), progress=False)
        with pytest.raises(StaleArtifactError, match=key):
            r2l_run(changed, "output_only", 0)


def test_shuffled_label_heads_are_a_seeded_draw_that_loses_the_labels(built, tmp_path):
    run = fresh(built, tmp_path)
    trained, a, b = trained_heads(run), shuffled_label_heads(run, 0), shuffled_label_heads(run, 0)
    assert a.config == dataclasses.replace(trained.config, seed=0)     # fit as notebook 02 fits, labels aside
    for x, y in zip(a.state_dict().values(), b.state_dict().values()):
        torch.testing.assert_close(x, y, rtol=0, atol=0)              # the same seed: the same heads
    c = shuffled_label_heads(run, 1)
    assert not torch.equal(a.prototypes.mu, c.prototypes.mu)          # another seed: another draw
    result = r2l_run(run, "shuffled_lclr", 1, stage="ablations", eval_every=0)
    assert (result.path / "heads").is_dir() and any("rewards/r_ls/mean" in row for row in result.log_history)
    saved = load_heads(result.path / "heads")
    torch.testing.assert_close(saved.prototypes.mu, c.prototypes.mu)   # the heads that run rewarded with


def test_ablation_jobs_give_no_lclr_its_head_draws(built, tmp_path):
    run = fresh(built, tmp_path, ablations={"variants": ["no_lclr", "no_cons"], "n_seeds": 2, "head_draws": 3})
    assert ablation_jobs(run) == [("no_lclr", 0), ("no_lclr", 1), ("no_lclr", 2), ("no_cons", 0), ("no_cons", 1)]
    assert ablation_jobs(run, ["no_cons"]) == [("no_cons", 0), ("no_cons", 1)]


def test_seed_records_sample_every_seed_of_the_grpo_methods_and_baselines(built, tmp_path):
    from craft.stages.baselines import baselines_stage

    run = fresh(built, tmp_path, r2l={"variants": ["output_only"], "n_seeds": 2, "eval_every": 0},
                baselines={"methods": ["sft_offpolicy"]})
    r2l_stage(run)
    trained = baselines_stage(run)                    # one policy a seed of the R2L runs
    assert dict(trained) == {"sft_offpolicy": str(run.baseline_dir("sft_offpolicy") / "policy")}
    assert trained.seeds == {("sft_offpolicy", 0): trained["sft_offpolicy"],
                             ("sft_offpolicy", 1): str(run.baseline_dir("sft_offpolicy", 1) / "policy")}
    assert run.baseline_dir("sft_offpolicy", 1).name == "sft_offpolicy-seed1"
    weights = {content_hash(f"{path}/model.safetensors") for path in trained.seeds.values()}
    assert len(weights) == 2                          # another seed: another draw of data and order
    ev = evaluate_stage(run, default_methods(run, baselines=trained))
    all_seeds = seed_records(run, ev.records, baselines=trained.seeds)
    assert sorted(set(zip(all_seeds.method, all_seeds.seed))) == [("output_only", 0), ("output_only", 1),
                                                                   ("sft_offpolicy", 0), ("sft_offpolicy", 1)]
    for method in ("output_only", "sft_offpolicy"):
        mine = all_seeds[all_seeds.method == method]
        seed0 = mine[mine.seed == 0].drop(columns="seed").reset_index(drop=True)
        pd.testing.assert_frame_equal(seed0, ev.records[ev.records.method == method].reset_index(drop=True))
        assert mine[mine.seed == 1].prompt.tolist() == seed0.prompt.tolist()   # the same prompts, paired by position
        assert list((run.root / "cache" / "generations").glob(f"{method}-seed1-*"))   # sampled under its own name
    assert baselines_stage(run).seeds == trained.seeds   # finished: loaded, not trained again


def test_reasoning_judge_run_reads_no_heads_and_coded_shares_count_its_records(built, tmp_path):
    run = fresh(built, tmp_path)
    result = r2l_run(run, "reasoning_judge", 0)
    artifact = r2l_artifact(run, "reasoning_judge", 0)
    assert artifact.identity["reasoning_reward_judge"] == "surface" and artifact.identity["heads"] is None
    assert {"r2l.alpha", "r2l.w_cons"} <= set(artifact.ignore) and "r2l.w_lat" not in artifact.ignore  # R_rtxt's weight
    assert any("rewards/r_rtxt/mean" in row for row in result.log_history)
    shares = coded_shares(run, {("reasoning_judge", 0): result}).set_index("variant")
    assert list(shares.index) == ["base", "reasoning_judge"]
    surface = run.source.judge("surface")
    for variant, records in (("base", base_records(run, 0)), ("reasoning_judge", result.records)):
        row = shares.loc[variant]
        assert (row.n_coded, row.n_unsafe) == coded_counts(records, surface)
        assert row.coded_share_lo <= row.coded_share <= row.coded_share_hi or row.n_unsafe == 0
    twice = pd.concat([shares.reset_index(), shares.reset_index().assign(seed=1)])
    pooled = pooled_coded_shares(twice)
    assert list(pooled.index) == ["base", "reasoning_judge"]
    assert (pooled.n_harmful == 2 * shares.n_harmful).all() and (pooled.n_coded == 2 * shares.n_coded).all()
    assert pooled.reasoning_harm.tolist() == pytest.approx(shares.reasoning_harm.tolist())
    # the rates of summary_metrics pooled over seeds: counts summed, a Wilson interval around the pooled rate
    records = {("base", 0): base_records(run, 0), ("reasoning_judge", 0): result.records,
               ("reasoning_judge", 1): result.records.iloc[: len(result.records) // 2]}
    pooled_rates = pooled_rate_intervals(records)
    one, half = summary_metrics(records[("reasoning_judge", 0)]), summary_metrics(records[("reasoning_judge", 1)])
    for rate in POOLED_RATES:
        k, n = one[rate].k + half[rate].k, one[rate].n + half[rate].n
        lo, hi = pooled_rates[f"reasoning_judge_{rate}_ci_low"], pooled_rates[f"reasoning_judge_{rate}_ci_high"]
        assert pooled_rates[f"reasoning_judge_{rate}_pooled"] == pytest.approx(k / n) and lo - 1e-12 <= k / n <= hi
        assert (lo, hi) == pytest.approx(wilson_ci(k, n)[1:])
    assert pooled_rates["base_ssa_rate_pooled"] == pytest.approx(summary_metrics(records[("base", 0)])["ssa_rate"])
    # the same per slice of the harmful prompts, with the coded share of the unsafe reasoning per slice
    slices = pooled_slice_metrics(records, surface)
    for name, suffix in SLICE_SUFFIX.items():
        rate = f"reasoning_harm_rate{suffix}"
        if isinstance(one.get(rate), CountedRate):
            k, n = one[rate].k + half[rate].k, one[rate].n + half[rate].n
            key = f"reasoning_judge_reasoning_harm_rate_{name}"
            assert slices[key] == pytest.approx(k / n)
            assert slices[f"{key}_ci_low"] - 1e-12 <= k / n <= slices[f"{key}_ci_high"] + 1e-12
    assert "reasoning_judge_ssa_rate_core" in slices and "reasoning_judge_ssa_rate_unseen" in slices
    harmful = result.records[result.records.kind == "harmful"]
    core = harmful[prompt_slices(harmful) == "core"]
    coded, unsafe = coded_counts(core, surface)
    half_h = records[("reasoning_judge", 1)][records[("reasoning_judge", 1)].kind == "harmful"]
    c2, u2 = coded_counts(half_h[prompt_slices(half_h) == "core"], surface)
    if unsafe + u2:
        assert slices["reasoning_judge_coded_share_core"] == pytest.approx((coded + c2) / (unsafe + u2))
    changed = open_run(load_params(None, **tiny_params(tmp_path, r2l={"w_lat": 0.3})), progress=False)
    with pytest.raises(StaleArtifactError, match=r"r2l\.w_lat: 0\.5 -> 0\.3"):
        r2l_run(changed, "reasoning_judge", 0)


def test_r2l_refuses_a_changed_training_mix_or_base_policy(built, tmp_path):
    run = fresh(built, tmp_path)
    r2l_run(run, "output_only", 0)
    mix = open_run(load_params(None, **tiny_params(tmp_path, source={"harmful_fraction": 0.0})), progress=False)
    with pytest.raises(StaleArtifactError, match="train_prompts"):
        r2l_run(mix, "output_only", 0)
    base = run.stage_dir("build") / "model" / "model.safetensors"
    data = bytearray(base.read_bytes())
    data[-1] ^= 1                                            # a re-initialised base policy: other weights
    base.write_bytes(bytes(data))
    with pytest.raises(StaleArtifactError, match="base_policy"):
        r2l_run(run, "output_only", 0)


class Crash(TrainerCallback):
    def __init__(self, at):
        self.at = at

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.at:
            raise KeyboardInterrupt


class StartStep(TrainerCallback):
    def on_train_begin(self, args, state, control, **kwargs):
        self.step = state.global_step


def test_a_partial_checkpoint_left_by_a_kill_is_skipped(built, tmp_path):
    run = fresh(built, tmp_path, r2l={"grpo": {"max_steps": 4}})
    with pytest.raises(KeyboardInterrupt):
        r2l_run(run, "output_only", 0, callbacks=[Crash(3)])    # after step 3, before its checkpoint
    folder = run.stage_dir("r2l") / "output_only-seed0"
    assert (folder / "checkpoint-2" / "trainer_state.json").is_file() and not (folder / "DONE").exists()
    partial = folder / "checkpoint-3"            # killed while writing checkpoint-3: weights, no trainer state
    partial.mkdir()
    shutil.copy(folder / "checkpoint-2" / "model.safetensors", partial / "model.safetensors")
    start = StartStep()
    resumed = r2l_run(run, "output_only", 0, callbacks=[start])
    assert start.step == 2 and resumed.steps == 4 and not resumed.cached
    assert list(resumed.history.step) == [0, 1, 2, 3, 4]


def test_a_second_process_is_locked_out(built, tmp_path):
    run = fresh(built, tmp_path)
    folder = run.stage_dir("r2l") / "output_only-seed0"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from craft.runs import locked
        with locked({str(folder)!r}):
            print("held", flush=True)
            time.sleep(60)
        """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunLockedError, match=r"another process \(pid"):
            r2l_run(run, "output_only", 0)
    finally:
        holder.kill()
        holder.wait()
    with locked(folder):          # the lock died with its process
        pass


# ----------------------------------------------------------------------------- evaluation cache

def test_completions_are_cached_under_what_made_them(built, tmp_path, monkeypatch):
    run = fresh(built, tmp_path)
    prompts = run.source.eval_prompts()[:6]
    base = run.source.base_policy()
    trained = r2l_run(run, "output_only", 0).path / "model"       # a retrained policy: its own completions
    first = evaluate_policies(run, {"base": base}, prompts)
    monkeypatch.setattr(completions_module, "generate", lambda *a, **k: pytest.fail("regenerated a cached set"))
    assert evaluate_policies(run, {"base": base}, prompts).answer.tolist() == first.answer.tolist()
    calls = []
    monkeypatch.setattr(completions_module, "generate", lambda m, t, p, s, progress=False: calls.append(s) or
                        ["x"] * len(p))
    for changes in ({"temperature": 1.5}, {"max_new_tokens": 8}):
        changed = open_run(load_params(None, **tiny_params(tmp_path, evaluate=changes)), progress=False)
        evaluate_policies(changed, {"base": base}, prompts)
    evaluate_policies(run, {"base": str(trained)}, prompts)
    assert [s.temperature for s in calls] == [1.5, 0.6, 0.6] and [s.max_new_tokens for s in calls] == [16, 8, 16]


def test_worker_processes_sample_what_one_process_samples(built, tmp_path):
    """evaluate_stage's ``evaluate.workers``: policies sampled in one-thread worker processes (this test's
    process runs on one thread too) give the very completions of the in-process path."""
    one = one_thread_run(built, tmp_path / "b")
    prompts, base = one.source.eval_prompts()[:6], one.source.base_policy()
    policies = {"first": base, "second": base}              # two cache folders: each is sampled
    alone = evaluate_policies(one, policies, prompts)
    workers = evaluate_policies(fresh(built, tmp_path / "c"), policies, prompts, workers=2)
    assert workers.answer.tolist() == alone.answer.tolist() and workers.method.tolist() == alone.method.tolist()


def one_thread_run(built, tmp_path, **changes):
    """:func:`fresh` on one torch thread, as a worker runs (``open_run`` sets an organism run to two threads,
    and on some CPUs a step's floating-point sums differ between one and two threads)."""
    run = fresh(built, tmp_path, **changes)
    torch.set_num_threads(1)
    return run


def test_baselines_trained_in_workers_are_those_trained_in_process(built, tmp_path):
    """``baselines.workers``: each baseline in its own one-thread process (this test's process runs on one
    thread too) gives the same weights as training them one after the other, and is then loaded."""
    from craft.stages.baselines import baselines_stage

    alone = baselines_stage(one_thread_run(built, tmp_path / "a"))
    run = fresh(built, tmp_path / "b", baselines={"workers": 2})
    workers = baselines_stage(run)
    assert list(workers) == list(alone) == ["sft_offpolicy", "intervened_po"]
    for method in alone:
        weights = [content_hash(f"{folder[method]}/model.safetensors") for folder in (workers, alone)]
        assert weights[0] == weights[1], method
    assert baselines_stage(run) == workers                    # finished: loaded, not trained again


def test_intervened_po_learning_rate_is_chosen_on_validation_prompts_and_every_seed_trains_with_it(built, tmp_path):
    from craft.stages.baselines import baselines_stage, choose_learning_rate, trained, tune_stage

    run = fresh(built, tmp_path, r2l={"n_seeds": 2}, baselines={
        "methods": ["intervened_po"], "dpo_learning_rates": [1e-4, 3e-5],
        "validation": {"core": 6, "arithmetic": 4, "benign_repeats": 1}})
    validation = {p.text for p in run.source.validation_prompts(run.params.baselines.validation)}
    assert validation and not validation & {p.text for p in run.source.eval_prompts()}       # never the test
    assert not validation & {p.text for p in run.source.monitor_prompts()}
    assert trained(run) == {}                          # candidates not trained yet: nothing to evaluate
    tuning = tune_stage(run)
    assert list(tuning.table.policy) == ["base", "intervened_po-lr0.0001", "intervened_po-lr3e-05"]
    assert tuning.learning_rate == choose_learning_rate(tuning.table.iloc[1:], tuning.table.iloc[0])
    assert tuning.table.chosen.sum() == 1 and tuning.n_prompts == len(run.source.validation_prompts(
        run.params.baselines.validation))
    result = baselines_stage(run)
    assert result.tuning.learning_rate == tuning.learning_rate
    chosen = run.baseline_dir("tune") / f"intervened_po-lr{tuning.learning_rate:g}" / "policy"
    same = [content_hash(f"{path}/model.safetensors") for path in (chosen, result["intervened_po"])]
    assert same[0] == same[1]                          # seed 0 is the chosen candidate: the same weights, copied
    assert set(result.seeds) == {("intervened_po", 0), ("intervened_po", 1)}
    assert trained(run) == dict(result)
    assert result.metrics["intervened_po_tuned_learning_rate"] == tuning.learning_rate


# ----------------------------------------------------------------------------- one GRPO group by hand

def test_one_group_by_hand_sums_the_variants_rewards_and_normalises_them_as_trl_does(built, tmp_path):
    from craft.r2l import group_advantages, score_group
    from craft.stages.probe import resolve_latent
    from craft.stages.r2l import r2l_config

    run = fresh(built, tmp_path)
    model, tok = run.source.load_policy()
    prompt = next(p for p in run.source.train_prompts(0) if p.kind == "harmful")
    text = tok.apply_chat_template([{"role": "user", "content": prompt.text}], add_generation_prompt=True,
                                   tokenize=False)
    enc = tok(text, return_tensors="pt", add_special_tokens=False)
    torch.manual_seed(0)
    out = model.generate(**enc, do_sample=True, max_new_tokens=24, num_return_sequences=6,
                         pad_token_id=tok.pad_token_id)
    eos = tok.convert_tokens_to_ids("<|im_end|>")
    ids = [(row[:row.index(eos) + 1] if eos in row else row) for row in out[:, enc.input_ids.shape[1]:].tolist()]
    judge = run.source.judge("reward")
    craft = score_group(model, tok, prompt, ids, r2l_config(run, "craft", 0), judge, trained_heads(run),
                        resolve_latent(run))
    assert list(craft.columns) == ["reasoning", "answer", "r_ls", "r_txt", "r_cons", "reward", "advantage"]
    np.testing.assert_allclose(craft.reward, 0.5 * craft.r_ls + 0.4 * craft.r_txt + 0.2 * craft.r_cons, atol=1e-6)
    np.testing.assert_allclose(craft.advantage, group_advantages(craft.reward), atol=1e-9)
    p_safe = np.asarray(judge.score([prompt.text] * len(ids), list(craft.answer)), dtype=float)
    np.testing.assert_allclose(craft.r_txt, 2 * p_safe - 1, atol=1e-6)           # R_txt = 2 P(safe | y) - 1
    assert ((craft.r_cons >= 0) & (craft.r_cons <= 1)).all()
    output_only = score_group(model, tok, prompt, ids, r2l_config(run, "output_only", 0), judge)
    assert list(output_only.columns) == ["reasoning", "answer", "r_txt", "reward", "advantage"]
    np.testing.assert_allclose(output_only.r_txt, craft.r_txt)                   # the same judge on the same answers


# ----------------------------------------------------------------------------- a forked run

def test_a_fork_with_another_w_cons_reuses_organism_probe_heads_and_retrains_only_what_reads_w_cons(built, tmp_path):
    from craft.cli import main
    from craft.stages.fork import fork_run

    source = fresh(built, tmp_path / "src")
    config = tmp_path / "src" / "params.yaml"
    config.write_text(yaml.safe_dump(tiny_params(tmp_path / "src")))
    probe_stage(source)
    before = {v: r2l_run(source, v, 0) for v in ("output_only", "craft")}
    weights = {v: content_hash(r.path / "model" / "model.safetensors") for v, r in before.items()}
    identity = io.load_json(before["craft"].path / "identity.json")

    params = fork_run(source.root, tmp_path / "fork", {"r2l": {"w_cons": 0.0}}, config)
    fork = open_run(params, progress=False)
    assert fork.root == io.resolve(str(tmp_path / "fork"))
    assert build_stage(fork).cached and probe_stage(fork).cached and lclr_stage(fork).cached   # reused, not redone
    assert r2l_run(fork, "output_only", 0).cached          # output-only never reads w_cons: reused
    retrained = r2l_run(fork, "craft", 0)                  # reads it: made again, not refused
    assert not retrained.cached and io.load_json(retrained.path / "identity.json")["r2l"]["w_cons"] == 0.0
    # the source run is untouched: the same weights, identity and finished marks
    assert {v: content_hash(r.path / "model" / "model.safetensors") for v, r in before.items()} == weights
    assert io.load_json(before["craft"].path / "identity.json") == identity
    assert r2l_run(source, "craft", 0).cached
    with pytest.raises(StaleArtifactError, match=r"r2l\.w_cons: 0\.2 -> 0"):   # outside a fork, still refused
        r2l_run(open_run(load_params(None, **tiny_params(tmp_path / "src", r2l={"w_cons": 0.0})), progress=False),
                "craft", 0)
    # the command line: the same fork, and a params file the stages run on
    summary = main(["fork", str(source.root), str(tmp_path / "cli"), "--config", str(config), "--set", "r2l.w_cons=0"])
    forked = load_params(tmp_path / "cli" / "params.yaml")
    assert forked.r2l.w_cons == 0.0 and forked.run_dir == str(tmp_path / "cli") and forked.figures_dir == ""
    assert summary["changes"] == {"r2l": {"w_cons": 0}}
    assert not (tmp_path / "cli" / "executed").exists() and (tmp_path / "cli" / "fork.json").is_file()
    # from a notebook: the run's own params (run.params), instead of a params file
    nb_fork = open_run(fork_run(source.root, tmp_path / "nb", {"lclr": {"lambda_cal": 0.0}}, source.params),
                       progress=False)
    assert nb_fork.params.lclr.lambda_cal == 0.0 and nb_fork.params.r2l == source.params.r2l
    assert build_stage(nb_fork).cached and probe_stage(nb_fork).cached and not lclr_stage(nb_fork).cached


def test_a_fork_refuses_bad_input_and_writes_nothing(built, tmp_path):
    from craft.config import ConfigError
    from craft.stages.fork import fork_run, parse_set

    source = fresh(built, tmp_path / "src")
    config = tmp_path / "params.yaml"
    config.write_text(yaml.safe_dump(tiny_params(tmp_path / "src")))
    with pytest.raises(ConfigError, match="w_konss"):
        fork_run(source.root, tmp_path / "a", {"r2l": {"w_konss": 0.0}}, config)
    assert not (tmp_path / "a").exists()
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "mine.txt").write_text("keep")
    with pytest.raises(FileExistsError, match="not empty"):
        fork_run(source.root, tmp_path / "b", {}, config)
    assert [p.name for p in (tmp_path / "b").iterdir()] == ["mine.txt"]
    with pytest.raises(FileNotFoundError, match="not a run folder"):
        fork_run(tmp_path / "nothing", tmp_path / "c", {}, config)
    with pytest.raises(ValueError, match="outside it"):
        fork_run(source.root, source.root / "inner", {}, config)
    assert parse_set(["r2l.w_cons=0", "latent.pool=last", "r2l.variants=[craft]"]) == {
        "r2l": {"w_cons": 0, "variants": ["craft"]}, "latent": {"pool": "last"}}
    with pytest.raises(ConfigError, match="section.key=value"):
        parse_set(["w_cons"])


# ----------------------------------------------------------------------------- one path for notebook and CLI

def test_cli_and_notebook_path_train_the_same_run(built, tmp_path):
    from craft.cli import main

    (tmp_path / "cli").mkdir()
    shutil.copytree(built / "run", tmp_path / "cli" / "run")
    config = tmp_path / "cli" / "params.yaml"
    config.write_text(yaml.safe_dump(tiny_params(tmp_path / "cli")))
    summary = main(["r2l", "--config", str(config), "--variant", "craft", "--no-progress"])
    assert summary["craft-seed0"]["steps"] == 2

    notebook = fresh(built, tmp_path / "nb")          # what notebook 03's setup cell builds from its parameters
    namespace = {**{k: {} for k in ("source", "organism", "latent", "probe", "lclr", "r2l", "evaluate", "baselines",
                                    "ablations")}, **tiny_params(tmp_path / "nb"), "seed": 0}
    nb_run = open_run(params_from_notebook(namespace), progress=False)
    assert nb_run.params == notebook.params
    from craft.stages.r2l import r2l_stage
    nb = r2l_stage(nb_run, ["craft"])[("craft", 0)]
    cli_dir = tmp_path / "cli" / "run" / "03_train_r2l_grpo" / "craft-seed0"
    for name in ("history.json", "log_history.json", "identity.json"):
        a, b = io.load_json(cli_dir / name), io.load_json(nb.path / name)
        if name == "log_history.json":        # wall-clock fields differ; every logged number must not
            a, b = ([{k: v for k, v in row.items() if not any(t in k for t in ("runtime", "per_second", "_time"))}
                     for row in rows] for rows in (a, b))
        assert a == b, name
    assert {k: v for k, v in io.load_json(cli_dir / "result.json").items() if k != "train_seconds"} == \
           {k: v for k, v in io.load_json(nb.path / "result.json").items() if k != "train_seconds"}
    weights = "model/model.safetensors"
    assert content_hash(cli_dir / weights) == content_hash(nb.path / weights)
    assert nb_run.heads_dir().is_dir()
