"""Unit tests for the capability scorer (craft.answers, craft.evaluate.answer_correct), the
generation settings and the paper tables of craft.evaluate (paper §6).

The tests on the real GSM8K / MATH-500 files read them through the ``shared_data`` fixture
(tests/conftest.py) and skip with a reason when the files are absent.
"""

import json
import math

import pandas as pd
import pytest

from craft.answers import answers_match, extract_final_answer, normalize_answer, parse_final_number
from craft.config import ConfigError
from craft.data.benchmarks import load_gsm8k, load_math500
from craft.evaluate import GenerationSettings, answer_correct, paper_table, relative_improvement
from craft.types import Prompt


@pytest.mark.parametrize("text, expected", [
    (r"so \boxed{\frac{1}{\{2\}}} and finally \boxed{\frac{\sqrt{3}}{2}}", r"\frac{\sqrt{3}}{2}"),
    (r"the result is \boxed {x^{2}+1}.", "x^{2}+1"),
    (r"so \boxed 7", "7"),
    (r"The answer is $\frac{1}{2}$. I hope it is correct.", r"\frac{1}{2}"),
    ("the answer is 7 .", "7"),
    ("The answer is: **-3.5**", "-3.5"),
    ("She pays 3 + 4 = 7 dollars.\n#### 1,234", "1,234"),
    ("we get 3, then -4.5 in total", "-4.5"),
    ("5-3=2", "2"),
    (r"truncated \boxed{12", "12"),            # an unclosed box is no box: the last number
    ("no digits here", None),
])
def test_extract_final_answer(text, expected):
    assert extract_final_answer(text) == expected


MATCHES = [
    (r"\boxed{\frac{\sqrt{3}}{2}}", r"\dfrac{\sqrt{3}}{2}"),
    ("0.5", r"\frac{1}{2}"), ("1/2", r"\frac12"), (r"\tfrac{3}{4}", "0.75"), ("0.50", "1/2"),
    (r"\frac1{2}", r"\frac{1}{2}"), (r"\frac{-1}{2}", "-0.5"), (r"-\frac{1}{2}", "-1/2"), (".5", "0.5"),
    ("2.0", "2"), ("5.", "5"), ("$-3$", "-3"), ("\u22123", "-3"), ("+4", "4"),
    (r"50\%", "50"), ("50%", "50"), (r"90^\circ", "90"), (r"90^{\circ}", "90"), ("90°", "90"),
    (r"\text{(B)}", "B"), ("(B)", r"\textbf{(B)}"), (r"\text{Evelyn}", "Evelyn"),
    ("x = 5", "5"), ("1,000", "1000"), (r"1{,}000", "1000"), (r"\$18.90", "18.9"), ("18 dollars", "18"),
    (r"10\text{ cm}", "10"), (r"4\mbox{ cm}^2", "4"), (r"3\sqrt2", r"3\sqrt{2}"),
    (r"\left( 3, \frac{\pi}{2} \right)", r"(3,\frac{\pi}{2})"), ("(1, 0.5)", r"(1,\frac{1}{2})"),
    (r"\{1,2\}", r"\{1, 2\}"), (r"2\!\cdot\!3", r"2\cdot3"), ("[-1, 4)", "[-1,4)"),
    # symbolic equivalence (math-verify): what the normaliser alone missed
    (r"\sqrt{8}", r"2\sqrt{2}"), (r"\frac{\sqrt{2}}{2}", r"\frac{1}{\sqrt{2}}"), (r"2^{10}", "1024"),
    (r"(x+1)^2", r"x^2+2x+1"), (r"\pi/2", r"\frac{\pi}{2}"),
]
MISMATCHES = [
    ("2", "3"), ("0.33", r"\frac{1}{3}"), ("(1,2)", "(2,1)"), ("5 and 7", "5"), ("A", "B"), ("", "0"),
    (None, "0"), (r"\frac{1}{0}", "0"), ("1,2", "12"), ("-3", "3"), (r"\sqrt{8}", "8"),
    ("9" * 5000, "9"),                         # too long for int(): compared as text, no crash
    (r"2\sqrt{3}", r"3\sqrt{2}"), (r"x^2", "2x"), ("x", "y"),
]


@pytest.mark.parametrize("pred, gold", MATCHES)
def test_answers_match(pred, gold):
    assert answers_match(pred, gold) and answers_match(gold, pred)


@pytest.mark.parametrize("pred, gold", MISMATCHES)
def test_answers_mismatch(pred, gold):
    assert not answers_match(pred, gold)


def test_normalize_answer_forms():
    assert normalize_answer(r"\dfrac12") == r"\frac{1}{2}"
    assert normalize_answer("1/2") == r"\frac{1}{2}"
    assert normalize_answer(r"\left[ 1, 2 \right]") == "[1,2]"
    assert normalize_answer(r"5\text{ or }7") != "5"          # only a trailing \text{ unit} is a unit
    assert normalize_answer(r"\text{ cm}") == "cm"              # nothing left to be a number: kept


