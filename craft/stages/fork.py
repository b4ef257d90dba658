"""Branch a run: a new run folder that reuses every artifact of another run that a change of settings leaves intact.

    craft fork runs/default runs/no-cons --set r2l.w_cons=0
    fork_run("runs/default", "runs/no-cons", {"r2l": {"w_cons": 0.0}})

An experiment that changes one setting (the latent layer, ``w_cons``, the rollout temperature, ...) should
neither rebuild the organism from scratch nor touch the run it starts from. In an existing run a changed
setting is refused (:class:`craft.runs.StaleArtifactError`), because the run's artifacts are its results.
:func:`fork_run` copies the source run folder into a new one (model weights as hard links where the file
system allows, every other file copied) and marks each copied artifact :data:`~craft.runs.INHERITED`. In the
fork a stage then loads a copied artifact whose identity the change leaves intact, and empties and makes again
one whose identity it changes (its original stays in the source run): only what the change invalidates is
recomputed, and a stage downstream of a recomputed one sees new inputs and is recomputed too.

The source's executed notebooks, metrics, figures and profile are not copied: they describe the source run.
The fork's params are written to ``<target>/params.yaml``: the source's params file (``config``; None: the
organism defaults) with the changes, ``run_dir`` set to the target and ``figures_dir`` empty (a fork
publishes no figures into the repository). ``craft <stage> --config <target>/params.yaml`` and
``papermill -f <target>/params.yaml`` run on it.

Why our own: the libraries we use keep one output folder per run (TRL's ``output_dir``, papermill's output
notebook); none branches a folder of identity-checked artifacts.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path

import yaml

from craft.config import ConfigError, deep_merge, load_yaml
from craft.io import resolve
from craft.runs import IDENTITY, INHERITED, LOCK
from craft.stages.params import Params, load_params

__all__ = ["NOT_COPIED", "fork_run", "parse_set"]

# Top-level folders of a run that describe the run itself, not artifacts a stage loads.
NOT_COPIED = ("executed", "metrics", "figures", "profile")
# Files shared by hard link (large, and never written in place: an artifact made again is emptied first).
LINKED = (".safetensors", ".bin", ".pt", ".gguf")


def parse_set(assignments: list[str]) -> dict:
    """``["r2l.w_cons=0", "latent.pool=last"]`` -> ``{"r2l": {"w_cons": 0}, "latent": {"pool": "last"}}``
    (each value read as YAML, so numbers, booleans and lists keep their types)."""
    changes: dict = {}
    for item in assignments:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: write it as section.key=value, e.g. r2l.w_cons=0")
        node = changes
        *parents, last = key.strip().split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {item!r}: {part} is set to a value and used as a section")
        node[last] = yaml.safe_load(value)
    return changes


def fork_run(source: str | Path, target: str | Path, changes: Mapping | None = None,
             config: str | Path | Mapping | Params | None = None) -> Params:
    """Copy run folder ``source`` into the new folder ``target`` with ``changes`` (a nested mapping of params
    keys, as a notebook parameter gives them) applied to ``config`` (the source's params file, its params as a
    mapping, or its :class:`~craft.stages.params.Params`, e.g. a notebook's ``run.params``; None: the organism
    defaults), and return the fork's :class:`~craft.stages.params.Params` (see the module docstring).

    Nothing is written when the changes are not valid params, ``source`` is no run folder, or ``target``
    exists and is not empty.
    """
    src, dst = Path(source).resolve(), Path(target).resolve()
    if not src.is_dir() or not any(src.rglob(IDENTITY)):
        raise FileNotFoundError(f"{source} is not a run folder (no artifact in it): run its notebooks first "
                                "(make reproduce), or name the run_dir they wrote")
    if dst == src or src in dst.parents:
        raise ValueError(f"fork {source} into a folder outside it, e.g. runs/<name>")
    if dst.exists() and any(dst.iterdir()):
        raise FileExistsError(f"{target} exists and is not empty: fork into a new folder (nothing was changed)")
    if isinstance(config, Params):
        base = config.as_data()
    else:
        base = load_yaml(resolve(config)) if isinstance(config, (str, Path)) else dict(config or {})
    data = deep_merge(base, {**dict(changes or {}), "run_dir": str(target), "figures_dir": ""})
    params = load_params(data)                  # a bad change fails here, before anything is copied
    _copy(src, dst)
    dst.mkdir(parents=True, exist_ok=True)
    (dst / "params.yaml").write_text(yaml.safe_dump(json.loads(json.dumps(data)), sort_keys=False))
    given = str(config) if isinstance(config, (str, Path)) else ("given in Python (params.yaml holds it)" if config
                                                                 else None)
    (dst / "fork.json").write_text(json.dumps({"source": str(source), "config": given,
                                               "changes": dict(changes or {})}, indent=2, default=str) + "\n")
    return params


def _copy(src: Path, dst: Path) -> None:
    """Every file of ``src`` but :data:`NOT_COPIED` and locks, weights hard-linked; each folder with an
    identity marked :data:`~craft.runs.INHERITED`."""
    for folder, dirs, files in os.walk(src):
        rel = Path(folder).relative_to(src)
        if rel == Path("."):
            dirs[:] = [d for d in dirs if d not in NOT_COPIED]
        dirs[:] = [d for d in dirs if ".unfinished-" not in d]
        (dst / rel).mkdir(parents=True, exist_ok=True)
        for name in files:
            if name == LOCK:
                continue
            a, b = Path(folder) / name, dst / rel / name
            if a.suffix in LINKED:
                try:
                    os.link(a, b)
                    continue
                except OSError:               # another file system, or no hard links: a copy
                    pass
            shutil.copy2(a, b)
        if IDENTITY in files:
            (dst / rel / INHERITED).write_text(f"copied from {Path(folder)}\n")
