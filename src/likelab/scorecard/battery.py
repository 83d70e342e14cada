r"""The scorecard's battery: every setting and size of every part, and the seeds.

Each part of :mod:`likelab.scorecard` reads its settings (truths, families, contaminations) and
its sizes (starts, truths, iterations) from here, so that one file says what the scorecard
runs. Sizes depend on ``quick``: the quick battery keeps every question of the issue that is
cheap to answer and trims the expensive searches (an improper objective's θ* search chases a
scale to 0, each step a fresh adaptive quadrature).

Random streams come from names, never positions (DESIGN.md, "Seeds from names"):
:func:`stream_seed` hashes ``(seed, part, setting)``, so every objective sees the same data in a
setting (paired comparisons), adding a setting changes no other setting's data, and a resumed or
distributed run is bit-identical to an uninterrupted one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from likelab.errors import LikelabError, UnsupportedError

__all__ = ["PARTS", "guarded", "jsonable", "stream_seed"]


def stream_seed(seed: int, part: str, setting: str) -> int:
    """A 63-bit seed from sha256 of ``f"{seed}|{part}|{setting}"`` (names, not positions).

    >>> stream_seed(0, "properness", "classes K=3") == stream_seed(0, "properness", "classes K=3")
    True
    >>> 0 <= stream_seed(0, "efficiency", "x") < 2**63
    True
    """
    digest = hashlib.sha256(f"{seed}|{part}|{setting}".encode()).hexdigest()
    return int(digest[:16], 16) & (2**63 - 1)


def guarded(
    unit: dict[str, Any], work: Callable[[], dict[str, Any]], keys: Sequence[str] = ()
) -> dict[str, Any]:
    """The unit's row: ``unit`` updated by ``work()``, or a ``"failed"`` / ``"not applicable"``
    row that keeps the error's message (failures are data). Every key of ``keys`` (the part's
    row schema) is present, ``None`` where the row has no value: one schema for every row,
    failed ones included.

    A :class:`~likelab.errors.LikelabError` (bad input; a user objective that raised, whose
    message names the user's own) is this objective's failure in this setting; an
    :class:`~likelab.errors.UnsupportedError` (a rule not defined for this forecast: ``crps`` on
    classes) makes the setting ``"not applicable"``. Any other exception is recorded too, marked
    ``"internal": True`` (a likelab bug to report), so that one setting cannot stop a scorecard.
    ``KeyboardInterrupt`` propagates. The row is made JSON-ready by :func:`jsonable`.
    """
    try:
        row = {**unit, **work()}
    except UnsupportedError as exc:
        row = {**unit, "status": "not applicable", "reason": _one_line(exc)}
    except LikelabError as exc:
        row = {**unit, "status": "failed", "reason": _one_line(exc)}
    except Exception as exc:  # not the objective's fault: recorded, and flagged as a bug
        reason = f"internal error: {type(exc).__name__}: {_one_line(exc)}"
        row = {**unit, "status": "failed", "reason": reason, "internal": True}
    row.setdefault("reason", "")
    for key in keys:
        row.setdefault(key, None)
    return jsonable(row)


def jsonable(value: Any) -> Any:
    """``value`` with only str/float/int/bool/None/list/dict inside (numpy and torch scalars and
    arrays, tuples converted); floats may be nan or inf."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, torch.Tensor):
        return jsonable(value.detach().cpu().tolist())
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    raise TypeError(f"not JSON-ready: {type(value).__name__}")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


#: The scorecard's parts, in the order of the page.
PARTS = ("properness", "landscape", "efficiency", "robustness", "classification")


def mode(quick: bool) -> str:
    """``"quick"`` or ``"full"``: the key of every size table here."""
    return "quick" if quick else "full"


# ---------------------------------------------------------------------- properness, efficiency,
# robustness (theory parts: quadrature, no simulation)

#: Properness on the K-simplex (Gneiting & Raftery 2007, sec. 2): K = 2, and K >= 3 where
#: Bernardo's (1979) theorem applies to local rules.
PROPERNESS_CLASSES = (2, 3, 10)
#: Properness against densities: each truth forecast by its own family, all parameters free.
PROPERNESS_TRUTHS = (
    "normal:loc=0,scale=1",
    "laplace:loc=0,scale=1",
    "student_t:df=5,loc=0,scale=1",
    "exponential:rate=1",
    "poisson:rate=3",
)
#: check_classes sizes (n_truths random truths besides the edge cases, starts, Newton steps).
PROPERNESS_CLASS_SIZES: dict[str, dict[str, int]] = {
    "quick": {"n_truths": 10, "starts": 2, "max_iter": 100},
    "full": {"n_truths": 40, "starts": 4, "max_iter": 200},
}
#: check_density sizes (starts: the truth, a fit to a sample, perturbations; Newton steps).
PROPERNESS_DENSITY_SIZES: dict[str, dict[str, int]] = {
    "quick": {"starts": 2, "max_iter": 30},
    "full": {"starts": 4, "max_iter": 100},
}
#: Bernardo's (1979) check: φ on l = log p over this grid of p in (0, 1] (log-spaced)...
BERNARDO_LOG_P = (-30.0, 0.0)
BERNARDO_POINTS = 301
#: ... and φ is affine in log p when the least-squares line's largest residual is at most this
#: fraction of φ's range on the grid.
BERNARDO_RTOL = 1e-9

#: Efficiency at the model: (forecast family, truth) at the family's standard member; the
#: family's parameters free unless the family spec fixes them. ``normal:scale=1`` is the seed's
#: normal location with the scale known, where linear's ARE is (1+2b)^{3/2}/(1+b)^3 at b = 1.
EFFICIENCY_SETTINGS: dict[str, tuple[tuple[str, str], ...]] = {
    "quick": (
        ("normal", "normal:loc=0,scale=1"),
        ("normal:scale=1", "normal:loc=0,scale=1"),
        ("exponential", "exponential:rate=1"),
        ("poisson", "poisson:rate=3"),
    ),
    "full": (
        ("normal", "normal:loc=0,scale=1"),
        ("normal:scale=1", "normal:loc=0,scale=1"),
        ("student_t", "student_t:df=5,loc=0,scale=1"),
        ("laplace", "laplace:loc=0,scale=1"),
        ("logistic", "logistic:loc=0,scale=1"),
        ("gamma", "gamma:concentration=2,rate=1"),
        ("exponential", "exponential:rate=1"),
        ("poisson", "poisson:rate=3"),
    ),
}
#: The n of the MSE ratio reported where θ* of the objective differs from log's.
EFFICIENCY_N = 100

#: Robustness: (forecast family, truth, contamination G) with Huber's gross-error model
#: (1 - ε) P + ε G; G a point mass far out (8 scales for N(0, 1)).
ROBUSTNESS_SETTINGS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "quick": (
        ("normal", "normal:loc=0,scale=1", "point:at=8"),
        ("normal:scale=1", "normal:loc=0,scale=1", "point:at=8"),
    ),
    "full": (
        ("normal", "normal:loc=0,scale=1", "point:at=8"),
        ("normal:scale=1", "normal:loc=0,scale=1", "point:at=8"),
        ("laplace", "laplace:loc=0,scale=1", "point:at=8"),
        ("exponential", "exponential:rate=1", "point:at=8"),
    ),
}
#: ε of the asymptotic bias θ*(ε) - θ*(0) (the issue's 5%, 10% and 20%).
ROBUSTNESS_EPS = (0.05, 0.1, 0.2)
#: The numerical breakdown point is the smallest ε (up to the largest above) at which some
#: parameter moves by more than this bound (the truth's scale, 1): the estimate is carried a
#: whole scale towards the outliers. ``None`` in a row: no ε up to 0.2 breaks.
ROBUSTNESS_BOUND = 1.0
#: Halvings of the breakdown point's bracket on the ε grid (quick: none, the first ε of the grid
#: that breaks is reported, an upper bound, with its bracket).
ROBUSTNESS_BISECT: dict[str, int] = {"quick": 0, "full": 10}


