"""craft.timing: exclusive seconds per kind, nested blocks charged to their own kind, and the profile
lines written where CRAFT_PROFILE points."""

import json
import time

import craft.timing as timing
from craft.timing import timed


def test_nested_blocks_are_charged_to_their_own_kind(monkeypatch, tmp_path):
    path = tmp_path / "profile" / "nb.jsonl"
    monkeypatch.setenv(timing.PROFILE_ENV, str(path))
    monkeypatch.setattr(timing, "FLUSH_EVERY", 0.0)
    before = timing.totals()
    with timed("outer-test"):
        time.sleep(0.05)
        with timed("inner-test"):
            time.sleep(0.1)
    after = timing.totals()
    outer = after["outer-test"] - before.get("outer-test", 0.0)
    inner = after["inner-test"] - before.get("inner-test", 0.0)
    assert 0.1 <= inner < 0.2 and 0.05 <= outer < 0.1              # the outer block's own time only
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert lines[-1]["worker"] is False
    assert lines[-1]["seconds"]["inner-test"] >= 0.1 and lines[-1]["seconds"]["outer-test"] >= 0.05


def test_a_decorated_function_is_timed_and_nothing_is_written_without_the_variable(monkeypatch, tmp_path):
    monkeypatch.delenv(timing.PROFILE_ENV, raising=False)
    monkeypatch.setattr(timing, "FLUSH_EVERY", 0.0)

    @timed("decorated-test")
    def work(x):
        time.sleep(0.02)
        return x + 1

    assert work(1) == 2 and work(2) == 3                          # reusable, and returns what it returns
    assert timing.totals()["decorated-test"] >= 0.04
    assert not list(tmp_path.iterdir())
