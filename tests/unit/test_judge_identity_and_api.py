"""A judge is identified by what decides its verdicts, consumers hold every judge to the protocol, and
the HTTP judge keeps its deadline and stops on a dead endpoint."""

import math
import time

import pytest
from fake_judge_api import FakeServer, chat, sr_reply

from craft.evaluate import judge_records
from craft.judges import ApiJudge, JudgeStats, JudgeUnavailableError, checked_scores
from craft.paper.config import JudgeSpec, judge_identity
from craft.r2l.scorers import NEUTRAL, TextJudge
from craft.testing.tiny import build_tiny_guard
from craft.types import Prompt


class Fixed:
    """A judge that returns ``values`` whatever it is asked."""

    name = "fixed"

    def __init__(self, values):
        self.values, self.stats = list(values), JudgeStats()

    def score(self, prompts, texts):
        return list(self.values)


@pytest.fixture()
def server():
    fake = FakeServer()
    yield fake
    fake.httpd.shutdown()
    fake.httpd.server_close()


# ----------------------------------------------------------------------------- identity

def test_a_local_judge_rebuilt_in_place_is_another_judge(tmp_path):
    path = tmp_path / "guard"
    build_tiny_guard(path, seed=0)
    spec = JudgeSpec(kind="qwen3guard", model=str(path))
    first = judge_identity(spec)
    build_tiny_guard(path, seed=1)                                  # same path, other weights
    assert judge_identity(spec) != first and judge_identity(spec)["model"] == first["model"]


def test_an_api_judge_is_its_endpoint_and_model(monkeypatch):
    spec = JudgeSpec(kind="api", model="", rubric="strongreject")
    monkeypatch.setenv("CRAFT_JUDGE_BASE_URL", "http://a.example/v1")
    monkeypatch.setenv("CRAFT_JUDGE_MODEL", "judge-1")
    first = judge_identity(spec)
    monkeypatch.setenv("CRAFT_JUDGE_BASE_URL", "http://b.example/v1")
    second = judge_identity(spec)
    monkeypatch.setenv("CRAFT_JUDGE_MODEL", "judge-2")
    assert len({str(first), str(second), str(judge_identity(spec))}) == 3
    assert (second["base_url"], judge_identity(spec)["model"]) == ("http://b.example/v1", "judge-2")


def test_the_reply_cache_is_keyed_by_endpoint(tmp_path):
    servers = [FakeServer(), FakeServer()]
    try:
        for s, score in zip(servers, (1, 5)):
            s.responder = lambda req, score=score: chat(sr_reply(0, score, score))
        judges = [ApiJudge(model="same-name", base_url=s.url, cache_dir=tmp_path, timeout=5) for s in servers]
        assert [j.score(["q"], ["t"])[0] for j in judges] == [1.0, 0.0]      # the second endpoint was asked
        assert [len(s.requests) for s in servers] == [1, 1]
        assert judges[0].identity() != judges[1].identity()
    finally:
        for s in servers:
            s.httpd.shutdown()
            s.httpd.server_close()


# ----------------------------------------------------------------------------- the protocol, for every consumer

def test_a_judge_that_returns_one_score_too_few_is_an_error():
    prompts = [Prompt(f"q{i}", "harmful", "core", "direct") for i in range(3)]
    with pytest.raises(ValueError, match=r"judge 'fixed' returned 2 scores for 3 texts"):
        judge_records(prompts, ["a\n</think>\n\nb"] * 3, Fixed([0.9, 0.9]))


def test_a_score_out_of_range_is_a_failed_judgement():
    judge = Fixed([1.7, -3.0, 0.4, float("nan")])
    scores = checked_scores(judge, ["q"] * 4, ["t"] * 4)
    assert scores[2] == 0.4 and all(math.isnan(s) for s in scores[:2] + scores[3:])
    assert judge.stats.n_failed == 2                           # the NaN was the judge's own to count
    prompts = [Prompt(f"q{i}", "harmful", "core", "direct") for i in range(4)]
    records = judge_records(prompts, ["a\n</think>\n\nb"] * 4, Fixed([1.7, -3.0, 0.4, 0.9]))
    assert records.reasoning_harmful.isna().tolist() == [True, True, False, False]
    text = TextJudge(Fixed([1.7, -3.0, 0.4, 0.9]), judge_reasoning=False)
    assert text.scores(["q"] * 4, ["a\n</think>\n\nb"] * 4).answer == [NEUTRAL, NEUTRAL, 0.4, 0.9]
    assert (text.failures, text.calls) == (2, 4)


# ----------------------------------------------------------------------------- the HTTP judge's limits

def test_the_deadline_covers_a_server_that_trickles_its_headers(server):
    server.header_trickle_s = 0.4                              # one byte every 0.4 s: each read well inside 1 s
    server.responder = lambda req: chat(sr_reply(0, 3, 3))
    judge = ApiJudge(model="m", base_url=server.url, cache_dir=None, timeout=1, max_retries=0, backoff_s=0.0)
    start = time.monotonic()
    assert math.isnan(judge.score(["q"], ["t"])[0])
    assert time.monotonic() - start < 3.0                      # the deadline, not the ~20 s the headers would take


def test_a_dead_endpoint_stops_the_judge_after_a_few_calls(server):
    server.responder = lambda req: (503, "down")
    judge = ApiJudge(model="m", base_url=server.url, cache_dir=None, timeout=2, max_retries=1, backoff_s=0.0,
                     max_consecutive_failures=3)
    with pytest.raises(JudgeUnavailableError, match=rf"judge endpoint {server.url}/chat/completions failed 3 calls"):
        judge.score(["q"] * 10, [f"t{i}" for i in range(10)])
    assert len(server.requests) == 3 * 2                       # three texts, each tried twice; then no more calls
    server.responder = lambda req: chat(sr_reply(0, 3, 3))
    fresh = ApiJudge(model="m", base_url=server.url, cache_dir=None, timeout=2, max_consecutive_failures=3)
    assert fresh.score(["q"], ["t"]) == pytest.approx([0.5])   # a working endpoint: no trip
