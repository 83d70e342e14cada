r"""Classification datasets, all offline, with the true :math:`P(Y \mid X)` where it is known.

Every dataset is named by a spec string (``"xor:flip=0.2"``, ``"digits"``) and built by
:func:`load_dataset` with a seeded, stratified train/test split and features standardised with
the training set's mean and standard deviation.

- ``xor`` (the second seed's data): the four points of XOR, each repeated ``repeat`` times.
  ``flip=η`` flips the label of exactly ``round(η · repeat)`` copies of every point (chosen at
  random), train and test alike, so the true :math:`P(Y=1 \mid x)` is ``1 - η`` where XOR is 1
  and ``η`` elsewhere, and the empirical frequencies equal it exactly (the split is stratified by
  point and label).
- ``xor-gauss``: continuous XOR, an equal mixture of isotropic Gaussians (scale ``sigma``) at
  (±1, ±1), class 1 at (1, -1) and (-1, 1); the Bayes :math:`P(Y=1 \mid x)` is the ratio of
  mixture densities.
- ``moons``, ``circles``: :func:`sklearn.datasets.make_moons` / ``make_circles`` (truth unknown).
- ``iris``, ``wine``, ``breast_cancer``, ``digits``: scikit-learn's bundled datasets.
- ``next-word``: a small corpus in the spirit of the first seed ("data science is fun", ...),
  each sentence repeated by its count; the input is the previous ``context`` words (token ids,
  padded with ``<s>``), the target the next word, and the true :math:`P(\text{next} \mid
  \text{context})` is the corpus' conditional frequency.

Label noise (:func:`add_label_noise`) applies to training labels only: ``symmetric:η`` replaces
a label, with probability η, by one of the other classes uniformly; ``pairflip:η`` by the next
class, ``(y + 1) mod K`` (Han et al. 2018, NeurIPS, "Co-teaching").
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from likelab._spec import parse_spec
from likelab.errors import ParameterError, UnknownNameError

__all__ = [
    "CORPUS",
    "DATASETS",
    "Dataset",
    "add_label_noise",
    "list_datasets",
    "load_dataset",
]

#: The next-word corpus: (sentence, count). "data science is" continues with fun 6/10, hard 3/10,
#: cool 1/10, and so on: the conditional frequencies a proper objective should reproduce.
CORPUS: tuple[tuple[str, int], ...] = (
    ("data science is fun", 6),
    ("data science is hard", 3),
    ("data science is cool", 1),
    ("machine learning is cool", 5),
    ("machine learning is fun", 4),
    ("machine learning is hard", 1),
    ("deep learning is hard", 7),
    ("deep learning is fun", 3),
    ("statistics is fun", 2),
    ("statistics is useful", 8),
)
PAD = "<s>"


@dataclass(frozen=True)
class Dataset:
    """A train/test split. ``x_*`` are float32 features (int64 token ids for ``next-word``),
    ``y_*`` int64 labels; ``p_*`` the true class probabilities of each example, shape
    ``(n, K)``, or ``None`` where unknown; ``y_train_clean`` the training labels before noise."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    p_train: np.ndarray | None = None
    p_test: np.ndarray | None = None
    classes: tuple[str, ...] = ()
    vocab: tuple[str, ...] = ()
    noise: str | None = None
    y_train_clean: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def tokens(self) -> bool:
        """Whether the inputs are token ids (``next-word``) rather than features."""
        return self.x_train.dtype == np.int64


# ---------------------------------------------------------------------- builders
def _xor(rng: np.random.Generator, *, repeat: float = 50, flip: float = 0.0) -> dict[str, Any]:
    repeat, flip = int(repeat), float(flip)
    points = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    clean = np.array([0, 1, 1, 0])
    x = np.repeat(points, repeat, axis=0)
    y = np.repeat(clean, repeat)
    group = np.repeat(np.arange(4), repeat)
    n_flip = round(flip * repeat)
    for g in range(4):
        idx = np.flatnonzero(group == g)
        chosen = rng.choice(idx, size=n_flip, replace=False)
        y[chosen] = 1 - y[chosen]
    p1 = np.where(clean[group] == 1, 1.0 - flip, flip)
    return {
        "x": x,
        "y": y,
        "p": np.stack([1 - p1, p1], axis=1),
        "strata": group * 2 + y,
        "classes": ("0", "1"),
    }


