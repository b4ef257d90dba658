"""`craft r2l --ablations` trains what notebook 05 loads: its variants, seeds and folder."""

from pathlib import Path

import craft.stages.r2l as r2l_module
from craft.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _capture(monkeypatch):
    calls = []

    def fake_stage(run, variants=None, seeds=None, stage="r2l", eval_every=None, jobs=None):
        calls.append({"variants": list(variants or []), "seeds": list(seeds or []), "stage": stage,
                      "eval_every": eval_every, "ablations": run.params.ablations, "jobs": jobs})
        return {}

    monkeypatch.setattr(r2l_module, "r2l_stage", fake_stage)
    return calls


def test_ablations_flag_trains_notebook_05s_runs(monkeypatch, tmp_path):
    calls = _capture(monkeypatch)
    main(["r2l", "--config", str(ROOT / "params" / "organism.yaml"), "--run-dir", str(tmp_path), "--ablations",
          "--no-progress"])
    (call,) = calls
    a = call["ablations"]
    assert call["stage"] == "ablations" and call["eval_every"] == a.eval_every
    expected = [(v, s) for v in a.variants for s in range(a.head_draws if v == "no_lclr" else a.n_seeds)]
    assert call["jobs"] == expected and a.head_draws > a.n_seeds     # no_lclr: one draw of its random heads a seed


def test_ablations_flag_with_seeds_trains_those_seeds_of_each_variant(monkeypatch, tmp_path):
    calls = _capture(monkeypatch)
    main(["r2l", "--config", str(ROOT / "params" / "organism.yaml"), "--run-dir", str(tmp_path), "--ablations",
          "--variant", "no_lclr", "--variant", "no_cons", "--seed", "7", "--no-progress"])
    assert calls[0]["jobs"] == [("no_lclr", 7), ("no_cons", 7)]


def test_without_the_flag_r2l_trains_notebook_03s_runs(monkeypatch, tmp_path):
    calls = _capture(monkeypatch)
    main(["r2l", "--config", str(ROOT / "params" / "organism.yaml"), "--run-dir", str(tmp_path), "--variant", "craft",
          "--no-progress"])
    assert calls[0]["stage"] == "r2l" and calls[0]["variants"] == ["craft"]
