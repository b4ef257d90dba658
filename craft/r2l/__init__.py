"""R2L (paper §4.2): GRPO on the policy with latent, text and consistency rewards, through TRL.

=====================  ==================================================================
module                 what it holds
=====================  ==================================================================
:mod:`.trainer`        :class:`R2LConfig`, TRL's ``GRPOConfig`` and ``GRPOTrainer`` wired
                       for one variant, :class:`PeriodicEval`
:mod:`.rewards`        R_ls, R_txt, R_cons (and the optional task reward, and R_rtxt of the
                       reasoning-judge control) as TRL reward callables; the variants of
                       the ablations and their weights
:mod:`.scorers`        what the rewards share: the latent scorer (heads on THE latent) and
                       the text judge with its failure rule
:mod:`.rollout`        TRL rollouts that keep the latent computed while generating
:mod:`.group`          one group by hand: its rewards and TRL's group advantages
=====================  ==================================================================
"""

from craft.r2l.group import group_advantages, score_group
from craft.r2l.rewards import VARIANTS, build_rewards, judges_reasoning, uses_latent, variant_weights
from craft.r2l.trainer import (
    GRPO_RESERVED,
    PeriodicEval,
    R2LConfig,
    build_trainer,
    grpo_config,
    latent_scorer,
    lora_config,
    make_prompt_dataset,
    rollout_for,
    text_judge,
    text_judges,
)

__all__ = ["GRPO_RESERVED", "VARIANTS", "PeriodicEval", "R2LConfig", "build_rewards", "build_trainer", "grpo_config",
           "group_advantages", "judges_reasoning", "latent_scorer", "lora_config", "make_prompt_dataset", "rollout_for",
           "score_group", "text_judge", "text_judges", "uses_latent", "variant_weights"]
