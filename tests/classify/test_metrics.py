"""Metrics against scikit-learn and a plain re-implementation of ECE."""

import numpy as np
from sklearn.metrics import accuracy_score, log_loss

from likelab.classify import classification_metrics, reliability


def _probs(n, k, seed):
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 2, size=(n, k))
    p = np.exp(logits - logits.max(1, keepdims=True))
    return p / p.sum(1, keepdims=True), rng.integers(0, k, size=n)


def test_accuracy_nll_brier_against_sklearn():
    p, y = _probs(500, 4, 0)
    m = classification_metrics(p, y)
    assert m["accuracy"] == accuracy_score(y, p.argmax(1))
    assert abs(m["nll"] - log_loss(y, p, labels=range(4))) < 1e-12
    onehot = np.eye(4)[y]
    assert abs(m["brier"] - np.mean(np.sum((p - onehot) ** 2, 1))) < 1e-12
    assert abs(m["confidence"] - p.max(1).mean()) < 1e-15
    # binary Brier: sklearn's brier_score_loss is the one-class version, half of the two-class sum
    from sklearn.metrics import brier_score_loss

    p2, y2 = _probs(300, 2, 1)
    assert abs(classification_metrics(p2, y2)["brier"] - 2 * brier_score_loss(y2, p2[:, 1])) < 1e-12


def test_ece_matches_a_plain_loop():
    p, y = _probs(2000, 3, 2)
    conf, correct = p.max(1), p.argmax(1) == y
    ece = 0.0
    for b in range(15):
        lo, hi = b / 15, (b + 1) / 15
        inside = (conf > lo) & (conf <= hi) if b else (conf >= 0) & (conf <= hi)
        if inside.any():
            ece += inside.mean() * abs(correct[inside].mean() - conf[inside].mean())
    assert abs(classification_metrics(p, y)["ece"] - ece) < 1e-12
    r = reliability(p, y)
    assert r["count"].sum() == 2000 and len(r["edges"]) == 16


def test_prob_gap_is_the_mean_absolute_difference():
    p, y = _probs(100, 2, 3)
    truth = np.tile([0.3, 0.7], (100, 1))
    gap = classification_metrics(p, y, truth)["prob_gap"]
    assert abs(gap - np.abs(p[:, 1] - 0.7).mean()) < 1e-12
    assert "prob_gap" not in classification_metrics(p, y)
