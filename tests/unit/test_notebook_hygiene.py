"""Committed notebooks follow the rules that keep `make nb-check` / `make reproduce` working.

A literal-only, annotated and commented `parameters` cell (papermill), exactly one
`# NBVAL_CHECK_OUTPUT` cell (nbval --nbval-lax), stripped metadata with execution counts kept
(nbstripout --keep-output --keep-count), small, no machine paths, figures stored as images.
"""

import ast
import io
import json
import re
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
MAX_BYTES = 1_000_000
MACHINE_PATHS = ("/work/", "/root/", "/home/", "/tmp/")
BINARY_MIME = ("image/png", "image/jpeg", "image/gif")  # base64 can contain "/tmp/" by chance
CHECK_MARKER = "# NBVAL_CHECK_OUTPUT"

if not NOTEBOOKS:
    pytestmark = pytest.mark.skip(reason="no notebooks/[0-9][0-9]_*.ipynb committed yet")


def _src(cell) -> str:
    s = cell.get("source", "")
    return "".join(s) if isinstance(s, list) else s


def _code_cells(nb):
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


@pytest.fixture(params=NOTEBOOKS or [None], ids=lambda p: p.name if p else "none")
def nb_path(request):
    return request.param


@pytest.fixture
def nb(nb_path):
    return json.loads(nb_path.read_text(encoding="utf-8"))


def test_header_cell_says_reads_and_writes(nb):
    first = nb["cells"][0]
    assert first["cell_type"] == "markdown", "first cell must be the markdown header"
    text = _src(first)
    assert "Reads" in text and "Writes" in text, "header must state what the notebook Reads and Writes"


def test_parameters_cell(nb):
    code = _code_cells(nb)
    tagged = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"need exactly one code cell tagged `parameters`, found {len(tagged)}"
    assert code and code[0] is tagged[0], "the `parameters` cell must be the first code cell"
    src = _src(tagged[0])

    tree = ast.parse(src)
    names = []
    for stmt in tree.body:
        line = ast.get_source_segment(src, stmt)
        assert isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name), (
            f"parameters cell: {line!r} is not `name: type = literal`"
        )
        assert stmt.value is not None, f"parameters cell: {line!r} has no default value"
        try:
            ast.literal_eval(stmt.value)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            pytest.fail(f"parameters cell: default of {line!r} is not a literal")
        names.append(stmt.target.id)

    commented = {tok.start[0] for tok in tokenize.generate_tokens(io.StringIO(src).readline)
                 if tok.type == tokenize.COMMENT}
    for lineno, line in enumerate(src.splitlines(), start=1):
        if line.strip():
            assert lineno in commented, f"parameters cell: line {line!r} needs a trailing `# comment`"

    for required in ("run_dir", "figures_dir"):
        assert required in names, f"parameters cell must define `{required}`"


def test_exactly_one_checked_cell(nb):
    checked = [c for c in _code_cells(nb) if CHECK_MARKER in _src(c)]
    assert len(checked) == 1, f"need exactly one `{CHECK_MARKER}` cell, found {len(checked)}"


def test_outputs_clean(nb):
    for i, cell in enumerate(_code_cells(nb)):
        outputs = cell.get("outputs", [])
        if outputs:
            assert cell.get("execution_count") is not None, (
                f"code cell {i} has outputs but execution_count null (strip with --keep-count)"
            )
        for out in outputs:
            assert out.get("output_type") != "error", f"code cell {i} has an error output: {out.get('ename')}"
            assert "application/vnd.jupyter.widget-view+json" not in out.get("data", {}), (
                f"code cell {i} has a widget output (disable tqdm widgets / progress bars)"
            )


def test_size(nb_path):
    size = nb_path.stat().st_size
    assert size <= MAX_BYTES, f"{nb_path.name} is {size} bytes (> {MAX_BYTES}); shrink its outputs"


def test_no_machine_paths(nb):
    for i, cell in enumerate(nb["cells"]):
        texts = [_src(cell)]
        for out in cell.get("outputs", []):
            out = dict(out)
            out["data"] = {k: v for k, v in out.get("data", {}).items() if k not in BINARY_MIME}
            texts.append(json.dumps(out))
        for text in texts:
            for p in MACHINE_PATHS:
                assert p not in text, f"cell {i} contains the machine path {p!r}"


def test_metadata_stripped(nb):
    assert "papermill" not in nb.get("metadata", {}), "notebook metadata.papermill left in (run nbstripout)"


