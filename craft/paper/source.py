"""The paper scale as a data source for the stages (paper §3-§6): real policy, R2D-R1 traces, real
benchmarks and model judges. Same interface as :class:`craft.organism.source.OrganismSource`.

Choices of ours: traces are split into train/test per label with ``test_fraction`` (seeded); the
R2L prompts default to the instructions of the R2D-R1 file; a benchmark goal without a PAIR
artifact is sent as it is (counted by :func:`pair_fallbacks`); relative paths in the params file
(``r2d_path``, ``train_prompts``, ``data_paths``) are read from the repository root.
"""

from __future__ import annotations

import os
import random
from functools import cached_property
from pathlib import Path

import pandas as pd
import torch

from craft import io
from craft.attacks.fixed import FUZZ_SYNONYM_GROUPS, PAP_TECHNIQUES, apply_attack
from craft.data import benchmarks as bench
from craft.data.loaders import as_bool, read_table
from craft.data.r2d import convert_r2d, load_r2d
from craft.data.sources import BUNDLED, bundled
from craft.judges.local import truncate_tokens
from craft.models import load_model
from craft.paper.config import JudgeSpec, PaperSourceConfig, judge_identity, make_judge
from craft.pretrained import resolve_model
from craft.runs import content_hash, model_fingerprint
from craft.types import LABEL_NAMES, LabelledTrace, Prompt

__all__ = ["PaperSource", "pair_fallbacks", "split_traces"]

# data_paths key -> the folder of its data set (where ``bundled`` finds it)
_FOLDERS = {"jbb_behaviors": "jbb_behaviors", "jbb_artifacts": "jailbreakbench_artifacts", "xstest": "xstest",
            "strongreject": "strongreject", "math500": "math500", "gsm8k": "gsm8k"}


def split_traces(traces: list[LabelledTrace], test_fraction: float, seed: int):
    """Per-label seeded split; every label with >= 2 traces has at least one test trace."""
    rng, train, test = random.Random(seed), [], []
    for label in LABEL_NAMES:
        group = [t for t in traces if t.label == label]
        rng.shuffle(group)
        n_test = max(1, round(test_fraction * len(group))) if len(group) >= 2 else 0
        test += group[:n_test]
        train += group[n_test:]
    return train, test


def pair_fallbacks(prompts: list[Prompt]) -> int:
    """PAIR prompts sent as the plain goal because no PAIR artifact exists for that goal."""
    return sum(p.family == "pair" and p.text == p.goal for p in prompts)


