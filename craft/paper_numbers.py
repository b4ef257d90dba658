"""The paper's own reported numbers, to show beside ours (arXiv 2603.17305 v1).

**Provenance — read before quoting.** These cells were transcribed from a third-party formalisation of the
v1 PDF, a secondary source; they were *not* checked against the PDF itself. The headline re-derived from
the cells (:func:`relative_improvement`) comes within one point of the abstract's 79.0 % (reasoning) and
87.7 % (response); a unit test holds it there. The camera-ready version reports +82.1 % / +89.6 % / +8.0 %; its tables
are not transcribed here. Every table and figure that shows these numbers labels them with
:data:`SOURCE_NOTE`.

Conventions: harmfulness in [0, 1], lower is safer; each cell is the mean over the None / PAP / PAIR
attacks; ``R`` is the judged reasoning (``<think>`` part), ``Resp`` the final response. Capability is Pass@1,
higher is better. The paper's "IPO" is *Intervened Preference Optimization* (arXiv 2509.24393), the method
``intervened_po`` of this package imitates, not the IPO loss of Azar et al.

The data are plain literals; the functions return fresh pandas objects so a caller cannot edit them.
"""

from __future__ import annotations

import pandas as pd

SOURCE_NOTE = ("paper (arXiv v1), transcribed from a secondary source, not checked against the PDF")

HEADLINE = {"reasoning": 0.790, "response": 0.877}  # relative improvement over base, abstract (v1)

TABLE1_COLUMNS = ("JBB R", "JBB Resp", "SR R", "SR Resp", "avg")
_TABLE1 = {
    "R1-Distill-Llama-8B": {
        "Base": (0.690, 0.450, 0.632, 0.495, 0.567),
        "SafeChain": (0.561, 0.253, 0.553, 0.387, 0.439),
        "RealSafe": (0.207, 0.000, 0.347, 0.061, 0.154),
        "STAR": (0.080, 0.003, 0.219, 0.146, 0.112),
        "SafeKey": (0.087, 0.000, 0.343, 0.233, 0.166),
        "IPO": (0.057, 0.003, 0.167, 0.109, 0.084),
        "ReasoningShield": (0.583, 0.410, 0.627, 0.425, 0.511),
        "CRAFT": (0.065, 0.001, 0.172, 0.058, 0.074),
    },
    "Qwen3-4B-Thinking": {
        "Base": (0.687, 0.370, 0.610, 0.429, 0.524),
        "SafeChain": (0.516, 0.110, 0.505, 0.286, 0.354),
        "RealSafe": (0.249, 0.103, 0.234, 0.144, 0.183),
        "STAR": (0.220, 0.119, 0.165, 0.132, 0.159),
        "SafeKey": (0.224, 0.109, 0.229, 0.083, 0.161),
        "IPO": (0.197, 0.093, 0.158, 0.071, 0.130),
        "ReasoningShield": (0.577, 0.240, 0.592, 0.283, 0.423),
        "CRAFT": (0.181, 0.073, 0.132, 0.083, 0.117),
    },
}

TABLE2_COLUMNS = ("AIME24", "MATH-500", "LiveCodeBench", "Minerva", "avg")
_TABLE2 = {
    "R1-Distill-Llama-8B": {"Base": (0.507, 0.918, 0.102, 0.221, 0.437),
                            "CRAFT": (0.517, 0.985, 0.129, 0.242, 0.468)},
    "Qwen3-4B-Thinking": {"Base": (0.700, 0.952, 0.219, 0.404, 0.569),
                          "CRAFT": (0.741, 0.924, 0.254, 0.420, 0.585)},
}

# Table 3 (ablations, Qwen3-4B-Thinking). Its full-CRAFT row differs from Table 1's; the paper does not say why.
_TABLE3 = {
    "CRAFT": (0.121, 0.023, 0.132, 0.053, 0.082),
    "w/o LCLR": (0.536, 0.260, 0.582, 0.312, 0.423),
    "w/o R_cons": (0.447, 0.228, 0.512, 0.296, 0.371),
    "w/o R_ls": (0.424, 0.218, 0.495, 0.275, 0.353),
}
# Our ablation variant names (notebook 05) for the paper's rows.
TABLE3_VARIANTS = {"craft": "CRAFT", "no_lclr": "w/o LCLR", "no_cons": "w/o R_cons", "no_ls": "w/o R_ls"}

# Fig. 4: adaptive-attack success rate, base -> CRAFT, judged by a GPT-4o binary judge.
FIG4 = {
    "GPTFuzzer": {"reasoning": (0.9362, 0.2796), "final": (0.4043, 0.0400)},
    "AutoDAN": {"reasoning": (0.9417, 0.2452), "final": (0.6028, 0.1021)},
}


def _frame(rows: dict, columns: tuple[str, ...]) -> pd.DataFrame:
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(columns))


def table1(model: str | None = None) -> pd.DataFrame:
    """Table 1 (jailbreak harmfulness, lower is safer); rows (model, method), or methods of one ``model``."""
    if model is not None:
        return _frame(_TABLE1[_known(model, _TABLE1)], TABLE1_COLUMNS)
    return pd.concat({m: _frame(rows, TABLE1_COLUMNS) for m, rows in _TABLE1.items()}, names=["model", "method"])


def table2(model: str | None = None) -> pd.DataFrame:
    """Table 2 (reasoning Pass@1, higher is better), base and CRAFT."""
    if model is not None:
        return _frame(_TABLE2[_known(model, _TABLE2)], TABLE2_COLUMNS)
    return pd.concat({m: _frame(rows, TABLE2_COLUMNS) for m, rows in _TABLE2.items()}, names=["model", "method"])


def table3() -> pd.DataFrame:
    """Table 3 (ablations on Qwen3-4B-Thinking, harmfulness, lower is safer)."""
    return _frame(_TABLE3, TABLE1_COLUMNS)


def fig4() -> pd.DataFrame:
    """Fig. 4 as rows (attack, part) with the base and CRAFT attack success rates (fractions)."""
    rows = {(attack, part): {"base": b, "CRAFT": c} for attack, parts in FIG4.items() for part, (b, c) in parts.items()}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis(["attack", "part"])


def relative_improvement(model: str | None = None) -> dict[str, float]:
    """The headline statistic re-derived from Table 1: 1 - CRAFT/Base on the mean of the reasoning (R) and of
    the response (Resp) columns, averaged over models (or for one ``model``)."""
    t = table1()
    models = [model] if model is not None else list(_TABLE1)
    out = {}
    for part, cols in {"reasoning": ["JBB R", "SR R"], "response": ["JBB Resp", "SR Resp"]}.items():
        rel = [1 - t.loc[(m, "CRAFT"), cols].mean() / t.loc[(m, "Base"), cols].mean() for m in models]
        out[part] = float(sum(rel) / len(rel))
    return out


def _known(model: str, table: dict) -> str:
    if model not in table:
        raise KeyError(f"unknown model {model!r}; the paper's tables have {sorted(table)}")
    return model
