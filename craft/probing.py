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

from craft.timing import timed


@timed("probes")
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


# ----------------------------------------------------------------------------- binary probes with controls

def group_split(groups, seed: int = 0, fractions: tuple[float, float] = (0.6, 0.2)) -> np.ndarray:
    """``train`` / ``val`` / ``test`` per row, drawn per group (a seeded permutation of the distinct
    groups, cut at ``fractions``), so that rows of one group (a behaviour and its benign twin) never sit
    in two splits."""
    groups = np.asarray(groups)
    distinct = np.array(sorted(set(groups.tolist()), key=str), dtype=object)
    order = np.random.default_rng(seed).permutation(len(distinct))
    n_train, n_val = round(fractions[0] * len(distinct)), round(fractions[1] * len(distinct))
    split = {g: "train" if i < n_train else "val" if i < n_train + n_val else "test"
             for i, g in enumerate(distinct[order].tolist())}
    return np.array([split[g] for g in groups.tolist()])


def tpr_at_fpr(y_true, scores, fpr: float = 0.01) -> float:
    """The share of positives above the threshold that lets at most ``fpr`` of the negatives through
    (the highest threshold reaching it; ties count against the detector). NaN without both classes."""
    y, s = np.asarray(y_true, dtype=bool), np.asarray(scores, dtype=float)
    if y.all() or not y.any():
        return float("nan")
    negatives = np.sort(s[~y])[::-1]
    k = int(np.floor(fpr * len(negatives)))             # negatives allowed above the threshold
    threshold = negatives[k] if k < len(negatives) else -np.inf
    return float((s[y] > threshold).mean())


def binary_probe_scores(x_train, y_train, *x_eval, C: float = 1.0, seed: int = 0) -> list[np.ndarray]:
    """P(positive) of one linear probe (:func:`fit_probe`) fitted on the train rows, for each of ``x_eval``."""
    clf = fit_probe(x_train, y_train, C, seed)
    positive = list(clf.classes_).index(True)
    return [clf.predict_proba(np.asarray(x))[:, positive] for x in x_eval]


def bow_classifier(texts_train, y_train, C: float = 1.0, seed: int = 0):
    """A bag-of-words classifier fitted on ``texts_train``: unigram counts, then logistic regression
    (binary or multinomial, as ``y_train``). What a probe scores above it is what the hidden states know
    beyond which words occur."""
    from sklearn.feature_extraction.text import CountVectorizer

    clf = make_pipeline(CountVectorizer(lowercase=True), LogisticRegression(C=C, max_iter=2000, random_state=seed))
    return clf.fit(list(texts_train), np.asarray(y_train))


def bow_scores(texts_train, y_train, texts_eval, C: float = 1.0, seed: int = 0) -> np.ndarray:
    """P(positive) of the bag-of-words control (:func:`bow_classifier`) for each of ``texts_eval``."""
    clf = bow_classifier(texts_train, y_train, C, seed)
    return clf.predict_proba(list(texts_eval))[:, list(clf.classes_).index(True)]
