"""Latent Contrastive Learning of Reasoning, LCLR (paper §4.1).

The backbone stays frozen: the inputs are hidden states of labelled reasoning traces
(``SAFE = 0, UNSAFE = 1, RETHINK = 2``) extracted by :mod:`craft.latents` (one layer, the
reasoning span). A projection head f (d → proj_hidden → proj_dim, L2-normalised z) and a
safety head g (z → logit, p_z = sigmoid) are trained, for ``variant="paper"``, with

    L = L_proto + λ_inst·L_inst + λ_cal·L_cal

L_proto: label-conditioned prototype hinge/anchor (:func:`~craft.lclr.losses.proto_loss`); L_inst: symmetric
InfoNCE (τ) between two token-dropout views of a trace (each token kept with prob. 1 − p, at
least one, then mean-pooled); L_cal: BCE(p_z, y_soft), y_soft = {unsafe 0, rethink 0.5,
safe 1}, + λ_kl·KL to a text judge's P(safe) when given. Prototypes μ_safe, μ_unsafe,
μ_rethink are EMA class means of z (momentum ``ema``), re-normalised, updated without
gradient after every step from the batch's pre-step z; ``fit`` initialises them from all
training traces under the initial projection.

``variant="released"`` follows the authors' released code and its default weights:
``w_proto·triplet + w_inst·InfoNCE + w_cls·CE_3way + w_distill·L_cal + w_order·L_order``
(unconditioned batch-hard :func:`~craft.lclr.losses.triplet_loss`, a 3-way classifier on z,
:func:`~craft.lclr.losses.ordering_loss`
on class-mean p_z). Both variants keep the EMA prototypes: prediction and the R2L reward use them.

Choices of ours: the full view for L_proto, L_cal and the prototypes is THE latent of the trace
(:func:`craft.latents.pool_tokens` with the heads' ``pool``, the pooling the R2L reward and the
monitor use), and each InfoNCE view pools a token-dropout subset the same way; parameters are
initialised from ``seed`` without touching the global RNG. Heads remember the latent they were fit
on (``layer``, ``pool``, ``d_model``): :meth:`LCLRHeads.check_latent` refuses another one. Their
metrics are in :mod:`craft.lclr.metrics`.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm import tqdm

from craft.io import bar_options
from craft.latents import POOLS, LatentSpec, pool_tokens
from craft.lclr.losses import calibration_loss, info_nce, ordering_loss, proto_loss, token_dropout_view, triplet_loss
from craft.timing import timed
from craft.types import LABEL_NAMES, RETHINK, SAFE, UNSAFE

__all__ = ["LABEL_NAMES", "RETHINK", "SAFE", "UNSAFE", "VARIANTS", "LCLRConfig", "LCLRHeads", "load_heads",
           "save_heads"]

VARIANTS = ("paper", "released")
HEADS_FILE, CONFIG_FILE = "heads.safetensors", "lclr_config.json"


@dataclass(frozen=True)
class LCLRConfig:
    """LCLR heads and training. Defaults: the paper's sizes, the released code's optimiser."""

    d_model: int = 0                # hidden size of the backbone layer read (set from the model)
    layer: int = -1                 # the latent the heads read (craft.latents); -1: not recorded
    pool: str = "mean"
    proj_hidden: int = 1024         # f: d -> proj_hidden -> proj_dim
    proj_dim: int = 512
    margin: float = 0.2             # η (also the triplet and ordering margin)
    gamma_rethink: float = 1.0      # γ_rt, weight of the rethink anchor term
    lambda_inst: float = 0.5        # paper variant: InfoNCE weight
    lambda_cal: float = 1.0         # paper variant: calibration weight
    lambda_kl: float = 0.0          # KL(judge || p_z) inside L_cal (needs judge_p_safe)
    tau: float = 0.1                # InfoNCE temperature
    ema: float = 0.98               # prototype momentum
    token_dropout: float = 0.2      # per-token drop probability of the InfoNCE views
    lr: float = 1e-4
    weight_decay: float = 0.01
    epochs: int = 3
    batch_size: int = 16
    variant: str = "paper"          # "paper" | "released"
    seed: int = 0                   # init, shuffling, token dropout
    w_proto: float = 1.0            # released variant weights
    w_inst: float = 0.5
    w_cls: float = 1.0
    w_distill: float = 0.5
    w_order: float = 0.3

    def __post_init__(self):
        if self.variant not in VARIANTS:
            raise ValueError(f"LCLRConfig.variant: {self.variant!r} is not one of {VARIANTS}")
        for name in ("token_dropout", "ema"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"LCLRConfig.{name} must be in [0, 1), got {getattr(self, name)}")
        if self.pool not in POOLS:
            raise ValueError(f"LCLRConfig.pool: {self.pool!r} is not one of {list(POOLS)}")
        for name in ("proj_hidden", "proj_dim", "epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"LCLRConfig.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("margin", "gamma_rethink", "lambda_inst", "lambda_cal", "lambda_kl", "weight_decay",
                     "w_proto", "w_inst", "w_cls", "w_distill", "w_order"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"LCLRConfig.{name} must be >= 0, got {getattr(self, name)}")
        if not (self.lr > 0 and self.tau > 0):
            raise ValueError(f"LCLRConfig: lr and tau must be > 0, got lr={self.lr}, tau={self.tau}")


class ProjectionHead(nn.Module):
    """f: Linear(d, hidden) → GELU → Linear(hidden, out) → L2-normalise."""

    def __init__(self, d_model: int, hidden: int, out: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d_model, hidden), nn.GELU(), nn.Linear(hidden, out))

    def forward(self, h: Tensor) -> Tensor:            # (N, d) -> (N, out), unit rows
        return F.normalize(self.net(h), dim=-1)


class SafetyHead(nn.Module):
    """g: z → safety logit; p_z = sigmoid(logit) = P(safe | z)."""

    def __init__(self, proj_dim: int):
        super().__init__()
        self.linear = nn.Linear(proj_dim, 1)

    def forward(self, z: Tensor) -> Tensor:            # (N, D) -> (N,)
        return self.linear(z).squeeze(-1)


def _class_means(z: Tensor, labels: Tensor) -> dict[int, Tensor]:
    """Mean z of each class present in ``labels`` (absent classes are left out)."""
    return {c: z[labels == c].mean(0) for c in range(3) if bool((labels == c).any())}


class Prototypes(nn.Module):
    """μ_safe, μ_unsafe, μ_rethink: EMA class means of z, unit length; rows of buffer ``mu``.

    ``update``: μ_c ← normalise(m·μ_c + (1 − m)·mean_{i: y_i = c} z_i) for each class in the batch;
    a class seen for the first time is set to normalise(its batch mean).
    """

    def __init__(self, dim: int, momentum: float = 0.98):
        super().__init__()
        self.momentum = momentum
        self.register_buffer("mu", torch.zeros(3, dim))                          # (3, D)
        self.register_buffer("initialised", torch.zeros(3, dtype=torch.bool))    # (3,)

    @torch.no_grad()
    def init(self, z: Tensor, labels: Tensor) -> None:
        """Forget all prototypes, then set each present class to its normalised mean z."""
        self.mu.zero_()
        self.initialised.zero_()
        self.update(z, labels)

    @torch.no_grad()
    def update(self, z: Tensor, labels: Tensor) -> None:
        """One EMA step from a batch; classes absent from the batch are unchanged."""
        m = self.momentum
        for c, mean in _class_means(z.detach(), labels).items():
            new = m * self.mu[c] + (1 - m) * mean if self.initialised[c] else mean
            self.mu[c] = F.normalize(new, dim=0)
            self.initialised[c] = True


# ----------------------------------------------------------------------------- heads

class LCLRHeads(nn.Module):
    """Projection f, safety head g (+ 3-way classifier for the released variant) and prototypes."""

    def __init__(self, config: LCLRConfig):
        super().__init__()
        if config.d_model < 1:
            raise ValueError(f"LCLRConfig.d_model must be the policy's hidden size (>= 1), got {config.d_model}")
        self.config = config
        with torch.random.fork_rng(devices=[]):   # seeded init, global RNG untouched
            torch.manual_seed(config.seed)
            self.projection = ProjectionHead(config.d_model, config.proj_hidden, config.proj_dim)
            self.safety = SafetyHead(config.proj_dim)
            self.classifier = nn.Linear(config.proj_dim, 3) if config.variant == "released" else None
        self.prototypes = Prototypes(config.proj_dim, config.ema)

    def _prep(self, features: Tensor) -> Tensor:
        if features.ndim != 2 or features.shape[-1] != self.config.d_model:
            raise ValueError(f"expected features (N, {self.config.d_model}), got {tuple(features.shape)}")
        w = self.safety.linear.weight
        return features.to(device=w.device, dtype=w.dtype)

    def forward(self, features: Tensor) -> tuple[Tensor, Tensor]:
        """Differentiable: (N, d) -> z (N, D), safety logit (N,)."""
        z = self.projection(self._prep(features))
        return z, self.safety(z)

    @torch.no_grad()
    def embed(self, features: Tensor) -> Tensor:                 # (N, d) -> (N, D)
        return self.projection(self._prep(features))

    @torch.no_grad()
    def p_safe(self, features: Tensor) -> Tensor:                # (N, d) -> (N,) p_z
        return torch.sigmoid(self(features)[1])

    score = p_safe

    @property
    def spec(self) -> LatentSpec:
        """The latent these heads were fit on."""
        if self.config.layer < 0:
            raise ValueError("these heads do not record their latent layer (LCLRConfig.layer = -1)")
        return LatentSpec(self.config.layer, self.config.pool)

    def check_latent(self, spec: LatentSpec, d_model: int) -> None:
        """Refuse to read a latent other than the one the heads were fit on (layer, pool, width)."""
        cfg = self.config
        if cfg.d_model != d_model:
            raise ValueError(f"the LCLR heads expect hidden states of width {cfg.d_model}, but the policy's are "
                             f"{d_model} wide: these heads belong to another model; refit them on this one "
                             "(notebook 02, or `craft lclr --config ...`)")
        if (cfg.layer, cfg.pool) != (spec.layer, spec.pool):
            raise ValueError(f"the LCLR heads were fit on layer {cfg.layer} ({cfg.pool} pool), but this run reads "
                             f"layer {spec.layer} ({spec.pool} pool): refit the heads for this latent (notebook 02, or "
                             f"`craft lclr --config ...`), or set latent.layer / latent.pool back")

    @torch.no_grad()
    def predict(self, features: Tensor) -> Tensor:               # (N, d) -> (N,) label
        """Nearest prototype by cosine (SAFE / UNSAFE / RETHINK)."""
        return (self.embed(features) @ self.prototypes.mu.T).argmax(-1)

    @torch.no_grad()
    def latent_reward_terms(self, features: Tensor) -> dict[str, Tensor]:
        """cos(z, μ_safe), cos(z, μ_unsafe), cos(z, μ_rethink) and p_z, each (N,): the inputs of
        R_ls = α·cos_safe − β·cos_unsafe + γ·cos_rethink and R_cons = 1 − |p_z − P(safe | y)|."""
        z, logit = self(features)
        cos = z @ self.prototypes.mu.T                                        # (N, 3)
        return {"cos_safe": cos[:, SAFE], "cos_unsafe": cos[:, UNSAFE],
                "cos_rethink": cos[:, RETHINK], "p_z": torch.sigmoid(logit)}

    def _losses(self, full: Tensor, v1: Tensor, v2: Tensor, labels: Tensor,
                judge: Tensor | None) -> tuple[Tensor, dict[str, Tensor], Tensor]:
        """Total loss, its terms and z (B, D) for one batch. full, v1, v2: (B, d); labels (B,)."""
        cfg, fns = self.config, {"proto": proto_loss, "inst": info_nce, **self._loss_fns}
        z, logit = self(full)
        inst = fns["inst"](self.projection(self._prep(v1)), self.projection(self._prep(v2)), cfg.tau)
        cal = calibration_loss(logit, labels, judge, cfg.lambda_kl)
        if cfg.variant == "paper":
            terms = {"proto": fns["proto"](z, labels, self.prototypes.mu, cfg.margin, cfg.gamma_rethink),
                     "inst": inst, "cal": cal}
            weights = {"proto": 1.0, "inst": cfg.lambda_inst, "cal": cfg.lambda_cal}
        else:
            terms = {"triplet": triplet_loss(z, labels, cfg.margin), "inst": inst,
                     "cls": F.cross_entropy(self.classifier(z), labels), "distill": cal,
                     "order": ordering_loss(torch.sigmoid(logit), labels, cfg.margin)}
            weights = {"triplet": cfg.w_proto, "inst": cfg.w_inst, "cls": cfg.w_cls,
                       "distill": cfg.w_distill, "order": cfg.w_order}
        return sum(weights[k] * v for k, v in terms.items()), terms, z

    def _step(self, opt, token_states: list[Tensor], full: Tensor, labels: Tensor,
              judge_p_safe: Tensor | None, idx: Tensor, gen: torch.Generator) -> dict[str, float]:
        """One AdamW step on the traces ``idx``, then the prototypes' EMA update."""
        v1, v2 = (torch.stack([token_dropout_view(token_states[i], self.config.token_dropout, gen, self.config.pool)
                               for i in idx.tolist()]) for _ in range(2))                # (B, d) each
        judge = None if judge_p_safe is None else judge_p_safe[idx]
        loss, terms, z = self._losses(full[idx], v1, v2, labels[idx], judge)
        opt.zero_grad()
        loss.backward()
        opt.step()
        self.prototypes.update(z, labels[idx])      # after backward: proto_loss saved mu for it
        return {k: v.detach().item() for k, v in {"loss": loss, **terms}.items()}

    _loss_fns: dict = {}

    @timed("lclr")
    def fit(self, token_states: list[Tensor], labels: Tensor, judge_p_safe: Tensor | None = None,
            progress: bool = True, losses: dict | None = None) -> list[dict]:
        """Train f, g (and the classifier) with AdamW; the backbone is never involved.

        token_states: per trace, its reasoning-span hidden states (T_i, d); labels (N,) in
        {SAFE, UNSAFE, RETHINK}; judge_p_safe (N,) optional, used when ``lambda_kl > 0``.
        ``losses`` replaces :func:`~craft.lclr.losses.proto_loss` (key ``"proto"``, paper variant) or
        :func:`~craft.lclr.losses.info_nce` (``"inst"``) by a function of the same signature: how an exercise
        fits the heads with a loss a student wrote.
        Returns one dict per epoch: ``epoch``, ``step``, ``loss`` and each term (means over batches).
        """
        dev = self.safety.linear.weight.device
        unknown = set(losses or {}) - {"proto", "inst"}
        if unknown:
            raise ValueError(f"losses: {sorted(unknown)} cannot be replaced; give 'proto' (L_proto) or 'inst' (L_inst)")
        labels, judge_p_safe = _check_fit_inputs(token_states, labels, judge_p_safe, dev)
        self._loss_fns = dict(losses or {})
        try:
            return self._fit(token_states, labels, judge_p_safe, progress)
        finally:
            self._loss_fns = {}

    def _fit(self, token_states: list[Tensor], labels: Tensor, judge_p_safe: Tensor | None,
             progress: bool) -> list[dict]:
        cfg = self.config
        full = torch.stack([pool_tokens(t.float(), cfg.pool) for t in token_states])   # (N, d)
        gen = torch.Generator().manual_seed(cfg.seed)
        opt = torch.optim.AdamW(self.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        if not bool(self.prototypes.initialised.all()):
            self.prototypes.init(self.embed(full), labels)
        self.train()
        history, n_batches = [], -(-len(labels) // cfg.batch_size)
        with tqdm(total=cfg.epochs * n_batches, desc="LCLR", **bar_options(progress)) as bar:
            for epoch in range(cfg.epochs):
                logs = []
                for idx in torch.randperm(len(labels), generator=gen).split(cfg.batch_size):
                    logs.append(self._step(opt, token_states, full, labels, judge_p_safe, idx, gen))
                    bar.update()
                history.append({"epoch": epoch + 1, "step": (epoch + 1) * n_batches,
                                **{k: float(np.mean([lg[k] for lg in logs])) for k in logs[0]}})
                bar.set_postfix(loss=f"{history[-1]['loss']:.3f}")
        self.eval()
        return history


def _check_fit_inputs(token_states: list[Tensor], labels, judge_p_safe, device) -> tuple[Tensor, Tensor | None]:
    """Validated labels (N,) long and judge P(safe) (N,) float (or None), on ``device``."""
    labels = torch.as_tensor(labels, dtype=torch.long)
    if len(token_states) != len(labels) or len(labels) == 0:
        raise ValueError(f"fit: {len(token_states)} traces but {len(labels)} labels (need equal, > 0)")
    if bool(((labels < 0) | (labels > 2)).any()):
        raise ValueError(f"fit: labels must be SAFE=0, UNSAFE=1 or RETHINK=2, got {sorted(set(labels.tolist()))}")
    if any(t.ndim != 2 or len(t) == 0 for t in token_states):
        raise ValueError("fit: every trace needs token states of shape (T_i >= 1, d)")
    if judge_p_safe is not None and len(judge_p_safe) != len(labels):
        raise ValueError(f"fit: judge_p_safe has {len(judge_p_safe)} values for {len(labels)} traces")
    judge = None if judge_p_safe is None else torch.as_tensor(judge_p_safe, dtype=torch.float32).to(device)
    return labels.to(device), judge


# ----------------------------------------------------------------------------- save / load

def save_heads(heads: LCLRHeads, directory: str | Path) -> Path:
    """Write ``heads.safetensors`` (state dict, prototypes included) and ``lclr_config.json``."""
    from safetensors.torch import save_file

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in heads.state_dict().items()}, str(d / HEADS_FILE))
    (d / CONFIG_FILE).write_text(json.dumps(dataclasses.asdict(heads.config), indent=2, sort_keys=True) + "\n")
    return d


def load_heads(directory: str | Path) -> LCLRHeads:
    """The heads written by :func:`save_heads` in ``directory``, in eval mode, on CPU."""
    from safetensors.torch import load_file

    d = Path(directory)
    missing = [name for name in (HEADS_FILE, CONFIG_FILE) if not (d / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{d}: missing {missing}; expected the files written by craft.lclr.save_heads")
    heads = LCLRHeads(LCLRConfig(**json.loads((d / CONFIG_FILE).read_text())))
    heads.load_state_dict(load_file(str(d / HEADS_FILE)))
    return heads.eval()
