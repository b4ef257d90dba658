"""One GRPO group by hand (paper §4.2, as TRL's ``GRPOTrainer`` computes it): rewards and advantages.

During R2L, TRL calls the reward callables of :mod:`craft.r2l.rewards` on each group of G completions of
one prompt, sums them with the variant's weights and turns the sums into advantages within the group
(TRL 1.16's defaults, ``multi_objective_aggregation="sum_then_normalize"``, ``scale_rewards="group"``):

    R_i = Σ_k w_k · r_k(o_i),        A_i = (R_i − mean_j R_j) / (std_j R_j + 1e-4)

with the standard deviation's Bessel correction (``scale_rewards="none"``: A_i = R_i − mean_j R_j). The loss
then weighs each token of o_i by A_i. :func:`score_group` does the same for one group outside training,
with the very reward callables :func:`~craft.r2l.rewards.build_rewards` gives the trainer, on the policy's
own completion ids, so that every number GRPO optimises can be read.

Why our own: TRL computes advantages inside ``GRPOTrainer._generate_and_score_completions``, which needs a
trainer, a dataset and a rollout; it has no function for one group.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import SimpleNamespace

import numpy as np
import pandas as pd

from craft.judges import Judge
from craft.latents import LatentSpec
from craft.lclr import LCLRHeads
from craft.models import split_reasoning
from craft.r2l.rewards import build_rewards
from craft.r2l.trainer import R2LConfig, make_prompt_dataset
from craft.theory import TRL_STD_EPS
from craft.types import Prompt

__all__ = ["TRL_STD_EPS", "group_advantages", "score_group"]


def group_advantages(rewards: Sequence[float], scale_rewards: str = "group") -> np.ndarray:
    """TRL's advantage of each completion of one group from its total reward (module docstring)."""
    r = np.asarray(rewards, dtype=float)
    if scale_rewards not in ("group", "none"):
        raise ValueError(f"scale_rewards {scale_rewards!r}: one group has the 'group' or 'none' rule")
    adv = r - r.mean()
    return adv if scale_rewards == "none" or len(r) < 2 else adv / (r.std(ddof=1) + TRL_STD_EPS)


def score_group(model, tokenizer, prompt: Prompt, completion_ids: Sequence[Sequence[int]], cfg: R2LConfig,
                judge: Judge, heads: LCLRHeads | None = None, spec: LatentSpec | None = None,
                reasoning_judge: Judge | None = None,
                consistency: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None) -> pd.DataFrame:
    """One row per completion of ``prompt`` (``completion_ids``: the policy's own tokens, as sampled): its
    ``reasoning`` and ``answer``, each reward term of ``cfg.variant`` (a column per reward, by its name:
    ``r_ls``, ``r_txt``, ``r_cons``, ...), the weighted ``reward`` and the group ``advantage``. ``model`` is the
    policy the latent terms read; ``heads``/``spec`` as for :func:`~craft.r2l.rewards.build_rewards`, and
    ``consistency``, a rule ``(p_z, p_safe) -> R_cons`` in place of the paper's
    (:class:`~craft.r2l.rewards.ConsistencyReward`)."""
    grpo = cfg.grpo
    if grpo.get("multi_objective_aggregation", "sum_then_normalize") != "sum_then_normalize":
        raise ValueError("score_group follows multi_objective_aggregation='sum_then_normalize' (TRL's default)")
    rewards, weights, scorer = build_rewards(cfg.variant, heads, spec, tokenizer, judge, cfg.weights,
                                             cfg.alpha_beta_gamma, cfg.harmful_only, cfg.task_reward, reasoning_judge,
                                             consistency)
    if scorer is not None:
        scorer.trainer = SimpleNamespace(model=model)          # the scorer reads the policy as trainer.model
    row = make_prompt_dataset([prompt], tokenizer)[0]
    n, ids = len(completion_ids), [list(c) for c in completion_ids]
    texts = tokenizer.batch_decode(ids, skip_special_tokens=True)         # what TRL hands the rewards
    columns = {k: [v] * n for k, v in row.items() if k != "prompt"}
    terms = {r.__name__: np.asarray(r([row["prompt"]] * n, [[{"role": "assistant", "content": t}] for t in texts],
                                      ids, **columns), dtype=float) for r in rewards}
    total = sum(w * v for w, v in zip(weights, terms.values()))
    parts = [split_reasoning(t) for t in texts]
    return pd.DataFrame({"reasoning": [p.reasoning for p in parts], "answer": [p.answer for p in parts], **terms,
                         "reward": total, "advantage": group_advantages(total, grpo.get("scale_rewards", "group"))})
