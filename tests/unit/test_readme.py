"""The README and the docs pages: links resolve inside the repository, the cost table is the script's output,
and the paper-scale section has its status sentence and comparability list."""

import re
import sys
from pathlib import Path

import pytest
from printed_numbers import outputs_text, unprinted, values

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_resolves(page):
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+://", target):
            continue
        assert (page.parent / target).exists(), f"{page.name} links {target}, which is not in the repository"


def test_cost_table_in_readme_is_the_scripts_output(capsys):
    sys.path.insert(0, str(ROOT / "scripts"))
    from cost_table import main

    assert main([str(ROOT / "params" / "paper-qwen3-4b-thinking.yaml")]) == 0
    table = capsys.readouterr().out.strip()
    assert table in (ROOT / "README.md").read_text(encoding="utf-8"), (
        "README's cost table differs from `python scripts/cost_table.py params/paper-qwen3-4b-thinking.yaml`")


def test_cost_table_refuses_an_organism_params_file(capsys):
    sys.path.insert(0, str(ROOT / "scripts"))
    from cost_table import main

    assert main([str(ROOT / "params" / "organism.yaml")]) == 2
    assert "not a paper-scale params file" in capsys.readouterr().err


def test_paper_scale_section_says_what_ran_and_what_differs():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Reproducing the paper at scale", 1)[1].split("\n## ", 1)[0]
    assert section.lstrip().startswith("**No stage of this package has run on the paper's weights here**")
    assert "--ablations" in section, "the GPU recipe must train the ablations"
    comparability = section.split("**Why paper-scale numbers will not match the paper's.**", 1)[1]
    items = re.findall(r"^\d+\. \*\*", comparability, re.M)
    assert len(items) >= 6, "the comparability list is one numbered list of every difference"
    assert comparability.count("To remove") + comparability.count("not implemented") >= len(items) - 2


# ----------------------------------------------------------------------------- the README's numbers

RESULTS = ("## What the default run measures", "## Two commands")
# Numbers in the results section that no run of this repository prints, each with why. Every phrase must stay in
# the README word for word (a test below), so that this list cannot outlive what it excuses.
NOT_FROM_A_RUN = {
    "the paper's headline: 79 % and 88 %": "the paper's numbers",
    "paper: GPTFuzzer 93.6 → 28.0 % reasoning, 40.4 → 4.0 % final": "the paper's numbers",
    "(the target was 0.75)": "a target written before the run",
    "inside the project's bar [0.40, 0.90]": "a bar written before the run",
}


def _benchmark_values() -> list[float]:
    """Every number in the committed benchmark results (``benchmarks/results/*.json``)."""
    files = sorted((ROOT / "benchmarks" / "results").glob("*.json"))
    return values("\n".join(p.read_text(encoding="utf-8") for p in files))


def readme_numbers_not_printed(readme: str, notebooks: dict[str, str]) -> list[str]:
    """Each number of the README's results section that the notebook its paragraph names does not print
    (``notebooks``: two-digit number -> outputs), as ``'number' in: context``; phrases of
    :data:`NOT_FROM_A_RUN` are skipped. A paragraph on the benchmarks is checked against their committed
    results; one that names neither, against every notebook."""
    section = readme.split(RESULTS[0], 1)[1].split(RESULTS[1], 1)[0]
    for phrase in NOT_FROM_A_RUN:
        section = section.replace(phrase, " ")
    missing = []
    for block in re.split(r"\n(?=- \*\*)|\n\n", section):
        named = sorted(set(re.findall(r"[Nn]otebooks? (\d\d)", block)))
        if "`benchmarks/`" in block:
            among = _benchmark_values()
        else:
            among = values("\n".join(notebooks[n] for n in named) if named else "\n".join(notebooks.values()))
        missing += unprinted(block, among)
    return missing


@pytest.fixture(scope="module")
def notebook_outputs() -> dict[str, str]:
    return {p.name[:2]: outputs_text(p) for p in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))}


def test_every_number_of_the_results_is_printed_by_its_notebook(notebook_outputs):
    """The README's results are the committed run's: each number is printed by the notebook its paragraph
    names (in the committed outputs, which `make notebooks` writes from the same run as the metrics)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = readme_numbers_not_printed(text, notebook_outputs)
    assert not missing, "README numbers no notebook output prints (stale, or typed by hand):\n" + "\n".join(missing)


def test_a_stale_number_is_caught(notebook_outputs):
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split(RESULTS[0], 1)[1].split(RESULTS[1], 1)[0]
    token = "0.915"                      # the probe AUROC on JailbreakBench: three decimals, printed by notebook 08
    assert token in section
    stale = text.replace(f"({token} against", "(0.911 against", 1)
    assert stale != text
    assert any(m.startswith("'0.911'") for m in readme_numbers_not_printed(stale, notebook_outputs))


@pytest.mark.parametrize("phrase", NOT_FROM_A_RUN)
def test_every_excused_phrase_is_still_in_the_readme(phrase):
    section = (ROOT / "README.md").read_text(encoding="utf-8").split(RESULTS[0], 1)[1].split(RESULTS[1], 1)[0]
    assert phrase in section, f"{phrase!r} left the README: remove it from NOT_FROM_A_RUN"
