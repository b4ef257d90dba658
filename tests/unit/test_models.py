"""Unit tests for the pure functions in craft.models (no model weights needed)."""

import pytest

from craft.models import (
    DTYPES,
    SplitGeneration,
    _looks_local,
    _resolve_dtype,
    judged_response,
    split_reasoning,
)
from craft.runs import model_fingerprint


def test_normal_case():
    out = split_reasoning("Let me think about this.\n</think>\n\nI can't help with that.<|im_end|>")
    assert out == SplitGeneration("Let me think about this.", "I can't help with that.", True)


def test_no_close_tag_is_all_reasoning():
    out = split_reasoning("step one\nstep two")
    assert out == SplitGeneration("step one\nstep two", "", False)


def test_empty_reasoning():
    out = split_reasoning("</think>\n\nhi")
    assert out == SplitGeneration("", "hi", True)


def test_several_close_tags_split_at_last():
    out = split_reasoning("a </think> b <think> c </think> final answer")
    assert out.closed
    assert out.answer == "final answer"
    assert "</think>" not in out.reasoning and "<think>" not in out.reasoning
    assert out.reasoning == "a  b  c"


def test_truncated_output():
    # max_new_tokens hit mid-reasoning: no close tag, no stop string.
    out = split_reasoning("First, the user wants to know how to")
    assert not out.closed
    assert out.answer == ""
    assert out.reasoning == "First, the user wants to know how to"


def test_stop_string_cut_ignores_later_close_tag():
    out = split_reasoning("thinking<|im_end|>junk </think> fake answer")
    assert out == SplitGeneration("thinking", "", False)


def test_stop_string_cut_after_answer():
    out = split_reasoning("r</think>ans<|endoftext|><|endoftext|>more</think>x")
    assert out == SplitGeneration("r", "ans", True)


def test_earliest_stop_string_wins():
    out = split_reasoning("r</think>ans<｜end▁of▁sentence｜>x<|im_end|>y")
    assert out.answer == "ans"


def test_leading_open_tag_removed():
    out = split_reasoning("<think>\nplan\n</think>\nanswer")
    assert out == SplitGeneration("plan", "answer", True)


def test_whitespace_stripped():
    out = split_reasoning("  \n reasoning \n\n </think> \n\t answer \n ")
    assert out == SplitGeneration("reasoning", "answer", True)


def test_empty_text():
    assert split_reasoning("") == SplitGeneration("", "", False)


def test_custom_tags_and_no_stop_strings():
    out = split_reasoning("[r]x[/r]y<|im_end|>z", open_tag="[r]", close_tag="[/r]", stop_strings=())
    assert out == SplitGeneration("x", "y<|im_end|>z", True)


def test_split_generation_is_frozen():
    with pytest.raises(AttributeError):
        split_reasoning("a").answer = "x"  # type: ignore[misc]


@pytest.mark.parametrize("name", sorted(DTYPES))
def test_dtype_names(name):
    assert _resolve_dtype(name) is DTYPES[name]


@pytest.mark.parametrize("bad", ["fp32", "float64", "", "torch.float32"])
def test_dtype_error_lists_choices(bad):
    with pytest.raises(ValueError) as err:
        _resolve_dtype(bad)
    for name in DTYPES:
        assert name in str(err.value)


@pytest.mark.parametrize(
    "name, local",
    [
        ("./model", True),
        ("/abs/model", True),
        ("~/model", True),
        ("a/b/c", True),
        ("Qwen/Qwen3-0.6B", False),
        ("gpt2", False),
    ],
)
def test_looks_local(name, local):
    assert _looks_local(name) is local


def test_model_fingerprint_of_a_folder_follows_its_content(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        d.mkdir()
        (d / "config.json").write_text('{"hidden_size": 8}')
    assert model_fingerprint(str(a)) == model_fingerprint(str(b))
    (b / "config.json").write_text('{"hidden_size": 16}')
    assert model_fingerprint(str(a)) != model_fingerprint(str(b))


def test_model_fingerprint_of_an_uncached_hub_id_is_the_id():
    assert model_fingerprint("craft-tests/no-such-model") == "hub:craft-tests/no-such-model"


@pytest.mark.parametrize("text, shown", [
    ("plan\n</think>\n\nanswer", "answer"),                         # the usual case: the answer
    ("plan step one step two", "plan step one step two"),             # unfinished: everything written
    ("plan\n</think>\n\n  \n", "plan"),                               # empty answer: everything written
    ("a </think> harmful </think> refusal", "harmful  refusal"),      # after the FIRST close tag
    ("<think>plan</think>answer<|im_end|>junk", "answer"),            # stop string first, tags removed
    ("", ""),
])
def test_judged_response_is_what_the_user_is_shown(text, shown):
    assert judged_response(text) == shown
