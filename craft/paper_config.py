"""The paper-scale configuration: one YAML file per model, read by papermill and by the CLIs.

A file ``params/paper-….yaml`` holds three top-level keys, which are parameters of every
notebook: ``run_dir``, ``figures_dir`` and ``paper``, the mapping read here into a
:class:`PaperConfig`. The same file is passed to ``papermill -f`` (the notebooks run their
paper-scale cells when ``paper`` is not empty) and to ``python -m craft.lclr|craft.r2l|
craft.evaluate --config`` (:mod:`craft.pipeline`), so a notebook run and a CLI run of one file
do the same thing.

Values not in what we have of the paper are ours and marked so in the params files; the
GRPO defaults are :data:`craft.r2l.PAPER_DEFAULTS` (the released code's), overridden key by key
by ``paper.r2l``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from craft.config import ConfigError, from_dict, load_yaml
from craft.lclr import LCLRConfig
from craft.r2l import PAPER_DEFAULTS, R2LConfig
from craft.rewards import VARIANTS

__all__ = ["BENCHMARKS", "CAPABILITY", "JUDGE_KINDS", "JudgeSpec", "PaperConfig", "PaperRun", "load_paper_run",
           "lclr_config", "make_judge", "paper_run", "r2l_config"]

JUDGE_KINDS = ("refusal", "llama_guard", "strongreject_grader", "api")
BENCHMARKS = ("jbb", "strongreject")           # safety benchmarks of paper Tables 1-2
CAPABILITY = ("math500", "gsm8k")              # Pass@1 with answer matching
ATTACK_NAMES = ("none", "pap", "pair")
DATA_KEYS = ("jbb_behaviors", "strongreject", "jbb_artifacts", "math500", "gsm8k")   # paper.data_paths


@dataclass(frozen=True)
class JudgeSpec:
    """Which judge scores P(safe): kind, and the model (or API model name) behind it."""

    kind: str = "llama_guard"        # refusal | llama_guard | strongreject_grader | api
    model: str = ""                  # hub id or local path; api: model name (empty: CRAFT_JUDGE_MODEL)
    rubric: str = "strongreject"     # api only: strongreject | harmfulness7
    dtype: str = "bfloat16"
    batch_size: int = 8
    max_response_tokens: int = 0     # keep the first N tokens of a judged text; 0: all

    def __post_init__(self):
        if self.kind not in JUDGE_KINDS:
            raise ConfigError(f"judge kind {self.kind!r} is not one of {list(JUDGE_KINDS)}")
        if self.kind in ("llama_guard", "strongreject_grader") and not self.model:
            raise ConfigError(f"judge kind {self.kind!r} needs model: a hub id or a local path")


@dataclass(frozen=True)
class PaperConfig:
    """Everything a paper-scale run needs beyond the run directory (see params/paper-*.yaml)."""

    model: str                                   # base policy: hub id or local path
    dtype: str = "bfloat16"                      # weights for generation, hidden states and evaluation
    train_dtype: str = "float32"                 # weights while GRPO trains (TRL autocasts to bf16 on GPU)
    device: str = "auto"                         # auto: cuda when available, else cpu
    trust_remote_code: bool = False
    seed: int = 0
    layer: int = 18                              # decoder layer of the latent (craft.latents)
    pool: str = "mean"                           # mean | last over the reasoning span
    latent_batch_size: int = 8                   # traces per forward when reading hidden states
    r2d_path: str = ""                           # R2D-R1 .json/.jsonl (craft.data.r2d converter)
    max_traces: int = 0                          # traces kept per label (0: all)
    test_fraction: float = 0.2                   # held-out share of traces for probe/LCLR metrics
    lclr: dict = field(default_factory=dict)     # LCLRConfig overrides (d_model is the model's)
    r2l: dict = field(default_factory=dict)      # R2LConfig overrides of craft.r2l.PAPER_DEFAULTS
    variants: list = field(default_factory=lambda: ["craft", "output_only"])   # notebook 03
    ablations: list = field(default_factory=lambda: ["no_lclr", "no_cons", "no_ls"])  # notebook 05
    train_prompts: str = "r2d"                   # r2d (the R2D-R1 instructions) or a .jsonl/.csv with prompt
    max_train_prompts: int = 0                   # 0: all
    reward_judge: JudgeSpec = field(default_factory=lambda: JudgeSpec("refusal"))
    reasoning_judge: JudgeSpec = field(default_factory=lambda: JudgeSpec("refusal"))
    response_judge: JudgeSpec = field(default_factory=lambda: JudgeSpec("refusal"))
    benchmarks: list = field(default_factory=lambda: list(BENCHMARKS))
    attacks: list = field(default_factory=lambda: list(ATTACK_NAMES))
    capability: list = field(default_factory=list)   # math500 | gsm8k
    data_paths: dict = field(default_factory=dict)   # loader name -> local path; absent: download + cache
    max_eval_prompts: int = 0                    # prompts per benchmark (0: all)
    max_new_tokens: int = 4096
    temperature: float = 0.6
    top_p: float = 0.95
    eval_batch_size: int = 16

    def __post_init__(self):
        for name, allowed in (("variants", VARIANTS), ("ablations", VARIANTS), ("benchmarks", BENCHMARKS),
                              ("attacks", ATTACK_NAMES), ("capability", CAPABILITY)):
            bad = sorted(set(map(str, getattr(self, name))) - set(allowed))
            if bad:
                raise ConfigError(f"paper.{name}: {bad} not in {list(allowed)}")
        bad = sorted(set(self.data_paths) - set(DATA_KEYS))
        if bad:
            raise ConfigError(f"paper.data_paths: unknown key(s) {bad}; allowed: {list(DATA_KEYS)}")
        for name in ("dtype", "train_dtype"):
            if getattr(self, name) not in ("float32", "bfloat16", "float16"):
                raise ConfigError(f"paper.{name}: {getattr(self, name)!r}; choose float32, bfloat16 or float16")
        if self.pool not in ("mean", "last"):
            raise ConfigError(f"paper.pool: {self.pool!r}; choose mean or last")
        if not 0.0 < self.test_fraction < 1.0:
            raise ConfigError(f"paper.test_fraction must be in (0, 1), got {self.test_fraction}")
        lclr_config(self, d_model=1)     # fail now, not after hours, on a bad override
        r2l_config(self, "craft")


def _checked(cls, base, overrides: Mapping, where: str, fixed: Mapping):
    """``dataclasses.replace(base, **overrides, **fixed)`` with from_dict's key and type checks."""
    clash = sorted(set(overrides) & set(fixed))
    if clash:
        raise ConfigError(f"{where}: {clash} are set by the pipeline, not by the params file")
    checked = from_dict(cls, {**dataclasses.asdict(base), **overrides}, where=f"{where}.")
    try:
        return dataclasses.replace(checked, **fixed)
    except ValueError as e:
        raise ConfigError(f"{where}: {e}") from e


