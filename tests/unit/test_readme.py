"""The README and the docs pages: links resolve inside the repository, the cost table is the script's output,
and the paper-scale section has its status sentence and comparability list."""

import re
import sys
from pathlib import Path

import pytest

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
