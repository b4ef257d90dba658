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


def test_refusal_string_judge_agreement_with_jailbreakbench_labels(shared_data):
    df = load_jbb_artifacts(["PAIR", "JBC"], path=shared_data("jailbreakbench_artifacts"))
    df = df[df.response.notna()]
    judge = RefusalStringJudge()
    says_jailbroken = [p == 0.0 for p in judge.score(list(df.prompt), list(df.response))]
    truth = list(df.jailbroken.astype(bool))
    agreement = sum(a == b for a, b in zip(says_jailbroken, truth)) / len(truth)
    kappa = cohen_kappa_score(truth, says_jailbroken)
    result = {"n": len(truth), "n_jailbroken": sum(truth), "agreement": round(agreement, 4),
              "cohen_kappa": round(float(kappa), 4),
              "by_attack": {a: round(float((g.response.map(judge.refuses) != g.jailbroken).mean()), 4)
                            for a, g in df.groupby("attack")}}
    print(f"refusal-string judge vs JailbreakBench labels: {json.dumps(result)}")
    out = Path(__file__).resolve().parents[2] / "build"
    out.mkdir(exist_ok=True)
    (out / "refusal_judge_agreement.json").write_text(json.dumps(result, indent=1) + "\n")
    assert result["n"] > 600 and 0 < result["n_jailbroken"] < result["n"]
    assert 0.0 <= agreement <= 1.0 and -1.0 <= kappa <= 1.0
