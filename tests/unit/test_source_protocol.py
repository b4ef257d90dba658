"""Both sizes implement the stages' ``Source`` protocol: every method, with the same parameters."""

import inspect

import pytest

from craft.organism.source import OrganismSource
from craft.paper.source import PaperSource
from craft.stages.source import Source

MEMBERS = sorted(n for n, v in vars(Source).items() if callable(v) and not n.startswith("_"))
ATTRIBUTES = sorted(Source.__annotations__)


def _parameters(fn) -> list[tuple[str, object]]:
    return [(p.name, p.kind) for p in inspect.signature(fn).parameters.values()]


def test_the_protocol_names_what_the_stages_ask_for():
    assert {"base_policy", "policy_fingerprint", "load_policy", "hidden_size", "traces", "train_prompts",
            "monitor_prompts", "eval_prompts", "judge", "judge_identity", "attack_goals",
            "baseline_data"} <= set(MEMBERS)
    assert ATTRIBUTES == ["labels_own_samples", "scale", "table_columns", "table_groups"]


@pytest.mark.parametrize("cls", [OrganismSource, PaperSource], ids=lambda c: c.__name__)
def test_each_size_implements_every_member_with_its_signature(cls):
    for name in MEMBERS:
        assert callable(getattr(cls, name, None)), f"{cls.__name__} has no {name}()"
        assert _parameters(getattr(cls, name)) == _parameters(getattr(Source, name)), name
    for name in ATTRIBUTES:
        assert hasattr(cls, name), f"{cls.__name__} has no {name}"
    assert cls.scale in ("organism", "paper")
    assert len(cls.table_groups) == len(cls.table_columns) == 2


def test_an_incomplete_source_is_not_a_source():
    class Partial:
        scale, table_groups, table_columns, labels_own_samples = "organism", ("a", "b"), ("c", "d"), True

        def base_policy(self):
            return "x"

    assert not isinstance(Partial(), Source)
