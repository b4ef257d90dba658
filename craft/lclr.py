"""Latent Contrastive Learning of Reasoning, LCLR (paper §4.1; DESIGN §2).

The backbone stays frozen: the inputs are hidden states of labelled reasoning traces
(``SAFE = 0, UNSAFE = 1, RETHINK = 2``) extracted by :mod:`craft.latents` (one layer, the
reasoning span). A projection head f (d → proj_hidden → proj_dim, L2-normalised z) and a
safety head g (z → logit, p_z = sigmoid) are trained, for ``variant="paper"``, with

    L = L_proto + λ_inst·L_inst + λ_cal·L_cal

L_proto: label-conditioned prototype hinge/anchor (:func:`proto_loss`); L_inst: symmetric
InfoNCE (τ) between two token-dropout views of a trace (each token kept with prob. 1 − p, at
least one, then mean-pooled); L_cal: BCE(p_z, y_soft), y_soft = {unsafe 0, rethink 0.5,
safe 1}, + λ_kl·KL to a text judge's P(safe) when given. Prototypes μ_safe, μ_unsafe,
μ_rethink are EMA class means of z (momentum ``ema``), re-normalised, updated without
gradient after every step from the batch's pre-step z; ``fit`` initialises them from all
training traces under the initial projection.

``variant="released"`` follows the authors' released code and its default weights:
``w_proto·triplet + w_inst·InfoNCE + w_cls·CE_3way + w_distill·L_cal + w_order·L_order``
(unconditioned batch-hard :func:`triplet_loss`, a 3-way classifier on z, :func:`ordering_loss`
on class-mean p_z). Both variants keep the EMA prototypes: prediction and the R2L reward use them.

Choices of ours: the full view for L_proto, L_cal and the prototypes is the mean over all
tokens (``craft.latents.latents(..., pool="mean")``); ECE, Brier and AUROC use safe-vs-unsafe
traces only (rethink has no binary truth); parameters are initialised from ``seed`` without
touching the global RNG.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score
from torch import Tensor, nn
from tqdm import tqdm

SAFE, UNSAFE, RETHINK = 0, 1, 2
LABEL_NAMES = ("safe", "unsafe", "rethink")
SOFT_LABEL = {SAFE: 1.0, UNSAFE: 0.0, RETHINK: 0.5}   # y_soft, the calibration target
VARIANTS = ("paper", "released")
HEADS_FILE, CONFIG_FILE = "heads.safetensors", "lclr_config.json"


@dataclass(frozen=True)
class LCLRConfig:
    """LCLR heads and training. Defaults: the paper's sizes, the released code's optimiser."""

    d_model: int                    # hidden size of the backbone layer read
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


# ----------------------------------------------------------------------------- losses

def soft_targets(labels: Tensor) -> Tensor:
    """y_soft per trace: safe 1, rethink 0.5, unsafe 0. (N,) long -> (N,) float."""
    table = torch.tensor([SOFT_LABEL[c] for c in range(3)], device=labels.device)
    return table[labels]


def proto_loss(z: Tensor, labels: Tensor, mu: Tensor, margin: float, gamma_rt: float) -> Tensor:
    """Label-conditioned prototype loss, mean over the batch. z (N, D) unit, mu (3, D).

    safe:    max(0, η − zᵀμ_safe + zᵀμ_unsafe)
    unsafe:  max(0, η − zᵀμ_unsafe + zᵀμ_safe)
    rethink: γ_rt·(1 − zᵀμ_rethink)
    """
    cos = z @ mu.T                                                            # (N, 3)
    to_safe = F.relu(margin - cos[:, SAFE] + cos[:, UNSAFE])
    to_unsafe = F.relu(margin - cos[:, UNSAFE] + cos[:, SAFE])
    anchor = gamma_rt * (1 - cos[:, RETHINK])
    per = torch.where(labels == SAFE, to_safe, torch.where(labels == UNSAFE, to_unsafe, anchor))
    return per.mean()


def info_nce(z1: Tensor, z2: Tensor, tau: float) -> Tensor:
    """Symmetric InfoNCE ½[CE(z1 z2ᵀ/τ, I) + CE(z2 z1ᵀ/τ, I)]: row i of z1 and of z2 (N, D) are two
    views of trace i, the positives on the diagonal (rows are re-normalised)."""
    z1, z2 = F.normalize(z1, dim=-1), F.normalize(z2, dim=-1)
    logits = z1 @ z2.T / tau                                                  # (N, N)
    target = torch.arange(len(z1), device=z1.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def bernoulli_kl(q: Tensor, logit: Tensor) -> Tensor:
    """KL(Bernoulli(q) || Bernoulli(sigmoid(logit))), elementwise, stable in the logit."""
    q = q.to(logit)
    return (torch.xlogy(q, q) - q * F.logsigmoid(logit)
            + torch.xlogy(1 - q, 1 - q) - (1 - q) * F.logsigmoid(-logit))


def calibration_loss(logit: Tensor, labels: Tensor, judge_p_safe: Tensor | None = None,
                     lambda_kl: float = 0.0) -> Tensor:
    """L_cal = BCE(sigmoid(logit), y_soft) + λ_kl·mean KL(Bernoulli(judge) || Bernoulli(p_z)).
    logit (N,), labels (N,), judge_p_safe (N,) in [0, 1] or None (then no KL term)."""
    loss = F.binary_cross_entropy_with_logits(logit, soft_targets(labels).to(logit))
    if judge_p_safe is not None and lambda_kl > 0:
        loss = loss + lambda_kl * bernoulli_kl(judge_p_safe, logit).mean()
    return loss


def triplet_loss(z: Tensor, labels: Tensor, margin: float) -> Tensor:
    """Unconditioned batch-hard triplet loss on cosine similarity (released variant).

    Every trace i is an anchor; its positive is the least similar other trace of its class and
    its negative the most similar trace of another class (Hermans et al. 2017):
    mean_i max(0, η − z_iᵀz_pos(i) + z_iᵀz_neg(i)), over anchors that have both. No randomness.
    """
    sim = z @ z.T                                                             # (N, N)
    same = labels[:, None] == labels[None, :]
    pos = same & ~torch.eye(len(z), dtype=torch.bool, device=z.device)
    valid = pos.any(1) & (~same).any(1)
    if not bool(valid.any()):
        return z.sum() * 0.0
    hardest_pos = sim.masked_fill(~pos, float("inf")).min(1).values
    hardest_neg = sim.masked_fill(same, float("-inf")).max(1).values
    return F.relu(margin - hardest_pos + hardest_neg)[valid].mean()


def ordering_loss(p_z: Tensor, labels: Tensor, margin: float = 0.2) -> Tensor:
    """Order class means of p_z: p̄_safe > p̄_rethink > p̄_unsafe (released variant).

    Mean over the ordered pairs (a above b) whose classes are both in the batch of
    max(0, k_ab·η − (p̄_a − p̄_b)), with k = 1 for (safe, rethink) and (rethink, unsafe) and
    k = 2 for (safe, unsafe). Zero when fewer than two classes are present.
    """
    means = {c: p_z[labels == c].mean() for c in range(3) if bool((labels == c).any())}
    pairs = ((SAFE, RETHINK, 1.0), (RETHINK, UNSAFE, 1.0), (SAFE, UNSAFE, 2.0))
    terms = [F.relu(k * margin - (means[a] - means[b])) for a, b, k in pairs if a in means and b in means]
    return torch.stack(terms).mean() if terms else p_z.sum() * 0.0


def token_dropout_view(tokens: Tensor, p: float, generator: torch.Generator | None = None) -> Tensor:
    """Mean over a random subset of tokens: each kept with prob 1 − p, at least one. (T, d) -> (d,)"""
    keep = torch.rand(len(tokens), generator=generator) >= p                  # (T,)
    if not bool(keep.any()):
        keep[torch.randint(len(tokens), (1,), generator=generator)] = True
    return tokens[keep.to(tokens.device)].mean(0)


# ----------------------------------------------------------------------------- heads

class LCLRHeads(nn.Module):
    """Projection f, safety head g (+ 3-way classifier for the released variant) and prototypes."""

    def __init__(self, config: LCLRConfig):
        super().__init__()
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
        cfg = self.config
        z, logit = self(full)
        inst = info_nce(self.projection(self._prep(v1)), self.projection(self._prep(v2)), cfg.tau)
        cal = calibration_loss(logit, labels, judge, cfg.lambda_kl)
        if cfg.variant == "paper":
            terms = {"proto": proto_loss(z, labels, self.prototypes.mu, cfg.margin, cfg.gamma_rethink),
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
        v1, v2 = (torch.stack([token_dropout_view(token_states[i], self.config.token_dropout, gen)
                               for i in idx.tolist()]) for _ in range(2))                # (B, d) each
        judge = None if judge_p_safe is None else judge_p_safe[idx]
        loss, terms, z = self._losses(full[idx], v1, v2, labels[idx], judge)
        opt.zero_grad()
        loss.backward()
        opt.step()
        self.prototypes.update(z, labels[idx])      # after backward: proto_loss saved mu for it
        return {k: v.detach().item() for k, v in {"loss": loss, **terms}.items()}

    def fit(self, token_states: list[Tensor], labels: Tensor, judge_p_safe: Tensor | None = None,
            progress: bool = True) -> list[dict]:
        """Train f, g (and the classifier) with AdamW; the backbone is never involved.

        token_states: per trace, its reasoning-span hidden states (T_i, d); labels (N,) in
        {SAFE, UNSAFE, RETHINK}; judge_p_safe (N,) optional, used when ``lambda_kl > 0``.
        Returns one dict per epoch: ``epoch``, ``step``, ``loss`` and each term (means over batches).
        """
        cfg, dev = self.config, self.safety.linear.weight.device
        labels, judge_p_safe = _check_fit_inputs(token_states, labels, judge_p_safe, dev)
        full = torch.stack([t.float().mean(0) for t in token_states])          # (N, d)
        gen = torch.Generator().manual_seed(cfg.seed)
        opt = torch.optim.AdamW(self.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        if not bool(self.prototypes.initialised.all()):
            self.prototypes.init(self.embed(full), labels)
        self.train()
        history, n_batches = [], -(-len(labels) // cfg.batch_size)
        with tqdm(total=cfg.epochs * n_batches, desc="LCLR", disable=not progress) as bar:
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


# ----------------------------------------------------------------------------- metrics

def _np(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, Tensor) else np.asarray(x)


def accuracy_3way(pred, labels) -> float:
    """Fraction of traces whose predicted class equals the label."""
    return float(np.mean(_np(pred) == _np(labels)))


def auroc_safe_unsafe(p_safe, labels) -> float:
    """AUROC of p_safe for safe (positive) vs unsafe; rethink excluded. NaN if a class is missing."""
    p, y = _np(p_safe).astype(float), _np(labels)
    keep = y != RETHINK
    positive = y[keep] == SAFE
    return float("nan") if positive.all() or not positive.any() else float(roc_auc_score(positive, p[keep]))


def expected_calibration_error(p, y, n_bins: int = 10) -> float:
    """ECE = Σ_b (n_b / N)·|mean p in b − mean y in b|, equal-width bins on [0, 1] (p = 1 in the last).

    ``evaluate_heads`` calls it on safe-vs-unsafe traces with binary targets (rethink excluded).
    """
    p, y = _np(p).astype(float), _np(y).astype(float)
    if len(p) == 0:
        return float("nan")
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1)
    return float(sum(abs(p[bins == b].mean() - y[bins == b].mean()) * np.mean(bins == b)
                     for b in np.unique(bins)))


def brier_score(p, y) -> float:
    """Mean (p − y)²."""
    p, y = _np(p).astype(float), _np(y).astype(float)
    return float(np.mean((p - y) ** 2)) if len(p) else float("nan")


def prototype_gaps(heads: LCLRHeads) -> dict[str, float]:
    """Cosines between prototypes (unit vectors): safe·unsafe, safe·rethink, unsafe·rethink."""
    mu = heads.prototypes.mu
    return {"cos_safe_unsafe": float(mu[SAFE] @ mu[UNSAFE]),
            "cos_safe_rethink": float(mu[SAFE] @ mu[RETHINK]),
            "cos_unsafe_rethink": float(mu[UNSAFE] @ mu[RETHINK])}


def evaluate_heads(heads: LCLRHeads, features: Tensor, labels) -> dict[str, float]:
    """All LCLR metrics on pooled ``features`` (N, d) with ``labels`` (N,).

    ECE and Brier use safe-vs-unsafe traces with binary targets; ``p_safe_mean_<class>`` is the
    mean p_z per class (NaN for an absent class).
    """
    labels = torch.as_tensor(labels, dtype=torch.long)
    p = heads.p_safe(features).cpu()
    binary = labels != RETHINK
    y = (labels == SAFE).float()
    out = {"acc_3way": accuracy_3way(heads.predict(features).cpu(), labels),
           "auroc_safe_unsafe": auroc_safe_unsafe(p, labels),
           "ece": expected_calibration_error(p[binary], y[binary]),
           "brier": brier_score(p[binary], y[binary]),
           **prototype_gaps(heads)}
    for c, name in enumerate(LABEL_NAMES):
        out[f"p_safe_mean_{name}"] = float(p[labels == c].mean()) if bool((labels == c).any()) else float("nan")
    return out


if __name__ == "__main__":   # python -m craft.lclr --config params/paper-....yaml
    from craft.cli import cli

    cli("lclr")