def _xor_gauss(rng: np.random.Generator, *, n: float = 1000, sigma: float = 0.6) -> dict[str, Any]:
    n, sigma = int(n), float(sigma)
    centres = np.array([[1.0, 1.0], [-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0]])
    labels = np.array([0, 0, 1, 1])
    comp = rng.integers(0, 4, size=n)
    x = centres[comp] + sigma * rng.standard_normal((n, 2))
    y = labels[comp]
    d2 = ((x[:, None, :] - centres[None]) ** 2).sum(-1) / (2 * sigma**2)
    w = np.exp(-(d2 - d2.min(1, keepdims=True)))
    p1 = w[:, 2:].sum(1) / w.sum(1)
    return {"x": x, "y": y, "p": np.stack([1 - p1, p1], axis=1), "classes": ("0", "1")}


def _moons(rng: np.random.Generator, *, n: float = 1000, noise: float = 0.2) -> dict[str, Any]:
    from sklearn.datasets import make_moons

    x, y = make_moons(int(n), noise=float(noise), random_state=_sk_seed(rng))
    return {"x": x, "y": y, "classes": ("0", "1")}


def _circles(
    rng: np.random.Generator, *, n: float = 1000, noise: float = 0.1, factor: float = 0.5
) -> dict[str, Any]:
    from sklearn.datasets import make_circles

    x, y = make_circles(
        int(n),
        noise=float(noise),
        factor=float(factor),
        random_state=_sk_seed(rng),
    )
    return {"x": x, "y": y, "classes": ("outer", "inner")}


def _bundled(loader_name: str) -> Callable[..., dict[str, Any]]:
    def build(rng: np.random.Generator) -> dict[str, Any]:
        import sklearn.datasets

        bunch = getattr(sklearn.datasets, loader_name)()
        return {
            "x": np.asarray(bunch.data, dtype=np.float64),
            "y": np.asarray(bunch.target, dtype=np.int64),
            "classes": tuple(str(c) for c in bunch.target_names),
        }

    build.__doc__ = f"scikit-learn's bundled dataset ({loader_name})."
    return build


def _next_word(
    rng: np.random.Generator, *, repeat: float = 10, context: float = 3
) -> dict[str, Any]:
    repeat, context = int(repeat), int(context)
    vocab = sorted({w for sentence, _ in CORPUS for w in sentence.split()})
    vocab = [PAD, *vocab]
    index = {w: i for i, w in enumerate(vocab)}
    xs, ys = [], []
    for sentence, count in CORPUS:
        words = [PAD] * context + sentence.split()
        for pos in range(context, len(words)):
            ctx = [index[w] for w in words[pos - context : pos]]
            for _ in range(count * repeat):
                xs.append(ctx)
                ys.append(index[words[pos]])
    x = np.asarray(xs, dtype=np.int64)
    y = np.asarray(ys, dtype=np.int64)
    counts: dict[tuple[int, ...], Counter] = {}
    for ctx, target in zip(map(tuple, x), y, strict=True):
        counts.setdefault(ctx, Counter())[int(target)] += 1
    p = np.zeros((len(y), len(vocab)))
    context_ids = {ctx: i for i, ctx in enumerate(counts)}
    for i, ctx in enumerate(map(tuple, x)):
        total = sum(counts[ctx].values())
        for k, c in counts[ctx].items():
            p[i, k] = c / total
    strata = np.asarray([context_ids[ctx] for ctx in map(tuple, x)]) * len(vocab) + y
    return {"x": x, "y": y, "p": p, "strata": strata, "classes": tuple(vocab), "vocab": vocab}


DATASETS: dict[str, Callable[..., dict[str, Any]]] = {
    "xor": _xor,
    "xor-gauss": _xor_gauss,
    "moons": _moons,
    "circles": _circles,
    "iris": _bundled("load_iris"),
    "wine": _bundled("load_wine"),
    "breast_cancer": _bundled("load_breast_cancer"),
    "digits": _bundled("load_digits"),
    "next-word": _next_word,
}


#: The most examples a generated dataset may hold (``xor:repeat``, ``xor-gauss:n``, ...).
MAX_EXAMPLES = 5_000_000