def test_answer_correct_by_prompt_kind():
    problem = Prompt("What is $1/2 + 1/4$?", "capability", "math", "benign", target=r"\frac{3}{4}",
                     benchmark="math500")
    assert answer_correct(problem, r"so the sum is \boxed{0.75}")
    assert not answer_correct(problem, r"so the sum is \boxed{\frac{1}{2}}")
    assert not answer_correct(problem, "no answer")
    gsm = Prompt("How many?", "capability", "gsm8k", "benign", target="1234", benchmark="gsm8k")
    assert answer_correct(gsm, "She pays 3 + 4 = 7 dollars.\n#### 1,234")
    arith = Prompt("anna has 2 apples and gets 3 more .", "arithmetic", "arithmetic", "benign", target="5")
    assert answer_correct(arith, "the answer is 5 .") and not answer_correct(arith, "the answer is 6 .")
    assert not answer_correct(arith, "5")                   # the organism's format: "the answer is N"
    assert parse_final_number("the answer is 5 .") == "5"
    for kind in ("harmful", "benign"):                     # no capability to check
        assert not answer_correct(Prompt("q", kind, "f", "direct", target="5"), "the answer is 5 .")


def test_generation_settings_ranges():
    assert GenerationSettings() == GenerationSettings(128, 0.6, 0.95, True, 64, 0, None, "batched")
    for bad, key in [(dict(max_new_tokens=0), "max_new_tokens"), (dict(temperature=0.0), "temperature"),
                     (dict(top_p=1.5), "top_p"), (dict(top_p=0.0), "top_p"), (dict(batch_size=0), "batch_size"),
                     (dict(temperature=float("nan")), "temperature"), (dict(engine="vllm"), "engine"),
                     (dict(top_k=-1), "top_k")]:
        with pytest.raises(ConfigError, match=key):
            GenerationSettings(**bad)


def test_math500_solutions_and_answers(shared_data):
    df = load_math500(path=shared_data("math500"))
    normal = [normalize_answer(a) for a in df["answer"]]
    assert [normalize_answer(n) for n in normal] == normal      # idempotent on all 500 answers
    assert all(answers_match(extract_final_answer(s), a) for s, a in zip(df["solution"], df["answer"]))
    assert all(answers_match(extract_final_answer(f"So the answer is ${a}$. Done."), a) for a in df["answer"])


def test_gsm8k_gold_answers_parse_and_match(shared_data):
    """All 1319 test problems: each worked solution's final answer matches its gold answer, and not
    the next problem's."""
    folder = shared_data("gsm8k")
    raw = [json.loads(line) for line in (folder / "test.jsonl").read_text().splitlines()]
    gold = list(load_gsm8k(path=folder)["answer"])
    assert len(raw) == len(gold) == 1319
    assert all(answers_match(extract_final_answer(r["answer"]), g) for r, g in zip(raw, gold))
    assert not all(answers_match(extract_final_answer(r["answer"]), g) for r, g in zip(raw[1:], gold))


def test_relative_improvement():
    assert relative_improvement(0.5, 0.105) == pytest.approx(0.79)        # "-79.0 % harmfulness"
    assert relative_improvement(0.2, 0.3) == pytest.approx(-0.5)          # worse: negative
    assert relative_improvement(0.80, 0.8376, higher_is_better=True) == pytest.approx(0.047)
    assert relative_improvement(0.4, 0.4) == 0.0
    for base, method in ((0.0, 0.1), (0.0, 0.0), (float("nan"), 0.1), (0.3, float("nan"))):
        assert math.isnan(relative_improvement(base, method))


def _long() -> pd.DataFrame:
    rows = []
    for method, scale in (("Base", 1.0), ("CRAFT", 0.25)):
        for bench, shift in (("JailbreakBench", 0.0), ("StrongREJECT", 0.1)):
            for attack, r in (("none", 0.1), ("pap", 0.2), ("pair", 0.6)):
                rows.append(dict(method=method, benchmark=bench, attack=attack,
                                 reasoning_harm=scale * (r + shift), response_harm=scale * r / 2))
    return pd.DataFrame(rows)


def test_paper_table_layout_and_averages():
    table = paper_table(_long())
    assert list(table.index) == ["Base", "CRAFT"] and table.index.name == "method"
    assert list(table.columns) == [("JailbreakBench", "reasoning"), ("JailbreakBench", "response"),
                                   ("StrongREJECT", "reasoning"), ("StrongREJECT", "response"),
                                   ("average", "reasoning"), ("average", "response")]
    assert table.columns.names == ["benchmark", "harm"]
    assert table.loc["Base", ("JailbreakBench", "reasoning")] == pytest.approx(0.3)   # mean of attacks
    assert table.loc["Base", ("StrongREJECT", "reasoning")] == pytest.approx(0.4)
    assert table.loc["Base", ("average", "reasoning")] == pytest.approx(0.35)
    assert table.loc["CRAFT", ("average", "response")] == pytest.approx(0.25 * 0.15)
    assert relative_improvement(table.loc["Base", ("average", "reasoning")],
                                table.loc["CRAFT", ("average", "reasoning")]) == pytest.approx(0.75)


def test_paper_table_weights_attacks_equally_and_flags_missing_benchmarks():
    df = _long()
    extra = df[(df.method == "Base") & (df.attack == "pair")].assign(reasoning_harm=0.6)
    table = paper_table(pd.concat([df, extra, extra]))            # per-prompt rows: pair has 3x more
    assert table.loc["Base", ("JailbreakBench", "reasoning")] == pytest.approx(0.3)
    partial = df[~((df.method == "CRAFT") & (df.benchmark == "StrongREJECT"))]
    t = paper_table(partial)
    assert math.isnan(t.loc["CRAFT", ("StrongREJECT", "reasoning")])
    assert math.isnan(t.loc["CRAFT", ("average", "reasoning")])    # not an average over fewer benchmarks
    with pytest.raises(ValueError, match=r"lacks columns \['attack'\]"):
        paper_table(df.drop(columns="attack"))
    with pytest.raises(ValueError, match="named 'average'"):
        paper_table(df.assign(benchmark="average"))
