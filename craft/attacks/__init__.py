"""Jailbreak attacks of the evaluation (paper §6, Fig. 4): fixed prompts and attacks that adapt.

=====================  ==================================================================
module                 what it holds
=====================  ==================================================================
:mod:`.fixed`          the fixed attacks of paper §6's tables: none, templated PAP,
                       transferred PAIR
:mod:`.gcg`            GCG suffixes (Zou et al. 2023) optimised against the model under test,
                       through ``nanogcg``
:mod:`.fuzz`           a GPTFuzzer-style template search (Yu et al. 2023, MCTS-Explore)
:mod:`.mutations`      the fuzzer's LLM-free mutations (crossover, expand, shorten, rephrase)
=====================  ==================================================================

Paper Fig. 4 measures reasoning and final-answer attack success of the base model and of CRAFT under
attacks that adapt to the model they attack (GPTFuzzer and AutoDAN). **Deviation:** AutoDAN (Liu et
al. 2024) is not implemented: its genetic search rewrites prompts with an LLM, which we do not have
offline. GCG stands in for it: AutoDAN's fitness is the same objective, the likelihood of an
affirmative target continuation, which GCG minimises by gradient. Both adaptive attacks work for any
causal LM and tokenizer with a chat template and know nothing of the organism: the caller supplies
the goals, the targets (GCG), the seed templates, the synonym table and the judge (fuzzer).
"""

from craft.attacks.fixed import (
    ATTACKS,
    DEFAULT_PAIR_TARGET,
    FUZZ_SYNONYM_GROUPS,
    PAP_TECHNIQUES,
    AttackedPrompt,
    apply_attack,
    pair_prompts,
    pap_prompt,
    pap_technique,
)
from craft.attacks.fuzz import FuzzOutcome, FuzzSettings, best_prompts, fuzz_templates
from craft.attacks.gcg import GCGOutcome, GCGSettings, gcg_prompts, gcg_suffix, target_loss
from craft.attacks.mutations import GOAL, MUTATIONS, crossover, expand, rephrase, sentences, shorten

__all__ = ["ATTACKS", "DEFAULT_PAIR_TARGET", "FUZZ_SYNONYM_GROUPS", "GOAL", "MUTATIONS", "PAP_TECHNIQUES",
           "AttackedPrompt", "FuzzOutcome", "FuzzSettings", "GCGOutcome", "GCGSettings", "apply_attack", "best_prompts",
           "crossover", "expand", "fuzz_templates", "gcg_prompts", "gcg_suffix", "pair_prompts", "pap_prompt",
           "pap_technique", "rephrase", "sentences", "shorten", "target_loss"]
