"""`scripts/prepare_notebooks.py` (make nb-params, nb-check): papermill's injection, in one process, with an
unknown parameter as an error instead of papermill's warning."""

import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
from prepare_notebooks import main, parameters, params_files  # noqa: E402

NB = ROOT / "notebooks" / "01_probe_latent_geometry.ipynb"


def test_injects_the_params_after_the_parameters_cell(tmp_path):
    assert main([str(NB), "--params", str(ROOT / "params" / "ci.yaml"), "--out", str(tmp_path)]) == 0
    nb = nbformat.read(tmp_path / NB.name, as_version=4)
    tags = [c.metadata.get("tags", []) for c in nb.cells if c.cell_type == "code"]
    assert "parameters" in tags[0] and "injected-parameters" in tags[1]
    assert 'run_dir = "build/ci-run"' in [c for c in nb.cells if c.cell_type == "code"][1].source


def test_unknown_parameter_is_an_error(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("run_dir: x\nstepz: 5\n")
    assert main([str(NB), "--params", str(bad), "--out", str(tmp_path / "out")]) == 1
    assert "unknown parameter(s) ['stepz']" in capsys.readouterr().err


def test_per_notebook_override_is_applied_after_the_file(tmp_path, capsys):
    (tmp_path / "p").mkdir()
    (tmp_path / "p.yaml").write_text("seed: 1\nr2l: {n_seeds: 3}\n")
    (tmp_path / "p" / f"{NB.stem}.yaml").write_text("r2l: {n_seeds: 2}\n")
    files = params_files(tmp_path / "p.yaml", NB.stem)
    assert parameters(files) == {"seed": 1, "r2l": {"n_seeds": 2}}
    (tmp_path / "p" / "99_no_such_notebook.yaml").write_text("seed: 2\n")
    assert main([str(NB), "--params", str(tmp_path / "p.yaml"), "--out", str(tmp_path / "out")]) == 1
    assert "no notebook named 99_no_such_notebook.ipynb" in capsys.readouterr().err
