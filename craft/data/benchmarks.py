"""Real benchmark loaders for CRAFT's evaluation (paper §6, DESIGN.md §2 and §4).

The paper evaluates safety on JailbreakBench and StrongREJECT (attacks None / PAP / PAIR),
over-refusal is measured here on XSTest and the benign half of JBB-Behaviors, and reasoning
capability on MATH-500 (GSM8K is an extra, cheaper capability check). The JailbreakBench attack
artifacts give real jailbreak prompts (PAIR is one of the paper's attack settings) and labelled
(prompt, response) pairs to measure a judge's agreement with JailbreakBench's own judge.

**The product never ships these data.** Each loader either reads a local copy (``path=``: a file,
or a folder laid out like the upstream release) or downloads the upstream file once and caches it
under ``cache_dir`` (default ``~/.cache/craft/data``). The cache mirrors the local layout, so
``<cache_dir>/<folder>`` is itself a valid ``path=``. Offline (``HF_HUB_OFFLINE``,
``HF_DATASETS_OFFLINE`` or ``CRAFT_OFFLINE`` truthy) a loader never touches the network: with no
cached copy it raises :class:`DataUnavailableError` naming ``path=`` and the expected layout.

Column names are matched case-insensitively (copies differ: ``goal`` vs ``Goal``) and returned in
lower case. Text is returned unmodified. Each DataFrame's ``attrs`` holds ``benchmark`` and
``source`` (the file it was read from). Schemas (one row per item):

========================  ===================================================================
``load_jbb_behaviors``    index (int), prompt (= goal), goal, target, behavior, category, source
``load_strongreject``     prompt (upstream ``forbidden_prompt``), category, source
``load_xstest``           id (int), prompt, type, label (``safe`` | ``unsafe``), focus, note
``load_gsm8k``            question, answer (str: the number after ``#### ``, commas removed),
                          solution (the worked solution before ``#### ``, ``<<…>>`` kept)
``load_math500``          problem, answer, solution, subject, level (int), unique_id
``load_jbb_artifacts``    index (int), goal, behavior, category, prompt (the jailbreak prompt;
                          missing where the attack submitted none), response, jailbroken (bool),
                          jailbroken_llama_guard1 (bool or NA), attack, attack_type, target_model
========================  ===================================================================

Origins and licenses (see each ``SOURCE.txt`` of the shared data folder):

* JBB-Behaviors (Chao et al. 2024, JailbreakBench): HF dataset ``JailbreakBench/JBB-Behaviors``,
  ``data/harmful-behaviors.csv`` and ``data/benign-behaviors.csv``, 100 + 100 rows. MIT (harmful
  rows partly from AdvBench and TDC 2023 / HarmBench, both MIT).
* StrongREJECT (Souly et al. 2024, arXiv 2402.10260): ``alexandrasouly/strongreject``
  ``strongreject_dataset/strongreject_dataset.csv``, 313 rows. Mixed: custom prompts and code MIT,
  prompts from prior work under their original licenses.
* XSTest (Röttger et al., NAACL 2024): ``paul-rottger/exaggerated-safety`` ``xstest_prompts.csv``
  (commit d7bb5bd), 450 rows (250 safe, 200 unsafe ``contrast_*``). CC-BY-4.0.
* GSM8K (Cobbe et al. 2021, arXiv 2110.14168): ``openai/grade-school-math``
  ``grade_school_math/data/<split>.jsonl`` (commit 3101c7d), test 1319 rows. MIT.
* MATH-500 (Lightman et al. 2023, subset of MATH, Hendrycks et al. 2021): HF dataset
  ``HuggingFaceH4/MATH-500`` ``test.jsonl``, 500 rows. MIT.
* JailbreakBench artifacts: ``JailbreakBench/artifacts`` (commit 909e68c)
  ``attack-artifacts/<ATTACK>/<attack_type>/<model>.json``, 100 behaviors per target model
  (PAIR and JBC: 4 models each). MIT, owned by the artifacts' authors. ``jailbroken`` is the
  label from JailbreakBench's Llama-3-70B judge.
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import pandas as pd

__all__ = ["BENCHMARKS", "DEFAULT_CACHE_DIR", "DataUnavailableError", "load_benchmark",
           "load_gsm8k", "load_jbb_artifacts", "load_jbb_behaviors", "load_math500",
           "load_strongreject", "load_xstest"]

DEFAULT_CACHE_DIR = Path("~/.cache/craft/data")
TIMEOUT_S = 60.0  # per download; a dead network fails instead of hanging
_GH = "https://raw.githubusercontent.com"
_ARTIFACTS_URL = f"{_GH}/JailbreakBench/artifacts/909e68c01d94222b8ad2e397a017e2e12e2adb73"
_OFFLINE_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "CRAFT_OFFLINE")
_TRUE = {"1", "true", "yes", "on"}
_MODELS = ("gpt-3.5-turbo-1106", "gpt-4-0125-preview", "llama-2-7b-chat-hf", "vicuna-13b-v1.5")
# attack -> files "<attack_type>/<model>" in JailbreakBench/artifacts@909e68c (its SOURCE.txt)
_ARTIFACT_FILES = {
    "PAIR": tuple(f"black_box/{m}" for m in _MODELS),
    "JBC": tuple(f"manual/{m}" for m in _MODELS),
    "prompt_with_random_search": tuple(f"black_box/{m}" for m in _MODELS),
    "GCG": ("transfer/gpt-3.5-turbo-1106", "transfer/gpt-4-0125-preview",
            "white_box/llama-2-7b-chat-hf", "white_box/vicuna-13b-v1.5"),
    "DSN": ("white_box/llama-2-7b-chat-hf", "white_box/vicuna-13b-v1.5"),
}


class DataUnavailableError(FileNotFoundError):
    """No local path given, no cached copy, and no download possible (offline or network error)."""


@dataclass(frozen=True)
class _Spec:
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


_JBB_LAYOUT = ("a folder with harmful-behaviors.csv and benign-behaviors.csv (or a data/ "
               "subfolder holding them, as on the HF hub), or one such CSV; columns "
               "goal,target,behavior,category,source in any case")
_JBB = {split: _Spec(f"JBB-Behaviors ({split})", "jbb_behaviors", (f"{split}-behaviors.csv",),
                     _JBB_LAYOUT, hf_repo="JailbreakBench/JBB-Behaviors",
                     hf_file=f"data/{split}-behaviors.csv") for split in ("harmful", "benign")}
_STRONGREJECT = _Spec(
    "StrongREJECT", "strongreject", ("strongreject_dataset.csv", "strongreject.csv"),
    "strongreject_dataset.csv (or strongreject.csv), or a folder holding it; columns "
    "category,source,forbidden_prompt in any case",
    url=f"{_GH}/alexandrasouly/strongreject/main/strongreject_dataset/strongreject_dataset.csv")
_XSTEST = _Spec(
    "XSTest", "xstest", ("xstest_prompts.csv",),
    "xstest_prompts.csv, or a folder holding it; columns id,prompt,type,label,focus,note",
    url=f"{_GH}/paul-rottger/exaggerated-safety/d7bb5bd738c1fcbc36edd83d5e7d1b71a3e2d84d/"
        "xstest_prompts.csv")
_GSM8K = {split: _Spec(
    f"GSM8K ({split})", "gsm8k", (f"{split}.jsonl",),
    f"{split}.jsonl (one JSON object a line with question and answer, the final answer after "
    "'#### '), or a folder holding it",
    url=f"{_GH}/openai/grade-school-math/3101c7d5072418e28b9008a6636bde82a006892c/"
        f"grade_school_math/data/{split}.jsonl") for split in ("test", "train")}
_MATH500 = _Spec(
    "MATH-500", "math500", ("test.jsonl",),
    "test.jsonl (one JSON object a line with problem, solution, answer, subject, level, "
    "unique_id), or a folder holding it",
    hf_repo="HuggingFaceH4/MATH-500", hf_file="test.jsonl")
_ARTIFACTS_LAYOUT = ("the JailbreakBench/artifacts layout: a folder holding "
                     "attack-artifacts/<ATTACK>/<attack_type>/<model>.json (or the "
                     "attack-artifacts or <ATTACK> folder itself), or one such JSON file")


# --------------------------------------------------------------------------- resolve / fetch


def _offline() -> bool:
    """True when any offline switch is set; checked before any network call."""
    return any(os.environ.get(v, "").strip().lower() in _TRUE for v in _OFFLINE_VARS)


def _cache_root(cache_dir: str | Path | None) -> Path:
    return Path(cache_dir if cache_dir is not None else DEFAULT_CACHE_DIR).expanduser()


def _http_get(url: str) -> bytes:
    req = urllib.request.Request(url, headers={"User-Agent": "craft-benchmarks"})
    with urllib.request.urlopen(req, timeout=TIMEOUT_S) as resp:  # noqa: S310 (fixed https URLs)
        return resp.read()


def _hf_get(repo: str, file: str, hf_cache: Path) -> bytes:
    from huggingface_hub import hf_hub_download

    local = hf_hub_download(repo_id=repo, filename=file, repo_type="dataset",
                            cache_dir=hf_cache, etag_timeout=TIMEOUT_S)
    return Path(local).read_bytes()


def _fetch(spec: _Spec, target: Path, root: Path) -> Path:
    """Return the cached ``target``, downloading it first unless offline."""
    if target.is_file():
        return target
    hint = (f"Pass path= to a local copy ({spec.layout}), or run once online to cache it "
            f"(source: {spec.origin}).")
    if _offline():
        raise DataUnavailableError(f"{spec.what}: no cached copy at {target} and downloads are "
                                   f"off ({'/'.join(_OFFLINE_VARS)} is set). {hint}")
    try:
        data = (_http_get(spec.url) if spec.url else
                _hf_get(spec.hf_repo or "", spec.hf_file or "", root / "huggingface"))
    except Exception as e:  # network, HTTP and hub errors all mean "not available here"
        raise DataUnavailableError(f"{spec.what}: download failed ({e}). {hint}") from e
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".part")
    tmp.write_bytes(data)
    os.replace(tmp, target)
    return target


def _locate(path: str | Path, names: Sequence[str], layout: str) -> Path:
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


def _resolve(spec: _Spec, path: str | Path | None, cache_dir: str | Path | None) -> Path:
    if path is not None:
        return _locate(path, spec.names, spec.layout)
    root = _cache_root(cache_dir)
    return _fetch(spec, root / spec.folder / spec.names[0], root)


# --------------------------------------------------------------------------- parse


def _json_objects(file: Path) -> list[dict[str, Any]]:
    rows = []
    for n, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            obj = json.loads(line)
            if not isinstance(obj, dict):
                raise ValueError(f"{file}: line {n} is not a JSON object")
            rows.append(obj)
    return rows


def _read_table(file: Path) -> pd.DataFrame:
    """Read .csv (all text, no NA guessing), .jsonl, .json (list), .parquet; lower-case columns."""
    suffix = file.suffix.lower()
    try:
        if suffix == ".csv":
            df = pd.read_csv(file, dtype=str, keep_default_na=False)
        elif suffix == ".jsonl":
            df = pd.DataFrame.from_records(_json_objects(file))
        elif suffix == ".json":
            df = pd.DataFrame.from_records(json.loads(file.read_text(encoding="utf-8")))
        elif suffix == ".parquet":
            df = pd.read_parquet(file)
        else:
            raise ValueError(f"{file}: unsupported file type; expected .csv, .jsonl, .json or "
                             ".parquet")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, json.JSONDecodeError,
            UnicodeDecodeError, TypeError) as e:
        raise ValueError(f"{file}: could not be parsed as {suffix.lstrip('.')} ({e})") from e
    return _lower_columns(df, file)


def _lower_columns(df: pd.DataFrame, file: Path) -> pd.DataFrame:
    cols = [str(c).strip().lower() for c in df.columns]
    cols = ["index" if c in ("", "unnamed: 0") else c for c in cols]
    if len(set(cols)) != len(cols):
        raise ValueError(f"{file}: column names clash when lower-cased: {list(df.columns)}")
    return df.set_axis(cols, axis=1)


def _pick(df: pd.DataFrame, file: Path, layout: str, columns: dict[str, Sequence[str]],
          optional: Sequence[str] = ()) -> pd.DataFrame:
    """Select and rename columns (``out -> accepted source names``); optional ones may be absent."""
    out = {}
    for name, accepted in columns.items():
        found = next((c for c in accepted if c in df.columns), None)
        if found is None:
            raise ValueError(f"{file}: no column {' or '.join(accepted)} (matched "
                             f"case-insensitively; found {list(df.columns)}). path= expects "
                             f"{layout}")
        out[name] = df[found]
    for name in optional:
        out[name] = df[name] if name in df.columns else pd.Series([""] * len(df), dtype=str)
    return pd.DataFrame(out).reset_index(drop=True)


def _finish(df: pd.DataFrame, file: Path, benchmark: str, text_col: str) -> pd.DataFrame:
    """Reject empty tables and empty texts; record provenance in ``attrs``."""
    text = df[text_col].dropna().astype(str).str.strip()
    if df.empty or (text == "").any() or len(text) == 0:
        raise ValueError(f"{file}: {benchmark} needs a non-empty {text_col!r} in every row")
    df.attrs.update(benchmark=benchmark, source=str(file))
    return df


def _as_int(s: pd.Series, file: Path, name: str) -> pd.Series:
    try:
        return s.astype("int64")
    except (ValueError, TypeError) as e:
        raise ValueError(f"{file}: column {name!r} must hold integers ({e})") from e


# --------------------------------------------------------------------------- loaders


def _check_choice(value: str, choices: Sequence[str], arg: str) -> str:
    if value not in choices:
        raise ValueError(f"{arg}={value!r}; expected one of {list(choices)}")
    return value


def load_jbb_behaviors(split: str = "harmful", path: str | Path | None = None,
                       cache_dir: str | Path | None = None) -> pd.DataFrame:
    """JBB-Behaviors, ``split`` ``harmful`` or ``benign`` (benign row i twins harmful row i)."""
    spec = _JBB[_check_choice(split, tuple(_JBB), "split")]
    file = _resolve(spec, path, cache_dir)
    raw = _read_table(file)
    cols = {k: (k,) for k in ("goal", "target", "behavior", "category", "source")}
    df = _pick(raw, file, spec.layout, cols)
    index = raw["index"] if "index" in raw.columns else pd.Series(range(len(raw)))
    df.insert(0, "index", _as_int(index.reset_index(drop=True), file, "index"))
    df.insert(1, "prompt", df["goal"])
    return _finish(df, file, f"jbb_behaviors/{split}", "prompt")


def load_strongreject(path: str | Path | None = None,
                      cache_dir: str | Path | None = None) -> pd.DataFrame:
    """StrongREJECT's 313 forbidden prompts with their category and source."""
    file = _resolve(_STRONGREJECT, path, cache_dir)
    cols = {"prompt": ("forbidden_prompt", "prompt"), "category": ("category",),
            "source": ("source",)}
    df = _pick(_read_table(file), file, _STRONGREJECT.layout, cols)
    return _finish(df, file, "strongreject", "prompt")