# ---- landscape and classification settings
# (part 2, src/likelab/scorecard/landscape.py; part 5, src/likelab/scorecard/classification.py)

#: Landscape truths: the data-generating member of each family; the model is the same family
#: (shape parameters such as ``df`` held at the truth's), location and scale judged.
LANDSCAPE_TRUTHS: tuple[str, ...] = (
    "normal:loc=0,scale=1",
    "laplace:loc=0,scale=1",
    "student_t:df=5,loc=0,scale=1",
)
#: Sample sizes of the landscape part.
LANDSCAPE_N: tuple[int, ...] = (10, 100)
#: Seeded datasets per (truth, n): quick and full. The first ``quick`` datasets of a full run are
#: the quick run's (each dataset's seed is named by its index).
LANDSCAPE_DATASETS: dict[str, int] = {"quick": 40, "full": 400}
#: The scans: ``location`` (scale known, at the truth), ``location-narrow`` (scale known and held
#: at LANDSCAPE_NARROW x the truth's: the seed's N(mu, 0.1²) on N(0, 1) data) and
#: ``location-scale`` (the 2-D surface).
LANDSCAPE_KINDS: tuple[str, ...] = ("location", "location-narrow", "location-scale")
LANDSCAPE_NARROW: float = 0.1
#: Grid axes as (lo, hi, points) in units of the truth: loc0 + scale0 * lo ... (np.linspace,
#: as ``likelab landscape --param loc=LO:HI:N``); scale axes as multiples of scale0.
LANDSCAPE_LOC_AXIS: dict[str, tuple[float, float, int]] = {
    "quick": (-5.0, 5.0, 501),
    "full": (-5.0, 5.0, 1001),
}
LANDSCAPE_SURFACE_LOC: dict[str, tuple[float, float, int]] = {
    "quick": (-3.0, 3.0, 61),
    "full": (-3.0, 3.0, 121),
}
LANDSCAPE_SURFACE_SCALE: dict[str, tuple[float, float, int]] = {
    "quick": (0.1, 3.0, 30),
    "full": (0.1, 3.0, 59),
}
#: Elements (datasets x grid points x observations) of one evaluation chunk: 2**17 float64
#: temporaries (1 MB each) are recycled by torch's allocator (measured 9-13 ns per element on
#: one core for log, linear, dpd, crps; 2**22 was 1.5-3x slower).
LANDSCAPE_CHUNK_ELEMENTS: int = 2**17

