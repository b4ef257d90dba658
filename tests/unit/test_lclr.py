"""LCLR (paper §4.1): loss formulas on hand-made vectors, prototypes, training on a planted
3-cluster problem (both variants), the latent the heads record (layer, pool, width), save/load,
metrics on hand-computed cases, determinism, and THE token pooling (craft.latents.pool_tokens)."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from craft.latents import LatentSpec, pool_tokens
from craft.lclr import LCLRConfig, LCLRHeads, load_heads, save_heads
from craft.lclr.heads import Prototypes
from craft.lclr.losses import (
    SOFT_LABEL,
    bernoulli_kl,
    calibration_loss,
    info_nce,
    ordering_loss,
    proto_loss,
    soft_targets,
    token_dropout_view,
    triplet_loss,
)
from craft.lclr.metrics import (
    accuracy_3way,
    auroc_safe_unsafe,
    brier_score,
    evaluate_heads,
    expected_calibration_error,
    prototype_gaps,
)
from craft.types import LABEL_NAMES, RETHINK, SAFE, UNSAFE

E = torch.eye(3)                  # μ_safe = e0, μ_unsafe = e1, μ_rethink = e2
SMALL = dict(d_model=32, proj_hidden=64, proj_dim=32, lr=3e-3, epochs=4)


def planted(n=300, d=32, seed=0):
    """Token states around 3 class centres; the rethink centre lies between safe and unsafe."""
    g = torch.Generator().manual_seed(seed)
    safe, unsafe = torch.randn(d, generator=g), torch.randn(d, generator=g)
    centres = torch.stack([safe, unsafe, 0.5 * (safe + unsafe) + 0.5 * torch.randn(d, generator=g)])
    labels = torch.arange(n) % 3
    lengths = torch.randint(4, 13, (n,), generator=g).tolist()
    tokens = [centres[c] + torch.randn(t, d, generator=g) for c, t in zip(labels.tolist(), lengths)]
    return tokens, labels


@pytest.fixture(scope="module")
def data():
    tokens, labels = planted()
    test_features = torch.stack([t.mean(0) for t in tokens[200:]])
    return tokens[:200], labels[:200], test_features, labels[200:]


@pytest.fixture(scope="module", params=["paper", "released"])
def trained(request, data):
    heads = LCLRHeads(LCLRConfig(**SMALL, variant=request.param))
    log = heads.fit(data[0], data[1], progress=False)
    return heads, log


def test_constants_and_config():
    assert (SAFE, UNSAFE, RETHINK) == (0, 1, 2) and LABEL_NAMES == ("safe", "unsafe", "rethink")
    assert soft_targets(torch.tensor([SAFE, UNSAFE, RETHINK])).tolist() == [1.0, 0.0, 0.5]
    assert SOFT_LABEL[RETHINK] == 0.5
    cfg = LCLRConfig(d_model=8)
    assert (cfg.proj_hidden, cfg.proj_dim, cfg.margin, cfg.tau, cfg.ema) == (1024, 512, 0.2, 0.1, 0.98)
    with pytest.raises(ValueError, match="variant"):
        LCLRConfig(d_model=8, variant="nope")
    assert (LCLRConfig().d_model, LCLRConfig().layer, LCLRConfig().pool) == (0, -1, "mean")
    with pytest.raises(ValueError, match="d_model"):        # the width must come from the model
        LCLRHeads(LCLRConfig())
    for bad, key in [(dict(pool="max"), "pool"), (dict(token_dropout=1.0), "token_dropout"),
                     (dict(ema=-0.1), "ema"), (dict(epochs=0), "epochs"), (dict(margin=-0.1), "margin"),
                     (dict(lambda_kl=float("nan")), "lambda_kl"), (dict(tau=0.0), "tau")]:
        with pytest.raises(ValueError, match=key):
            LCLRConfig(d_model=8, **bad)


def test_proto_loss_hand_made():
    z = torch.stack([E[0], E[1], E[1], E[0], E[2], E[0]])
    labels = torch.tensor([SAFE, SAFE, UNSAFE, UNSAFE, RETHINK, RETHINK])
    per = [proto_loss(z[i:i + 1], labels[i:i + 1], E, margin=0.2, gamma_rt=2.0).item() for i in range(6)]
    # safe at μ_safe (⊥ μ_unsafe): max(0, η − 1) = 0; safe at μ_unsafe: η + 1; unsafe mirrored;
    # rethink at μ_rethink: 0; rethink ⊥ μ_rethink: γ_rt·1
    assert per == pytest.approx([0.0, 1.2, 0.0, 1.2, 0.0, 2.0])
    assert proto_loss(z, labels, E, 0.2, 2.0).item() == pytest.approx(sum(per) / 6)


def test_info_nce_matching_views_beat_shuffled():
    g = torch.Generator().manual_seed(0)
    z1 = F.normalize(torch.randn(16, 8, generator=g), dim=-1)
    z2 = F.normalize(z1 + 0.05 * torch.randn(16, 8, generator=g), dim=-1)
    shuffled = z2[torch.randperm(16, generator=g)]
    assert info_nce(z1, z2, 0.1) < info_nce(z1, shuffled, 0.1)
    # orthonormal identical views: CE = log(1 + (N − 1)·e^{−1/τ})
    assert info_nce(E, E, 0.1).item() == pytest.approx(math.log(1 + 2 * math.exp(-10)), abs=1e-6)


def test_calibration_targets_and_kl():
    labels = torch.tensor([SAFE, UNSAFE, RETHINK])
    at_target = torch.tensor([30.0, -30.0, 0.0])        # p_z = 1, 0, 0.5: BCE = entropy of y_soft
    assert calibration_loss(at_target, labels).item() == pytest.approx(math.log(2) / 3, abs=1e-6)
    logit = torch.tensor([0.3, -1.2, 2.0])
    plain = calibration_loss(logit, labels)
    same_as_judge = calibration_loss(logit, labels, torch.sigmoid(logit), lambda_kl=1.0)
    assert same_as_judge.item() == pytest.approx(plain.item(), abs=1e-6)       # KL(p || p) = 0
    judge = torch.tensor([0.9, 0.1, 0.5])
    q, p = judge, torch.sigmoid(logit)
    kl = q * torch.log(q / p) + (1 - q) * torch.log((1 - q) / (1 - p))
    assert torch.allclose(bernoulli_kl(judge, logit), kl, atol=1e-6)
    with_kl = calibration_loss(logit, labels, judge, lambda_kl=0.5)
    assert with_kl.item() == pytest.approx(plain.item() + 0.5 * kl.mean().item(), abs=1e-6)
    assert calibration_loss(logit, labels, judge, lambda_kl=0.0).item() == pytest.approx(plain.item())
    assert torch.isfinite(bernoulli_kl(torch.tensor([0.0, 1.0]), torch.tensor([0.0, 0.0]))).all()


def test_prototypes_ema_math_and_unit_norm():
    protos = Prototypes(dim=3, momentum=0.98)
    protos.init(torch.stack([E[0], E[0], E[1]]), torch.tensor([SAFE, SAFE, UNSAFE]))
    assert protos.initialised.tolist() == [True, True, False]
    assert torch.allclose(protos.mu[:2], E[:2]) and protos.mu[RETHINK].abs().sum() == 0
    protos.update(torch.stack([E[1], E[2]]), torch.tensor([SAFE, RETHINK]))
    expected = F.normalize(0.98 * E[0] + 0.02 * E[1], dim=0)
    assert torch.allclose(protos.mu[SAFE], expected)
    assert torch.allclose(protos.mu[UNSAFE], E[1])          # absent from the batch: unchanged
    assert torch.allclose(protos.mu[RETHINK], E[2])         # first seen: its batch mean
    assert torch.allclose(protos.mu.norm(dim=-1), torch.ones(3))


def test_released_losses_hand_cases_finite_and_differentiable():
    labels = torch.tensor([SAFE, SAFE, UNSAFE, UNSAFE])
    separated = torch.stack([E[0], E[0], E[1], E[1]])
    assert triplet_loss(separated, labels, 0.2).item() == 0.0
    mixed = torch.stack([E[0], E[1], E[1], E[0]])          # each anchor: pos ⊥, neg identical
    assert triplet_loss(mixed, labels, 0.2).item() == pytest.approx(1.2)
    p = torch.tensor([0.9, 0.5, 0.1])
    lab3 = torch.tensor([SAFE, RETHINK, UNSAFE])
    assert ordering_loss(p, lab3, margin=0.2).item() == 0.0
    flipped = torch.tensor([0.5, 0.6, 0.1])                 # pairs: (s,r) 0.3, (r,u) 0, (s,u) 0
    assert ordering_loss(flipped, lab3, margin=0.2).item() == pytest.approx(0.3 / 3)
    z = F.normalize(torch.randn(8, 4, generator=torch.Generator().manual_seed(0)), dim=-1).requires_grad_()
    lab = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    loss = triplet_loss(z, lab, 0.2) + ordering_loss(torch.sigmoid(z[:, 0]), lab) + F.cross_entropy(z[:, :3], lab)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0
    assert triplet_loss(z[:1], lab[:1], 0.2).item() == 0.0   # no valid anchor


def test_token_dropout_view():
    tokens = torch.arange(12.0).reshape(4, 3)
    assert torch.equal(token_dropout_view(tokens, 0.0), tokens.mean(0))
    assert torch.equal(token_dropout_view(tokens, 0.0, pool="last"), tokens[-1])
    one = token_dropout_view(tokens, 0.999999, torch.Generator().manual_seed(0))
    assert any(torch.equal(one, row) for row in tokens)    # at least one token kept


@pytest.mark.parametrize("shape", [(1, 3), (4, 3), (7, 5), (13, 32)])
def test_pool_tokens_is_mean_or_last(shape):
    """THE pooling of one trace's tokens (defined through pool_states) is exactly mean(0) / the last row."""
    t = torch.randn(*shape, generator=torch.Generator().manual_seed(shape[0]))
    assert torch.equal(pool_tokens(t, "mean"), t.mean(0))
    assert torch.equal(pool_tokens(t, "last"), t[-1])
    assert pool_tokens(t, "mean").shape == (shape[1],)
    with pytest.raises(ValueError, match="pool"):
        pool_tokens(t, "max")
    with pytest.raises(ValueError):
        pool_tokens(t[:0], "mean")                          # no token to pool


