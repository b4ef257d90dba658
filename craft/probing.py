"""Linear probes, centroid geometry and the choice of the latent layer (paper §3, Fig. 2).

Plain arrays in, numbers out. The probe is scikit-learn's multinomial logistic regression on
standardised features; "between" is measured by projecting class centroids on the axis from
the safe centroid to the unsafe centroid.
"""

from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def fit_probe(x_train, y_train, C: float = 1.0, seed: int = 0):
    """A linear probe: standardisation then multinomial logistic regression."""
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000, random_state=seed))
    return clf.fit(np.asarray(x_train), np.asarray(y_train))


def probe_metrics(x_train, y_train, x_test, y_test, C: float = 1.0, seed: int = 0) -> dict[str, float]:
    """Held-out accuracy and log-loss (cross-entropy, nats) of a probe fitted on the train set.
    The log-loss still ranks layers when accuracy saturates at 1.0."""
    clf = fit_probe(x_train, y_train, C, seed)
    x_test, y_test = np.asarray(x_test), np.asarray(y_test)
    return {"acc": float(clf.score(x_test, y_test)),
            "log_loss": float(log_loss(y_test, clf.predict_proba(x_test), labels=clf.classes_))}


def axis_position(x, labels, cls: str, start: str = "safe", end: str = "unsafe") -> float:
    """Where the centroid of ``cls`` projects on the ``start`` → ``end`` centroid axis:
    0 at the ``start`` centroid, 1 at the ``end`` centroid."""
    x, labels = np.asarray(x, dtype=np.float64), np.asarray(labels)
    c = {k: x[labels == k].mean(0) for k in (cls, start, end)}
    axis = c[end] - c[start]
    return float((c[cls] - c[start]) @ axis / (axis @ axis))


def pca_2d(x_fit, *xs, seed: int = 0) -> list[np.ndarray]:
    """2-D PCA fitted on ``x_fit``; returns the projection of each array in ``xs``."""
    pca = PCA(n_components=2, random_state=seed).fit(np.asarray(x_fit))
    return [pca.transform(np.asarray(x)) for x in xs]


def choose_layer(sweep, exclude_embeddings: bool = True, acc: str = "probe_acc_3way",
                 loss: str = "probe_log_loss") -> int:
    """The layer whose probe is best: the highest accuracy (column ``acc``), ties broken by the lower
    log-loss (column ``loss``), then by the deeper layer. ``sweep`` has a ``layer`` column; layer 0
    (the embeddings) is left out unless it is the only one."""
    df = sweep[sweep.layer > 0] if exclude_embeddings and (sweep.layer > 0).any() else sweep
    best = df[df[acc] >= df[acc].max() - 1e-9]
    return int(best.sort_values([loss, "layer"], ascending=[True, False]).iloc[0].layer)
