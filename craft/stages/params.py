"""The params of a run: one file drives every stage, at either scale.

A params file (``params/organism.yaml``, ``params/paper-*.yaml``) has these top-level keys, which
are also the parameters of every notebook (so ``papermill -f params/….yaml`` and
``craft <stage> --config params/….yaml`` read the same file):

===============  ==================================================================================
``run_dir``      where every artifact of the run goes (relative paths: from the repository root)
``figures_dir``  where the run publishes its figures ("" : nowhere)
``seed``         seeds everything; R2L runs use ``seed``, ``seed + 1``, …
``budget``       ``full`` (the reproduction: the notebooks assert their claims) or ``quick`` (``params/quick.yaml``:
                 one seed, fewer runs, smaller sets, for a class that cannot wait; the claims are printed, not asserted,
                 and the run's figures and metrics say they are the quick run's). Optional: ``full`` when absent
``source``       where the policy, traces, prompts and judges come from: ``kind: organism`` or
                 ``kind: paper`` (:class:`~craft.organism.config.OrganismSourceConfig`,
                 :class:`~craft.paper.config.PaperSourceConfig`)
``organism``     the organism's world, model and SFT (notebook 00; organism scale only)
``latent``       THE latent: decoder ``layer`` ("auto": the layer notebook 01 chooses) and ``pool``
``probe``        notebook 01: which layers to probe, the probe's regularisation
``lclr``         notebook 02: :class:`craft.lclr.LCLRConfig` and the variants to fit
``r2l``          notebooks 03 and 05: :class:`craft.r2l.R2LConfig` (``grpo`` passes through to TRL),
                 the variants, the number of seeds and the evaluation period
``evaluate``     decoding of every evaluation (:class:`craft.evaluate.GenerationSettings`)
``baselines``    notebook 04: the SFT and preference baselines
``ablations``    notebook 05: the ablation variants and the exact GRPO model of Theorem 5.1
``monitor``      notebook 06: the streaming latent monitor and the obfuscation check
``attacks``      notebook 07: adaptive attacks (GCG, a GPTFuzzer-style fuzzer) on the trained policies
``real``         notebook 08: the params file of the real model it reads (the third size: SmolLM2-135M
                 on a laptop; a paper-scale file names itself, so notebook 08 reads the paper's model)
===============  ==================================================================================

Organism scale: the file's values are merged over ``params/organism.yaml`` (the notebooks'
defaults), so a notebook parameter ``r2l = {"w_cons": 0.0}`` changes one value. Paper scale: there
are no defaults; every key must be written out. Keys that a stage sets itself (seeds, the variant,
the model's width) are refused in the file.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from craft.config import ConfigError, check_fields, deep_merge, from_dict, load_yaml, missing_keys, rule
from craft.evaluate import GenerationSettings
from craft.io import resolve
from craft.latents import POOLS
from craft.lclr import VARIANTS as LCLR_VARIANTS
from craft.lclr import LCLRConfig
from craft.organism.config import OrganismConfig, OrganismSourceConfig
from craft.paper.config import PaperSourceConfig
from craft.r2l import R2LConfig, variant_weights
from craft.r2l.rewards import VARIANTS as R2L_VARIANTS

__all__ = ["ORGANISM_PARAMS", "TOP_KEYS", "Params", "load_params", "notebook_parameters", "params_from_notebook"]

ORGANISM_PARAMS = "params/organism.yaml"
TOP_KEYS = ("run_dir", "figures_dir", "seed", "budget", "source", "organism", "latent", "probe", "lclr", "r2l",
            "evaluate", "baselines", "ablations", "monitor", "attacks", "real")
# ``budget``: full runs assert the notebooks' claims; quick runs (one seed, fewer runs, smaller sets) only print them.
BUDGETS = ("full", "quick")
# Keys a stage sets itself: refused in a params file.
FIXED = {"lclr": ("d_model", "layer", "pool", "seed", "variant"), "r2l": ("variant", "seed"), "evaluate": ("seed",),
         "baselines.sft": ("seed",), "baselines.dpo": ("seed",), "organism.sft": ("seed",),
         "attacks.gcg": ("seed",), "attacks.fuzz": ("seed",)}
ADAPTIVE_ATTACKS = ("gcg", "fuzz", "cot_hijack")
# Where an adaptive attack starts (notebook 07): plain requests, dressed-up framings, a coded target (organism).
ATTACK_REGIMES = ("direct", "dressed", "coded")
BASELINES = ("sft_offpolicy", "intervened_po")
# GRPOConfig values every run must state (TRL's defaults differ from both the paper's and ours).
REQUIRED_GRPO = ("max_steps", "learning_rate", "beta", "num_generations", "per_device_train_batch_size",
                 "temperature", "top_p", "max_completion_length", "epsilon", "epsilon_high")


@dataclass(frozen=True)
class LatentSection:
    """THE latent (:mod:`craft.latents`): used by the probe, LCLR, the reward and the monitor."""

    layer: int | str = "auto"     # decoder layer; "auto": the one notebook 01 chooses (its probe stage)
    pool: str = field(default="mean", metadata=rule(choices=POOLS))
    batch_size: int = field(default=64, metadata=rule(ge=1))     # traces per forward when reading hidden states

    def __post_init__(self):
        check_fields(self)
        if self.layer != "auto" and (not isinstance(self.layer, int) or self.layer < 0):
            raise ConfigError(f"layer must be 'auto' or an int >= 0, got {self.layer!r}")


@dataclass(frozen=True)
class ProbeSection:
    """Notebook 01: linear probes per layer (paper §3, Fig. 2)."""

    layers: list[int] | str = "all"    # "all", or the decoder layers to probe
    C: float = field(default=1.0, metadata=rule(gt=0))     # inverse L2 strength of the logistic regression

    def __post_init__(self):
        check_fields(self)
        if self.layers != "all" and (not isinstance(self.layers, list) or not self.layers
                                     or any(not isinstance(x, int) or x < 0 for x in self.layers)):
            raise ConfigError(f"layers must be 'all' or a non-empty list of ints >= 0, got {self.layers!r}")


def _check_variants(variants: list[str], allowed) -> None:
    if not variants or set(variants) - set(allowed):
        raise ConfigError(f"variants: {variants} must be a non-empty list of {list(allowed)}")


@dataclass(frozen=True)
class LCLRSection(LCLRConfig):
    """Notebook 02: :class:`craft.lclr.LCLRConfig` (its latent, width, seed and variant set by the stage)."""

    variants: list[str] = field(default_factory=lambda: ["paper", "released"])   # the first one's heads feed R2L

    def __post_init__(self):
        super().__post_init__()
        _check_variants(self.variants, LCLR_VARIANTS)


@dataclass(frozen=True)
class R2LSection(R2LConfig):
    """Notebooks 03 and 05: :class:`craft.r2l.R2LConfig` (variant and seed set by the stage) and the plan."""

    variants: list[str] = field(default_factory=lambda: ["output_only", "craft"])
    n_seeds: int = field(default=3, metadata=rule(ge=1))    # seeds seed, seed + 1, …
    eval_every: int = field(default=20, metadata=rule(ge=0))   # held-out evaluation period (0: first and last step)
    workers: int = field(default=1, metadata=rule(ge=1))       # runs trained at once (see craft.stages.r2l)
    # a run whose reward judge failed on more of its texts than this share ends with an error, unfinished
    max_judge_failure_rate: float = field(default=0.05, metadata=rule(ge=0, le=1))

    def __post_init__(self):
        super().__post_init__()
        _check_variants(self.variants, R2L_VARIANTS)
        for v in self.variants:      # each variant trained must have a reward with a weight
            if not any(variant_weights(v, self.weights, self.task_reward)):
                raise ConfigError(f"variants: {v!r} would train with every reward weight it uses at 0")


@dataclass(frozen=True)
class EvaluateSection(GenerationSettings):
    """Decoding of every evaluation (the seed is set by each stage), and how many policies the
    evaluation of notebook 04 (``evaluate_stage``) samples at once (organism: one process on one
    thread each)."""

    workers: int = field(default=1, metadata=rule(ge=1))


@dataclass(frozen=True)
class BaselinesSection:
    """Notebook 04: safety-training baselines (organism scale; the paper's data are not released)."""

    methods: list[str] = field(default_factory=lambda: list(BASELINES))
    sft_examples: int = field(default=2880, metadata=rule(ge=0))   # sft_offpolicy conversations
    dpo_pairs: int = field(default=1280, metadata=rule(ge=0))      # intervened_po preference pairs
    workers: int = field(default=1, metadata=rule(ge=1))           # organism: baselines trained at once
    sft: dict = field(default_factory=dict)     # craft.baselines.SFTBaselineConfig fields
    dpo: dict = field(default_factory=dict)     # craft.baselines.DPOBaselineConfig fields
    dpo_learning_rates: list[float] = field(default_factory=list)  # intervened_po: candidates chosen on validation
    validation: dict = field(default_factory=dict)  # sizes of the validation prompts (organism: training split)

    def __post_init__(self):
        from craft.baselines import DPOBaselineConfig, SFTBaselineConfig

        check_fields(self)
        if set(self.methods) - set(BASELINES):
            raise ConfigError(f"methods: {self.methods} must be a list of {list(BASELINES)}")
        if not all(isinstance(lr, (int, float)) and lr > 0 for lr in self.dpo_learning_rates):
            raise ConfigError(f"dpo_learning_rates: {self.dpo_learning_rates} must be positive numbers")
        if self.dpo_learning_rates and not self.validation:
            raise ConfigError("dpo_learning_rates needs validation prompts to choose on: set baselines.validation "
                              "(e.g. {core: 150, arithmetic: 100, benign_repeats: 1}), or dpo_learning_rates: []")
        from_dict(SFTBaselineConfig, self.sft, where="sft.")
        from_dict(DPOBaselineConfig, self.dpo, where="dpo.")


@dataclass(frozen=True)
class AblationsSection:
    """Notebook 05: paper Table 3's ablations, and the exact GRPO model of Theorem 5.1."""

    variants: list[str] = field(default_factory=lambda: ["no_lclr", "no_cons", "no_ls"])
    n_seeds: int = field(default=3, metadata=rule(ge=1))      # the first n_seeds seeds of notebook 03
    head_draws: int = field(default=5, metadata=rule(ge=1))   # no_lclr's seeds (a draw of random heads each)
    eval_every: int = field(default=0, metadata=rule(ge=0))   # 0: the first and the last step only
    theory_group_size: int = field(default=8, metadata=rule(ge=2))
    theory_steps: int = field(default=100, metadata=rule(ge=1))
    theory_lr: float = field(default=1.0, metadata=rule(gt=0))
    theory_grid: int = field(default=21, metadata=rule(ge=3))

    def __post_init__(self):
        check_fields(self)
        if set(self.variants) - set(R2L_VARIANTS):
            raise ConfigError(f"variants: {self.variants} must be a list of {list(R2L_VARIANTS)}")


@dataclass(frozen=True)
class MonitorSection:
    """Notebook 06: the latent monitor reading the reasoning as it streams, and the obfuscation check."""

    false_alarm: float = field(default=0.05, metadata=rule(ge=0, lt=1))   # share of benign completions that may alarm
    min_tokens: int = field(default=1, metadata=rule(ge=1))     # reasoning tokens read before the monitor may alarm
    fractions: list[float] = field(default_factory=lambda: [0.1, 0.25, 0.5, 1.0])   # shares of the reasoning seen
    text_stride: int = field(default=1, metadata=rule(ge=1))    # the text monitor judges every k-th prefix
    refusal: str = "i can not help with that ."                 # what a stopped generation answers
    refit: bool = True                                           # refit the heads on each checked policy
    positive_control: bool = True     # train the obfuscator run (R_ls + a reward for disclosing) and check it too

    def __post_init__(self):
        check_fields(self)
        if not self.fractions or any(not isinstance(f, (int, float)) or isinstance(f, bool) or not 0 < f <= 1
                                     for f in self.fractions):
            raise ConfigError(f"fractions: {self.fractions} must be a non-empty list of numbers in (0, 1]")
        if not self.refusal.strip():
            raise ConfigError("refusal must be a non-empty text")


@dataclass(frozen=True)
class AttacksSection:
    """Notebook 07: adaptive attacks (paper Fig. 4) against the base, output-only and CRAFT policies.

    Attack seed k attacks the base policy, ``output_only`` seed k and ``craft`` seed k of notebook 03
    (so ``n_seeds`` must not exceed ``r2l.n_seeds``)."""

    methods: list[str] = field(default_factory=lambda: list(ADAPTIVE_ATTACKS))
    regimes: list[str] = field(default_factory=lambda: ["direct"])   # where the attacks start; direct first
    n_goals: int = field(default=8, metadata=rule(ge=1))      # harmful goals attacked per policy
    n_seeds: int = field(default=3, metadata=rule(ge=1))      # attack seeds (and policy seeds)
    samples: int = field(default=4, metadata=rule(ge=1))      # completions per attacked prompt in the ASR
    workers: int = field(default=1, metadata=rule(ge=1))      # organism: (policy, seed) units computed at once
    gcg: dict = field(default_factory=dict)                   # craft.attacks.GCGSettings fields
    fuzz: dict = field(default_factory=dict)                  # craft.attacks.FuzzSettings fields
    hijack_problems: int = field(default=2, metadata=rule(ge=1))   # cot_hijack: worked problems before the request

    def __post_init__(self):
        from craft.attacks import FuzzSettings, GCGSettings

        check_fields(self)
        if not self.methods or set(self.methods) - set(ADAPTIVE_ATTACKS):
            raise ConfigError(f"methods: {self.methods} must be a non-empty list of {list(ADAPTIVE_ATTACKS)}")
        if (not self.regimes or self.regimes[0] != "direct" or set(self.regimes) - set(ATTACK_REGIMES)
                or len(set(self.regimes)) != len(self.regimes)):
            raise ConfigError(f"regimes: {self.regimes} must list distinct regimes of {list(ATTACK_REGIMES)}, "
                              "starting with direct (the reference the others are read against)")
        if "coded" in self.regimes and "gcg" not in self.methods:
            raise ConfigError("regimes: coded runs GCG only (its target is what makes it coded): add gcg to methods "
                              "or drop coded")
        from_dict(GCGSettings, self.gcg, where="gcg.")
        from_dict(FuzzSettings, self.fuzz, where="fuzz.")


@dataclass(frozen=True)
class Params:
    """A whole run (see the module docstring). Build it with :func:`load_params`: it has no defaults
    of its own (the organism's are ``params/organism.yaml``; the paper scale has none)."""

    run_dir: str
    figures_dir: str
    seed: int
    source: OrganismSourceConfig | PaperSourceConfig
    organism: OrganismConfig
    latent: LatentSection
    probe: ProbeSection
    lclr: LCLRSection
    r2l: R2LSection
    evaluate: EvaluateSection
    baselines: BaselinesSection
    ablations: AblationsSection
    monitor: MonitorSection
    attacks: AttacksSection
    real: str                    # notebook 08: a params file (relative: from the repository root)
    budget: str = field(default="full", metadata=rule(choices=BUDGETS))   # full: claims asserted; quick: printed

    def __post_init__(self):
        check_fields(self)

    def as_data(self) -> dict:
        """The settings :func:`load_params` built these params from (defaults merged), as a plain mapping that
        :func:`load_params` turns into the same params again: what :func:`craft.stages.fork.fork_run` forks a
        run with. Params not made by :func:`load_params` have none."""
        data = self.__dict__.get("_data")
        if data is None:
            raise ValueError("these params were not made by load_params, so their settings are unknown: load them "
                             "with craft.stages.load_params")
        return copy.deepcopy(data)

    @property
    def scale(self) -> str:
        """``organism`` or ``paper``."""
        return self.source.kind

    @property
    def quick(self) -> bool:
        """A quick run (``budget: quick``): one seed, fewer runs, smaller sets; claims printed, not asserted."""
        return self.budget == "quick"

    @property
    def seeds(self) -> list[int]:
        """The seeds of the R2L runs (notebook 03)."""
        return list(range(self.seed, self.seed + self.r2l.n_seeds))

    def section(self, name: str) -> dict:
        """A section as a plain dict (its dataclass fields), e.g. for a run's identity."""
        from craft.config import to_dict
        return to_dict(getattr(self, name))


def _check_fixed(data: Mapping) -> None:
    for where, keys in FIXED.items():
        node = data
        for part in where.split("."):
            node = node.get(part, {}) if isinstance(node, Mapping) else {}
        for key in keys:
            if isinstance(node, Mapping) and key in node:
                raise ConfigError(f"{where}.{key} is set by the pipeline (from the top-level seed, the variant being "
                                  "trained, or the model), not by the params file")


def load_params(config: str | Path | Mapping | None = None, **overrides) -> Params:
    """The :class:`Params` of a params file (path) or mapping, with ``overrides`` (deep-merged).

    ``config=None`` is the organism run (``params/organism.yaml``). Organism scale merges everything
    over ``params/organism.yaml``; paper scale requires every key (except ``organism``). Errors name
    the key and the file.
    """
    where = str(config) if isinstance(config, (str, Path)) else "params"
    data = load_yaml(resolve(config)) if isinstance(config, (str, Path)) else dict(config or {})
    data = deep_merge(data, overrides)
    unknown = sorted(set(data) - set(TOP_KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown top-level key(s) {unknown}; allowed: {list(TOP_KEYS)}")
    _check_fixed(data)
    data.setdefault("budget", "full")
    kind = data.get("source", {}).get("kind", "organism") if isinstance(data.get("source", {}), Mapping) else None
    if kind == "organism":
        data = deep_merge(load_yaml(resolve(ORGANISM_PARAMS)), data)
    elif kind == "paper":
        missing = missing_keys(Params, data) + missing_keys(PaperSourceConfig, data.get("source", {}), "source.")
        missing = sorted(m for m in missing if not m.startswith("organism") and not _fixed(m))
        data.setdefault("organism", {})       # unused at paper scale
        if missing:
            raise ConfigError(f"{where}: a paper-scale params file has no defaults, but it does not set {missing} "
                              "(start from params/paper-qwen3-4b-thinking.yaml)")
    else:
        raise ConfigError(f"{where}: source.kind must be organism or paper, got {kind!r}")
    grpo = data.get("r2l", {}).get("grpo", {}) if isinstance(data.get("r2l"), Mapping) else {}
    absent = [k for k in REQUIRED_GRPO if k not in grpo]
    if absent:
        raise ConfigError(f"{where}: r2l.grpo must set {absent} (TRL's own defaults, e.g. beta 0 = no KL, are not "
                          "the paper's)")
    try:
        params = from_dict(Params, data)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None
    object.__setattr__(params, "_data", copy.deepcopy(dict(data)))    # Params.as_data
    return params


def _fixed(dotted: str) -> bool:
    section, _, key = dotted.rpartition(".")
    return key in FIXED.get(section, ())


def notebook_parameters(namespace: Mapping) -> dict:
    """A notebook's parameters as papermill gave them (the :data:`TOP_KEYS` in ``namespace``, e.g. ``globals()``
    before any cell reuses one of those names): what :func:`params_from_notebook` loads."""
    return {k: namespace[k] for k in TOP_KEYS if k in namespace}


def params_from_notebook(namespace: Mapping) -> Params:
    """:func:`load_params` of a notebook's parameters (:func:`notebook_parameters`): the organism defaults when the
    notebook runs as it is, the file's values under ``papermill -f``."""
    return load_params(None, **notebook_parameters(namespace))

