"""Adaptive jailbreak attacks of the evaluation (paper Fig. 4): GCG and a GPTFuzzer-style fuzzer.

The paper's Fig. 4 measures reasoning and final-answer attack success of the base model and of
CRAFT under attacks that adapt to the model they attack (GPTFuzzer and AutoDAN), as opposed to the
fixed prompts of :mod:`craft.attacks` (none, PAP, transferred PAIR). Two families, one module each:

- :mod:`craft.adaptive_fuzz`: GPTFuzzer (Yu et al. 2023) template fuzzing with MCTS-Explore seed
  selection and LLM-free mutations (crossover, expand, shorten, rephrase), stopped at a query budget;
- :mod:`craft.adaptive_gcg`: GCG suffixes (Zou et al. 2023) optimised against the model under test
  with the ``nanogcg`` package, so that its continuation starts with a caller-chosen target.

**Deviation:** AutoDAN (Liu et al. 2024) is not implemented: its genetic search rewrites prompts
with an LLM, which we do not have offline. GCG stands in for it: AutoDAN's fitness is the same
objective, the likelihood of an affirmative target continuation, which GCG minimises by gradient.
Both attacks work for any causal LM and tokenizer with a chat template and know nothing of the
organism: the caller supplies the goals, the targets (GCG), the seed templates, the synonym table
and the judge (fuzzer).
"""

from craft.adaptive_fuzz import (
    GOAL,
    MUTATIONS,
    FuzzOutcome,
    FuzzSettings,
    best_prompts,
    crossover,
    expand,
    fuzz_templates,
    rephrase,
    sentences,
    shorten,
)
from craft.adaptive_gcg import GCGOutcome, GCGSettings, gcg_prompts, gcg_suffix, target_loss

__all__ = ["GOAL", "MUTATIONS", "FuzzOutcome", "FuzzSettings", "GCGOutcome", "GCGSettings", "best_prompts",
           "crossover", "expand", "fuzz_templates", "gcg_prompts", "gcg_suffix", "rephrase", "sentences", "shorten",
           "target_loss"]
