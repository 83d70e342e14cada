"""Shared oracles and cases for the objective tests.

Everything here is written from the formulas alone, in numpy and scipy, without calling the code
under test: the numpy losses of :func:`numpy_loss`, the Categorical forecasts of
``random_categorical`` and the table of parametric forecasts with their scipy twins and the
breakpoints used to integrate their densities with :func:`scipy.integrate.quad`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from likelab._spec import parse_spec
from likelab.families import get_family

# --------------------------------------------------------------------------- objective specs
LOCAL_SPECS = [
    "log",
    "linear",
    "lq:q=0.3",
    "lq:q=1",
    "lq:q=2.5",
    "gce:q=0.2",
    "gce:q=1",
    "mae",
    "focal:gamma=0",
    "focal:gamma=0.5",
    "focal:gamma=2",
]
INTEGRAL_SPECS = [
    "quadratic",
    "spherical",
    "pseudospherical:gamma=1.5",
    "pseudospherical:gamma=3",
    "power:alpha=1.5",
    "power:alpha=3",
    "dpd:beta=0.5",
    "dpd:beta=2",
    "gamma:gamma=0.5",
    "gamma:gamma=2",
]


def needed_powers(spec: str) -> tuple[float, ...]:
    """The exponents k whose power integral ∫f^k the objective ``spec`` needs."""
    parsed = parse_spec(spec)
    h = parsed.kwargs
    return {
        "quadratic": (2.0,),
        "spherical": (2.0,),
        "pseudospherical": (float(h.get("gamma", 3.0)),),
        "power": (float(h.get("alpha", 2.0)),),
        "dpd": (1.0 + float(h.get("beta", 0.5)),),
        "gamma": (1.0 + float(h.get("gamma", 0.5)),),
    }.get(parsed.name, ())


def numpy_loss(spec: str, fy: np.ndarray, integral: Callable[[float], np.ndarray]) -> np.ndarray:
    """The loss of ``spec`` from the formula: ``fy`` = f(y), ``integral(k)`` = ∫f^k (or Σp^k).

    Written directly from the formulas in the task (Gneiting & Raftery 2007 sec. 4.1; Basu et al.
    1998; Fujisawa & Eguchi 2008; Ferrari & Yang 2010; Zhang & Sabuncu 2018; Lin et al. 2017),
    in plain numpy powers, not in the log-space form the library uses.
    """
    parsed = parse_spec(spec)
    name, h = parsed.name, parsed.kwargs
    fy = np.asarray(fy, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if name == "log":
            return -np.log(fy)
        if name == "linear":
            return -fy
        if name == "lq":
            q = h["q"]
            return -np.log(fy) if q == 1 else (1.0 - fy ** (1.0 - q)) / (1.0 - q)
        if name == "gce":
            q = h["q"]
            return (1.0 - fy**q) / q
        if name == "mae":
            return 2.0 * (1.0 - fy)
        if name == "focal":
            g = h["gamma"]
            return -(np.maximum(1.0 - fy, 0.0) ** g) * np.log(fy)
        if name == "quadratic":
            return integral(2.0) - 2.0 * fy
        if name == "spherical":
            return -fy / np.sqrt(integral(2.0))
        if name == "pseudospherical":
            g = h["gamma"]
            return -(fy ** (g - 1.0)) / integral(g) ** ((g - 1.0) / g)
        if name == "power":
            a = h["alpha"]
            return (a - 1.0) * integral(a) - a * fy ** (a - 1.0)
        if name == "dpd":
            b = h["beta"]
            return integral(1.0 + b) - (1.0 + 1.0 / b) * fy**b
        if name == "gamma":
            g = h["gamma"]
            return (1.0 - fy**g / integral(1.0 + g) ** (g / (1.0 + g))) / g
    raise AssertionError(f"no numpy oracle for {spec!r}")


@pytest.fixture(params=LOCAL_SPECS)
def local_spec(request) -> str:
    return request.param


@pytest.fixture(params=INTEGRAL_SPECS)
def integral_spec(request) -> str:
    return request.param


# --------------------------------------------------------------------------- Categorical
def random_categorical(seed: int, batch: int = 50, k: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """``batch`` probability vectors of length ``k`` (Dirichlet(1)) and one label each."""
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.ones(k), size=batch)
    labels = rng.integers(0, k, size=batch)
    return probs, labels


def categorical_oracle(spec: str, probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``numpy_loss`` with f(y) = p_y and the exact class sums Σ_j p_j^k."""
    fy = probs[np.arange(len(labels)), labels]
    return numpy_loss(spec, fy, lambda k: (probs**k).sum(-1))


