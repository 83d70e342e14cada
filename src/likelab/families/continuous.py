"""Continuous families: normal, student_t, laplace, logistic, cauchy, uniform, exponential,
gamma."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping

import torch
from torch import distributions as D

from likelab.errors import ParameterError
from likelab.families.base import Family, Param
from likelab.families.distributions import ClosedUniform, Logistic
from likelab.families.distributions import StudentT as StudentTDistribution

__all__ = [
    "Cauchy",
    "Exponential",
    "Gamma",
    "Laplace",
    "LogisticFamily",
    "Normal",
    "StudentT",
    "Uniform",
]

_LOC = Param("loc", "real", "location")
_SCALE = Param("scale", "positive", "scale")
# Normal quantile of 3/4: the MAD of a normal is 0.6745 sigma.
_MAD_TO_SD = 1.0 / 0.6744897501960817


def _quantiles(y: torch.Tensor, probs: tuple[float, ...]) -> list[torch.Tensor]:
    """Sample quantiles of ``y`` along its last axis at ``probs``, from one sort: the numbers
    of ``torch.quantile`` (linear interpolation between order statistics, Hyndman & Fan 1996
    type 7), which sorts once per call."""
    ordered = y.sort(dim=-1).values
    pos = torch.tensor(probs, dtype=y.dtype, device=y.device) * (y.shape[-1] - 1)
    below, above = pos.long(), pos.ceil().long()
    q = ordered[..., below].lerp(ordered[..., above], pos - below)
    return list(q.unbind(-1))


def _median(y: torch.Tensor) -> torch.Tensor:
    return _quantiles(y, (0.5,))[0]


def _iqr(y: torch.Tensor) -> torch.Tensor:
    q1, q3 = _quantiles(y, (0.25, 0.75))
    return q3 - q1


def _positive(x: torch.Tensor, fallback: torch.Tensor | Callable[[], torch.Tensor]) -> torch.Tensor:
    """``x`` where it is positive and finite, else ``fallback`` (then 1.0); a callable
    ``fallback`` is only computed where it is needed."""
    ok = torch.isfinite(x) & (x > 0)
    if callable(fallback):
        if bool(ok.all()):
            return x
        fallback = fallback()
    x = torch.where(ok, x, fallback)
    ok = torch.isfinite(x) & (x > 0)
    return torch.where(ok, x, torch.ones_like(x))


def _pos_all(y: torch.Tensor) -> torch.Tensor:
    return (y > 0).all(dim=-1)


#: Range of the Student-t ``df`` start (:meth:`StudentT._start`), and its value where the tail
#: ratio is undefined (an IQR of 0).
_DF_START = (0.5, 30.0, 5.0)
#: Fewest observations per dataset for the ``df`` start from the tail ratio: one beyond each
#: of the 2.5% and 97.5% quantiles.
_DF_START_MIN_N = 40
#: (ν, t_0.75(ν), t_0.975(ν)): Student-t quantiles at 25 log-spaced ν over :data:`_DF_START`'s
#: range (``scipy.stats.t.ppf``, 12 digits; tested against it), and t_0.75 at the default ν.
_T_QUANTILES = (
    (0.5, 1.55377397403, 164.55767348),
    (0.593006754022, 1.34563667902, 71.4365300653),
    (0.703314020632, 1.19680933794, 35.9872362406),
    (0.834139928866, 1.08721167637, 20.5496941179),
    (0.989301223234, 1.00451120885, 13.0355659003),
    (1.17332461428, 0.940851575218, 9.02639958062),
    (1.39157884186, 0.891055168988, 6.71911294127),
    (1.65043130395, 0.851599469303, 5.30560347947),
    (1.95743382058, 0.82001574687, 4.3935709412),
    (2.32154295232, 0.794526131877, 3.77912831523),
    (2.75338130095, 0.773818963128, 3.34994295309),
    (3.26554741572, 0.756906226875, 3.04093665334),
    (3.87298334621, 0.743030714723, 2.81272674237),
    (4.59341056503, 0.731603881231, 2.6405510852),
    (5.44784697812, 0.722163058606, 2.50830403601),
    (6.46122010581, 0.714341177661, 2.40518919985),
    (7.66309432394, 0.707844798232, 2.32377094234),
    (9.0885333816, 0.702437828351, 2.25880252042),
    (10.7791233589, 0.697929252574, 2.20650025506),
    (12.7841859085, 0.694163758437, 2.16408179475),
    (15.1622171769, 0.691014501201, 2.12946511113),
    (17.9825943836, 0.688377471061, 2.10106781092),
    (21.3275998487, 0.686167075448, 2.07767051845),
    (25.2948215147, 0.684312651144, 2.05832205884),
    (30, 0.682755693321, 2.0422724563),
)
_T75_DEFAULT = 0.7266868438


@functools.cache
def _t_tail_table() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``log ν``, ``-ρ(ν)`` (increasing) and ``t_{0.75}(ν)`` of :data:`_T_QUANTILES`."""
    nu, t75, t975 = torch.tensor(_T_QUANTILES, dtype=torch.float64).unbind(-1)
    return nu.log(), -t975 / t75, t75


