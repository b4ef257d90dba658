"""Real benchmark loaders for CRAFT's evaluation (paper §6).

The paper evaluates safety on JailbreakBench and StrongREJECT (attacks None / PAP / PAIR),
over-refusal is measured here on XSTest and the benign half of JBB-Behaviors, and reasoning
capability on MATH-500 (GSM8K is an extra, cheaper capability check). The JailbreakBench attack
artifacts give real jailbreak prompts (PAIR is one of the paper's attack settings) and labelled
(prompt, response) pairs to measure a judge's agreement with JailbreakBench's own judge.

**The product never ships these data.** Each loader either reads a local copy (``path=``: a file,
or a folder laid out like the upstream release) or downloads the upstream file once and caches it
under ``cache_dir`` (default ``~/.cache/craft/data``). The cache mirrors the local layout, so
``<cache_dir>/<folder>`` is itself a valid ``path=``. Offline (``HF_HUB_OFFLINE``,
``HF_DATASETS_OFFLINE`` or ``CRAFT_OFFLINE`` truthy) a loader never touches the network: with no
cached copy it raises :class:`DataUnavailableError` naming ``path=`` and the expected layout.

Column names are matched case-insensitively (copies differ: ``goal`` vs ``Goal``) and returned in
lower case. Text is returned unmodified. Each DataFrame's ``attrs`` holds ``benchmark`` and
``source`` (the file it was read from). Schemas (one row per item):

========================  ===================================================================
``load_jbb_behaviors``    index (int), prompt (= goal), goal, target, behavior, category, source
``load_strongreject``     prompt (upstream ``forbidden_prompt``), category, source
``load_xstest``           id (int), prompt, type, label (``safe`` | ``unsafe``), focus, note
``load_gsm8k``            question, answer (str: the number after ``#### ``, commas removed),
                          solution (the worked solution before ``#### ``, ``<<…>>`` kept)
``load_math500``          problem, answer, solution, subject, level (int), unique_id
``load_jbb_artifacts``    index (int), goal, behavior, category, prompt (the jailbreak prompt;
                          missing where the attack submitted none), response, jailbroken (bool),
                          jailbroken_llama_guard1 (bool or NA), attack, attack_type, target_model
========================  ===================================================================

Origins and licenses (see each ``SOURCE.txt`` of the shared data folder):

* JBB-Behaviors (Chao et al. 2024, JailbreakBench): HF dataset ``JailbreakBench/JBB-Behaviors``,
  ``data/harmful-behaviors.csv`` and ``data/benign-behaviors.csv``, 100 + 100 rows. MIT (harmful
  rows partly from AdvBench and TDC 2023 / HarmBench, both MIT).
* StrongREJECT (Souly et al. 2024, arXiv 2402.10260): ``alexandrasouly/strongreject``
  ``strongreject_dataset/strongreject_dataset.csv``, 313 rows. Mixed: custom prompts and code MIT,
  prompts from prior work under their original licenses.
* XSTest (Röttger et al., NAACL 2024): ``paul-rottger/exaggerated-safety`` ``xstest_prompts.csv``
  (commit d7bb5bd), 450 rows (250 safe, 200 unsafe ``contrast_*``). CC-BY-4.0.
* GSM8K (Cobbe et al. 2021, arXiv 2110.14168): ``openai/grade-school-math``
  ``grade_school_math/data/<split>.jsonl`` (commit 3101c7d), test 1319 rows. MIT.
* MATH-500 (Lightman et al. 2023, subset of MATH, Hendrycks et al. 2021): HF dataset
  ``HuggingFaceH4/MATH-500`` ``test.jsonl``, 500 rows. MIT.
* JailbreakBench artifacts: ``JailbreakBench/artifacts`` (commit 909e68c)
  ``attack-artifacts/<ATTACK>/<attack_type>/<model>.json``, 100 behaviors per target model
  (PAIR and JBC: 4 models each). MIT, owned by the artifacts' authors. ``jailbroken`` is the
  label from JailbreakBench's Llama-3-70B judge.

The code is split by concern; this module is the public face and re-exports what callers use:
:mod:`craft.data.sources` (``path=`` / cache / download / offline), :mod:`craft.data.loaders`
(the table reader and the five tabular loaders) and :mod:`craft.data.jbb_artifacts`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from craft.data.jbb_artifacts import load_jbb_artifacts
from craft.data.loaders import load_gsm8k, load_jbb_behaviors, load_math500, load_strongreject, load_xstest
from craft.data.sources import DEFAULT_CACHE_DIR, DataUnavailableError

__all__ = ["BENCHMARKS", "DEFAULT_CACHE_DIR", "DataUnavailableError", "load_benchmark",
           "load_gsm8k", "load_jbb_artifacts", "load_jbb_behaviors", "load_math500",
           "load_strongreject", "load_xstest"]

BENCHMARKS: dict[str, Callable[..., pd.DataFrame]] = {
    "jbb_behaviors": load_jbb_behaviors,
    "strongreject": load_strongreject,
    "xstest": load_xstest,
    "gsm8k": load_gsm8k,
    "math500": load_math500,
    "jbb_artifacts": load_jbb_artifacts,
}


def _key(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def load_benchmark(name: str, **kwargs: Any) -> pd.DataFrame:
    """Load a benchmark by registry name (case, ``-`` and ``_`` ignored: ``MATH-500`` works)."""
    loader = next((fn for key, fn in BENCHMARKS.items() if _key(key) == _key(name)), None)
    if loader is None:
        raise ValueError(f"unknown benchmark {name!r}; known: {sorted(BENCHMARKS)}")
    return loader(**kwargs)
