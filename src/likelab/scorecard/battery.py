"""The scorecard's battery: every setting and size, and the seeds derived from names."""

from __future__ import annotations

import hashlib


def stream_seed(seed: int, part: str, setting: str) -> int:
    """A 63-bit seed from sha256 of f"{seed}|{part}|{setting}" (names, not positions)."""
    digest = hashlib.sha256(f"{seed}|{part}|{setting}".encode()).hexdigest()
    return int(digest[:16], 16) & (2**63 - 1)


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