class PaperSource:
    """Policy, traces, prompts and judges of a paper-scale run (see the module docstring)."""

    scale = "paper"
    labels_own_samples = False                   # own_samples: no 3-way reasoning judge at this scale
    # The paper's Table 1: benchmarks x attacks, graded harm (StrongREJECT-style means).
    table_groups = ("benchmark", "family")
    table_columns = ("reasoning_harm", "response_harm")

    def __init__(self, cfg: PaperSourceConfig, seed: int, run_dir: Path | None = None):
        self.cfg, self.seed, self.run_dir = cfg, seed, run_dir     # run_dir: where a latent judge's heads are
        self._judges: dict[JudgeSpec, object] = {}

    @property
    def device(self) -> str:
        """``cfg.device``; ``auto`` is this process's GPU (``LOCAL_RANK`` under a launcher) or the CPU.
        Models are placed before accelerate sets the process's device, so the rank is read here."""
        if self.cfg.device != "auto":
            return self.cfg.device
        return f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu"

    def _path(self, name: str) -> Path | str | None:
        """``data_paths[name]``: a local path (relative: from the repository root), ``bundled`` (the copy
        that ships with the package), or None (download)."""
        path = self.cfg.data_paths.get(name)
        return BUNDLED if path == BUNDLED else io.resolve(path) if path else None

    def fingerprint(self) -> dict:
        """Content hashes of the local data files the traces and prompts come from."""
        out = {"r2d": content_hash(io.resolve(self.cfg.r2d_path)) if self.cfg.r2d_path else None}
        if self.cfg.train_prompts != "r2d":
            out["train_prompts"] = content_hash(io.resolve(self.cfg.train_prompts))
        out.update({k: content_hash(bundled(_FOLDERS[k]) if self._path(k) == BUNDLED else self._path(k))
                    for k in sorted(self.cfg.data_paths)})
        return out

    # ------------------------------------------------------------------ policies
    @cached_property
    def _model(self) -> str:
        """``source.model``, with ``pretrained:<name>`` turned into its local checkpoint (converted once)."""
        return resolve_model(self.cfg.model)

    def base_policy(self) -> str:
        return self._model

    def policy_fingerprint(self, path: str) -> str:
        return model_fingerprint(path)

    def load_policy(self, path: str | None = None, *, train: bool = False):
        """(model, tokenizer) of the base policy or of a trained one at ``path``, in ``dtype``
        (``train_dtype`` for GRPO: bf16 weights round most 1e-6-sized updates away)."""
        return load_model(str(path or self._model), dtype=self.cfg.train_dtype if train else self.cfg.dtype,
                          device=self.device, trust_remote_code=self.cfg.trust_remote_code)

    def hidden_size(self) -> int:
        """The base policy's ``hidden_size`` from its config (read, not loaded: no weights)."""
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(self._model, trust_remote_code=self.cfg.trust_remote_code)
        return int(getattr(config, "hidden_size", None) or config.get_text_config().hidden_size)

    def probe_models(self) -> dict[str, str]:
        return {self.cfg.model.rstrip("/").split("/")[-1].split(":")[-1]: self._model}

    # ------------------------------------------------------------------ traces
    @cached_property
    def _traces(self) -> tuple[list[LabelledTrace], list[LabelledTrace]]:
        train, test = self._labelled_traces()
        return self._cut(train), self._cut(test)

    def _labelled_traces(self) -> tuple[list[LabelledTrace], list[LabelledTrace]]:
        if self.cfg.traces == "jbb_artifacts":
            return self._artifact_traces()
        if not self.cfg.r2d_path:
            raise ValueError("source.r2d_path is empty: set it to the R2D-R1 .json/.jsonl file "
                             "(see craft.data.r2d for where to get it)")
        traces, counts = convert_r2d(load_r2d(io.resolve(self.cfg.r2d_path)))
        labelled = [LabelledTrace(t.prompt, t.reasoning_trace, t.answer, t.label) for t in traces]
        if self.cfg.max_traces:
            rng, kept = random.Random(self.seed), []
            for label in LABEL_NAMES:
                group = [i for i, t in enumerate(labelled) if t.label == label]
                kept += rng.sample(group, min(self.cfg.max_traces, len(group)))
            labelled = [labelled[i] for i in sorted(kept)]
        missing = [lab for lab in ("safe", "unsafe") if not any(t.label == lab for t in labelled)]
        if missing:
            raise ValueError(f"{self.cfg.r2d_path}: no {missing} traces after conversion ({counts}); LCLR needs both")
        return split_traces(labelled, self.cfg.test_fraction, self.seed)

    def _cut(self, traces: list[LabelledTrace]) -> list[LabelledTrace]:
        """Each trace's reasoning cut to its first ``max_trace_tokens`` tokens of the policy's tokenizer (0: as
        they are), so that heads are fit on what a judge with the same cut, or a short rollout, reads."""
        if not self.cfg.max_trace_tokens:
            return traces
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(self._model, trust_remote_code=self.cfg.trust_remote_code)
        return [LabelledTrace(t.prompt, truncate_tokens(tok, t.reasoning, self.cfg.max_trace_tokens), t.answer,
                              t.label) for t in traces]

    def test_behaviours(self) -> set[int]:
        """JailbreakBench behaviour indices (0-99) held out of every training set of this source (a seeded
        ``test_fraction`` of them): the artifact traces and the R2L prompts of ``train_prompts: jbb`` are
        split by behaviour, so no request is in both train and test."""
        n_test = round(self.cfg.test_fraction * 100)
        return set(random.Random(self.seed).sample(range(100), n_test))

    def _artifact_traces(self) -> tuple[list[LabelledTrace], list[LabelledTrace]]:
        """JailbreakBench's PAIR and JBC responses as labelled traces, split by behaviour: the request is the
        behaviour's goal, the response the whole trace (an instruct model has no reasoning block), the label
        ``unsafe`` where JailbreakBench's Llama-3-70B judge found it jailbroken, else ``safe``; responses
        that PAIR never submitted are left out; ``max_traces`` per label (seeded)."""
        df = bench.load_jbb_artifacts(["PAIR", "JBC"], path=self._path("jbb_artifacts"))
        df = df[df.response.notna() & (df.response.astype(str).str.strip() != "")]
        rows = [LabelledTrace(str(g), str(r), None, "unsafe" if j else "safe")
                for g, r, j in zip(df.goal, df.response, df.jailbroken)]
        test_ids = self.test_behaviours()
        is_test = [int(i) in test_ids for i in df["index"]]
        train = [t for t, s in zip(rows, is_test) if not s]
        test = [t for t, s in zip(rows, is_test) if s]
        if self.cfg.max_traces:
            rng = random.Random(self.seed)
            train = [t for label in ("safe", "unsafe") for t in
                     rng.sample([t for t in train if t.label == label],
                                min(self.cfg.max_traces, sum(t.label == label for t in train)))]
        return train, test

    def traces(self, purpose: str, split: str) -> list[LabelledTrace]:
        """The labelled traces of ``split`` (train or test): R2D-R1's, or JailbreakBench's labelled responses
        (``traces: jbb_artifacts``); the probe and LCLR use the same ones. Neither has held-out hazard
        vocabulary or coded text, so the ``unseen_val``, ``unseen_test`` and ``coded_test`` splits are empty."""
        if split in ("unseen_val", "unseen_test", "coded_test"):
            return []
        if split not in ("train", "test"):
            raise ValueError(f"unknown trace split {split!r}; "
                             "choose train, test, unseen_val, unseen_test or coded_test")
        train, test = self._traces
        return train if split == "train" else test

    def own_samples(self, records: pd.DataFrame) -> None:
        """Labelling sampled reasoning needs a 3-way reasoning judge, which the paper scale has not."""
        return None

    # ------------------------------------------------------------------ prompts and judges
    def train_prompts(self, seed: int) -> list[Prompt]:
        """R2L training prompts: the distinct R2D-R1 instructions, or a file with a ``prompt`` column
        (and an optional boolean ``harmful``, default True), in file order, capped, then shuffled."""
        if self.cfg.train_prompts == "r2d":
            records = load_r2d(io.resolve(self.cfg.r2d_path))
            texts = list(dict.fromkeys(r.get("instruction") or r.get("prompt") or "" for r in records))
            rows = [(t, True) for t in texts if t.strip()]
        elif self.cfg.train_prompts == "jbb":
            test_ids = self.test_behaviours()
            rows = [(str(g), split == "harmful") for split in ("harmful", "benign")
                    for i, g in zip(*self._behaviours(split)) if i not in test_ids]
        else:
            path = io.resolve(self.cfg.train_prompts)
            if not path.is_file():
                raise FileNotFoundError(f"source.train_prompts: {path} does not exist (use r2d, or a .jsonl/.csv "
                                        "file with a prompt column)")
            df = read_table(path)                   # CSV as text: "false" stays a word for as_bool
            if "prompt" not in df.columns:
                raise ValueError(f"{path}: needs a prompt column, found {list(df.columns)}")
            empty = [i for i, v in enumerate(df["prompt"], 1) if not isinstance(v, str) or not v.strip()]
            if empty:
                raise ValueError(f"{path}: row {empty[0]} has no prompt (null or empty); every row needs one")
            harmful = as_bool(df["harmful"], path, "harmful") if "harmful" in df else [True] * len(df)
            rows = list(zip(df["prompt"], harmful))
        rows = rows[:self.cfg.max_train_prompts or None]
        random.Random(seed).shuffle(rows)
        return [Prompt(t, "harmful" if h else "benign", "direct" if h else "benign", "direct" if h else "benign",
                       split="train") for t, h in rows]

    def _behaviours(self, split: str) -> tuple[list[int], list[str]]:
        """(behaviour indices, goals) of JailbreakBench's ``harmful`` or ``benign`` behaviours."""
        df = bench.load_jbb_behaviors(split, path=self._path("jbb_behaviors"))
        return [int(i) for i in df["index"]], [str(g) for g in df["prompt"]]

    @cached_property
    def _safety_prompts(self) -> list[Prompt]:
        goals = {"jbb": lambda: bench.load_jbb_behaviors("harmful", path=self._path("jbb_behaviors")),
                 "strongreject": lambda: bench.load_strongreject(path=self._path("strongreject"))}
        artifacts = (bench.load_jbb_artifacts("PAIR", path=self._path("jbb_artifacts"))
                     if "pair" in self.cfg.attacks else None)
        out = []
        for name in self.cfg.benchmarks:
            df = goals[name]().head(self.cfg.max_eval_prompts or None)
            behaviors = list(df["behavior"]) if "behavior" in df.columns else None
            for attack in self.cfg.attacks:
                for a in apply_attack(attack, list(df["prompt"]), seed=self.seed, artifacts=artifacts,
                                      behaviors=behaviors):
                    out.append(Prompt(a.prompt, "harmful", attack, "direct" if attack == "none" else "wrapped",
                                      goal=a.goal, benchmark=name))
        return out

    def _capability_prompts(self) -> list[Prompt]:
        out = []
        for name in self.cfg.capability:
            if name == "math500":
                df = bench.load_math500(path=self._path("math500")).rename(columns={"problem": "prompt"})
            else:
                df = bench.load_gsm8k(path=self._path("gsm8k")).rename(columns={"question": "prompt"})
            out += [Prompt(str(q), "capability", name, "benign", target=str(a), benchmark=name)
                    for q, a in zip(df["prompt"], df["answer"])][:self.cfg.max_eval_prompts or None]
        return out

    def monitor_prompts(self) -> list[Prompt]:
        """The first ``monitor_prompts`` safety prompts, evaluated while R2L trains (0: none)."""
        return self._safety_prompts[:self.cfg.monitor_prompts]

    def eval_prompts(self) -> list[Prompt]:
        """Every attacked benchmark prompt, then the capability problems."""
        return self._safety_prompts + self._capability_prompts()

    def attack_goals(self, n: int, regime: str = "direct") -> list[tuple[Prompt, str]]:
        """The first ``n`` JailbreakBench harmful behaviours, each with its own target string (the
        benchmark's "Sure, here is ..." opening, what GCG optimises for). Only the ``direct`` regime: the
        dressed-up and coded regimes are the organism's (its world knows which framings and aliases they are)."""
        if regime != "direct":
            raise ValueError(f"the paper-scale source attacks direct requests only, not {regime!r}: set "
                             "attacks.regimes: [direct]")
        df = bench.load_jbb_behaviors("harmful", path=self._path("jbb_behaviors")).head(n)
        return [(Prompt(str(g), "harmful", "none", "direct", benchmark="jbb"), str(t))
                for g, t in zip(df["goal"], df["target"])]

    def fuzz_seeds(self) -> list[str]:
        """The fuzzer's seed templates: the five PAP technique templates (``{goal}`` marks the goal).
        GPTFuzzer's own 77 human-written seeds are not shipped with this package."""
        return list(PAP_TECHNIQUES.values())

    def fuzz_synonyms(self) -> dict[str, list[str]]:
        return {w: [o for o in group if o != w] for group in FUZZ_SYNONYM_GROUPS for w in group}

    def benign_reasoning(self, n: int) -> list[str]:
        """The first ``n`` GSM8K test problems, each followed by its worked solution (the dataset's own,
        calculator annotations and all): long benign reasoning, as the chain-of-thought hijacking attack uses."""
        df = bench.load_gsm8k(path=self._path("gsm8k")).head(n)
        return [f"{q}\n{sol}\nThe answer is {a}." for q, sol, a in zip(df["question"], df["solution"], df["answer"])]

    def judge(self, role: str):
        """The ``reward``, ``reasoning`` or ``response`` judge, loaded on first use (one model serves
        the roles whose specs are equal); ``surface``: None (no coded text at this scale)."""
        if role == "surface":
            return None
        spec: JudgeSpec = getattr(self.cfg, f"{role}_judge")
        if spec not in self._judges:
            self._judges[spec] = make_judge(spec, self.device, self.run_dir)
        return self._judges[spec]

    def agreement_judges(self) -> dict[str, object]:
        """The ``agreement_judges`` of the params file by name, loaded on first use (a spec equal to a
        role's shares that role's model). They only measure agreement with the reasoning judge."""
        out = {}
        for name, spec in self.cfg.agreement_judges.items():
            if spec not in self._judges:
                self._judges[spec] = make_judge(spec, self.device, self.run_dir)
            out[name] = self._judges[spec]
        return out

    def judge_identity(self) -> dict:
        """Per role, what decides its verdicts (:func:`craft.paper.config.judge_identity`)."""
        roles = ("reward", "reasoning", "response")
        return {role: judge_identity(getattr(self.cfg, f"{role}_judge"), self.run_dir) for role in roles}

    def validation_prompts(self, sizes):
        raise ValueError("the baselines are not trained at paper scale, so nothing is tuned on validation prompts; "
                         "set baselines.methods: [] and baselines.dpo_learning_rates: [] in the params file")

    def baseline_data(self, method: str, n: int, seed: int):
        raise ValueError(f"the {method} baseline needs training data the paper's baselines (STAR-1, SafeChain, "
                         "RealSafe-R1, IPO) do not ship in a form this package reads; set baselines.methods: [] "
                         "in the params file")
