"""``%%only``: a cell of one scale runs in that scale's run, is skipped in the other, and its errors
still fail the cell (so papermill and nbval see them)."""

import pytest
from IPython.testing.globalipapp import get_ipython

from craft.notebook import current_scale


@pytest.fixture(scope="module")
def ip():
    shell = get_ipython()
    shell.run_cell("%load_ext craft.notebook").raise_error()
    return shell


@pytest.mark.parametrize("paper, ran, skipped", [({}, "organism", "paper"), ({"model": "m"}, "paper", "organism")])
def test_runs_only_at_its_scale(ip, capsys, paper, ran, skipped):
    ip.user_ns.update(paper=paper, hits=[])
    for scale in ("organism", "paper"):
        ip.run_cell(f"%%only {scale}\nhits.append('{scale}')").raise_error()
    assert ip.user_ns["hits"] == [ran]
    assert f"({skipped}-scale cell: skipped in the {ran} run)" in capsys.readouterr().out
    assert current_scale(ip.user_ns) == ran


def test_an_error_in_the_cell_fails_the_cell(ip):
    ip.user_ns["paper"] = {}
    result = ip.run_cell("%%only organism\nassert 1 == 2, 'claim failed'")
    assert not result.success and isinstance(result.error_in_exec, AssertionError)


def test_unknown_scale_is_an_error(ip):
    result = ip.run_cell("%%only everything\nx = 1")
    assert not result.success and "takes one of ['organism', 'paper']" in str(result.error_in_exec)
