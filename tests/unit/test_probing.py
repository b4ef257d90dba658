"""Probe accuracy, centroid axis position and PCA on planted geometry."""

import numpy as np
import pytest

from craft.probing import axis_position, pca_2d, probe_metrics


def _planted(n=150, d=16, seed=0):
    rng = np.random.default_rng(seed)
    centres = {"safe": np.zeros(d), "unsafe": np.full(d, 4.0), "rethink": np.full(d, 1.0)}
    x = np.concatenate([c + rng.normal(size=(n, d)) for c in centres.values()])
    y = np.repeat(list(centres), n)
    return x, y


def test_probe_separates_planted_classes_and_fails_on_shuffled_labels():
    x, y = _planted()
    xt, yt = _planted(seed=1)
    assert probe_metrics(x, y, xt, yt)["acc"] > 0.95
    assert probe_metrics(x, np.random.default_rng(0).permutation(y), xt, yt)["acc"] < 0.6


def test_axis_position_of_planted_centroids():
    x, y = _planted(n=2000)
    assert axis_position(x, y, "rethink") == pytest.approx(0.25, abs=0.02)
    assert axis_position(x, y, "safe") == pytest.approx(0.0, abs=1e-9)
    assert axis_position(x, y, "unsafe") == pytest.approx(1.0, abs=1e-9)


def test_pca_projects_every_array_with_the_same_basis():
    x, _ = _planted()
    a, b = pca_2d(x, x, x[:10])
    assert a.shape == (450, 2) and np.allclose(a[:10], b)


def test_log_loss_ranks_a_cleaner_representation_lower():
    x, y = _planted()
    xt, yt = _planted(seed=1)
    noise = np.random.default_rng(2).normal(scale=3, size=x.shape)
    clean, noisy = probe_metrics(x, y, xt, yt), probe_metrics(x + noise, y, xt, yt)
    assert clean["log_loss"] < noisy["log_loss"]


def test_control_labels_are_one_random_label_per_group_half_and_half():
    from craft.stages.probe import control_labels

    groups = [f"hazard {k}" for k in range(10)] * 3
    table = control_labels(groups, seed=0)
    assert set(table) == set(groups) and sum(table.values()) == 5          # one label per group, half positive
    assert table == control_labels(list(reversed(groups)), seed=0)          # the order of the rows does not matter
    assert any(control_labels(groups, seed=s) != table for s in range(1, 5))  # the seed draws them