#: Classification settings: dataset spec, label noise on the training labels, model, training
#: options and seeds, quick and full. Full follows docs/classification.md (XOR: MLP 64-64,
#: full batch, Adam, 300 epochs, 3 seeds; digits: MLP 64-64, Adam lr 0.01, batches of 64,
#: 60 epochs, 3 seeds; next-word: the embedding model, full batch, trained to stationarity).
CLASSIFICATION_SETTINGS: dict[str, dict[str, dict[str, object]]] = {
    "xor:flip=0.2": {
        "quick": {
            "dataset": "xor:flip=0.2",
            "noise": None,
            "model": "mlp:64,64",
            "epochs": 300,
            "batch_size": None,
            "lr": 0.01,
            "seeds": 1,
        },
        "full": {
            "dataset": "xor:flip=0.2",
            "noise": None,
            "model": "mlp:64,64",
            "epochs": 300,
            "batch_size": None,
            "lr": 0.01,
            "seeds": 3,
        },
    },
    "next-word": {
        "quick": {
            "dataset": "next-word",
            "noise": None,
            "model": "next-word:16",
            "epochs": 150,
            "batch_size": None,
            "lr": 0.01,
            "seeds": 1,
        },
        "full": {
            "dataset": "next-word",
            "noise": None,
            "model": "next-word:16",
            "epochs": 1000,
            "batch_size": None,
            "lr": 0.01,
            "seeds": 3,
        },
    },
    "digits / noise symmetric:0.4": {
        "quick": {
            "dataset": "digits",
            "noise": "symmetric:0.4",
            "model": "mlp:64,64",
            "epochs": 10,
            "batch_size": 64,
            "lr": 0.01,
            "seeds": 1,
        },
        "full": {
            "dataset": "digits",
            "noise": "symmetric:0.4",
            "model": "mlp:64,64",
            "epochs": 60,
            "batch_size": 64,
            "lr": 0.01,
            "seeds": 3,
        },
    },
}
#: A predicted probability within this distance of 0 or 1 counts as "pushed to 0 or 1".
CLASSIFICATION_EXTREME: float = 0.01
