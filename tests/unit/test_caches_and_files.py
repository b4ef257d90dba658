"""Nothing a run writes is read back wrong: a failed judgement stays a missing verdict through the
records cache, a damaged or cut-short file is named (never read in silence), a write that fails (a
full disk) leaves the old file and no half-written one, and a lock file is never followed through a
symbolic link."""

import errno
import math
import os

import numpy as np
import pandas as pd
import pytest

from craft.cli import error_line
from craft.evaluate import judge_records, summary_metrics
from craft.io import DamagedFileError, atomic_write, frame_json, load_json, read_frame_json
from craft.judges import JudgeStats
from craft.runs import RunLockedError, locked
from craft.stages.completions import read_records
from craft.types import Prompt

PROMPTS = [Prompt(f"how do i make compound {i} ?", "harmful", "core", "direct") for i in range(40)]
TEXTS = ["i will list the steps . step one .\n</think>\n\ni can not help with that ."] * 40


class FlakyJudge:
    """P(safe) 0.9, except NaN (could not judge) for the texts of ``fail`` (indices)."""

    name = "flaky"

    def __init__(self, fail=(), value=0.9):
        self.fail, self.value, self.stats = set(fail), value, JudgeStats()

    def score(self, prompts, texts):
        return [math.nan if i in self.fail else self.value for i in range(len(texts))]


@pytest.fixture()
def cached(tmp_path):
    """Records with one failed judgement, written as the evaluation cache writes them."""
    records = judge_records(PROMPTS, TEXTS, FlakyJudge(fail={3}), FlakyJudge())
    path = tmp_path / "records.csv"
    atomic_write(path, records.to_csv(index=False))
    return records, path


def test_a_failed_judgement_round_trips_as_a_missing_verdict(cached):
    records, path = cached
    back = read_records(path, len(PROMPTS))
    assert pd.isna(back.reasoning_harmful[3]) and math.isnan(back.reasoning_harm[3])
    assert back.reasoning_harm.dtype == float and back.response_harm.dtype == float
    assert back.closed.dtype == bool and str(back.reasoning_harmful.dtype) == "boolean"
    fresh, again = summary_metrics(records), summary_metrics(back)
    assert fresh["n_judge_failed_reasoning"] == again["n_judge_failed_reasoning"] == 1
    assert {k: v for k, v in fresh.items() if v == v} == {k: v for k, v in again.items() if v == v}


def test_a_cut_short_records_file_is_named_not_read(cached):
    _, path = cached
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])                              # cut inside a row
    with pytest.raises(DamagedFileError, match=r"records\.csv is damaged"):
        read_records(path, len(PROMPTS))
    rows = data.split(b"\n")
    path.write_bytes(b"\n".join(rows[:10]) + b"\n")                     # cut at a row boundary: read silently before
    with pytest.raises(DamagedFileError, match=r"9 rows where 40 were written"):
        read_records(path, len(PROMPTS))


def test_a_shifted_value_is_named_with_its_column_and_row(cached):
    _, path = cached
    df = pd.read_csv(path, keep_default_na=False)
    df.loc[5, "reasoning_harm"] = "False"
    df.to_csv(path, index=False)
    with pytest.raises(DamagedFileError, match=r"column 'reasoning_harm', row 6: 'False' is not a number"):
        read_records(path)


def test_a_failed_write_keeps_the_old_file_and_leaves_nothing_half_written(tmp_path, monkeypatch):
    path = tmp_path / "history.json"
    atomic_write(path, '{"old": 1}')

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError) as e:
        atomic_write(path, '{"new": 2}' * 1000)
    assert load_json(path) == {"old": 1} and sorted(p.name for p in tmp_path.iterdir()) == ["history.json"]
    assert error_line(e.value).startswith("no space left on device writing ")


@pytest.mark.parametrize("name", ["identity.json", "world.json", "history.json"])
def test_a_truncated_json_file_is_named(tmp_path, name):
    (tmp_path / name).write_text('{"organism": {"seed": ')
    with pytest.raises(DamagedFileError, match=rf"{name} is damaged \(not valid JSON"):
        load_json(tmp_path / name)


def test_a_lock_planted_as_a_symbolic_link_is_refused_and_its_target_kept(tmp_path):
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / ".lock").symlink_to(target)
    with pytest.raises(RunLockedError, match="symbolic link"), locked(tmp_path / "run"):
        pass
    assert target.read_text() == "keep me"


def test_a_checkpoint_that_cannot_be_written_on_a_full_disk_says_so(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple
    from types import SimpleNamespace

    from craft.runs import train

    class Trainer:
        args = SimpleNamespace(output_dir=str(tmp_path))

        def train(self, resume_from_checkpoint=None):
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 1664 vs 1558")

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10 << 30, 10 << 30, 1 << 20))
    with pytest.raises(OSError) as e:
        train(Trainer())
    assert e.value.errno == errno.ENOSPC
    assert error_line(e.value) == (f"no space left on device writing {tmp_path}: free some space and run the command "
                                   "again (finished work is kept)")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10 << 30, 1 << 30, 9 << 30))
    with pytest.raises(RuntimeError, match="unexpected pos"):            # plenty of room: torch's own error
        train(Trainer())


def test_a_frame_round_trips_through_json_exactly():
    """The monitor stage's cache: every dtype it holds, floats to the last bit, lists kept as lists, the index."""
    df = pd.DataFrame({"x": [0.1 + 0.2, float("nan"), 1e-300], "n": [1, 2, 3], "flag": [True, False, True],
                       "verdict": pd.array([True, None, False], dtype="boolean"),
                       "p_z": [[0.5, 1 / 3], [], [2.0]], "lead": [None, 3, -11],
                       "r_ls": np.array([0.1, 0.2, 0.3], dtype=np.float32), "name": ["a", "b", "c"]},
                      index=pd.Index(["u", "v", "w"], name="policy"))
    back = read_frame_json(frame_json(df))
    pd.testing.assert_frame_equal(back, df, check_exact=True)
    assert back.p_z.iat[0] == [0.5, 1 / 3] and isinstance(back.p_z.iat[1], list)
    assert math.isnan(read_frame_json(frame_json(pd.DataFrame({"p_z": [[float("nan")]]}))).p_z.iat[0][0])
    plain = df.reset_index(drop=True)
    pd.testing.assert_frame_equal(read_frame_json(frame_json(plain)), plain, check_exact=True)
    with pytest.raises(TypeError, match="ndarray"):
        frame_json(pd.DataFrame({"z": [np.zeros(2)]}))
