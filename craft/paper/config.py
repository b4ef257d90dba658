"""The ``source`` section of a paper-scale params file: the policy, data and judges of paper §6.

Values not in what we have of the paper are ours and marked so in ``params/paper-*.yaml``. A
paper-scale params file has no defaults: every key is written out (:func:`craft.stages.params.load_params`
names any that is missing), so that no value meant for the 1 M-parameter organism reaches a 4 B model.

Judges: the paper names its judges' roles (R_txt, reasoning harmfulness, response harmfulness) but
not how they were prompted; the judge behind each role is a params-file choice (:class:`JudgeSpec`).
``agreement_judges`` (ours, beyond the paper) names further reasoning judges that are only compared
with the reasoning judge (inter-judge agreement), never used in a reward or a metric.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from craft.config import ConfigError, check_fields, rule
from craft.pretrained import resolve_model
from craft.runs import content_hash, model_fingerprint

__all__ = ["ATTACK_NAMES", "BENCHMARKS", "CAPABILITY", "DATA_KEYS", "JUDGE_KINDS", "MODEL_JUDGE_KINDS", "TRACE_SOURCES",
           "JudgeSpec", "PaperSourceConfig", "judge_identity", "make_judge"]

JUDGE_KINDS = ("refusal", "llama_guard", "strongreject_grader", "api", "qwen3guard", "reasoningshield", "latent")
MODEL_JUDGE_KINDS = ("llama_guard", "strongreject_grader", "qwen3guard", "reasoningshield", "latent")  # need `model`
TRACE_SOURCES = ("r2d", "jbb_artifacts")   # where the labelled traces of the probe and LCLR come from
BENCHMARKS = ("jbb", "strongreject")           # safety benchmarks of paper Tables 1-2
CAPABILITY = ("math500", "gsm8k")              # Pass@1 with answer matching
ATTACK_NAMES = ("none", "pap", "pair")
DATA_KEYS = ("jbb_behaviors", "strongreject", "jbb_artifacts", "math500", "gsm8k", "xstest")   # data_paths keys
DTYPES = ("float32", "bfloat16", "float16")


@dataclass(frozen=True)
class JudgeSpec:
    """Which judge scores P(safe): kind, and the model (or API model name) behind it. Fields a kind
    does not use are ignored (``rubric``: api only; ``max_new_tokens``: reasoningshield only; ``heads``:
    latent only, the folder of LCLR heads fit on ``model``, :class:`craft.judges.latent.LatentJudge`)."""

    kind: str = field(default="llama_guard", metadata=rule(choices=JUDGE_KINDS))
    model: str = ""                  # hub id or local path; api: model name (empty: CRAFT_JUDGE_MODEL)
    rubric: str = field(default="strongreject", metadata=rule(choices=("strongreject", "harmfulness7")))  # api only
    dtype: str = field(default="bfloat16", metadata=rule(choices=DTYPES))
    batch_size: int = field(default=8, metadata=rule(ge=1))
    max_response_tokens: int = field(default=0, metadata=rule(ge=0))   # keep the first N tokens; 0: all
    max_new_tokens: int = field(default=512, metadata=rule(ge=1))      # reasoningshield: analysis + verdict
    heads: str = ""                  # latent: the folder of its LCLR heads (relative: inside the run_dir)

    def __post_init__(self):
        check_fields(self)
        if self.kind in MODEL_JUDGE_KINDS and not self.model:
            raise ConfigError(f"judge kind {self.kind!r} needs model: a hub id, a local path or pretrained:<name>")
        if self.kind == "latent" and not self.heads:
            raise ConfigError("judge kind 'latent' needs heads: the folder of LCLR heads fit on its model")


@dataclass(frozen=True)
class PaperSourceConfig:
    """Where a paper-scale run's policy, traces, prompts and judges come from (``source:``)."""

    kind: Literal["paper"] = "paper"
    model: str = ""                              # base policy: hub id or local path
    dtype: str = field(default="bfloat16", metadata=rule(choices=DTYPES))   # generation, hidden states, evaluation
    train_dtype: str = field(default="float32", metadata=rule(choices=DTYPES))  # GRPO weights (bf16 autocast on GPU)
    device: str = "auto"                         # auto: this process's GPU, else cpu
    trust_remote_code: bool = False
    r2d_path: str = ""                           # R2D-R1 .json/.jsonl (craft.data.r2d converter)
    traces: str = field(default="r2d", metadata=rule(choices=TRACE_SOURCES))   # or the JBB artifacts' responses
    max_traces: int = field(default=0, metadata=rule(ge=0))          # traces kept per label (0: all)
    test_fraction: float = field(default=0.2, metadata=rule(gt=0, lt=1))   # held-out share of traces
    max_trace_tokens: int = field(default=0, metadata=rule(ge=0))    # reasoning cut to N policy tokens (0: all)
    train_prompts: str = "r2d"                   # r2d (the R2D-R1 instructions) or a .jsonl/.csv with a prompt column
    max_train_prompts: int = field(default=0, metadata=rule(ge=0))   # 0: all
    reward_judge: JudgeSpec = field(default_factory=JudgeSpec)       # R_txt
    reasoning_judge: JudgeSpec = field(default_factory=JudgeSpec)    # reasoning harmfulness
    response_judge: JudgeSpec = field(default_factory=JudgeSpec)     # response harmfulness
    agreement_judges: dict[str, JudgeSpec] = field(default_factory=dict)  # name -> a reasoning judge to compare
    benchmarks: list[str] = field(default_factory=lambda: list(BENCHMARKS))
    attacks: list[str] = field(default_factory=lambda: list(ATTACK_NAMES))
    capability: list[str] = field(default_factory=list)              # math500 | gsm8k
    data_paths: dict[str, str] = field(default_factory=dict)         # loader name -> local path; absent: download
    max_eval_prompts: int = field(default=0, metadata=rule(ge=0))    # prompts per benchmark (0: all)
    monitor_prompts: int = field(default=0, metadata=rule(ge=0))     # safety prompts R2L evaluates during training

    def __post_init__(self):
        check_fields(self)
        if not self.model:
            raise ConfigError("model is required: a hub id or a local path")
        for name, allowed in (("benchmarks", BENCHMARKS), ("attacks", ATTACK_NAMES), ("capability", CAPABILITY)):
            bad = sorted(set(getattr(self, name)) - set(allowed))
            if bad:
                raise ConfigError(f"{name}: {bad} not in {list(allowed)}")
        bad = sorted(set(self.data_paths) - set(DATA_KEYS))
        if bad:
            raise ConfigError(f"data_paths: unknown key(s) {bad}; allowed: {list(DATA_KEYS)}")
        for name, spec in self.agreement_judges.items():
            if not re.fullmatch(r"[a-z][a-z0-9_]*", str(name)):
                raise ConfigError(f"agreement_judges: name {name!r} must be lower-case letters, digits and _ "
                                  "(it names columns)")
            if not isinstance(spec, JudgeSpec):
                raise ConfigError(f"agreement_judges.{name}: expected a judge spec, got {type(spec).__name__}")


