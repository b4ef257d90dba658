"""Strict loading of configs from plain mappings (papermill parameters, YAML params files).

:func:`from_dict` builds a frozen dataclass from a mapping and refuses, with a message that names
the key, everything that would otherwise go wrong silently: an unknown key (papermill only *warns*
on an unknown parameter), a value of the wrong type (``seed: true`` is not an int, ``"three"`` is
not an int), a non-finite float, and a value outside the range a field declares with :func:`rule`
(a negative reward weight, a temperature of 0, a probability of 7). Dataclasses call
:func:`check_fields` in ``__post_init__`` so that the same rules hold when they are built in code.

Also here: :func:`deep_merge` (a params file over the defaults, a notebook's overrides over a params
file), :func:`diff` (what changed between two configs, for the run-identity messages of
:mod:`craft.runs`) and :func:`missing_keys` (a paper-scale params file has no defaults).
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Union

import yaml

__all__ = ["ConfigError", "check_fields", "check_value", "coerce", "deep_merge", "diff", "from_dict", "load_yaml",
           "missing_keys", "rule", "to_dict"]


class ConfigError(ValueError):
    """A malformed config: unknown key, wrong type, value out of range, unreadable file."""


def rule(*, ge: float | None = None, gt: float | None = None, le: float | None = None,
         lt: float | None = None, choices: tuple | None = None) -> dict:
    """Field metadata: ``field(default=0.2, metadata=rule(ge=0))``. Checked by :func:`check_fields`."""
    return {"rule": {k: v for k, v in dict(ge=ge, gt=gt, le=le, lt=lt, choices=choices).items() if v is not None}}


_OPS = {"ge": (lambda v, b: v >= b, ">="), "gt": (lambda v, b: v > b, ">"),
        "le": (lambda v, b: v <= b, "<="), "lt": (lambda v, b: v < b, "<")}


def check_value(name: str, value: Any, spec: dict) -> None:
    if "choices" in spec and value not in spec["choices"]:
        raise ConfigError(f"{name}: {value!r} is not one of {list(spec['choices'])}")
    values = value if isinstance(value, (list, tuple)) else [value]
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        for op, bound in spec.items():
            if op in _OPS and not _OPS[op][0](v, bound):
                raise ConfigError(f"{name} must be {_OPS[op][1]} {bound}, got {v!r}")


def check_fields(obj) -> None:
    """Check every field of dataclass ``obj`` against its :func:`rule` and reject non-finite floats."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{f.name} must be a finite number, got {value!r}")
        if "rule" in f.metadata:
            check_value(f.name, value, f.metadata["rule"])


def _type_name(tp) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _is_union(tp) -> bool:
    return typing.get_origin(tp) in (Union, types.UnionType)


def coerce(name: str, value: Any, tp) -> Any:
    """``value`` checked against type ``tp`` (ints given for floats become floats)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        return value if isinstance(value, tp) else from_dict(tp, value, where=f"{name}.")
    if _is_union(tp):
        return _coerce_union(name, value, args)
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{name}: {value!r} is not one of {list(args)}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{name}: expected a number, got {type(value).__name__} {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{name} must be a finite number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{name}: expected an int, got {type(value).__name__} {value!r}")
        return value
    if tp in (str, bool):
        if not isinstance(value, tp):
            raise ConfigError(f"{name}: expected {tp.__name__}, got {type(value).__name__} {value!r}")
        return value
    if (origin or tp) in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{name}: expected a list, got {type(value).__name__} {value!r}")
        item = args[0] if args else Any
        return [coerce(f"{name}[{i}]", v, item) for i, v in enumerate(value)]
    if (origin or tp) in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{name}: expected a mapping, got {type(value).__name__} {value!r}")
        item = args[1] if len(args) == 2 else Any
        return {k: coerce(f"{name}.{k}", v, item) for k, v in value.items()}
    raise TypeError(f"{name}: unsupported field type {tp!r}")


def _coerce_union(name: str, value: Any, args: tuple) -> Any:
    if value is None and type(None) in args:
        return None
    options = [a for a in args if a is not type(None)]
    tagged = [a for a in options if dataclasses.is_dataclass(a)]
    if tagged and isinstance(value, Mapping):        # dataclasses told apart by their `kind` field
        kinds = {a.__dataclass_fields__["kind"].default: a for a in tagged}
        kind = value.get("kind", next(iter(kinds)))
        if kind not in kinds:
            raise ConfigError(f"{name}.kind: {kind!r} is not one of {list(kinds)}")
        return coerce(name, value, kinds[kind])
    errors = []
    for a in options:
        try:
            return coerce(name, value, a)
        except ConfigError as e:
            errors.append(str(e))
    raise ConfigError(f"{name}: {value!r} is none of {[_type_name(a) for a in options]}")


def from_dict(cls, data: Mapping, where: str = ""):
    """Build dataclass ``cls`` from ``data`` (nested dataclass fields from nested mappings).

    Raises :class:`ConfigError` naming the key (``where`` + field name) for an unknown key, a wrong
    type, a non-finite float or a value outside its :func:`rule`.
    """
    label = where.rstrip(".") or cls.__name__
    if not isinstance(data, Mapping):
        raise ConfigError(f"{label}: expected a mapping, got {type(data).__name__} {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{label}: unknown key(s) {unknown}; allowed: {sorted(fields)}")
    kwargs = {key: coerce(f"{where}{key}", value, hints[key]) for key, value in data.items()}
    try:
        return cls(**kwargs)
    except ConfigError as e:
        raise ConfigError(f"{where}{e}" if where else str(e)) from None
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{label}: {e}") from None


def to_dict(cfg) -> dict:
    """A plain, JSON-able dict of a (nested) config dataclass."""
    return dataclasses.asdict(cfg)


def deep_merge(base: Mapping, override: Mapping) -> dict:
    """``base`` updated by ``override``; mappings merge key by key, anything else is replaced."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def diff(old: Mapping, new: Mapping, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """``(dotted key, old value, new value)`` for every leaf that differs (absent = ``<absent>``)."""
    out = []
    for key in sorted(set(old) | set(new), key=str):
        a, b = old.get(key, "<absent>"), new.get(key, "<absent>")
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            out += diff(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append((f"{prefix}{key}", a, b))
    return out


def missing_keys(cls, data: Mapping, where: str = "") -> list[str]:
    """Init fields of dataclass ``cls`` (recursively) that ``data`` does not set, as dotted keys."""
    out = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        if f.name not in data:
            out.append(f"{where}{f.name}")
        elif dataclasses.is_dataclass(hints[f.name]) and isinstance(data[f.name], Mapping):
            out += missing_keys(hints[f.name], data[f.name], f"{where}{f.name}.")
    return out


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, except that a key written twice in one mapping is an error (PyYAML keeps
    the last one without a word, so the first value a reader sees is not the one that runs)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise ConfigError(f"line {key_node.start_mark.line + 1}: key {key!r} is written twice in one mapping")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_yaml(path: str | Path) -> dict:
    """Read a YAML mapping, with errors that say which file and what is wrong: missing, not UTF-8,
    not YAML, a key written twice, empty, or not a mapping at the top."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_StrictLoader)
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path} is not UTF-8 text ({e}); save it as UTF-8") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML: {e}") from None
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
    if data is None:
        raise ConfigError(f"{path} is empty; a params file sets at least source.kind (start from params/organism.yaml "
                          "or params/paper-qwen3-4b-thinking.yaml)")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of parameters at the top level")
    return data