@dataclass(frozen=True)
class _Param:
    """A dataset parameter: integer or real, its default and valid range (``None``: unbounded);
    ``open_low`` / ``open_high`` exclude the end."""

    default: float
    low: float | None = None
    high: float | None = None
    integer: bool = False
    open_low: bool = False
    open_high: bool = False

    def describe(self) -> str:
        kind = "an integer" if self.integer else "a number"
        if self.high is None:
            rng = f"{'>' if self.open_low else '>='} {self.low:g}"
        else:
            lo, hi = "(" if self.open_low else "[", ")" if self.open_high else "]"
            rng = f"in {lo}{self.low:g}, {self.high:g}{hi}"
        return f"{kind} {rng}"

    def check(self, dataset: str, name: str, value: object) -> float:
        """``value`` as a float inside the range, or a :class:`ParameterError` naming it."""
        problem = f"dataset {dataset!r}: {name} must be {self.describe()}, got {value!r}"
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ParameterError(problem)
        v = float(value)
        if not math.isfinite(v) or (self.integer and v != int(v)):
            raise ParameterError(problem)
        if self.low is not None and (v < self.low or (self.open_low and v == self.low)):
            raise ParameterError(problem)
        if self.high is not None and (v > self.high or (self.open_high and v == self.high)):
            raise ParameterError(problem)
        return v


#: Every dataset's parameters: default and valid range. Validated before anything is built.
PARAMETERS: dict[str, dict[str, _Param]] = {
    "xor": {
        "repeat": _Param(50, 2, integer=True),
        "flip": _Param(0.0, 0.0, 0.5, open_high=True),
    },
    "xor-gauss": {"n": _Param(1000, 8, integer=True), "sigma": _Param(0.6, 0.0, open_low=True)},
    "moons": {"n": _Param(1000, 8, integer=True), "noise": _Param(0.2, 0.0)},
    "circles": {
        "n": _Param(1000, 8, integer=True),
        "noise": _Param(0.1, 0.0),
        "factor": _Param(0.5, 0.0, 1.0, open_high=True),
    },
    "next-word": {
        "repeat": _Param(10, 1, integer=True),
        "context": _Param(3, 1, 64, integer=True),
    },
}

#: Examples (and float64 values held per example while building) as a function of the
#: parameters, for the datasets whose size the parameters set.
_SIZES: dict[str, Callable[[dict[str, float]], tuple[float, float]]] = {
    "xor": lambda p: (4 * p["repeat"], 8),
    "xor-gauss": lambda p: (p["n"], 16),
    "moons": lambda p: (p["n"], 4),
    "circles": lambda p: (p["n"], 4),
    "next-word": lambda p: (
        p["repeat"] * sum(len(s.split()) * c for s, c in CORPUS),
        p["context"] + 2 * len({w for s, _ in CORPUS for w in s.split()}) + 4,
    ),
}


def _check_parameters(name: str, params: dict[str, object]) -> dict[str, float]:
    """The dataset's parameters, each checked against its range, and the size they imply."""
    schema = PARAMETERS.get(name, {})
    unknown = [k for k in params if k not in schema]
    if unknown:
        if not schema:
            raise ParameterError(f"dataset {name!r} takes no parameters, got {unknown[0]!r}")
        known = "; ".join(f"{k} ({p.describe()}, default {p.default:g})" for k, p in schema.items())
        raise ParameterError(f"dataset {name!r} has no parameter {unknown[0]!r}; it takes {known}")
    checked = {
        k: p.check(name, k, params[k]) if k in params else p.default for k, p in schema.items()
    }
    if name in _SIZES:
        rows, per_row = _SIZES[name](checked)
        if rows > MAX_EXAMPLES:
            raise ParameterError(
                f"dataset {name!r} with {', '.join(f'{k}={v:g}' for k, v in checked.items())} "
                f"would hold {rows:,.0f} examples (~{_gb(rows * per_row * 8)} while building), "
                f"more than the {MAX_EXAMPLES:,} likelab builds"
            )
    return {k: checked[k] for k in params}


def _gb(nbytes: float) -> str:
    return f"{nbytes / 1e9:.3g} GB" if nbytes >= 1e8 else f"{nbytes / 1e6:.3g} MB"


def list_datasets() -> list[str]:
    """The dataset names :func:`load_dataset` accepts."""
    return list(DATASETS)


