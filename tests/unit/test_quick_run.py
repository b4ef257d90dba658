"""The quick run (``params/quick.yaml``, ``budget: quick``): the same world and notebooks on one seed with fewer
runs, its claims printed instead of asserted, and its first line, figures and metrics marked as the quick run's."""

import dataclasses

import matplotlib

matplotlib.use("agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from craft.config import ConfigError  # noqa: E402
from craft.io import RunDir, load_json  # noqa: E402
from craft.notebook import check_claims  # noqa: E402
from craft.stages import load_params  # noqa: E402
from craft.stages.common import Run  # noqa: E402

CLAIMS = {"first holds": True, "second fails": False, "third is reported": False}


def test_budget_is_full_by_default_quick_in_the_quick_file_and_checked():
    assert load_params(None).budget == "full" and not load_params(None).quick
    assert load_params("params/paper-qwen3-4b-thinking.yaml").budget == "full"   # absent: full
    quick = load_params("params/quick.yaml")
    assert quick.budget == "quick" and quick.quick
    with pytest.raises(ConfigError, match="budget.*'full', 'quick'"):
        load_params(None, budget="fast")


def test_the_quick_run_keeps_the_world_and_the_method_and_changes_only_sizes():
    full, quick = load_params(None), load_params("params/quick.yaml")
    assert quick.run_dir != full.run_dir and quick.figures_dir not in ("figures", full.figures_dir)
    # the same world, model and SFT (shorter SFT lost the effect the notebooks teach): only the twin is left out
    assert quick.organism.twin_arch == "" and full.organism.twin_arch
    assert dataclasses.replace(quick.organism, twin_arch=full.organism.twin_arch) == full.organism
    assert (quick.source.probe_prompts, quick.source.lclr_prompts) == (full.source.probe_prompts,
                                                                       full.source.lclr_prompts)
    # the same method: reward weights, variants, decoding and LCLR loss
    for key in ("w_lat", "w_txt", "w_cons", "alpha", "beta_ls", "gamma", "harmful_only", "grpo"):
        assert getattr(quick.r2l, key) == getattr(full.r2l, key), key
    assert quick.evaluate == full.evaluate and quick.lclr == full.lclr and quick.latent == full.latent
    # fewer runs: the two methods the notebooks compare, and the ablations exercise 5.1 reads
    assert {"output_only", "craft"} <= set(quick.r2l.variants) <= set(full.r2l.variants)
    assert {"no_cons"} <= set(quick.ablations.variants) <= set(full.ablations.variants)
    assert quick.seeds == [quick.seed]


def test_check_claims_asserts_in_a_full_run(capsys):
    params = load_params(None)
    with pytest.raises(AssertionError, match=r"claims not met: \['second fails'\]"):
        check_claims(CLAIMS, params, reported=["third is reported"], width=20)
    out = capsys.readouterr().out.splitlines()
    assert out == [f"{'first holds':<20} True", f"{'second fails':<20} False"]
    assert check_claims({"first holds": True}, params, width=12) == []


def test_check_claims_prints_only_in_a_quick_run(capsys):
    failed = check_claims(CLAIMS, load_params("params/quick.yaml"), reported=["third is reported"], width=20)
    assert failed == ["second fails"]
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("quick run") and "not asserted" in out[0]
    assert out[1:] == [f"{'first holds':<20} True", f"{'second fails':<20} False"]


@pytest.mark.parametrize("budget", ["full", "quick"])
def test_a_quick_runs_metrics_first_line_and_figures_say_so(tmp_path, budget):
    run = Run(load_params(None, budget=budget, run_dir=str(tmp_path / "run"), figures_dir=str(tmp_path / "pub")))
    run.metrics.save_metrics("00_x", {"rate": 0.5})
    saved = load_json(tmp_path / "run" / "metrics" / "00_x.json")
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    run.figure(fig, "fig_x")
    stamped = [t.get_text() for t in fig.texts if "quick run" in t.get_text()]
    assert (tmp_path / "pub" / "fig_x.png").is_file()
    if budget == "quick":
        assert saved == {"rate": 0.5, "budget": "quick"}
        assert "QUICK run" in run.budget_note and len(stamped) == 1
    else:
        assert saved == {"rate": 0.5} and run.budget_note == "" and stamped == []
    assert RunDir(tmp_path / "plain").stamp == {}


def test_student_copies_of_the_quick_run_read_its_artifacts(tmp_path):
    import sys

    import nbformat
    import yaml

    sys.path.insert(0, "scripts")
    from make_exercises import student_version, with_parameters

    nb = nbformat.read("notebooks/02_train_lclr.ipynb", as_version=4)
    student = with_parameters(student_version(nb), __import__("pathlib").Path("params/quick.yaml"), "02_train_lclr")
    injected = [c for c in student.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1
    assert "budget = \"quick\"" in injected[0].source and "run_dir = \"runs/quick\"" in injected[0].source
    params_at = next(i for i, c in enumerate(student.cells) if "parameters" in c.metadata.get("tags", []))
    assert student.cells[params_at + 1] is injected[0]       # right after the notebook's own parameters cell
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"budjet": "quick"}))
    with pytest.raises(ValueError, match="budjet"):
        with_parameters(student_version(nb), bad, "02_train_lclr")


def test_the_quick_real_model_file_is_the_real_model_file_at_smaller_sizes():
    """params/smollm2-135m-quick.yaml (notebook 08 in the quick run) differs from params/smollm2-135m.yaml only where
    its comments say "quick": a change to the real-model file must reach the quick run too."""
    from craft.config import diff, load_yaml

    full, quick = load_yaml("params/smollm2-135m.yaml"), load_yaml("params/smollm2-135m-quick.yaml")
    changed = {key for key, _, _ in diff(full, quick)}
    assert changed == {"run_dir", "figures_dir", "budget", "real", "source.max_traces", "probe.layers",
                       "r2l.grpo.max_steps"}
    assert quick["real"] == "params/smollm2-135m-quick.yaml" and quick["budget"] == "quick"
    assert load_params("params/quick.yaml").real == "params/smollm2-135m-quick.yaml"
    assert quick["latent"]["layer"] in quick["probe"]["layers"]