def test_fit_separates_planted_clusters(trained, data):
    heads, log = trained
    m = evaluate_heads(heads, data[2], data[3])
    assert m["acc_3way"] >= 0.95 and m["auroc_safe_unsafe"] >= 0.99
    assert m["p_safe_mean_unsafe"] < m["p_safe_mean_rethink"] < m["p_safe_mean_safe"]
    assert m["cos_safe_unsafe"] < min(m["cos_safe_rethink"], m["cos_unsafe_rethink"])
    assert [r["epoch"] for r in log] == [1, 2, 3, 4] and log[-1]["loss"] < log[0]["loss"]
    assert not heads.training
    assert set(m) == {"acc_3way", "auroc_safe_unsafe", "tpr_at_1pct_fpr", "ece", "brier", "cos_safe_unsafe",
                      "cos_safe_rethink", "cos_unsafe_rethink", "p_safe_mean_safe", "p_safe_mean_unsafe",
                      "p_safe_mean_rethink"}
    # the detector reading of p_z, recomputed: unsafe traces caught with at most 1 % of safe traces flagged
    p, y = heads.p_safe(data[2]).numpy(), np.asarray(data[3])
    flag = 1 - p
    threshold = np.sort(flag[y == SAFE])[::-1][int(0.01 * (y == SAFE).sum())]
    assert m["tpr_at_1pct_fpr"] == pytest.approx(float((flag[y == UNSAFE] > threshold).mean()))


