"""Local rules written as S = φ(log f): φ, φ', φ'' against the loss itself and autograd."""

import pytest
import torch

from likelab.objectives import get_objective


class _LogF:
    """A stand-in forecast whose log_prob is a given tensor (φ acts on log f only)."""

    def __init__(self, ell):
        self.ell = ell

    def log_prob(self, y):
        return self.ell


@pytest.mark.parametrize(
    "spec",
    [
        "log",
        "linear",
        "lq:q=0.5",
        "lq:q=1",
        "lq:q=2.5",
        "gce:q=0.7",
        "gce:q=1",
        "mae",
        "nll",
        "sum",
    ],
)
def test_phi_and_its_derivatives_match_the_loss(spec):
    obj = get_objective(spec)
    ell = torch.linspace(-8, 3, 23, dtype=torch.float64, requires_grad=True)
    phi, d1, d2 = obj.phi(ell)
    loss = obj.fn(_LogF(ell), None, **obj.hyper)
    (g,) = torch.autograd.grad(loss.sum(), ell, create_graph=True)
    h = torch.autograd.grad(g.sum(), ell)[0] if g.requires_grad else torch.zeros_like(g)
    torch.testing.assert_close(phi, loss, rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(d1, g, rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(d2, h, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("spec", ["focal", "quadratic", "crps", "hyvarinen", "dpd"])
def test_non_phi_objectives_say_so(spec):
    assert get_objective(spec).phi(torch.zeros(2)) is None