def heads_path(spec: JudgeSpec, run_dir: Path | None) -> Path:
    """A latent judge's heads: an absolute path, or a path inside ``run_dir`` (the heads a run's own
    LCLR stage fit, e.g. ``02_train_lclr/heads-paper``)."""
    path = Path(spec.heads).expanduser()
    if path.is_absolute():
        return path
    if run_dir is None:
        raise ConfigError(f"judge heads {spec.heads!r} is relative to a run_dir, and none was given")
    return Path(run_dir) / path


def judge_identity(spec: JudgeSpec, run_dir: Path | None = None) -> dict:
    """What decides the verdicts of the judge ``spec`` describes, for caches and run identities: its
    settings, and what a path or a name alone does not pin down. A model judge adds its weights'
    fingerprint (:func:`craft.runs.model_fingerprint`: the content hash of a local checkpoint, so one
    rebuilt in place is another judge; the commit of a cached hub snapshot); an API judge the endpoint and
    the model it calls, taken from the environment where the spec leaves them empty, as
    :class:`craft.judges.api.ApiJudge` does."""
    out = asdict(spec)
    if spec.kind in MODEL_JUDGE_KINDS:
        out["fingerprint"] = model_fingerprint(resolve_model(spec.model))
    if spec.kind == "latent":
        heads = heads_path(spec, run_dir)
        out["heads_fingerprint"] = content_hash(heads) if heads.exists() else "not fit yet"
    elif spec.kind == "api":
        out["base_url"] = os.environ.get("CRAFT_JUDGE_BASE_URL", "").rstrip("/")
        out["model"] = spec.model or os.environ.get("CRAFT_JUDGE_MODEL", "")
    return out


def make_judge(spec: JudgeSpec, device: str | None = None, run_dir: Path | None = None):
    """The :class:`craft.judges.Judge` that ``spec`` describes (models loaded here, once)."""
    cut = spec.max_response_tokens or None
    if spec.kind == "refusal":
        from craft.judges import RefusalStringJudge
        return RefusalStringJudge()
    if spec.kind == "api":
        from craft.judges.api import ApiJudge
        return ApiJudge(rubric=spec.rubric, model=spec.model or None)
    if spec.kind == "latent":
        from craft.judges.latent import LatentJudge
        return LatentJudge(resolve_model(spec.model), heads_path(spec, run_dir), device=device, dtype=spec.dtype,
                           batch_size=spec.batch_size, max_response_tokens=cut)
    from craft.judges.guard import Qwen3GuardJudge, ReasoningShieldJudge
    from craft.judges.local import LlamaGuardJudge, StrongRejectGraderJudge
    common = dict(batch_size=spec.batch_size, device=device, dtype=spec.dtype, max_response_tokens=cut)
    if spec.kind == "reasoningshield":
        return ReasoningShieldJudge(resolve_model(spec.model), max_new_tokens=spec.max_new_tokens, **common)
    cls = {"llama_guard": LlamaGuardJudge, "strongreject_grader": StrongRejectGraderJudge,
           "qwen3guard": Qwen3GuardJudge}[spec.kind]
    return cls(resolve_model(spec.model), **common)
