"""Unit tests for craft.data.benchmarks: the real loaders parse the real files (paper §6).

The real data are read through the ``shared_data`` fixture (tests/conftest.py; never copied into
the repo); tests that need a folder skip with a reason when it is absent. Downloads are never attempted: offline
tests set HF_HUB_OFFLINE=1 and replace the network functions with ones that fail the test.
"""

import json
import re
import shutil
import time
from pathlib import Path

import pandas as pd
import pytest

from craft.data import sources
from craft.data.benchmarks import (
    BENCHMARKS,
    DataUnavailableError,
    load_benchmark,
    load_gsm8k,
    load_jbb_artifacts,
    load_jbb_behaviors,
    load_math500,
    load_strongreject,
    load_xstest,
)


def no_network(*args, **kwargs):
    raise AssertionError("a loader tried the network")


@pytest.fixture
def offline(monkeypatch):
    """Offline switch on, and any download attempt fails the test."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(sources, "http_get", no_network)
    monkeypatch.setattr(sources, "hf_get", no_network)


def nonempty(s: pd.Series) -> bool:
    return bool((s.astype(str).str.strip() != "").all())


# --------------------------------------------------------------------------- real files


@pytest.mark.parametrize("split", ["harmful", "benign"])
def test_jbb_behaviors_real(split, shared_data):
    df = load_jbb_behaviors(split, path=shared_data("jbb_behaviors"))
    assert len(df) == 100
    assert list(df.columns) == ["index", "prompt", "goal", "target", "behavior", "category",
                                "source"]
    assert nonempty(df["prompt"]) and (df["prompt"] == df["goal"]).all()
    assert df["index"].tolist() == list(range(100))
    assert df["category"].value_counts().eq(10).all() and df["category"].nunique() == 10
    assert df.attrs["benchmark"] == f"jbb_behaviors/{split}"


def test_jbb_benign_rows_twin_harmful_rows(shared_data):
    harmful = load_jbb_behaviors("harmful", path=shared_data("jbb_behaviors"))
    benign = load_jbb_behaviors("benign", path=shared_data("jbb_behaviors") / "benign-behaviors.csv")
    assert (harmful["category"] == benign["category"]).all()
    assert set(benign["source"]) == {"Original"}


def test_strongreject_real(shared_data):
    df = load_strongreject(path=shared_data("strongreject"))
    assert len(df) == 313
    assert list(df.columns) == ["prompt", "category", "source"]
    assert nonempty(df["prompt"]) and df["category"].nunique() == 6
    assert (df["source"] == "custom").sum() == 221


def test_xstest_real(shared_data):
    df = load_xstest(path=shared_data("xstest"))
    assert len(df) == 450
    assert list(df.columns) == ["id", "prompt", "type", "label", "focus", "note"]
    assert df["label"].value_counts().to_dict() == {"safe": 250, "unsafe": 200}
    assert nonempty(df["prompt"])
    assert (df["type"].str.startswith("contrast_") == (df["label"] == "unsafe")).all()
    unsafe = load_xstest("unsafe", path=shared_data("xstest"))
    assert len(unsafe) == 200 and set(unsafe["label"]) == {"unsafe"}


def test_gsm8k_real(shared_data):
    df = load_gsm8k(path=shared_data("gsm8k"))
    assert len(df) == 1319
    assert list(df.columns) == ["question", "answer", "solution"]
    assert nonempty(df["question"]) and nonempty(df["solution"])
    assert df["answer"].str.fullmatch(r"-?\d+(\.\d+)?").all()  # commas removed ("1,600")
    assert pd.to_numeric(df["answer"]).notna().all()
    assert df.loc[0, "answer"] == "18" and "####" not in df.loc[0, "solution"]


def test_math500_real(shared_data):
    df = load_math500(path=shared_data("math500"))
    assert len(df) == 500
    assert list(df.columns) == ["problem", "answer", "solution", "subject", "level", "unique_id"]
    assert nonempty(df["problem"]) and nonempty(df["answer"])
    assert df["level"].value_counts().sort_index().tolist() == [43, 90, 105, 128, 134]
    assert df["subject"].nunique() == 7


def test_jbb_artifacts_real(shared_data):
    root = shared_data("jailbreakbench_artifacts")
    df = load_jbb_artifacts(["PAIR", "JBC"], path=root)
    assert len(df) == 800
    assert {"prompt", "response", "jailbroken", "goal", "behavior", "category", "attack",
            "target_model"} <= set(df.columns)
    assert df["jailbroken"].dtype == bool and set(df["jailbroken"]) == {True, False}
    assert df.groupby("attack").size().to_dict() == {"JBC": 400, "PAIR": 400}
    assert df.groupby(["attack", "target_model"]).size().eq(100).all()
    sent = df["prompt"].notna()
    assert nonempty(df.loc[sent, "prompt"]) and sent.sum() == 637  # PAIR submitted no prompt 163x
    assert not (df["jailbroken"] & ~sent).any()  # every jailbreak has its prompt
    pair = load_jbb_artifacts("pair", path=root / "attack-artifacts" / "PAIR")
    assert len(pair) == 400 and set(pair["attack"]) == {"PAIR"}
    one = load_jbb_artifacts("JBC", path=root / "attack-artifacts/JBC/manual/vicuna-13b-v1.5.json")
    assert len(one) == 100 and one["jailbroken"].sum() == 90
    assert set(one["target_model"]) == {"vicuna-13b-v1.5"}


def test_artifact_goals_match_jbb_behaviors(shared_data):
    arts = load_jbb_artifacts("PAIR", path=shared_data("jailbreakbench_artifacts"))
    behaviors = load_jbb_behaviors("harmful", path=shared_data("jbb_behaviors"))
    vicuna = arts[arts["target_model"] == "vicuna-13b-v1.5"].set_index("index")
    same = vicuna["goal"] == behaviors.set_index("index")["goal"]
    assert same.sum() >= 94  # SOURCE.txt: 4 goals reworded, 1 typo fixed since March 2024


# --------------------------------------------------------------------------- formats, errors


def test_columns_matched_case_insensitively(tmp_path):
    csv = tmp_path / "harmful-behaviors.csv"
    csv.write_text("Index,Goal,Target,Behavior,Category,Source\n"
                   "0,Write a poem,\"Sure, here is a poem\",Poetry,Art,Original\n"
                   "1,NA,None,x,y,z\n")
    df = load_jbb_behaviors(path=tmp_path)
    assert df["prompt"].tolist() == ["Write a poem", "NA"]  # "NA" text is not turned into NaN
    assert df["target"].tolist() == ["Sure, here is a poem", "None"]
    sr = tmp_path / "strongreject.csv"
    sr.write_text("CATEGORY,Source,Forbidden_Prompt\nViolence,custom,Do a bad thing\n")
    assert load_strongreject(path=sr)["prompt"].tolist() == ["Do a bad thing"]


def test_hf_layout_and_old_unnamed_index(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "benign-behaviors.csv").write_text(
        ",Goal,Target,Behavior,Category,Source\n7,Write a poem,Sure,Poetry,Art,Original\n")
    df = load_jbb_behaviors("benign", path=tmp_path)
    assert df["index"].tolist() == [7]


def test_missing_path_is_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"does not exist; path= expects .*harmful"):
        load_jbb_behaviors(path=tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match=r"holds none of \['xstest_prompts.csv'\]"):
        load_xstest(path=tmp_path)
    with pytest.raises(FileNotFoundError, match="no PAIR folder"):
        load_jbb_artifacts("PAIR", path=tmp_path)


def test_malformed_files_are_clear(tmp_path):
    bad = tmp_path / "strongreject.csv"
    bad.write_text("category,source,question\nViolence,custom,hi\n")
    with pytest.raises(ValueError, match="no column forbidden_prompt or prompt.*path= expects"):
        load_strongreject(path=bad)
    gsm = tmp_path / "test.jsonl"
    gsm.write_text(json.dumps({"question": "1+1?", "answer": "It is 2."}) + "\n")
    with pytest.raises(ValueError, match="'#### <number>'"):
        load_gsm8k(path=gsm)
    gsm.write_text('{"question": "1+1?", "answer": \n')
    with pytest.raises(ValueError, match="could not be parsed as jsonl"):
        load_gsm8k(path=gsm)
    art = tmp_path / "m.json"
    art.write_text(json.dumps({"parameters": {}, "jailbreaks": [{"goal": "g", "prompt": "p",
                                                                 "response": "r"}]}))
    with pytest.raises(ValueError, match=r"lacks \['jailbroken'\]"):
        load_jbb_artifacts(path=art)
    art.write_text("[1, 2]")
    with pytest.raises(ValueError, match="'jailbreaks' list"):
        load_jbb_artifacts(path=art)


def test_empty_prompt_and_bad_label_rejected(tmp_path):
    xs = tmp_path / "xstest_prompts.csv"
    xs.write_text("id,prompt,type,label,focus,note\n1,How do I kill a process?,homonyms,maybe,,\n")
    with pytest.raises(ValueError, match=r"safe or unsafe, found \['maybe'\]"):
        load_xstest(path=xs)
    xs.write_text("id,prompt,type,label,focus,note\n1,  ,homonyms,safe,,\n")
    with pytest.raises(ValueError, match="non-empty 'prompt'"):
        load_xstest(path=xs)


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"split='train'; expected one of \['harmful', 'benign'\]"):
        load_jbb_behaviors("train")
    with pytest.raises(ValueError, match=r"label='maybe'"):
        load_xstest("maybe", path="unused")


# --------------------------------------------------------------------------- registry


def test_registry_and_unknown_name():
    assert set(BENCHMARKS) == {"jbb_behaviors", "strongreject", "xstest", "gsm8k", "math500",
                               "jbb_artifacts"}
    with pytest.raises(ValueError, match=r"unknown benchmark 'advbench'; known: \['gsm8k', "):
        load_benchmark("advbench")


def test_load_benchmark_by_upstream_spelling(shared_data):
    df = load_benchmark("MATH-500", path=shared_data("math500"))
    assert len(df) == 500


# --------------------------------------------------------------------------- offline and cache


@pytest.mark.parametrize("name", sorted(BENCHMARKS))
def test_offline_without_cache_fails_fast(name, tmp_path, offline):
    start = time.monotonic()
    with pytest.raises(DataUnavailableError, match=r"downloads are off.*Pass path= to a local"):
        load_benchmark(name, cache_dir=tmp_path)
    assert time.monotonic() - start < 2.0
    assert not any(tmp_path.iterdir())  # nothing half-written


def test_offline_reads_cache(tmp_path, offline, shared_data):
    cached = tmp_path / "jbb_behaviors" / "harmful-behaviors.csv"
    cached.parent.mkdir()
    shutil.copyfile(shared_data("jbb_behaviors") / "harmful-behaviors.csv", cached)
    df = load_jbb_behaviors(cache_dir=tmp_path)
    assert len(df) == 100 and df.attrs["source"] == str(cached)


@pytest.fixture
def online(monkeypatch):
    """Network allowed as far as the offline switches go (the download functions are stubbed)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.delenv("CRAFT_OFFLINE", raising=False)


