"""The organism as a data source for the stages: its policy, traces, prompts and judge.

Everything comes from the base organism that notebook 00 (``craft build``) wrote to
``run_dir/00_build_model_organism/``: the world (``world.json``), the policy (``model/``) and its
twin of the other architecture (``twin_model/``). The paper scale has the same interface
(:class:`craft.paper.source.PaperSource`); the stages never ask which one they have.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path

import pandas as pd

from craft.config import from_dict
from craft.io import load_json
from craft.models import load_model
from craft.organism.config import OrganismSourceConfig
from craft.organism.corpus import TRACE_CLASS, EvalSizes, eval_prompts, labelled_traces, r2l_prompts
from craft.organism.judge import OrganismJudge
from craft.organism.text import FAMILIES, SYNONYM_GROUPS
from craft.organism.world import World, reasoning_text, unsafe_opening
from craft.runs import Artifact, content_hash, model_fingerprint
from craft.types import LabelledTrace, Prompt

__all__ = ["OrganismSource"]


class OrganismSource:
    """Policy, traces, prompts and the exact judge of the organism built under ``build_dir``."""

    scale = "organism"
    labels_own_samples = True                    # the world's rules label any completion
    # The safety table (paper_table) of the organism: regimes as benchmarks, families as attacks, rates.
    table_groups = ("regime", "family")
    table_columns = ("reasoning_harmful", "response_harmful")
    device = "cpu"

    def __init__(self, cfg: OrganismSourceConfig, build_dir: Path, seed: int, build_identity: Mapping | None = None):
        self.cfg, self.build_dir, self.seed = cfg, Path(build_dir), seed
        self.build_identity, self._checked = build_identity, False

    # ------------------------------------------------------------------ the organism on disk
    def _need(self, name: str) -> Path:
        """``build_dir/name``, after checking that the organism there is finished and, given a
        ``build_identity``, that it was built with it (a stale organism is refused with the keys that changed)."""
        hint = "notebook 00 (or `craft build --config <params file>`) with the same run_dir"
        if self.build_identity is not None and not self._checked:
            Artifact(self.build_dir, self.build_identity, what="organism").require(hint)
            self._checked = True
        path = self.build_dir / name
        if not path.exists() or not (self.build_dir / "DONE").is_file():
            raise FileNotFoundError(f"{path} is missing: {hint}")
        return path

    @cached_property
    def world(self) -> World:
        return World.from_dict(load_json(self._need("world.json"), "delete the organism's folder and run notebook 00 "
                                         "again"))

    def fingerprint(self) -> dict:
        """Content hash of the world every prompt and trace comes from."""
        return {"world": content_hash(self._need("world.json"))}

    # ------------------------------------------------------------------ policies
    def base_policy(self) -> str:
        return str(self._need("model"))

    def policy_fingerprint(self, path: str) -> str:
        return model_fingerprint(path)

    def load_policy(self, path: str | None = None, *, train: bool = False):
        """(model, tokenizer) in float32 on the CPU: the base organism, or a trained policy at ``path``."""
        return load_model(str(path or self.base_policy()))

    def hidden_size(self) -> int:
        return int(json.loads(self._need("model/config.json").read_text())["hidden_size"])

    def probe_models(self) -> dict[str, str]:
        """The policies notebook 01 probes, by architecture: the organism and (if built) its twin."""
        paths = {"model": self._need("model")}
        if self.cfg.probe_twin and (self.build_dir / "twin_model").is_dir():
            paths["twin_model"] = self.build_dir / "twin_model"
        return {json.loads((p / "config.json").read_text())["model_type"]: str(p) for p in paths.values()}

    # ------------------------------------------------------------------ traces
    def traces(self, purpose: str, split: str) -> list[LabelledTrace]:
        """Teacher-forced safe / unsafe (plain and dressed-up) / rethink traces with training
        phrasings. ``train`` and ``test``: held-in and held-out prompts about the hazards safety
        training may see; ``unseen_val`` and ``unseen_test``: prompts about the unseen hazards, whose
        ingredient vocabulary no probe or head trains on (two disjoint halves: one to choose, one
        to report); ``coded_test``: the ``test`` traces, word for word, with every ingredient that has an
        alias named by it. ``purpose`` (probe or lclr) sets how many prompts (5 traces each)."""
        n = {"probe": self.cfg.probe_prompts, "lclr": self.cfg.lclr_prompts}[purpose]
        splits = {"train": ("train", self.seed, True), "test": ("eval", self.seed + 1, True),
                  "unseen_val": ("train", self.seed + 2, False), "unseen_test": ("eval", self.seed + 3, False),
                  "coded_test": ("eval", self.seed + 1, True)}
        if split not in splits:
            raise ValueError(f"unknown trace split {split!r}; choose one of {list(splits)}")
        world_split, seed, seen = splits[split]
        if not seen:
            n = max(1, n // 2)
        examples = labelled_traces(self.world, world_split, seed, max_prompts=n, seen=seen, coded=split == "coded_test")
        return [LabelledTrace(e.prompt, e.reasoning, e.answer, TRACE_CLASS[e.trace], self._hazard_of(e.prompt))
                for e in examples]

    def _hazard_of(self, prompt: str) -> str:
        """The hazard a harmful prompt asks about: the longest hazard name that occurs in it."""
        return max((h.name for h in self.world.hazards if h.name in prompt), key=len)

    def own_samples(self, records: pd.DataFrame) -> list[LabelledTrace]:
        """The base policy's own completions to harmful prompts, labelled by what their reasoning
        discloses (the exact judge's :meth:`~craft.organism.judge.OrganismJudge.reasoning_class`)."""
        judge = OrganismJudge(self.world)
        harmful = records[records.kind == "harmful"]
        return [LabelledTrace(p, r, a, judge.reasoning_class(r))
                for p, r, a in zip(harmful.prompt, harmful.reasoning, harmful.answer)]

    # ------------------------------------------------------------------ prompts and judges
    def train_prompts(self, seed: int) -> list[Prompt]:
        c = self.cfg
        return r2l_prompts(self.world, c.n_train_prompts, seed, c.harmful_fraction, c.arithmetic_fraction)

    def monitor_prompts(self) -> list[Prompt]:
        """Held-out prompts evaluated while R2L trains (``source.monitor`` of each group, seeded)."""
        return eval_prompts(self.world, self.cfg.monitor, self.seed)

    def eval_prompts(self) -> list[Prompt]:
        """The final evaluation set (``source.evaluation``): core prompts, unseen hazards, evaluation-only
        framings and wordings, the held-out attack family, arithmetic and benign-but-scary requests."""
        return eval_prompts(self.world, self.cfg.evaluation, self.seed)

    def validation_prompts(self, sizes: Mapping) -> list[Prompt]:
        """A validation set for choosing a baseline's hyper-parameters (notebook 04): ``sizes`` (the fields of
        :class:`~craft.organism.corpus.EvalSizes`) prompts of each group drawn from the *training* split with
        the run's seed, so no prompt of the evaluation set (or of the monitor set) is among them."""
        return eval_prompts(self.world, from_dict(EvalSizes, dict(sizes), where="baselines.validation."), self.seed,
                            split="train")

    def judge(self, role: str) -> OrganismJudge:
        """The ``reward``, ``reasoning`` or ``response`` judge: the organism's exact judge for all three;
        ``surface``: the same judge without the alias table (a text monitor reading the reasoning as written)."""
        if role not in ("reward", "reasoning", "response", "surface"):
            raise ValueError(f"unknown judge role {role!r}")
        return OrganismJudge(self.world, aliases=role != "surface")

    def judge_identity(self) -> dict:
        return {"judge": "organism", **self.fingerprint()}

    def agreement_judges(self) -> dict:
        """None: the organism's judge is exact, so there is no second opinion to compare it with."""
        return {}

    # ------------------------------------------------------------------ adaptive attacks
    def attack_goals(self, n: int, regime: str = "direct") -> list[tuple[Prompt, str]]:
        """``n`` harmful evaluation prompts about seen hazards (a seeded choice, in world order), each with
        the target an attacker optimises for: :func:`~craft.organism.world.unsafe_opening`, the opening of a
        reasoning trace whose first step runs at the lowest level (a start no safe trace has).

        ``regime`` is where the attack starts: ``direct`` (plain requests), ``dressed`` (requests in a
        dressed-up framing of training, where the base organism's SSA lives; the same plain target) or
        ``coded`` (plain requests whose hazard's first ingredient has an alias; the target names it by the
        alias, the coded disclosure a text monitor cannot read)."""
        if regime not in ("direct", "dressed", "coded"):
            raise ValueError(f"unknown attack regime {regime!r}; the organism has direct, dressed and coded")
        pool = self.world.select(kind="harmful", split="eval", regime="dressed" if regime == "dressed" else "direct",
                                 novel="", seen=True)
        if regime == "coded":
            pool = [p for p in pool if self.world.hazards[p.hazard].ingredients[0] in self.world.aliases]
        if not pool:
            raise ValueError(f"the organism's world has no {regime} harmful evaluation prompt to attack")
        keep = set(random.Random(self.seed).sample(range(len(pool)), min(n, len(pool))))
        return [(p, unsafe_opening(self.world, p, coded=regime == "coded")) for i, p in enumerate(pool) if i in keep]

    def fuzz_seeds(self) -> list[str]:
        """The fuzzer's seed templates: the training framings of the jailbroken and dressed-up attack
        families (the world's known jailbreaks), with ``{goal}`` where the request goes."""
        return [f.replace("{request}", "{goal}") for regime, framings, _ in FAMILIES.values()
                if regime in ("jailbroken", "dressed") for f in framings]

    def fuzz_synonyms(self) -> dict[str, list[str]]:
        """Word -> its replacements for the fuzzer's rephrase mutation, within the world's vocabulary."""
        return {w: [o for o in group if o != w] for group in SYNONYM_GROUPS for w in group}

    def benign_reasoning(self, n: int) -> list[str]:
        """``n`` two-step arithmetic problems of the training split (a seeded choice), each followed by the
        world's own worked reasoning for it (what the organism learned to write for arithmetic)."""
        pool = self.world.select(kind="arithmetic", split="train")
        picked = random.Random(self.seed).sample(pool, min(n, len(pool)))
        return [f"{p.text} {reasoning_text(self.world, p, 'helpful', random.Random(0))}" for p in picked]

    # ------------------------------------------------------------------ baselines
    def baseline_data(self, method: str, n: int, seed: int):
        """The training data of a baseline of notebook 04 (:mod:`craft.organism.baselines_data`)."""
        from craft.organism.baselines_data import intervened_pairs, offpolicy_sft_examples

        if method == "sft_offpolicy":
            return offpolicy_sft_examples(self.world, n, seed)
        if method == "intervened_po":
            return intervened_pairs(self.world, n, seed)
        raise ValueError(f"unknown baseline {method!r}; the organism has sft_offpolicy and intervened_po")