def load_xstest(label: str | None = None, path: str | Path | None = None,
                cache_dir: str | Path | None = None) -> pd.DataFrame:
    """XSTest prompts; ``label`` ``safe`` / ``unsafe`` keeps one half, None keeps all 450."""
    if label is not None:
        _check_choice(label, ("safe", "unsafe"), "label")
    file = _resolve(_XSTEST, path, cache_dir)
    cols = {k: (k,) for k in ("id", "prompt", "type", "label")}
    df = _pick(_read_table(file), file, _XSTEST.layout, cols, optional=("focus", "note"))
    df["id"] = _as_int(df["id"], file, "id")
    df["label"] = df["label"].astype(str).str.strip().str.lower()
    bad = sorted(set(df["label"]) - {"safe", "unsafe"})
    if bad:
        raise ValueError(f"{file}: label must be safe or unsafe, found {bad}")
    if label is not None:
        df = df[df["label"] == label]
    return _finish(df.reset_index(drop=True), file, "xstest", "prompt")


def _gsm8k_answer(text: str, file: Path) -> tuple[str, str]:
    """(final number, worked solution) from a GSM8K answer field."""
    if "####" not in text:
        raise ValueError(f"{file}: a GSM8K answer lacks the '#### <number>' line: {text[:80]!r}")
    solution, _, final = text.rpartition("####")
    return final.strip().replace(",", ""), solution.strip()


