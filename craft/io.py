"""Run directories, metrics, figures and seeding.

A run is ``runs/<name>/``: one folder per notebook stage (written by :mod:`craft.stages`, each
artifact with its identity, :mod:`craft.runs`), ``metrics/<notebook>.json`` (the flat numbers each
notebook asserts on) and ``figures/``. Method modules take and return plain data; files are read
and written here and in the stages.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import threading
from collections.abc import Iterable
from pathlib import Path

import numpy as np


def project_root() -> Path:
    """The repository root: the nearest folder above the working directory (or above this
    package) holding ``pyproject.toml`` and ``craft/``. Notebooks resolve every path from
    here, because nbval starts kernels in the notebook's own folder."""
    for start in (Path.cwd(), Path(__file__).resolve().parent):
        for d in (start, *start.parents):
            if (d / "pyproject.toml").is_file() and (d / "craft").is_dir():
                return d
    raise FileNotFoundError("cannot find the craft repository root (a folder with pyproject.toml and craft/); "
                            "run from inside the repository")


def resolve(path: str | Path) -> Path:
    """``path`` if absolute, else relative to :func:`project_root`."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else project_root() / p


class RunDir:
    """``runs/<name>/`` and its layout. Creating one creates the folders."""

    def __init__(self, path: str | Path, stamp: dict | None = None):
        self.root = resolve(path)
        self.stamp = dict(stamp or {})     # entries every saved metrics file carries (a quick run's budget)
        self.root.mkdir(parents=True, exist_ok=True)

    def stage(self, name: str) -> Path:
        """The folder of a notebook stage, e.g. ``stage("00_build_model_organism")``."""
        d = self.root / name
        d.mkdir(parents=True, exist_ok=True)
        return d

    @property
    def figures(self) -> Path:
        d = self.root / "figures"
        d.mkdir(parents=True, exist_ok=True)
        return d

    def metrics_path(self, notebook_stem: str) -> Path:
        return self.root / "metrics" / f"{notebook_stem}.json"

    def save_metrics(self, notebook_stem: str, metrics: dict) -> Path:
        """Write the notebook's flat metrics dict (numbers, bools, strings only), with the folder's stamp."""
        bad = {k: type(v).__name__ for k, v in metrics.items()
               if not isinstance(v, (int, float, bool, str, np.floating, np.integer, np.bool_))}
        if bad:
            raise TypeError(f"metrics must be flat numbers/bools/strings; got {bad}")
        return save_json({**metrics, **self.stamp}, self.metrics_path(notebook_stem))

    def load_metrics(self, notebook_stem: str) -> dict:
        path = self.metrics_path(notebook_stem)
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist: run notebook {notebook_stem} first with the same run_dir")
        return load_json(path)


def clean_json(x):
    """Plain JSON values: numpy scalars unwrapped, NaN/inf written as null (valid JSON)."""
    if isinstance(x, (np.floating, np.integer, np.bool_)):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {str(k): clean_json(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [clean_json(v) for v in x]
    return x


def atomic_write(path: str | Path, data: str | bytes) -> Path:
    """Write ``data`` to ``path`` so that a reader never sees half of it: into a temporary file beside
    it (named for this process and thread, so concurrent writers never share one), flushed to disk,
    then renamed over ``path``. A crash (or a full disk) leaves the old file, or none, and at most a
    stray temporary file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def save_json(obj, path: str | Path) -> Path:
    """Write ``obj`` as indented, key-sorted JSON (atomically, :func:`atomic_write`)."""
    return atomic_write(path, json.dumps(clean_json(obj), indent=2, sort_keys=True, allow_nan=False) + "\n")


class DamagedFileError(RuntimeError):
    """A file of a run (a cache, an identity, a history) cannot be read as what it should hold."""

    def __init__(self, path, reason: str, remedy: str = "delete it, and the stage computes it again"):
        super().__init__(f"{path} is damaged ({reason}); {remedy}")
        self.path = path