# ---------------------------------------------------------------------- loading
def load_dataset(
    spec: str,
    *,
    seed: int = 0,
    test_size: float = 0.3,
    noise: str | None = None,
) -> Dataset:
    """Build the dataset ``spec``, split it (stratified, seeded) and standardise its features.

    ``noise`` (``"symmetric:0.4"``, ``"pairflip:0.2"``) corrupts the training labels only.

    >>> d = load_dataset("xor:flip=0.2", seed=0)
    >>> d.num_classes, d.x_train.shape[1], round(float(d.p_test[:, 1].max()), 2)
    (2, 2, 0.8)
    """
    parsed = parse_spec(spec, kind="dataset")
    name, params = parsed.name, parsed.kwargs
    builder = DATASETS.get(name)
    if builder is None:
        raise UnknownNameError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")
    if not 0.0 < float(test_size) < 1.0:
        raise ParameterError(f"test_size must lie in (0, 1), got {test_size!r}")
    ss = np.random.SeedSequence([int(seed), _stable_hash(name)])
    build_rng, split_rng, noise_rng = (np.random.default_rng(s) for s in ss.spawn(3))
    raw = builder(build_rng, **_check_parameters(name, params))
    x, y = raw["x"], np.asarray(raw["y"], dtype=np.int64)
    strata = raw.get("strata", y)
    train, test = _stratified_split(strata, float(test_size), split_rng)
    p = raw.get("p")
    classes = tuple(raw["classes"])
    k = len(classes)
    standardise: dict[str, Any] = {}
    if "vocab" in raw:
        x_train, x_test = x[train], x[test]
    else:
        mean = x[train].mean(0)
        sd = x[train].std(0)
        sd = np.where(sd > 0, sd, 1.0)
        x_train = ((x[train] - mean) / sd).astype(np.float32)
        x_test = ((x[test] - mean) / sd).astype(np.float32)
        standardise = {"feature_mean": mean.tolist(), "feature_sd": sd.tolist()}
    y_train, y_test = y[train], y[test]
    y_noisy = y_train if noise is None else add_label_noise(y_train, k, noise, noise_rng)
    return Dataset(
        name=spec,
        x_train=x_train,
        y_train=y_noisy,
        x_test=x_test,
        y_test=y_test,
        num_classes=k,
        p_train=None if p is None else p[train],
        p_test=None if p is None else p[test],
        classes=classes,
        vocab=tuple(raw.get("vocab", ())),
        noise=noise,
        y_train_clean=y_train,
        info={"n_train": len(train), "n_test": len(test), "seed": int(seed), **standardise},
    )


def add_label_noise(
    y: np.ndarray, num_classes: int, spec: str, rng: np.random.Generator
) -> np.ndarray:
    """Labels ``y`` corrupted by ``spec`` (``"symmetric:η"`` or ``"pairflip:η"``, 0 <= η < 1).

    >>> y = np.zeros(10_000, dtype=np.int64)
    >>> noisy = add_label_noise(y, 4, "symmetric:0.4", np.random.default_rng(0))
    >>> round(float((noisy != 0).mean()), 2), sorted(set(noisy.tolist()))
    (0.4, [0, 1, 2, 3])
    """
    kind, sep, rate = spec.partition(":")
    kind = kind.strip()
    if kind not in ("symmetric", "pairflip") or not sep:
        raise ParameterError(
            f"label noise must be 'symmetric:RATE' or 'pairflip:RATE', got {spec!r}"
        )
    try:
        eta = float(rate)
    except ValueError:
        eta = math.nan
    if not 0.0 <= eta < 1.0:
        raise ParameterError(
            f"label noise rate must be a number in [0, 1), got {rate.strip()!r} in {spec!r}"
        )
    if num_classes < 2:
        raise ParameterError("label noise needs at least 2 classes")
    flip = rng.random(len(y)) < eta
    if kind == "pairflip":
        other = (y + 1) % num_classes
    else:  # one of the other K - 1 classes, uniformly
        other = (y + rng.integers(1, num_classes, size=len(y))) % num_classes
    return np.where(flip, other, y).astype(np.int64)


# ---------------------------------------------------------------------- helpers
def _stratified_split(
    strata: np.ndarray, test_size: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Within every stratum, a random ``test_size`` share (rounded) goes to the test set."""
    train, test = [], []
    for s in np.unique(strata):
        idx = rng.permutation(np.flatnonzero(strata == s))
        k = round(test_size * len(idx))
        test.append(idx[:k])
        train.append(idx[k:])
    train_idx, test_idx = np.sort(np.concatenate(train)), np.sort(np.concatenate(test))
    if len(train_idx) == 0 or len(test_idx) == 0:
        raise ParameterError("the dataset is too small for a train/test split")
    return train_idx, test_idx


def _sk_seed(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 2**31 - 1))


def _stable_hash(text: str) -> int:
    return int.from_bytes(text.encode()[:16].ljust(16, b"\0"), "little") % (2**63)
