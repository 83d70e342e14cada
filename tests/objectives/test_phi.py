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


@pytest.mark.parametrize("gamma", [0.0, 0.5, 1.0, 1.5, 2.0, 3.0])
def test_focal_phi_matches_the_loss_on_each_side_of_certainty(gamma):
    """focal: S = -(1 - f)_+^γ ℓ. Below ℓ = 0 (f < 1) φ, φ', φ'' equal the loss and autograd;
    above, where the weight is clamped to 0, all three are 0 (autograd gives 0·inf = nan
    there for γ < 1, a one-sided artefact of the clamp). γ = 0 is the log score everywhere."""
    obj = get_objective(f"focal:gamma={gamma}")
    below = torch.linspace(-8, -1e-3, 31, dtype=torch.float64)
    above = torch.linspace(1e-3, 3, 7, dtype=torch.float64)
    ell = torch.cat([below, above]).requires_grad_(True)
    phi, d1, d2 = obj.phi(ell)
    loss = obj.fn(_LogF(ell), None, **obj.hyper)
    (g,) = torch.autograd.grad(loss.sum(), ell, create_graph=True)
    h = torch.autograd.grad(g.sum(), ell)[0] if g.requires_grad else torch.zeros_like(g)
    k = below.numel() if gamma > 0 else ell.numel()
    torch.testing.assert_close(phi, loss, rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(d1[:k], g[:k], rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(d2[:k], h[:k], rtol=1e-13, atol=1e-13)
    if gamma > 0:
        assert torch.all(torch.stack([phi[k:], d1[k:], d2[k:]]) == 0)


@pytest.mark.parametrize("spec", ["quadratic", "crps", "hyvarinen", "dpd"])
def test_non_phi_objectives_say_so(spec):
    assert get_objective(spec).phi(torch.zeros(2)) is None