def load_gsm8k(split: str = "test", path: str | Path | None = None,
               cache_dir: str | Path | None = None) -> pd.DataFrame:
    """GSM8K word problems with the final answer split off the worked solution."""
    spec = _GSM8K[_check_choice(split, tuple(_GSM8K), "split")]
    file = _resolve(spec, path, cache_dir)
    raw = _pick(_read_table(file), file, spec.layout, {"question": ("question",),
                                                       "answer": ("answer",)})
    parts = [_gsm8k_answer(str(a), file) for a in raw["answer"]]
    df = pd.DataFrame({"question": raw["question"], "answer": [p[0] for p in parts],
                       "solution": [p[1] for p in parts]})
    return _finish(df, file, f"gsm8k/{split}", "question")


def load_math500(path: str | Path | None = None,
                 cache_dir: str | Path | None = None) -> pd.DataFrame:
    """MATH-500 problems with reference answer, solution, subject and level (1–5)."""
    file = _resolve(_MATH500, path, cache_dir)
    cols = {k: (k,) for k in ("problem", "answer", "solution", "subject", "level")}
    df = _pick(_read_table(file), file, _MATH500.layout, cols, optional=("unique_id",))
    df["level"] = _as_int(df["level"], file, "level")
    df["answer"] = df["answer"].astype(str)
    return _finish(df, file, "math500", "problem")