def load_json(path: str | Path, remedy: str = "delete it, and the stage that wrote it computes it again"):
    """The JSON in ``path``; a file that is not JSON (cut short by a crash, a full disk) raises
    :class:`DamagedFileError` naming it, never a bare ``JSONDecodeError``."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:       # JSONDecodeError is a ValueError
        raise DamagedFileError(path, f"not valid JSON: {e}", remedy) from None


def exact_json(x):
    """``x`` as exact JSON values: Python numbers as they are (``json`` writes a float's shortest exact repr, NaN as
    ``NaN``), numpy scalars unwrapped, pandas' NA as null, lists and dicts item by item; TypeError for anything
    else. A frame's cells (:func:`frame_json`), or ``json.dumps(..., default=exact_json)``. Unlike
    :func:`clean_json`, NaN stays NaN, so a number reads back as it was."""
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, (list, tuple)):
        return [exact_json(v) for v in x]
    if isinstance(x, dict):
        return {str(k): exact_json(v) for k, v in x.items()}
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    import pandas as pd

    if x is pd.NA or x is pd.NaT:
        return None
    raise TypeError(f"a value of type {type(x).__name__} has no exact JSON form: {x!r:.80}")


def frame_json(df) -> str:
    """A pandas DataFrame as JSON that :func:`read_frame_json` reads back equal, dtypes and values exact: each
    column's dtype and cells (floats written exactly, lists kept as lists), the index and its name. Not pickle, so
    a run folder holds no code. Raises TypeError for a cell with no exact JSON form (an array, an object)."""
    import pandas as pd

    index = df.index
    ranged = isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1
    return json.dumps({
        "columns": [str(c) for c in df.columns], "dtypes": [str(t) for t in df.dtypes],
        "data": [[exact_json(v) for v in df[c].tolist()] for c in df.columns],
        "index": len(index) if ranged else [exact_json(v) for v in index.tolist()],
        "index_name": index.name, "index_dtype": str(index.dtype)})


def read_frame_json(text: str):
    """The DataFrame :func:`frame_json` wrote."""
    import pandas as pd

    obj = json.loads(text)
    if isinstance(obj["index"], int):
        index = pd.RangeIndex(obj["index"], name=obj["index_name"])
    else:
        index = pd.Index(obj["index"], name=obj["index_name"], dtype=obj["index_dtype"])
    columns = {}
    for name, dtype, cells in zip(obj["columns"], obj["dtypes"], obj["data"]):
        if dtype == "object":                  # cell by cell: pandas would read a column of lists as a table
            series = pd.Series([None] * len(cells), index=index, dtype=object)
            for i, cell in enumerate(cells):
                series.iat[i] = cell
        else:
            series = pd.Series(cells, index=index, dtype=dtype)
        columns[name] = series
    return pd.DataFrame(columns, index=index, columns=obj["columns"])


def save_figure(fig, stem: str | Path, formats: Iterable[str] = ("png", "pdf"), dpi: int = 150) -> list[Path]:
    """Save ``fig`` as ``<stem>.<fmt>`` for each format, then close it. Returns the paths."""
    import matplotlib.pyplot as plt

    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        p = stem.with_suffix(f".{fmt}")
        # Fixed metadata keeps re-runs byte-stable where the backend allows it.
        meta = {"Software": None} if fmt == "png" else {"Creator": None, "Producer": None, "CreationDate": None}
        fig.savefig(p, dpi=dpi, bbox_inches="tight", metadata=meta)
        paths.append(p)
    plt.close(fig)
    return paths


def publish(paths: Iterable[Path], dest: str | Path) -> list[Path]:
    """Copy files (e.g. the default run's figures) into ``dest``; an empty ``dest`` skips."""
    if not str(dest):
        return []
    dest = resolve(dest)
    dest.mkdir(parents=True, exist_ok=True)
    return [Path(shutil.copy2(p, dest / Path(p).name)) for p in paths]


def bar_options(enabled: bool) -> dict:
    """tqdm keyword arguments for a progress bar that ``enabled`` turns off. When on, tqdm keeps its
    own default, so the ``TQDM_DISABLE`` environment variable (set by ``make notebooks`` and the
    tests) still silences it: an explicit ``disable=False`` would win over the variable."""
    return {} if enabled else {"disable": True}


def bars_on(enabled: bool) -> bool:
    """Whether a progress display that does not read ``TQDM_DISABLE`` itself should show: ``enabled``
    and the variable unset (or 0/false). transformers' ``Trainer`` draws an HTML bar in a notebook, which
    would otherwise land in the committed outputs of ``make notebooks``."""
    return enabled and os.environ.get("TQDM_DISABLE", "").strip().lower() in ("", "0", "false")


def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Seed python, numpy and torch; optionally ask torch for deterministic kernels."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        # Deterministic mode also fills every torch.empty with NaN, to expose reads of uninitialised memory.
        # TRL's chunked log-prob kernel allocates a (tokens x 32 768) buffer three times per GRPO step, so the
        # fill cost about a third of an organism R2L run (105 s -> 67 s without it); the weights and every
        # metric are bit-identical without it (a correct kernel never reads the fill).
        torch.utils.deterministic.fill_uninitialized_memory = False
