"""The JailbreakBench attack artifacts: real jailbreak prompts and judge-labelled responses.

``JailbreakBench/artifacts`` (commit 909e68c) holds one JSON file per attack, attack type and
target model (``attack-artifacts/<ATTACK>/<attack_type>/<model>.json``: a ``parameters`` object
and a ``jailbreaks`` list of 100 behaviors). :func:`load_jbb_artifacts` flattens them to one row
per (target model, behavior). The paper's PAIR attack setting transfers these prompts
(:mod:`craft.attacks`), and the ``jailbroken`` labels of JailbreakBench's own Llama-3-70B judge
measure a judge's agreement. Files come from ``path=`` (the upstream layout, an ``<ATTACK>``
folder, or one JSON file) or are downloaded once into the cache (:mod:`craft.data.sources`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from craft.data.loaders import as_int
from craft.data.sources import BUNDLED, Spec, bundled, cache_root, fetch

__all__ = ["ARTIFACT_FILES", "load_jbb_artifacts"]

_ARTIFACTS_URL = ("https://raw.githubusercontent.com/JailbreakBench/artifacts/"
                  "909e68c01d94222b8ad2e397a017e2e12e2adb73")
_MODELS = ("gpt-3.5-turbo-1106", "gpt-4-0125-preview", "llama-2-7b-chat-hf", "vicuna-13b-v1.5")
# attack -> files "<attack_type>/<model>" in JailbreakBench/artifacts@909e68c (its SOURCE.txt)
ARTIFACT_FILES = {
    "PAIR": tuple(f"black_box/{m}" for m in _MODELS),
    "JBC": tuple(f"manual/{m}" for m in _MODELS),
    "prompt_with_random_search": tuple(f"black_box/{m}" for m in _MODELS),
    "GCG": ("transfer/gpt-3.5-turbo-1106", "transfer/gpt-4-0125-preview",
            "white_box/llama-2-7b-chat-hf", "white_box/vicuna-13b-v1.5"),
    "DSN": ("white_box/llama-2-7b-chat-hf", "white_box/vicuna-13b-v1.5"),
}
_LAYOUT = ("the JailbreakBench/artifacts layout: a folder holding "
           "attack-artifacts/<ATTACK>/<attack_type>/<model>.json (or the "
           "attack-artifacts or <ATTACK> folder itself), or one such JSON file")


def _as_bool(value: Any, file: Path, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if str(value).strip().lower() in ("true", "false"):
        return str(value).strip().lower() == "true"
    raise ValueError(f"{file}: {name!r} must be true or false, found {value!r}")


def _parse_artifact(file: Path, attack: str) -> pd.DataFrame:
    """One JailbreakBench artifact JSON (``parameters`` + ``jailbreaks``) → rows."""
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{file}: not valid JSON ({e}); path= expects {_LAYOUT}") from e
    data = {str(k).lower(): v for k, v in data.items()} if isinstance(data, dict) else {}
    if not isinstance(data.get("jailbreaks"), list):
        raise ValueError(f"{file}: expected an object with a 'jailbreaks' list; path= expects "
                         f"{_LAYOUT}")
    params = {str(k).lower(): v for k, v in (data.get("parameters") or {}).items()}
    if not all(isinstance(j, dict) for j in data["jailbreaks"]):
        raise ValueError(f"{file}: every 'jailbreaks' entry must be a JSON object")
    rows = [_artifact_row({str(k).lower(): v for k, v in j.items()}, file)
            for j in data["jailbreaks"]]
    df = pd.DataFrame(rows, columns=["index", "goal", "behavior", "category", "prompt",
                                     "response", "jailbroken", "jailbroken_llama_guard1"])
    df["attack"] = attack
    df["attack_type"] = params.get("attack_type") or file.parent.name
    df["target_model"] = params.get("model") or file.stem
    return df


def _artifact_row(j: dict[str, Any], file: Path) -> dict[str, Any]:
    missing = [k for k in ("goal", "prompt", "response", "jailbroken") if k not in j]
    if missing:
        raise ValueError(f"{file}: a jailbreak entry lacks {missing}; found {sorted(j)}")
    guard = j.get("jailbroken_llama_guard1")
    return {"index": j.get("index"), "goal": j["goal"], "behavior": j.get("behavior", ""),
            "category": j.get("category", ""), "prompt": j["prompt"], "response": j["response"],
            "jailbroken": _as_bool(j["jailbroken"], file, "jailbroken"),
            "jailbroken_llama_guard1": pd.NA if guard is None else _as_bool(guard, file, "guard")}


def _attack_dir(root: Path, attack: str) -> Path:
    """The ``<ATTACK>`` folder under ``root`` (matched case-insensitively), or ``root`` itself."""
    if root.name.lower() == attack.lower():
        return root
    for base in (root, root / "attack-artifacts"):
        hits = [d for d in base.glob("*") if d.is_dir() and d.name.lower() == attack.lower()]
        if hits:
            return hits[0]
    raise FileNotFoundError(f"{root}: no {attack} folder; path= expects {_LAYOUT}")


def _artifact_files(path: str | Path, attack: str) -> list[Path]:
    p = Path(path).expanduser()
    if p.is_file():
        return [p]
    if not p.is_dir():
        raise FileNotFoundError(f"{p} does not exist; path= expects {_LAYOUT}")
    files = sorted(_attack_dir(p, attack).glob("*/*.json"))
    if not files:
        raise FileNotFoundError(f"{p}: no <attack_type>/<model>.json under {attack}; path= "
                                f"expects {_LAYOUT}")
    return files


def _fetch_artifacts(attack: str, cache_dir: str | Path | None) -> Path:
    """Download (or find cached) every model file of ``attack``; return the cache folder."""
    name = next((a for a in ARTIFACT_FILES if a.lower() == attack.lower()), None)
    if name is None:
        raise ValueError(f"attack={attack!r} has no known upstream files; known: "
                         f"{sorted(ARTIFACT_FILES)} (or pass path=)")
    root = cache_root(cache_dir)
    folder = root / "jailbreakbench_artifacts"
    for rel in ARTIFACT_FILES[name]:
        spec = Spec(f"JailbreakBench artifacts ({name} {rel})", folder.name, (), _LAYOUT,
                    url=f"{_ARTIFACTS_URL}/attack-artifacts/{name}/{rel}.json")
        fetch(spec, folder / "attack-artifacts" / name / f"{rel}.json", root)
    return folder


def load_jbb_artifacts(attack: str | Sequence[str] = "PAIR", path: str | Path | None = None,
                       cache_dir: str | Path | None = None) -> pd.DataFrame:
    """JailbreakBench attack artifacts (``PAIR``, ``JBC``, …; a list concatenates), one row per
    (target model, behavior). PAIR's ``prompt``/``response`` are missing where it submitted none."""
    attacks = [attack] if isinstance(attack, str) else list(attack)
    frames = []
    for a in attacks:
        source = (bundled("jailbreakbench_artifacts") if str(path) == BUNDLED else path) if path is not None \
            else _fetch_artifacts(a, cache_dir)
        for file in _artifact_files(source, a):
            name = next((q.name for q in file.parents if q.name.lower() == a.lower()), a)
            frames.append(_parse_artifact(file, name))
    if not frames:
        raise ValueError("attack= names no attack; expected e.g. 'PAIR', 'JBC' or ['PAIR', 'JBC']")
    df = pd.concat(frames, ignore_index=True)
    df["index"] = as_int(df["index"], Path(str(source)), "index")
    df["jailbroken"] = df["jailbroken"].astype(bool)
    df["jailbroken_llama_guard1"] = df["jailbroken_llama_guard1"].astype("boolean")
    df.attrs.update(benchmark="jbb_artifacts", source=str(source))
    return df
