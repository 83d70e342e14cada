"""Torch distributions that ``torch.distributions`` lacks."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import ClassVar

import torch
from torch.distributions import Chi2, Distribution, constraints
from torch.distributions import StudentT as _TorchStudentT
from torch.distributions import Uniform as _TorchUniform
from torch.distributions.utils import broadcast_all

__all__ = [
    "ClosedUniform",
    "Logistic",
    "StudentT",
    "digamma_half_difference",
    "lgamma_half_difference",
    "trigamma_half_difference",
]


def once_per_value(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """``fn(x)`` for an elementwise ``fn``, computed on one element when ``x`` is a single value
    broadcast to a shape (every stride 0: a fixed parameter expanded to a batch of
    observations, e.g. a Student-t's ``df`` beside per-node locations), then expanded back; as
    ``fn(x)`` otherwise. Same values and derivatives, without evaluating costly special functions
    (``lgamma``) once per element."""
    if x.dim() > 0 and x.numel() > 1 and all(st == 0 for st in x.stride()):
        return fn(x[(0,) * x.dim()]).expand(x.shape)
    return fn(x)


def lgamma_half_difference(x: torch.Tensor) -> torch.Tensor:
    r""":math:`\log\Gamma(x + \tfrac12) - \log\Gamma(x)` without cancellation.

    Direct ``lgamma`` differences lose about ``eps * x log x`` absolutely (4e-6 at x = 1e9); for
    x >= 30 the asymptotic series :math:`\tfrac12\log x - \tfrac1{8x} + \tfrac1{192x^3}
    - \tfrac1{640x^5} + \tfrac{17}{14336x^7}` (from Stirling's series; checked against mpmath to
    2e-16 for x >= 30) is used instead.
    """
    big = x >= 30
    xs = torch.where(big, x, torch.full_like(x, 30.0))
    r = 1 / xs
    r2 = r * r
    series = 0.5 * torch.log(xs) - r * (0.125 - r2 * (1 / 192 - r2 * (1 / 640 - r2 * (17 / 14336))))
    xd = torch.where(big, torch.ones_like(x), x)
    direct = torch.lgamma(xd + 0.5) - torch.lgamma(xd)
    return torch.where(big, series, direct)


def digamma_half_difference(x: torch.Tensor) -> torch.Tensor:
    r""":math:`\psi(x + \tfrac12) - \psi(x)` without cancellation: the derivative of
    :func:`lgamma_half_difference`, i.e. :math:`\tfrac1{2x} + \tfrac1{8x^2} - \tfrac1{64x^4}
    + \tfrac1{128x^6} - \tfrac{17}{2048x^8}` for x >= 30 (checked against mpmath to 2e-15
    relative), direct ``digamma`` below."""
    big = x >= 30
    r = 1 / torch.where(big, x, torch.full_like(x, 30.0))
    r2 = r * r
    series = r * (0.5 + r * (0.125 - r2 * (1 / 64 - r2 * (1 / 128 - r2 * (17 / 2048)))))
    xd = torch.where(big, torch.ones_like(x), x)
    direct = torch.digamma(xd + 0.5) - torch.digamma(xd)
    return torch.where(big, series, direct)


def trigamma_half_difference(x: torch.Tensor, *, recurrence: bool = False) -> torch.Tensor:
    r""":math:`\psi'(x + \tfrac12) - \psi'(x)` without cancellation: the derivative of
    :func:`digamma_half_difference`, i.e. :math:`-\tfrac1{2x^2} - \tfrac1{4x^3} + \tfrac1{16x^5}
    - \tfrac3{64x^7} + \tfrac{17}{256x^9}` for x >= 30 (the derivative of that series; checked
    against mpmath to 1e-13 relative).

    Below 30, by default ``torch.polygamma(1, ·)``, which is off by up to 3.1e-10 relative for x
    in [0.5, 29] but is exactly what autograd uses for the second derivative of ``lgamma``: the
    closed-form Hessians that are tested against autograd to 1e-12 use it. ``recurrence=True``
    gives 1e-13 instead, for derivatives that have no autograd twin (the t CDF's in its degrees
    of freedom): 30 steps of :math:`\psi'(x) = \psi'(x + 1) + 1/x^2` (Abramowitz & Stegun
    6.4.6), then the series at x + 30; every term is negative, so nothing cancels."""
    big = x >= 30
    r = 1 / torch.where(big, x, x + 30.0 if recurrence else torch.full_like(x, 30.0))
    r2 = r * r
    series = -r2 * (0.5 + r * (0.25 - r2 * (1 / 16 - r2 * (3 / 64 - r2 * (17 / 256)))))
    xd = torch.where(big, torch.ones_like(x), x)
    if recurrence:
        near = torch.zeros_like(x)
        for k in range(30):
            a, b = xd + k, xd + (k + 0.5)
            near = near + (1.0 / (b * b) - 1.0 / (a * a))
        return torch.where(big, series, series + near)
    direct = torch.polygamma(1, xd + 0.5) - torch.polygamma(1, xd)
    return torch.where(big, series, direct)


def _log_t_constant(df: torch.Tensor) -> torch.Tensor:
    """log(√(νπ) Γ(ν/2) / Γ((ν+1)/2)): the Student-t density's normaliser without the scale."""
    return 0.5 * df.log() + 0.5 * math.log(math.pi) - lgamma_half_difference(0.5 * df)


class StudentT(_TorchStudentT):
    """``torch.distributions.StudentT`` with a log-density accurate at large ``df``.

    torch forms ``lgamma((df+1)/2) - lgamma(df/2)`` by cancellation, off by ~1e-9 at
    df = 2e6 and ~1e-6 at df = 5e9; fits of normal-looking samples, whose likelihood is maximised
    as df -> infinity, live there. :func:`lgamma_half_difference` removes the cancellation.
    """

    def __init__(self, df, loc=0.0, scale=1.0, validate_args=None) -> None:
        # As torch's, but the inner chi-square is built without argument validation: ``df`` is
        # validated here when asked for. torch's own builds it validating by default, which
        # costs a check per construction and, inside a compiled kernel, a graph break (TorchDynamo
        # does not trace ``constraints.is_dependent``): five graphs instead of one.
        self.df, self.loc, self.scale = broadcast_all(df, loc, scale)
        self._chi2 = Chi2(self.df, validate_args=False)
        Distribution.__init__(self, self.df.size(), validate_args=validate_args)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        y = (value - self.loc) / self.scale
        z = self.scale.log() + once_per_value(_log_t_constant, self.df)
        return -0.5 * (self.df + 1.0) * torch.log1p(y**2.0 / self.df) - z

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(StudentT, _instance)
        return super().expand(batch_shape, _instance=new)


class Logistic(Distribution):
    r"""The logistic distribution with location ``loc`` and scale ``scale``.

    .. math:: f(y) = \frac{e^{-z}}{s (1 + e^{-z})^2}, \quad z = (y - \mu)/s,
              \qquad F(y) = \sigma(z).

    Reference: Johnson, Kotz & Balakrishnan (1995), *Continuous Univariate Distributions*, vol. 2,
    ch. 23.
    """

    arg_constraints: ClassVar = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.real
    has_rsample = True

    def __init__(self, loc, scale, validate_args=None):
        self.loc, self.scale = broadcast_all(loc, scale)
        super().__init__(self.loc.shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(Logistic, _instance)
        batch_shape = torch.Size(batch_shape)
        new.loc = self.loc.expand(batch_shape)
        new.scale = self.scale.expand(batch_shape)
        super(Logistic, new).__init__(batch_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @property
    def mean(self):
        return self.loc

    @property
    def mode(self):
        return self.loc

    @property
    def variance(self):
        return self.scale.pow(2) * (math.pi**2 / 3)

    def rsample(self, sample_shape=torch.Size()):
        shape = self._extended_shape(sample_shape)
        finfo = torch.finfo(self.loc.dtype)
        u = torch.rand(shape, dtype=self.loc.dtype, device=self.loc.device)
        u = u.clamp(finfo.tiny, 1 - finfo.eps)
        return self.icdf(u)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        z = (value - self.loc) / self.scale
        # -z - 2 log(1 + e^{-z}) = 2 log σ(z) - z; logsigmoid is exact where softplus's
        # linear shortcut (threshold 20) would be off by ~e^{-20}.
        return 2 * torch.nn.functional.logsigmoid(z) - z - self.scale.log()

    def cdf(self, value):
        return torch.sigmoid((value - self.loc) / self.scale)

    def icdf(self, value):
        return self.loc + self.scale * torch.logit(value)

    def entropy(self):
        return self.scale.log() + 2


class ClosedUniform(_TorchUniform):
    r"""The uniform distribution on the *closed* interval :math:`[low, high]`.

    ``torch.distributions.Uniform`` gives density 0 at ``high`` (its ``log_prob`` tests
    ``value < high``). likelab's uniform family has support :math:`[low, high]`, so that the
    maximum-likelihood fit of data is attained, at :math:`(\min y, \max y)` (with the half-open
    interval the supremum would not be attained). Everything else (cdf, ∫f^k, CRPS, sampling) is
    the parent's: a single point has probability 0.
    """

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        inside = (self.low <= value) & (value <= self.high)
        return torch.log(inside.type_as(self.low)) - torch.log(self.high - self.low)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(ClosedUniform, _instance)
        return super().expand(batch_shape, _instance=new)