def _t_tail_inverse(ratio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The ν with tail ratio ρ(ν) = ``ratio`` (interpolated linearly in log ν, clamped to the
    range of :data:`_DF_START`; its default where ``ratio`` is not finite) and t_{0.75}(ν)."""
    log_df, neg_rho, t75 = _t_tail_table()
    log_df, neg_rho, t75 = log_df.to(ratio.device), neg_rho.to(ratio.device), t75.to(ratio.device)
    x = (-ratio).to(torch.float64)
    x = torch.where(torch.isfinite(x), x, torch.full_like(x, math.nan))
    i = torch.searchsorted(neg_rho, x.clamp(neg_rho[0], neg_rho[-1])).clamp(1, len(log_df) - 1)
    w = ((x - neg_rho[i - 1]) / (neg_rho[i] - neg_rho[i - 1])).clamp(0.0, 1.0)
    nu = log_df[i - 1].lerp(log_df[i], w).exp()
    t = t75[i - 1].lerp(t75[i], w)
    bad = ~torch.isfinite(x)
    nu = torch.where(bad, torch.full_like(nu, _DF_START[2]), nu)
    t = torch.where(bad, torch.full_like(t, _T75_DEFAULT), t)
    return nu.to(ratio.dtype), t.to(ratio.dtype)


class Normal(Family):
    """Normal (Gaussian) family ``N(loc, scale²)``."""

    name = "normal"
    params = (_LOC, _SCALE)
    support = "real line"
    torch_name = "Normal"

    def _build(self, p):
        return D.Normal(p["loc"], p["scale"], validate_args=False)

    def _sample(self, rng, p, size):
        return rng.normal(p["loc"], p["scale"], size)

    def _start(self, y):
        return {
            "loc": y.mean(-1),
            "scale": _positive(y.std(-1, correction=0), lambda: _iqr(y) / 1.349),
        }

    def fisher_information(self, **params):
        """Fisher information of (loc, scale): diag(1/σ², 2/σ²) (e.g. Lehmann & Casella, 1998)."""
        return _diag_fisher(
            self, params, lambda p: {"loc": 1 / p["scale"] ** 2, "scale": 2 / p["scale"] ** 2}
        )


class StudentT(Family):
    """Student-t family with degrees of freedom ``df``, location ``loc`` and scale ``scale``."""

    name = "student_t"
    params = (Param("df", "positive", "degrees of freedom"), _LOC, _SCALE)
    support = "real line"
    torch_name = "StudentT"

    def _build(self, p):
        return StudentTDistribution(p["df"], p["loc"], p["scale"], validate_args=False)

    def _sample(self, rng, p, size):
        return p["loc"] + p["scale"] * rng.standard_t(p["df"], size)

    def _start(self, y):
        r"""Quantile estimates from one sort: ``loc`` the median; ``df`` the ν whose tail
        ratio :math:`\rho(\nu) = t_{0.975}(\nu) / t_{0.75}(\nu)` equals the sample's
        :math:`(q_{0.975} - q_{0.025}) / (q_{0.75} - q_{0.25})` (:math:`\rho` decreases from
        ∞ to 2.91, the normal's, as ν grows; ν kept in [1/2, 30], 5 where the IQR is 0);
        ``scale`` = IQR / (2 :math:`t_{0.75}(\nu)`). Consistent for ν <= 30 (sample quantiles
        are; Hyndman & Fan 1996), and 1.6 fewer Newton iterations than a fixed ν = 5 on the
        t(3) data of ``benchmarks/bench_fit.py``. Below 40 observations (fewer than one beyond
        each tail quantile) the tail ratio is mostly noise, and a small ν from it makes the
        likelihood's local maxima in ``loc`` more likely to catch the fit: ν = 5 and
        ``scale`` = IQR / 2 there, as before."""
        lo, q1, med, q3, hi = _quantiles(y, (0.025, 0.25, 0.5, 0.75, 0.975))
        iqr = q3 - q1
        if y.shape[-1] < _DF_START_MIN_N:  # no observation beyond the tail quantiles
            df, t75 = torch.full_like(med, _DF_START[2]), 1.0
        else:
            df, t75 = _t_tail_inverse((hi - lo) / iqr)
        scale = _positive(iqr / (2.0 * t75), lambda: y.std(-1, correction=0))
        return {"df": df, "loc": med, "scale": scale}

    def fisher_information(self, **params):
        r"""Fisher information of (ν, μ, σ) (Lange, Little & Taylor 1989, JASA 84:881-896, with
        their σ² entries converted to the scale σ):

        .. math::
            I_{\nu\nu} = \tfrac14[\psi'(\tfrac\nu2) - \psi'(\tfrac{\nu+1}2)]
                         - \frac{\nu+5}{2\nu(\nu+1)(\nu+3)},\quad
            I_{\mu\mu} = \frac{\nu+1}{(\nu+3)\sigma^2},\quad
            I_{\sigma\sigma} = \frac{2\nu}{(\nu+3)\sigma^2},\quad
            I_{\nu\sigma} = -\frac{2}{(\nu+1)(\nu+3)\sigma},

        and :math:`I_{\nu\mu} = I_{\mu\sigma} = 0`; restricted to the free parameters.
        """
        full = _full_params(self, params)
        nu, s, _ = torch.broadcast_tensors(full["df"], full["scale"], full["loc"])
        zero = torch.zeros_like(nu)
        i_nn = (torch.polygamma(1, nu / 2) - torch.polygamma(1, (nu + 1) / 2)) / 4 - (nu + 5) / (
            2 * nu * (nu + 1) * (nu + 3)
        )
        i_mm = (nu + 1) / ((nu + 3) * s**2)
        i_ss = 2 * nu / ((nu + 3) * s**2)
        i_ns = -2 / ((nu + 1) * (nu + 3) * s)
        info = torch.stack(
            [
                torch.stack([i_nn, zero, i_ns], -1),
                torch.stack([zero, i_mm, zero], -1),
                torch.stack([i_ns, zero, i_ss], -1),
            ],
            -2,
        )
        return _restrict(self, info)


def _restrict(family: Family, info: torch.Tensor) -> torch.Tensor:
    """The block of a full Fisher information matrix belonging to the free parameters."""
    idx = [family.param_names.index(n) for n in family.free]
    return info[..., idx, :][..., :, idx]


class Laplace(Family):
    """Laplace (double exponential) family with location ``loc`` and scale ``scale``."""

    name = "laplace"
    params = (_LOC, _SCALE)
    support = "real line"
    torch_name = "Laplace"

    def _build(self, p):
        return D.Laplace(p["loc"], p["scale"], validate_args=False)

    def _sample(self, rng, p, size):
        return rng.laplace(p["loc"], p["scale"], size)

    def _start(self, y):
        med = _median(y)
        return {
            "loc": med,
            "scale": _positive((y - med.unsqueeze(-1)).abs().mean(-1), y.std(-1, correction=0)),
        }

    def kinks(self, params):
        """The density's kink at y = loc (``|y - loc|`` is not differentiable there)."""
        return [params["loc"]] if "loc" in params else []  # a fixed kink moves with no θ

    def fisher_information(self, **params):
        """Fisher information of (loc, scale): diag(1/b², 1/b²) (Kotz, Kozubowski & Podgórski)."""
        return _diag_fisher(
            self, params, lambda p: {"loc": 1 / p["scale"] ** 2, "scale": 1 / p["scale"] ** 2}
        )


class LogisticFamily(Family):
    """Logistic family with location ``loc`` and scale ``scale`` (variance ``π² s² / 3``)."""

    name = "logistic"
    params = (_LOC, _SCALE)
    support = "real line"
    torch_name = "Logistic"

    def _build(self, p):
        return Logistic(p["loc"], p["scale"], validate_args=False)

    def _sample(self, rng, p, size):
        return rng.logistic(p["loc"], p["scale"], size)

    def _start(self, y):
        return {
            "loc": _median(y),
            "scale": _positive(y.std(-1, correction=0) * math.sqrt(3) / math.pi, lambda: _iqr(y)),
        }

    def fisher_information(self, **params):
        """Fisher information of (loc, scale): diag(1/(3s²), (π²+3)/(9s²)) (JKB 1995, ch. 23)."""
        return _diag_fisher(
            self,
            params,
            lambda p: {
                "loc": 1 / (3 * p["scale"] ** 2),
                "scale": (math.pi**2 + 3) / (9 * p["scale"] ** 2),
            },
        )


class Cauchy(Family):
    """Cauchy family with location ``loc`` and scale ``scale`` (no finite mean)."""

    name = "cauchy"
    params = (_LOC, _SCALE)
    support = "real line"
    torch_name = "Cauchy"

    def _build(self, p):
        return D.Cauchy(p["loc"], p["scale"], validate_args=False)

    def _sample(self, rng, p, size):
        return p["loc"] + p["scale"] * rng.standard_cauchy(size)

    def _start(self, y):
        q1, med, q3 = _quantiles(y, (0.25, 0.5, 0.75))
        return {"loc": med, "scale": _positive((q3 - q1) / 2.0, torch.ones_like(y[..., 0]))}

    def fisher_information(self, **params):
        """Fisher information of (loc, scale): diag(1/(2γ²), 1/(2γ²))."""
        return _diag_fisher(
            self,
            params,
            lambda p: {"loc": 1 / (2 * p["scale"] ** 2), "scale": 1 / (2 * p["scale"] ** 2)},
        )


class Uniform(Family):
    """Continuous uniform family on ``[low, high]``.

    Unconstrained coordinates: ``low`` as is and ``log(high - low)`` (when both are free).
    """

    name = "uniform"
    params = (Param("low", "real", "lower end"), Param("high", "real", "upper end"))
    support_moves = True
    support = "real line (density 0 outside [low, high])"
    torch_name = "Uniform"

    def _build(self, p):
        return ClosedUniform(p["low"], p["high"], validate_args=False)

    def _check_joint(self, p: Mapping[str, torch.Tensor]) -> None:
        if "low" in p and "high" in p and not (p["low"] < p["high"]).all():
            raise ParameterError("uniform needs low < high")

    def _sample(self, rng, p, size):
        return rng.uniform(p["low"], p["high"], size)

    def _start(self, y):
        lo, hi = y.min(-1).values, y.max(-1).values
        pad = _positive(
            (hi - lo) / (y.shape[-1] - 1 if y.shape[-1] > 1 else 1), torch.ones_like(lo)
        )
        return {"low": lo - pad, "high": hi + pad}

    def to_unconstrained(self, params):
        if len(self.free) < 2:
            return self._one_free(params)
        lo = self._check_param("low", params["low"])
        hi = self._check_param("high", params["high"])
        self._check_joint({"low": lo, "high": hi})
        lo, hi = torch.broadcast_tensors(lo, hi)
        return torch.stack([lo, torch.log(hi - lo)], dim=-1)

    def to_natural(self, u):
        if len(self.free) == 2:
            return {"low": u[..., 0], "high": u[..., 0] + torch.exp(u[..., 1])}
        if self.free == ("low",):
            return {"low": self.fixed["high"].to(u) - torch.exp(u[..., 0])}
        if self.free == ("high",):
            return {"high": self.fixed["low"].to(u) + torch.exp(u[..., 0])}
        return {}

    def _one_free(self, params):
        if not self.free:
            return torch.zeros(0, dtype=torch.float64)
        name = self.free[0]
        v = self._check_param(name, params[name])
        gap = self.fixed["high"] - v if name == "low" else v - self.fixed["low"]
        if not (gap > 0).all():
            raise ParameterError("uniform needs low < high")
        return torch.log(gap).unsqueeze(-1)


class Exponential(Family):
    """Exponential family with rate ``rate`` (mean ``1/rate``)."""

    name = "exponential"
    params = (Param("rate", "positive", "rate (1/mean)"),)
    support = "y >= 0"
    torch_name = "Exponential"

    def _in_support(self, y):
        return y >= 0

    def _build(self, p):
        return D.Exponential(p["rate"], validate_args=False)

    def _sample(self, rng, p, size):
        return rng.exponential(1.0 / p["rate"], size)

    def _start(self, y):
        return {"rate": 1.0 / _positive(y.mean(-1), torch.ones_like(y[..., 0]))}

    def fisher_information(self, **params):
        """Fisher information of the rate: 1/λ²."""
        return _diag_fisher(self, params, lambda p: {"rate": 1 / p["rate"] ** 2})


class Gamma(Family):
    """Gamma family with shape ``concentration`` and ``rate`` (mean ``concentration/rate``)."""

    name = "gamma"
    params = (Param("concentration", "positive", "shape α"), Param("rate", "positive", "rate β"))
    support = "y > 0"
    torch_name = "Gamma"

    def _in_support(self, y):
        return y > 0

    def _build(self, p):
        return D.Gamma(p["concentration"], p["rate"], validate_args=False)

    def _sample(self, rng, p, size):
        return rng.gamma(p["concentration"], 1.0 / p["rate"], size)

    def _start(self, y):
        m = y.mean(-1)
        v = _positive(y.var(-1, correction=0), m**2)
        return {"concentration": m**2 / v, "rate": m / v}

    def fisher_information(self, **params):
        """Fisher information of (α, β): [[ψ'(α), -1/β], [-1/β, α/β²]]."""
        full = _full_params(self, params)
        a, b = full["concentration"], full["rate"]
        a, b = torch.broadcast_tensors(a, b)
        info = torch.stack(
            [torch.stack([torch.polygamma(1, a), -1 / b], -1), torch.stack([-1 / b, a / b**2], -1)],
            -2,
        )
        return _restrict(self, info)


def _full_params(family: Family, params) -> dict[str, torch.Tensor]:
    dist = family.distribution(**params)  # validates
    del dist
    out = {k: family._check_param(k, v) for k, v in params.items()}
    out.update(family.fixed)
    return out


def _diag_fisher(family: Family, params, diag) -> torch.Tensor:
    full = _full_params(family, params)
    ref = next(iter(full.values()))
    entries = diag(full)
    free = [torch.as_tensor(entries[n], dtype=ref.dtype, device=ref.device) for n in family.free]
    free = torch.broadcast_tensors(*free)
    return torch.diag_embed(torch.stack(free, -1))