# --------------------------------------------------------------------------- artifacts


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
        raise ValueError(f"{file}: not valid JSON ({e}); path= expects {_ARTIFACTS_LAYOUT}") from e
    data = {str(k).lower(): v for k, v in data.items()} if isinstance(data, dict) else {}
    if not isinstance(data.get("jailbreaks"), list):
        raise ValueError(f"{file}: expected an object with a 'jailbreaks' list; path= expects "
                         f"{_ARTIFACTS_LAYOUT}")
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
    raise FileNotFoundError(f"{root}: no {attack} folder; path= expects {_ARTIFACTS_LAYOUT}")


def _artifact_files(path: str | Path, attack: str) -> list[Path]:
    p = Path(path).expanduser()
    if p.is_file():
        return [p]
    if not p.is_dir():
        raise FileNotFoundError(f"{p} does not exist; path= expects {_ARTIFACTS_LAYOUT}")
    files = sorted(_attack_dir(p, attack).glob("*/*.json"))
    if not files:
        raise FileNotFoundError(f"{p}: no <attack_type>/<model>.json under {attack}; path= "
                                f"expects {_ARTIFACTS_LAYOUT}")
    return files


def _fetch_artifacts(attack: str, cache_dir: str | Path | None) -> Path:
    """Download (or find cached) every model file of ``attack``; return the cache folder."""
    name = next((a for a in _ARTIFACT_FILES if a.lower() == attack.lower()), None)
    if name is None:
        raise ValueError(f"attack={attack!r} has no known upstream files; known: "
                         f"{sorted(_ARTIFACT_FILES)} (or pass path=)")
    root = _cache_root(cache_dir)
    folder = root / "jailbreakbench_artifacts"
    for rel in _ARTIFACT_FILES[name]:
        spec = _Spec(f"JailbreakBench artifacts ({name} {rel})", folder.name, (), _ARTIFACTS_LAYOUT,
                     url=f"{_ARTIFACTS_URL}/attack-artifacts/{name}/{rel}.json")
        _fetch(spec, folder / "attack-artifacts" / name / f"{rel}.json", root)
    return folder