def test_latent_reward_terms(trained, data):
    heads, _ = trained
    terms = heads.latent_reward_terms(data[2][:5])
    assert set(terms) == {"cos_safe", "cos_unsafe", "cos_rethink", "p_z"}
    assert all(v.shape == (5,) for v in terms.values())
    assert torch.allclose(terms["p_z"], heads.score(data[2][:5]))
    z = heads.embed(data[2][:5])
    assert torch.allclose(terms["cos_safe"], z @ heads.prototypes.mu[SAFE], atol=1e-6)
    with pytest.raises(ValueError, match="expected features"):
        heads.embed(torch.zeros(2, 7))


def test_save_load_round_trip(trained, data, tmp_path):
    heads, _ = trained
    save_heads(heads, tmp_path / "heads")
    loaded = load_heads(tmp_path / "heads")
    assert loaded.config == heads.config
    assert torch.equal(loaded.p_safe(data[2]), heads.p_safe(data[2]))
    assert torch.equal(loaded.predict(data[2]), heads.predict(data[2]))
    assert torch.equal(loaded.prototypes.mu, heads.prototypes.mu)
    with pytest.raises(FileNotFoundError, match="lclr_config.json"):
        load_heads(tmp_path)


def test_save_load_round_trips_the_latent(tmp_path):
    heads = LCLRHeads(LCLRConfig(d_model=4, proj_hidden=8, proj_dim=3, layer=5, pool="last"))
    loaded = load_heads(save_heads(heads, tmp_path / "heads"))
    assert (loaded.config.layer, loaded.config.pool, loaded.config.d_model) == (5, "last", 4)
    assert loaded.spec == LatentSpec(5, "last") == heads.spec
    loaded.check_latent(LatentSpec(5, "last"), 4)


