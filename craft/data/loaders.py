"""The five tabular benchmarks: their upstream files, the table/JSON reader, and one loader each.

JBB-Behaviors, StrongREJECT, XSTest, GSM8K and MATH-500 (schemas, origins and licenses in
:mod:`craft.data.benchmarks`, which re-exports these loaders). Each loader finds its file through
:func:`craft.data.sources.resolve` (``path=`` or the cache), reads it with :func:`read_table`
(``.csv`` as plain text, ``.jsonl``, ``.json``, ``.parquet``; column names matched
case-insensitively and returned in lower case), picks and renames its columns, and rejects empty
tables or empty texts. Text is returned unmodified; ``attrs`` records ``benchmark`` and ``source``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from craft.data.sources import Spec, resolve

__all__ = ["as_bool", "as_int", "load_gsm8k", "load_jbb_behaviors", "load_math500", "load_strongreject",
           "load_xstest", "read_table"]

_GH = "https://raw.githubusercontent.com"
_JBB_LAYOUT = ("a folder with harmful-behaviors.csv and benign-behaviors.csv (or a data/ "
               "subfolder holding them, as on the HF hub), or one such CSV; columns "
               "goal,target,behavior,category,source in any case")
_JBB = {split: Spec(f"JBB-Behaviors ({split})", "jbb_behaviors", (f"{split}-behaviors.csv",),
                    _JBB_LAYOUT, hf_repo="JailbreakBench/JBB-Behaviors",
                    hf_file=f"data/{split}-behaviors.csv") for split in ("harmful", "benign")}
_STRONGREJECT = Spec(
    "StrongREJECT", "strongreject", ("strongreject_dataset.csv", "strongreject.csv"),
    "strongreject_dataset.csv (or strongreject.csv), or a folder holding it; columns "
    "category,source,forbidden_prompt in any case",
    url=f"{_GH}/alexandrasouly/strongreject/main/strongreject_dataset/strongreject_dataset.csv")
_XSTEST = Spec(
    "XSTest", "xstest", ("xstest_prompts.csv",),
    "xstest_prompts.csv, or a folder holding it; columns id,prompt,type,label,focus,note",
    url=f"{_GH}/paul-rottger/exaggerated-safety/d7bb5bd738c1fcbc36edd83d5e7d1b71a3e2d84d/"
        "xstest_prompts.csv")
_GSM8K = {split: Spec(
    f"GSM8K ({split})", "gsm8k", (f"{split}.jsonl",),
    f"{split}.jsonl (one JSON object a line with question and answer, the final answer after "
    "'#### '), or a folder holding it",
    url=f"{_GH}/openai/grade-school-math/3101c7d5072418e28b9008a6636bde82a006892c/"
        f"grade_school_math/data/{split}.jsonl") for split in ("test", "train")}
_MATH500 = Spec(
    "MATH-500", "math500", ("test.jsonl",),
    "test.jsonl (one JSON object a line with problem, solution, answer, subject, level, "
    "unique_id), or a folder holding it",
    hf_repo="HuggingFaceH4/MATH-500", hf_file="test.jsonl")


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


def read_table(file: Path) -> pd.DataFrame:
    """Read .csv (all text, no NA guessing), .jsonl, .json (list), .parquet; lower-case columns."""
    suffix = file.suffix.lower()
    try:
        if suffix == ".csv":
            _check_csv_rows(file)
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


def _check_csv_rows(file: Path) -> None:
    """Every row of a CSV has the header's number of fields. pandas reads a first data row with one
    field too many as an index, shifting every value of that row one column to the left, without a word."""
    with open(file, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        width = len(next(reader, []))
        for row in reader:
            if row and len(row) != width:
                raise ValueError(f"{file}: line {reader.line_num} has {len(row)} fields where the header has "
                                 f"{width} (an unquoted comma?)")


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


_TRUE, _FALSE = ("true", "yes", "1"), ("false", "no", "0")


def as_bool(s: pd.Series, file: Path, name: str) -> pd.Series:
    """``s`` as bool, strictly: True / False, 1 / 0 and the texts true / false, yes / no, 1 / 0 (any case);
    anything else (an empty cell, "maybe", 2) is a ``ValueError`` naming ``file``, column ``name`` and the row.
    (``astype(bool)`` would read every non-empty text, "false" included, as True.)"""
    out = []
    for i, v in enumerate(s, 1):
        text = str(v).strip().lower() if not isinstance(v, bool) else str(v).lower()
        if isinstance(v, float) and v != v:       # NaN: a missing value
            text = ""
        if text not in _TRUE + _FALSE:
            raise ValueError(f"{file}: column {name!r}, row {i}: {v!r} is not a boolean (true/false, yes/no, 1/0)")
        out.append(text in _TRUE)
    return pd.Series(out, index=s.index, dtype=bool)


def as_int(s: pd.Series, file: Path, name: str) -> pd.Series:
    """``s`` as int64, or a ``ValueError`` naming ``file`` and column ``name``."""
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
    file = resolve(spec, path, cache_dir)
    raw = read_table(file)
    cols = {k: (k,) for k in ("goal", "target", "behavior", "category", "source")}
    df = _pick(raw, file, spec.layout, cols)
    index = raw["index"] if "index" in raw.columns else pd.Series(range(len(raw)))
    df.insert(0, "index", as_int(index.reset_index(drop=True), file, "index"))
    df.insert(1, "prompt", df["goal"])
    return _finish(df, file, f"jbb_behaviors/{split}", "prompt")


def load_strongreject(path: str | Path | None = None,
                      cache_dir: str | Path | None = None) -> pd.DataFrame:
    """StrongREJECT's 313 forbidden prompts with their category and source."""
    file = resolve(_STRONGREJECT, path, cache_dir)
    cols = {"prompt": ("forbidden_prompt", "prompt"), "category": ("category",),
            "source": ("source",)}
    df = _pick(read_table(file), file, _STRONGREJECT.layout, cols)
    return _finish(df, file, "strongreject", "prompt")


def load_xstest(label: str | None = None, path: str | Path | None = None,
                cache_dir: str | Path | None = None) -> pd.DataFrame:
    """XSTest prompts; ``label`` ``safe`` / ``unsafe`` keeps one half, None keeps all 450."""
    if label is not None:
        _check_choice(label, ("safe", "unsafe"), "label")
    file = resolve(_XSTEST, path, cache_dir)
    cols = {k: (k,) for k in ("id", "prompt", "type", "label")}
    df = _pick(read_table(file), file, _XSTEST.layout, cols, optional=("focus", "note"))
    df["id"] = as_int(df["id"], file, "id")
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
    file = resolve(spec, path, cache_dir)
    raw = _pick(read_table(file), file, spec.layout, {"question": ("question",),
                                                      "answer": ("answer",)})
    parts = [_gsm8k_answer(str(a), file) for a in raw["answer"]]
    df = pd.DataFrame({"question": raw["question"], "answer": [p[0] for p in parts],
                       "solution": [p[1] for p in parts]})
    return _finish(df, file, f"gsm8k/{split}", "question")


def load_math500(path: str | Path | None = None,
                 cache_dir: str | Path | None = None) -> pd.DataFrame:
    """MATH-500 problems with reference answer, solution, subject and level (1–5)."""
    file = resolve(_MATH500, path, cache_dir)
    cols = {k: (k,) for k in ("problem", "answer", "solution", "subject", "level")}
    df = _pick(read_table(file), file, _MATH500.layout, cols, optional=("unique_id",))
    df["level"] = as_int(df["level"], file, "level")
    df["answer"] = df["answer"].astype(str)
    return _finish(df, file, "math500", "problem")