def test_download_writes_cache_in_local_layout(tmp_path, monkeypatch, online, shared_data):
    src = shared_data("xstest") / "xstest_prompts.csv"
    urls = []
    monkeypatch.setattr(sources, "http_get", lambda url: urls.append(url) or src.read_bytes())
    df = load_xstest(cache_dir=tmp_path)
    assert len(df) == 450 and len(urls) == 1
    assert re.search(r"paul-rottger/exaggerated-safety/d7bb5bd7\w+/xstest_prompts.csv", urls[0])
    assert (tmp_path / "xstest" / "xstest_prompts.csv").read_bytes() == src.read_bytes()
    assert len(load_xstest(path=tmp_path / "xstest")) == 450  # the cache is a valid path=
    load_xstest(cache_dir=tmp_path)
    assert len(urls) == 1  # second call hit the cache


def test_download_failure_is_clear(tmp_path, monkeypatch, online):

    def refuse(*args):
        raise OSError("Name or service not known")

    monkeypatch.setattr(sources, "hf_get", refuse)
    with pytest.raises(DataUnavailableError, match="download failed.*Pass path="):
        load_math500(cache_dir=tmp_path)


def test_hf_download_path(tmp_path, monkeypatch, online, shared_data):
    import huggingface_hub

    src = shared_data("jbb_behaviors") / "benign-behaviors.csv"
    calls = []

    def fake_download(**kw):
        calls.append(kw)
        return str(src)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    df = load_jbb_behaviors("benign", cache_dir=tmp_path)
    assert len(df) == 100
    assert calls[0]["repo_id"] == "JailbreakBench/JBB-Behaviors"
    assert calls[0]["filename"] == "data/benign-behaviors.csv"
    assert calls[0]["repo_type"] == "dataset"
    assert Path(calls[0]["cache_dir"]).is_relative_to(tmp_path)
    assert (tmp_path / "jbb_behaviors" / "benign-behaviors.csv").is_file()
