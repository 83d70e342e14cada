"""Torch distributions that ``torch.distributions`` lacks."""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch.distributions import Distribution, constraints
from torch.distributions.utils import broadcast_all

__all__ = ["Logistic"]


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
