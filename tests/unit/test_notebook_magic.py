"""``%%only``: a cell of one scale runs in that scale's run, is skipped in the other, and its errors
still fail the cell (so papermill and nbval see them). ``check_parameters``: a parameter papermill
injected that the notebook does not declare is an error naming it. ``show_source``: the package's code as Markdown."""

import pytest
from IPython.testing.globalipapp import get_ipython

from craft.notebook import assigned_names, check_parameters, current_scale


@pytest.fixture(scope="module")
def ip():
    shell = get_ipython()
    shell.run_cell("%load_ext craft.notebook").raise_error()
    return shell


@pytest.mark.parametrize("source, ran, skipped", [
    ({}, "organism", "paper"),
    ({"kind": "organism", "probe_prompts": 10}, "organism", "paper"),
    ({"kind": "paper", "model": "m"}, "paper", "organism"),
])
def test_runs_only_at_its_scale(ip, capsys, source, ran, skipped):
    ip.user_ns.update(source=source, hits=[])
    for scale in ("organism", "paper"):
        ip.run_cell(f"%%only {scale}\nhits.append('{scale}')").raise_error()
    assert ip.user_ns["hits"] == [ran]
    assert f"({skipped}-scale cell: skipped in the {ran} run)" in capsys.readouterr().out
    assert current_scale(ip.user_ns) == ran


def test_current_scale_reads_the_source_kind_only():
    assert current_scale({}) == "organism"                                   # no source parameter
    assert current_scale({"source": None}) == "organism"
    assert current_scale({"paper": {"model": "m"}}) == "organism"            # the old parameter means nothing
    assert current_scale({"source": {"kind": "paper"}}) == "paper"
    assert current_scale({"source": "paper"}) == "organism"                  # not a source mapping


def test_an_error_in_the_cell_fails_the_cell(ip):
    ip.user_ns["source"] = {}
    result = ip.run_cell("%%only organism\nassert 1 == 2, 'claim failed'")
    assert not result.success and isinstance(result.error_in_exec, AssertionError)


def test_unknown_scale_is_an_error(ip):
    result = ip.run_cell("%%only everything\nx = 1")
    assert not result.success and "takes one of ['organism', 'paper']" in str(result.error_in_exec)


PARAMETERS = 'run_dir = "runs/x"   # where\nseed: int = 0\nsource = {}\nif seed:\n    hidden = 1\n'


def test_assigned_names_are_the_top_level_assignments():
    assert assigned_names(PARAMETERS) == ["run_dir", "seed", "source"]
    assert assigned_names("import os\nx = y = 1\nos.environ['A'] = '1'\nprint(x)") == ["x", "y"]
    assert assigned_names("") == []


def test_check_parameters_names_an_unknown_injected_parameter():
    history = ["", "%load_ext craft.notebook", PARAMETERS, '# Parameters\nseed = 3\nstepz = 5\nrun_dir = "runs/y"\n',
               "check_parameters()"]
    with pytest.raises(NameError, match=r"unknown parameter\(s\) \['stepz'\]") as err:
        check_parameters(history)
    assert "['run_dir', 'seed', 'source']" in str(err.value)                # says what is declared
    with pytest.raises(NameError, match=r"\['a', 'stepz'\]"):
        check_parameters([PARAMETERS, "# Parameters\nstepz = 5\na = 1\n"])


def test_check_parameters_passes_known_names_and_no_injection():
    check_parameters([PARAMETERS, '# Parameters\nseed = 3\nrun_dir = "runs/y"\nsource = {"kind": "paper"}\n',
                      "x = 1"])
    check_parameters(["%load_ext craft.notebook", PARAMETERS, "x = 1\nstepz = 2"])    # nothing injected
    check_parameters([])


def test_check_parameters_reads_the_kernel_history(ip):
    history = ip.user_ns.get("In")
    try:
        ip.user_ns["In"] = ["", PARAMETERS, "# Parameters\nstepz = 5\n"]
        with pytest.raises(NameError, match="stepz"):
            check_parameters()
        ip.user_ns["In"] = ["", PARAMETERS, "# Parameters\nseed = 5\n"]
        check_parameters()
    finally:
        ip.user_ns["In"] = history


def test_show_source_puts_the_package_code_on_the_page_as_markdown():
    from IPython.display import Markdown

    from craft.notebook import show_source
    from craft.r2l import group_advantages
    from craft.r2l.rewards import ConsistencyReward

    shown = show_source(group_advantages, ConsistencyReward.values)
    assert isinstance(shown, Markdown)
    assert "`craft.r2l.group.group_advantages`" in shown.data and "def group_advantages(" in shown.data
    assert "`craft.r2l.rewards.ConsistencyReward.values`" in shown.data
    assert shown.data.count("```python") == 2 and "\n    def values" not in shown.data     # dedented