def load_jbb_artifacts(attack: str | Sequence[str] = "PAIR", path: str | Path | None = None,
                       cache_dir: str | Path | None = None) -> pd.DataFrame:
    """JailbreakBench attack artifacts (``PAIR``, ``JBC``, …; a list concatenates), one row per
    (target model, behavior). PAIR's ``prompt``/``response`` are missing where it submitted none."""
    attacks = [attack] if isinstance(attack, str) else list(attack)
    frames = []
    for a in attacks:
        source = path if path is not None else _fetch_artifacts(a, cache_dir)
        for file in _artifact_files(source, a):
            name = next((q.name for q in file.parents if q.name.lower() == a.lower()), a)
            frames.append(_parse_artifact(file, name))
    if not frames:
        raise ValueError("attack= names no attack; expected e.g. 'PAIR', 'JBC' or ['PAIR', 'JBC']")
    df = pd.concat(frames, ignore_index=True)
    df["index"] = _as_int(df["index"], Path(str(source)), "index")
    df["jailbroken"] = df["jailbroken"].astype(bool)
    df["jailbroken_llama_guard1"] = df["jailbroken_llama_guard1"].astype("boolean")
    df.attrs.update(benchmark="jbb_artifacts", source=str(source))
    return df


# --------------------------------------------------------------------------- registry

BENCHMARKS: dict[str, Callable[..., pd.DataFrame]] = {
    "jbb_behaviors": load_jbb_behaviors,
    "strongreject": load_strongreject,
    "xstest": load_xstest,
    "gsm8k": load_gsm8k,
    "math500": load_math500,
    "jbb_artifacts": load_jbb_artifacts,
}


def _key(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def load_benchmark(name: str, **kwargs: Any) -> pd.DataFrame:
    """Load a benchmark by registry name (case, ``-`` and ``_`` ignored: ``MATH-500`` works)."""
    loader = next((fn for key, fn in BENCHMARKS.items() if _key(key) == _key(name)), None)
    if loader is None:
        raise ValueError(f"unknown benchmark {name!r}; known: {sorted(BENCHMARKS)}")
    return loader(**kwargs)