def test_check_latent_refuses_another_latent():
    heads = LCLRHeads(LCLRConfig(d_model=4, proj_hidden=8, proj_dim=3, layer=2, pool="mean"))
    assert heads.spec == LatentSpec(2, "mean")
    heads.check_latent(LatentSpec(2, "mean"), 4)            # the latent it was fit on: accepted
    with pytest.raises(ValueError, match="layer 2"):
        heads.check_latent(LatentSpec(3, "mean"), 4)
    with pytest.raises(ValueError, match="last pool"):
        heads.check_latent(LatentSpec(2, "last"), 4)
    with pytest.raises(ValueError, match="width 4"):
        heads.check_latent(LatentSpec(2, "mean"), 8)
    with pytest.raises(ValueError, match="layer"):          # heads that never recorded a layer
        _ = LCLRHeads(LCLRConfig(d_model=4, proj_hidden=8, proj_dim=3)).spec


def test_fit_pools_with_the_configured_pool():
    """The full view (prototypes, L_proto, L_cal) is pool_tokens with the config's pool."""
    tokens, labels = planted(n=24, seed=3)
    cfg = dict(SMALL, epochs=1, batch_size=8)
    mean_heads, last_heads = LCLRHeads(LCLRConfig(**cfg)), LCLRHeads(LCLRConfig(**cfg, pool="last"))
    log_mean = mean_heads.fit(tokens, labels, progress=False)
    log_last = last_heads.fit(tokens, labels, progress=False)
    assert log_mean != log_last
    assert not torch.allclose(mean_heads.prototypes.mu, last_heads.prototypes.mu)
    # Without token dropout and with one epoch (one shuffle), a "last" fit sees exactly what a "mean"
    # fit of the one-token traces [t[-1]] sees: same history, same prototypes.
    one = dict(cfg, token_dropout=0.0)
    log_a = (a := LCLRHeads(LCLRConfig(**one, pool="last"))).fit(tokens, labels, progress=False)
    log_b = (b := LCLRHeads(LCLRConfig(**one))).fit([t[-1:] for t in tokens], labels, progress=False)
    assert log_a == log_b and torch.equal(a.prototypes.mu, b.prototypes.mu)


