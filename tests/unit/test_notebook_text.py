"""Every number a notebook's text quotes is one its committed run printed (or its code, its parameters or the
paper's transcribed numbers hold), so that the text cannot go stale when the outputs are regenerated."""

import json
from pathlib import Path

import pytest
from printed_numbers import outputs_text, printed, unprinted, values

from craft import paper_numbers

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
# The header's "Sections and time" table and "Runtime." line: papermill's cell durations, which the committed
# notebooks do not keep (nbstripout removes them); they are recomputed when the outputs are regenerated.
TIMES = ("**Sections and time**", "**Runtime.**")
# Numbers in a notebook's text that no output, code cell, parameter or transcribed paper number holds, each with
# why. Every phrase must stay in its notebook word for word (a test below), so the list cannot outlive its excuse.
NOT_FROM_A_RUN = {
    "02": {"0.98\\,\\mu_c + 0.02\\,": "the EMA update written out: 0.02 is 1 minus the momentum 0.98 (a parameter)"},
    "08": {"κ ≥ 0.75": "the target written before the first run",
           "above the 0.75 we set": "the target written before the first run"},
}


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def _text(cell: dict) -> str:
    source = cell["source"]
    return source if isinstance(source, str) else "".join(source)


def _without_times(text: str) -> str:
    """``text`` without the header's section shares and runtime (from the first marker to the end of the
    runtime paragraph)."""
    if TIMES[0] not in text:
        return text
    head, rest = text.split(TIMES[0], 1)
    tail = rest.split(TIMES[1], 1)[1].split("\n\n", 1) if TIMES[1] in rest else ["", ""]
    return head + " " + (tail[1] if len(tail) > 1 else "")


def _paper_values() -> list[float]:
    """The paper's numbers the package transcribes (``craft.paper_numbers``), as fractions and as percentages."""
    found = values(json.dumps({k: v for k, v in vars(paper_numbers).items()
                               if k.isupper() and isinstance(v, dict | list | tuple)}))
    return found + [100 * v for v in found]


def text_numbers_not_printed(path: Path) -> list[str]:
    """Each number of ``path``'s markdown cells that none of its outputs, code cells, the default parameters
    (``params/organism.yaml``; notebook 08: ``params/smollm2-135m.yaml``) or the paper's transcribed numbers
    hold at the precision the text writes (:func:`printed_numbers.printed`), as ``'number' in: context``."""
    cells = _cells(path)
    params = ROOT / "params" / ("smollm2-135m.yaml" if path.name.startswith("08") else "organism.yaml")
    code = "\n".join(_text(c) for c in cells if c["cell_type"] == "code")
    among = values(outputs_text(path) + "\n" + code + "\n" + params.read_text(encoding="utf-8")) + _paper_values()
    missing = []
    for cell in cells:
        if cell["cell_type"] != "markdown":
            continue
        text = _without_times(_text(cell))
        for phrase in NOT_FROM_A_RUN.get(path.name[:2], {}):
            text = text.replace(phrase, " ")
        missing += unprinted(text, among)
    return missing


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name[:2])
def test_every_number_of_the_text_is_printed_by_the_run(path):
    missing = text_numbers_not_printed(path)
    assert not missing, (f"{path.name}: numbers of the text that no output prints (stale after a new run, or typed "
                         "by hand):\n" + "\n".join(missing))


def test_a_stale_number_is_caught(tmp_path):
    path = next(p for p in NOTEBOOKS if p.name.startswith("08"))
    text = path.read_text(encoding="utf-8")
    assert "κ = 0.795" in text
    stale = tmp_path / path.name
    stale.write_text(text.replace("κ = 0.795", "κ = 0.791", 1), encoding="utf-8")
    assert [m for m in text_numbers_not_printed(stale) if m.startswith("'0.791'")]
    assert not text_numbers_not_printed(path)


def test_a_number_matches_by_size_at_the_precision_written():
    assert printed("89", True, [-89.4]) and printed("89", True, [-0.894]) and printed("11", False, [-11.0])
    assert printed("0.005", False, [-0.004759]) and not printed("0.005", False, [0.0044])
    assert not printed("89", True, [-88.4]) and printed("2.1e-05", False, [2.08e-5])


@pytest.mark.parametrize("nb,phrase", [(nb, phrase) for nb, phrases in NOT_FROM_A_RUN.items() for phrase in phrases])
def test_every_excused_phrase_is_still_in_its_notebook(nb, phrase):
    path = next(p for p in NOTEBOOKS if p.name.startswith(nb))
    assert any(phrase in _text(c) for c in _cells(path) if c["cell_type"] == "markdown"), (
        f"{phrase!r} left {path.name}: remove it from NOT_FROM_A_RUN")
