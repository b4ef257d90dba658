"""Where a benchmark file comes from: a local ``path=``, the cache, or a one-time download.

Shared by every loader of :mod:`craft.data.benchmarks`. A :class:`Spec` names one upstream
file, the file names accepted in a local folder and the layout ``path=`` expects (quoted in every
error). :func:`resolve` returns the local file when ``path=`` is given; otherwise the cached copy
under ``<cache_dir>/<folder>/`` (default ``~/.cache/craft/data``), downloading it once (plain
HTTPS, or the Hugging Face hub) when it is missing. The cache mirrors the local layout, so
``<cache_dir>/<folder>`` is itself a valid ``path=``. Offline (``HF_HUB_OFFLINE``,
``HF_DATASETS_OFFLINE`` or ``CRAFT_OFFLINE`` truthy) nothing touches the network: with no cached
copy :func:`fetch` raises :class:`DataUnavailableError` naming ``path=`` and the expected layout.
Downloads are written whole or not at all (:func:`craft.io.atomic_write`). ``path="bundled"`` reads the
copy that ships with the package (three small public sets: see ``craft/data/bundled/README.md``).
"""

from __future__ import annotations

import os
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from craft.io import atomic_write

__all__ = ["BUNDLED", "DEFAULT_CACHE_DIR", "OFFLINE_VARS", "TIMEOUT_S", "DataUnavailableError", "Spec", "bundled",
           "cache_root", "fetch", "hf_get", "http_get", "is_offline", "locate", "resolve"]

DEFAULT_CACHE_DIR = Path("~/.cache/craft/data")
# ``path="bundled"``: the copy that ships with the package (craft/data/bundled/, see its README.md): the
# JailbreakBench behaviours and attack artifacts and XSTest, so the real-model notebook runs offline.
BUNDLED = "bundled"
_BUNDLED_SETS = ("jbb_behaviors", "xstest", "jailbreakbench_artifacts")
TIMEOUT_S = 60.0  # per download; a dead network fails instead of hanging
OFFLINE_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "CRAFT_OFFLINE")
_TRUE = {"1", "true", "yes", "on"}


class DataUnavailableError(FileNotFoundError):
    """No local path given, no cached copy, and no download possible (offline or network error)."""


@dataclass(frozen=True)
class Spec:
    """One benchmark file: accepted local names, the layout ``path=`` expects, and its origin."""

    what: str
    folder: str  # cache subfolder (= the shared data folder's name)
    names: tuple[str, ...]  # file names accepted in a folder (or its data/ subfolder)
    layout: str
    url: str | None = None  # plain download, or:
    hf_repo: str | None = None  # Hugging Face dataset repo holding file ``hf_file``
    hf_file: str | None = None

    @property
    def origin(self) -> str:
        return self.url or f"huggingface.co/datasets/{self.hf_repo} file {self.hf_file}"


def bundled(folder: str) -> Path:
    """The folder of a data set that ships with the package (``jbb_behaviors``, ``xstest``,
    ``jailbreakbench_artifacts``); any other is a clear error."""
    if folder not in _BUNDLED_SETS:
        raise ValueError(f"{folder} does not ship with the package (only {list(_BUNDLED_SETS)} do): pass a local path "
                         "or leave path unset to download it")
    return Path(__file__).resolve().parent / "bundled" / folder


def is_offline() -> bool:
    """True when any offline switch is set; checked before any network call."""
    return any(os.environ.get(v, "").strip().lower() in _TRUE for v in OFFLINE_VARS)


def cache_root(cache_dir: str | Path | None) -> Path:
    """``cache_dir`` (default :data:`DEFAULT_CACHE_DIR`) with ``~`` expanded."""
    return Path(cache_dir if cache_dir is not None else DEFAULT_CACHE_DIR).expanduser()


def http_get(url: str) -> bytes:
    """The body of ``url`` (tests replace this function to keep the network out)."""
    req = urllib.request.Request(url, headers={"User-Agent": "craft-benchmarks"})
    with urllib.request.urlopen(req, timeout=TIMEOUT_S) as resp:  # noqa: S310 (fixed https URLs)
        return resp.read()


def hf_get(repo: str, file: str, hf_cache: Path) -> bytes:
    """The bytes of ``file`` in Hugging Face dataset ``repo`` (hub cache under ``hf_cache``)."""
    from huggingface_hub import hf_hub_download

    local = hf_hub_download(repo_id=repo, filename=file, repo_type="dataset",
                            cache_dir=hf_cache, etag_timeout=TIMEOUT_S)
    return Path(local).read_bytes()


def fetch(spec: Spec, target: Path, root: Path) -> Path:
    """Return the cached ``target``, downloading it first unless offline."""
    if target.is_file():
        return target
    hint = (f"Pass path= to a local copy ({spec.layout}), or run once online to cache it "
            f"(source: {spec.origin}).")
    if is_offline():
        raise DataUnavailableError(f"{spec.what}: no cached copy at {target} and downloads are "
                                   f"off ({'/'.join(OFFLINE_VARS)} is set). {hint}")
    try:
        data = (http_get(spec.url) if spec.url else
                hf_get(spec.hf_repo or "", spec.hf_file or "", root / "huggingface"))
    except Exception as e:  # network, HTTP and hub errors all mean "not available here"
        raise DataUnavailableError(f"{spec.what}: download failed ({e}). {hint}") from e
    return atomic_write(target, data)


def locate(path: str | Path, names: Sequence[str], layout: str) -> Path:
    """A file as given, or the first of ``names`` in the folder (or its ``data/`` subfolder)."""
    p = Path(path).expanduser()
    if p.is_file():
        return p
    if not p.is_dir():
        raise FileNotFoundError(f"{p} does not exist; path= expects {layout}")
    for name in names:
        for cand in (p / name, p / "data" / name):
            if cand.is_file():
                return cand
    raise FileNotFoundError(f"{p} holds none of {list(names)}; path= expects {layout}")


def resolve(spec: Spec, path: str | Path | None, cache_dir: str | Path | None) -> Path:
    """The file to read: found under ``path`` when given, else the cached (downloaded) copy."""
    if path is not None:
        return locate(bundled(spec.folder) if str(path) == BUNDLED else path, spec.names, spec.layout)
    root = cache_root(cache_dir)
    return fetch(spec, root / spec.folder / spec.names[0], root)