def test_metrics_hand_computed():
    p = torch.tensor([0.25] * 4 + [0.75] * 4)
    y = torch.tensor([1, 0, 0, 0, 1, 1, 1, 0])
    assert expected_calibration_error(p, y) == pytest.approx(0.0)
    assert expected_calibration_error(torch.full((4,), 0.9), torch.tensor([1, 0, 1, 0])) == pytest.approx(0.4)
    assert brier_score(torch.tensor([1.0, 0.5]), torch.tensor([1.0, 0.0])) == pytest.approx(0.125)
    labels = torch.tensor([SAFE, SAFE, UNSAFE, UNSAFE, RETHINK])
    assert auroc_safe_unsafe(torch.tensor([0.9, 0.8, 0.2, 0.1, 0.0]), labels) == 1.0   # rethink excluded
    assert auroc_safe_unsafe(torch.full((5,), 0.5), labels) == 0.5
    assert math.isnan(auroc_safe_unsafe(torch.ones(2), torch.tensor([SAFE, RETHINK])))
    assert accuracy_3way(torch.tensor([0, 1, 2, 2]), torch.tensor([0, 1, 2, 0])) == 0.75
    heads = LCLRHeads(LCLRConfig(d_model=4, proj_hidden=8, proj_dim=3))
    heads.prototypes.mu.copy_(E)
    assert prototype_gaps(heads) == {"cos_safe_unsafe": 0.0, "cos_safe_rethink": 0.0, "cos_unsafe_rethink": 0.0}


def test_determinism_and_judge_kl():
    tokens, labels = planted(n=48, seed=1)
    cfg = LCLRConfig(**{**SMALL, "epochs": 2, "lambda_kl": 0.5})
    judge = torch.rand(48, generator=torch.Generator().manual_seed(2))
    log_a = LCLRHeads(cfg).fit(tokens, labels, judge_p_safe=judge, progress=False)
    log_b = LCLRHeads(cfg).fit(tokens, labels, judge_p_safe=judge, progress=False)
    log_c = LCLRHeads(LCLRConfig(**{**SMALL, "epochs": 2, "seed": 1})).fit(tokens, labels, progress=False)
    assert log_a == log_b and log_a != log_c
    assert set(log_a[0]) == {"epoch", "step", "loss", "proto", "inst", "cal"} and log_a[-1]["step"] == 6
    with pytest.raises(ValueError, match="labels"):
        LCLRHeads(cfg).fit(tokens, labels[:-1], progress=False)


def test_fit_uses_a_loss_it_is_given():
    """An exercise's own L_proto or L_inst replaces the package's: the same function gives the same heads, another
    function other heads, and an unknown term is refused before anything is fit."""
    tokens, labels = planted(n=48, seed=5)
    cfg = LCLRConfig(**dict(SMALL, epochs=1, batch_size=8))
    ref, same, other = LCLRHeads(cfg), LCLRHeads(cfg), LCLRHeads(cfg)
    log_ref = ref.fit(tokens, labels, progress=False)
    calls = []

    def copied(z, labels, mu, margin, gamma_rt):           # the package's loss, called through the hook
        calls.append(len(z))
        return proto_loss(z, labels, mu, margin, gamma_rt)

    assert same.fit(tokens, labels, progress=False, losses={"proto": copied}) == log_ref
    assert calls and sum(calls) == len(labels)
    assert all(torch.equal(a, b) for a, b in zip(ref.state_dict().values(), same.state_dict().values()))
    other.fit(tokens, labels, progress=False, losses={"inst": lambda z1, z2, tau: info_nce(z1, z2, 10 * tau)})
    assert not torch.equal(ref.prototypes.mu, other.prototypes.mu)
    assert other._loss_fns == {}                        # the replacement lasts one fit
    with pytest.raises(ValueError, match="'cal'.*cannot be replaced"):
        LCLRHeads(cfg).fit(tokens, labels, progress=False, losses={"cal": copied})