def test_papermill_parses_every_parameter(nb):
    """papermill's own parser must read every line (a quote in a trailing comment breaks it,
    and papermill then only warns that the parameter is unknown)."""
    import nbformat
    from papermill.inspection import _infer_parameters

    notebook = nbformat.reads(json.dumps(nb), as_version=4)
    for c in notebook.cells:
        c.metadata.setdefault("tags", [])   # papermill's reader does this before inspecting
    cell = next(c for c in _code_cells(nb) if "parameters" in c.get("metadata", {}).get("tags", []))
    names = {n.id for n in ast.walk(ast.parse(_src(cell))) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    parsed = {p.name for p in _infer_parameters(notebook)}
    assert parsed == names, f"papermill cannot parse: {sorted(names - parsed)}"


def _parameters(nb) -> dict:
    cell = next(c for c in _code_cells(nb) if "parameters" in c.get("metadata", {}).get("tags", []))
    return {s.target.id: ast.literal_eval(s.value) for s in ast.parse(_src(cell)).body}


def test_every_notebook_takes_the_params_file_keys_with_the_organism_defaults(nb):
    """One params file drives every notebook (`papermill -f params/X.yaml`): each notebook declares every
    top-level key of a params file, with the organism run as its default (params/organism.yaml)."""
    from craft.config import load_yaml
    from craft.stages.params import TOP_KEYS

    params = _parameters(nb)
    assert set(TOP_KEYS) <= set(params), f"missing notebook parameters {sorted(set(TOP_KEYS) - set(params))}"
    organism = load_yaml(ROOT / "params" / "organism.yaml")
    for key, value in params.items():
        if key in TOP_KEYS and not isinstance(value, dict):
            assert value == organism[key], f"parameter {key}={value!r} is not params/organism.yaml's {organism[key]!r}"
        elif key in TOP_KEYS:
            assert value == {}, f"parameter {key} must default to {{}} (the values of params/organism.yaml)"


def test_notebooks_share_one_parameters_cell():
    cells = {p.name: _parameters(json.loads(p.read_text())) for p in NOTEBOOKS}
    first = next(iter(cells.values()), None)
    assert all(c == first for c in cells.values()), "every notebook has the same parameters"


def test_scale_specific_cells_are_few():
    """Only content that really differs between scales is marked %%only (the world, the claims: a notebook's checked
    claims and, in the cell after them, its reported ones, whose outcome may differ between machines and so stays out
    of the checked cell). The exercises (cells tagged ``solution`` or ``check``) work on the organism's objects and are
    not counted."""
    exercise = {"solution", "check"}
    marked = sum(_src(c).startswith("%%only") for p in NOTEBOOKS for c in _code_cells(json.loads(p.read_text()))
                 if not exercise & set(c.get("metadata", {}).get("tags", [])))
    assert marked <= 20, f"{marked} %%only cells; share the cell and let the stage code differ instead"


def test_docs_point_only_at_the_repository():
    """The project's docs, notebooks, docstrings and tests never point at a path outside the
    repository (a reader has only the repository) nor at a design document it does not hold."""
    files = (*NOTEBOOKS, ROOT / "README.md", *(ROOT / "craft").rglob("*.py"), *(ROOT / "tests").rglob("*.py"))
    outside = re.compile(r"\.\./[a-z]|\bDESIGN\b")
    assert not [str(p.relative_to(ROOT)) for p in files if p != Path(__file__) and outside.search(p.read_text())]


def test_committed_figures_are_images():
    """A figure output is an image a reader can see, never only its text repr ``<Figure size ...>``."""
    for path in NOTEBOOKS:
        for cell in _code_cells(json.loads(path.read_text())):
            for out in cell.get("outputs", []):
                data = out.get("data", {})
                if "Figure size" in "".join(data.get("text/plain", "")):
                    assert "image/png" in data, f"{path.name}: a figure stored as text only"



def test_every_saved_figure_is_shown_inline(nb):
    """A cell that saves figures (`run.figure(...)`) also shows each of them as an image on the page."""
    for i, cell in enumerate(_code_cells(nb)):
        src = _src(cell)
        if "run.figure(" not in src or src.lstrip().startswith("%%only paper"):
            continue
        shown = sum("image/png" in out.get("data", {}) for out in cell.get("outputs", []))
        assert shown >= src.count("run.figure("), (
            f"code cell {i} saves {src.count('run.figure(')} figure(s) but shows {shown}: display each figure")


def test_no_stderr_in_committed_outputs(nb):
    """Warnings and progress bars stay out of the committed notebooks (TQDM_DISABLE, no library chatter)."""
    for i, cell in enumerate(_code_cells(nb)):
        for out in cell.get("outputs", []):
            assert out.get("name") != "stderr", f"code cell {i} stores stderr: {''.join(out.get('text', ''))[:200]!r}"