def lclr_config(cfg: PaperConfig, d_model: int) -> LCLRConfig:
    """The paper's LCLR heads (1024 -> 512) with ``cfg.lclr`` overrides, sized for ``d_model``."""
    return _checked(LCLRConfig, LCLRConfig(d_model=d_model), cfg.lclr, "paper.lclr",
                    {"d_model": d_model, "seed": cfg.seed})


def r2l_config(cfg: PaperConfig, variant: str) -> R2LConfig:
    """:data:`craft.r2l.PAPER_DEFAULTS` with ``cfg.r2l`` overrides, for one variant."""
    return _checked(R2LConfig, PAPER_DEFAULTS, cfg.r2l, "paper.r2l", {"variant": variant, "seed": cfg.seed})


@dataclass(frozen=True)
class PaperRun:
    """A parsed params file: where the run lives and its :class:`PaperConfig`."""

    run_dir: str
    figures_dir: str
    config: PaperConfig


def paper_run(params: Mapping, where: str = "params") -> PaperRun:
    """Parse the notebook parameters ``run_dir``, ``figures_dir`` and ``paper`` (a params file)."""
    unknown = sorted(set(params) - {"run_dir", "figures_dir", "paper"})
    if unknown:
        raise ConfigError(f"{where}: unknown top-level key(s) {unknown}; expected run_dir, figures_dir, paper")
    if not isinstance(params.get("paper"), Mapping) or not params["paper"]:
        raise ConfigError(f"{where}: needs a non-empty 'paper' mapping (see params/paper-qwen3-4b-thinking.yaml)")
    if "model" not in params["paper"]:
        raise ConfigError(f"{where}: paper.model is required (a hub id or a local path)")
    return PaperRun(str(params.get("run_dir", "runs/paper")), str(params.get("figures_dir", "")),
                    from_dict(PaperConfig, params["paper"], where="paper."))


def load_paper_run(path: str | Path) -> PaperRun:
    """:func:`paper_run` of a YAML file, with errors that name the file."""
    return paper_run(load_yaml(path), where=str(path))


def make_judge(spec: JudgeSpec, device: str | None = None):
    """The :class:`craft.judges.Judge` that ``spec`` describes (models loaded here, once)."""
    cut = spec.max_response_tokens or None
    if spec.kind == "refusal":
        from craft.judges import RefusalStringJudge
        return RefusalStringJudge()
    if spec.kind == "api":
        from craft.judges_models import ApiJudge
        return ApiJudge(rubric=spec.rubric, model=spec.model or None)
    from craft.judges_models import LlamaGuardJudge, StrongRejectGraderJudge
    cls = LlamaGuardJudge if spec.kind == "llama_guard" else StrongRejectGraderJudge
    return cls(spec.model, batch_size=spec.batch_size, device=device, dtype=spec.dtype, max_response_tokens=cut)
