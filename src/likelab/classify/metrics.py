r"""Metrics of predicted class probabilities on a (clean) test set.

For predictions :math:`\hat p_i` (rows of an ``(n, K)`` array) and labels :math:`y_i`:

- accuracy: share of :math:`\arg\max_k \hat p_{ik} = y_i`;
- NLL: :math:`-\frac1n \sum_i \log \hat p_{i y_i}`;
- Brier: :math:`\frac1n \sum_i \sum_k (\hat p_{ik} - [y_i = k])^2` (Brier 1950);
- ECE: expected calibration error with 15 equal-width confidence bins,
  :math:`\sum_b \frac{|B_b|}{n} |\mathrm{acc}(B_b) - \mathrm{conf}(B_b)|` (Guo et al. 2017, ICML);
- confidence: mean of :math:`\max_k \hat p_{ik}`;
- prob_gap (only where the truth :math:`p_i` is known): :math:`\frac1{nK}\sum_{i,k}
  |\hat p_{ik} - p_{ik}|`, which for two classes is the mean :math:`|\hat P(Y=1|x) - P(Y=1|x)|`.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ECE_BINS", "classification_metrics", "reliability"]

ECE_BINS = 15


def classification_metrics(
    probs: np.ndarray, y: np.ndarray, p_true: np.ndarray | None = None
) -> dict[str, float]:
    """Accuracy, NLL, Brier, ECE, confidence and (with ``p_true``) prob_gap.

    >>> p = np.array([[0.9, 0.1], [0.2, 0.8]])
    >>> m = classification_metrics(p, np.array([0, 0]))
    >>> m["accuracy"], round(m["brier"], 3), round(m["confidence"], 2)
    (0.5, 0.65, 0.85)
    """
    probs = np.asarray(probs, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    n = len(y)
    picked = probs[np.arange(n), y]
    onehot = np.zeros_like(probs)
    onehot[np.arange(n), y] = 1.0
    conf = probs.max(1)
    out = {
        "accuracy": float((probs.argmax(1) == y).mean()),
        "nll": float(-np.log(np.maximum(picked, np.finfo(np.float64).tiny)).mean()),
        "brier": float(((probs - onehot) ** 2).sum(1).mean()),
        "ece": _ece(conf, probs.argmax(1) == y),
        "confidence": float(conf.mean()),
    }
    if p_true is not None:
        out["prob_gap"] = float(np.abs(probs - np.asarray(p_true)).mean())
    return out


def reliability(probs: np.ndarray, y: np.ndarray, bins: int = ECE_BINS) -> dict[str, np.ndarray]:
    """Per equal-width confidence bin: mean confidence, accuracy and count (empty bins: nan, 0)."""
    probs = np.asarray(probs)
    return _bins(probs.max(1), probs.argmax(1) == np.asarray(y), bins)


def _bins(conf: np.ndarray, correct: np.ndarray, bins: int) -> dict[str, np.ndarray]:
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, bins - 1)
    count = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(which, weights=conf, minlength=bins) / count
        acc = np.bincount(which, weights=correct.astype(float), minlength=bins) / count
    return {"edges": edges, "confidence": mean_conf, "accuracy": acc, "count": count}


def _ece(conf: np.ndarray, correct: np.ndarray) -> float:
    b = _bins(conf, correct, ECE_BINS)
    full = b["count"] > 0
    gaps = np.abs(b["accuracy"][full] - b["confidence"][full])
    return float((b["count"][full] * gaps).sum() / len(conf))