# --------------------------------------------------------------------------- parametric cases
@dataclass(frozen=True)
class Case:
    """A forecast from a likelab family, its scipy twin, observations and integration layout.

    ``breaks``: the integration range of ∫f^k split at the points where the density has a peak,
    a kink or a singularity (quad needs help to find a narrow peak on an infinite range).
    ``support``: for discrete cases, the integers summed over (the rest of the mass is below
    1e-30, far under float64 resolution of the sums).
    """

    id: str
    family: str
    params: dict[str, float]
    scipy: object
    y: tuple[float, ...]
    breaks: tuple[float, ...] = ()
    support: tuple[int, int] | None = None
    diff_y: bool = True  # the loss is differentiable in y at these observations

    @property
    def discrete(self) -> bool:
        return self.support is not None

    def dist(self, dtype: torch.dtype = torch.float64, requires_grad: bool = False):
        params = {
            k: torch.tensor(v, dtype=dtype, requires_grad=requires_grad)
            for k, v in self.params.items()
        }
        return get_family(self.family).distribution(**params)

    def y_tensor(self, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        return torch.tensor(self.y, dtype=dtype)

    def pdf(self, y) -> np.ndarray:
        y = np.asarray(y, dtype=np.float64)
        return self.scipy.pmf(y) if self.discrete else self.scipy.pdf(y)

    def integral(self, k: float) -> tuple[float, float]:
        """(∫f^k, error estimate): scipy quad of pdf**k over ``breaks``, or the direct sum."""
        if self.discrete:
            lo, hi = self.support
            return float(np.sum(self.scipy.pmf(np.arange(lo, hi + 1)) ** k)), 0.0
        total, err = 0.0, 0.0
        for a, b in zip(self.breaks[:-1], self.breaks[1:], strict=True):
            val, e = integrate.quad(
                lambda t: self.scipy.pdf(t) ** k, a, b, epsabs=0.0, epsrel=1e-13, limit=500
            )
            total += val
            err += e
        return total, err


inf = math.inf
CASES = [
    Case(
        "normal",
        "normal",
        {"loc": 0.3, "scale": 1.2},
        stats.norm(0.3, 1.2),
        (-2.0, 0.3, 1.0, 4.5),
        (-inf, 0.3, inf),
    ),
    Case(
        "normal-narrow",
        "normal",
        {"loc": -1.0, "scale": 0.05},
        stats.norm(-1.0, 0.05),
        (-1.1, -1.0, -0.97, -0.8),
        (-inf, -1.5, -1.0, -0.5, inf),
    ),
    Case(
        "student_t-df1.5",
        "student_t",
        {"df": 1.5, "loc": 0.0, "scale": 1.0},
        stats.t(1.5, 0.0, 1.0),
        (-10.0, -0.5, 0.0, 3.0),
        (-inf, 0.0, inf),
    ),
    Case(
        "student_t-df5",
        "student_t",
        {"df": 5.0, "loc": 2.0, "scale": 0.5},
        stats.t(5.0, 2.0, 0.5),
        (0.0, 1.9, 2.0, 2.7),
        (-inf, 2.0, inf),
    ),
    Case(
        "laplace",
        "laplace",
        {"loc": 1.0, "scale": 0.7},
        stats.laplace(1.0, 0.7),
        (-1.0, 0.5, 1.2, 4.0),
        (-inf, 1.0, inf),
    ),
    Case(
        "logistic",
        "logistic",
        {"loc": -0.5, "scale": 2.0},
        stats.logistic(-0.5, 2.0),
        (-9.0, -0.5, 0.0, 3.0),
        (-inf, -0.5, inf),
    ),
    Case(
        "cauchy",
        "cauchy",
        {"loc": 0.0, "scale": 0.3},
        stats.cauchy(0.0, 0.3),
        (-5.0, 0.1, 0.0, 20.0),
        (-inf, -1.0, 0.0, 1.0, inf),
    ),
    Case(
        "uniform",
        "uniform",
        {"low": -1.0, "high": 2.5},
        stats.uniform(-1.0, 3.5),
        (-0.9, 0.0, 2.4, 3.0),
        (-1.0, 2.5),
        diff_y=False,
    ),  # y = 3 lies outside: f = 0
    Case(
        "exponential",
        "exponential",
        {"rate": 3.0},
        stats.expon(scale=1 / 3.0),
        (0.0, 0.1, 1.0, 4.0),
        (0.0, 1.0, inf),
    ),
    Case(
        "gamma-a0.8",
        "gamma",
        {"concentration": 0.8, "rate": 2.0},
        stats.gamma(0.8, scale=0.5),
        (0.01, 0.3, 1.0, 5.0),
        (0.0, 1.0, inf),
    ),
    Case(
        "gamma-a3",
        "gamma",
        {"concentration": 3.0, "rate": 0.5},
        stats.gamma(3.0, scale=2.0),
        (0.5, 4.0, 10.0, 30.0),
        (0.0, 4.0, inf),
    ),
    Case(
        "poisson",
        "poisson",
        {"rate": 3.5},
        stats.poisson(3.5),
        (0.0, 2.0, 3.0, 11.0),
        support=(0, 60),
        diff_y=False,
    ),
    Case(
        "poisson-small",
        "poisson",
        {"rate": 0.2},
        stats.poisson(0.2),
        (0.0, 1.0, 4.0),
        support=(0, 40),
        diff_y=False,
    ),
    Case(
        "bernoulli",
        "bernoulli",
        {"probs": 0.3},
        stats.bernoulli(0.3),
        (0.0, 1.0, 1.0, 0.0),
        support=(0, 1),
        diff_y=False,
    ),
]


CASE_BY_ID = {c.id: c for c in CASES}


@pytest.fixture(params=CASES, ids=[c.id for c in CASES])
def case(request) -> Case:
    return request.param


def gradcheck_observations(case: Case) -> torch.Tensor:
    """The case's observations minus those where a loss is not differentiable in y or theta.

    Laplace: |y - loc| has a kink at the location. Exponential: y = 0 is the edge of the support,
    which finite differences would leave.
    """
    y = case.y_tensor()
    if case.family == "laplace":
        y = y[y != case.params["loc"]]
    if case.family == "exponential":
        y = y[y > 0]
    return y


def assert_gradcheck(objective, case: Case, y: torch.Tensor) -> None:
    """float64 ``torch.autograd.gradcheck`` of ``objective`` in the case's parameters (and in y
    where ``case.diff_y``): autograd against central finite differences (eps 1e-6)."""
    fam = get_family(case.family)
    names = list(case.params)
    params = [torch.tensor(case.params[n], dtype=torch.float64, requires_grad=True) for n in names]
    y = y.clone().requires_grad_(case.diff_y)

    def fn(*args):
        dist = fam.distribution(**dict(zip(names, args[: len(names)], strict=True)))
        return objective(dist, args[-1] if case.diff_y else y)

    inputs = (*params, y) if case.diff_y else tuple(params)
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-6, rtol=1e-5)


def assert_gradcheck_categorical_logits(objective, seed: int) -> None:
    """float64 gradcheck of ``objective`` on a Categorical in its logits."""
    torch.manual_seed(seed)
    logits = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0, 1, 2, 3, 1, 0])
    assert torch.autograd.gradcheck(
        lambda z: objective(torch.distributions.Categorical(logits=z), y),
        (logits,),
        eps=1e-6,
        atol=1e-6,
        rtol=1e-5,
    )
