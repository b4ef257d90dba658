"""A measurement, not a tuned check: how often the refusal-string judge agrees with the
JailbreakBench judge's ``jailbroken`` labels on the real attack artifacts (PAIR and JBC).

The refusal-string judge says "jailbroken" when a response does not refuse. Agreement and
Cohen's kappa are printed (run pytest with ``-s`` to see them, CI logs keep them with ``-rA``)
and written to ``build/refusal_judge_agreement.json``; the test asserts only what a measurement
must satisfy. The markers were NOT tuned to these files."""

import json
from pathlib import Path

from sklearn.metrics import cohen_kappa_score

from craft.data.benchmarks import load_jbb_artifacts
from craft.judges import RefusalStringJudge


def _measure(judge, df) -> dict:
    says_jailbroken = [p == 0.0 for p in judge.score(list(df.prompt), list(df.response))]
    truth = list(df.jailbroken.astype(bool))
    agreement = sum(a == b for a, b in zip(says_jailbroken, truth)) / len(truth)
    return {"n": len(truth), "n_jailbroken": sum(truth), "agreement": round(agreement, 4),
            "cohen_kappa": round(float(cohen_kappa_score(truth, says_jailbroken)), 4),
            "by_attack": {a: round(float((g.response.map(judge.refuses) != g.jailbroken).mean()), 4)
                          for a, g in df.groupby("attack")}}


def test_refusal_string_judge_agreement_with_jailbreakbench_labels(shared_data):
    """Upstream's rule (a marker anywhere) and ours (a marker in the opening 200 characters)."""
    df = load_jbb_artifacts(["PAIR", "JBC"], path=shared_data("jailbreakbench_artifacts"))
    df = df[df.response.notna()]
    result = {"anywhere": _measure(RefusalStringJudge(opening_chars=None), df),
              "opening_200": _measure(RefusalStringJudge(), df)}
    print(f"refusal-string judge vs JailbreakBench labels: {json.dumps(result)}")
    out = Path(__file__).resolve().parents[2] / "build"
    out.mkdir(exist_ok=True)
    (out / "refusal_judge_agreement.json").write_text(json.dumps(result, indent=1) + "\n")
    for r in result.values():
        assert r["n"] > 600 and 0 < r["n_jailbroken"] < r["n"]
        assert 0.0 <= r["agreement"] <= 1.0 and -1.0 <= r["cohen_kappa"] <= 1.0
