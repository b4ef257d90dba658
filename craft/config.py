"""Frozen per-stage configs, built from plain dicts (papermill parameters or YAML).

Each stage has one ``@dataclass(frozen=True)``; :func:`from_dict` builds it strictly — an
unknown key or a value of the wrong type is an error that names the field and the choices,
because papermill only *warns* on an unknown parameter and a typo must not silently fall
back to a default.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from craft.organism.corpus import MixtureConfig
from craft.organism.model import TinyModelConfig
from craft.organism.sft import SFTSettings


class ConfigError(ValueError):
    """A malformed config: unknown key, wrong type, unreadable file."""


@dataclass(frozen=True)
class OrganismConfig:
    """Everything that defines a base organism (notebook 00)."""

    seed: int = 0                   # world, tokenizer corpus, init and SFT order
    n_hazards: int = 24             # fictional hazards in the world
    eval_fraction: float = 0.2      # held-out share of prompt strings
    vocab_size: int = 1000          # BPE vocabulary (plus <think>, </think>)
    tokenizer_texts: int = 5000     # SFT conversations the tokenizer is trained on
    mixture: MixtureConfig = field(default_factory=MixtureConfig)
    model: TinyModelConfig = field(default_factory=TinyModelConfig)
    sft: SFTSettings = field(default_factory=SFTSettings)


def _check_type(name: str, value, tp) -> None:
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return  # YAML writes 1 for 1.0
    origin = typing.get_origin(tp)
    base = origin or tp
    if isinstance(base, type) and not isinstance(value, base):
        raise ConfigError(f"{name}: expected {getattr(tp, '__name__', tp)}, got {type(value).__name__} {value!r}")


def from_dict(cls, data: Mapping, where: str = ""):
    """Build dataclass ``cls`` from ``data``; nested dataclass fields take nested dicts."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where.rstrip('.') or cls.__name__}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{where.rstrip('.') or cls.__name__}: unknown key(s) {unknown}; allowed: {sorted(fields)}")
    kwargs = {}
    for key, value in data.items():
        name, tp = f"{where}{key}", hints[key]
        if dataclasses.is_dataclass(tp):
            kwargs[key] = value if isinstance(value, tp) else from_dict(tp, value, where=f"{name}.")
        else:
            if isinstance(value, float) and tp is int and value.is_integer():
                value = int(value)
            _check_type(name, value, tp)
            kwargs[key] = float(value) if tp is float else value
    return cls(**kwargs)


def to_dict(cfg) -> dict:
    """A plain, JSON-able dict of a (nested) config dataclass."""
    return dataclasses.asdict(cfg)


def load_yaml(path: str | Path) -> dict:
    """Read a YAML mapping, with errors that say which file and what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of parameters at the top level")
    return data
