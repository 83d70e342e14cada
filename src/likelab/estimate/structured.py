r"""Closed-form risk derivatives and sandwich SEs of the non-local built-in rules.

``fit`` differentiates a local rule :math:`S = \varphi(\ell)` in closed form
(:mod:`likelab.estimate.moments`); everything else went through autograd, p + 1 backward passes
over every observation per Newton iteration. Two structures cover the built-in non-local rules.

**Affine in a local term** (the integral rules; :mod:`likelab.objectives.affine`):
:math:`S(\theta, y) = A(\theta) + C(\theta)\,\psi(\ell)`, :math:`\psi = e^{c\ell}` (or
:math:`e^{c\ell} - 1`). With :math:`m = \frac1n\sum_i \psi(\ell_i)` and its gradient and Hessian
from :func:`~likelab.estimate.moments.local_moments` (ψ an
:class:`~likelab.objectives.forms.ExpLinear`, so a fused kernel serves it), and :math:`A, C` with
their θ-derivatives by autograd on the per-dataset parameters alone (O(B), not O(B n)):

.. math::
    R = A + C m,\quad \nabla R = \nabla A + m \nabla C + C \nabla m,\quad
    \nabla^2 R = \nabla^2 A + m \nabla^2 C + \nabla C \nabla m^\top + \nabla m \nabla C^\top
        + C \nabla^2 m.

For the sandwich, the per-observation gradient is
:math:`g_i = \nabla A + \psi_i \nabla C + C \psi'_i \nabla\ell_i = \nabla A + L v_i` with
:math:`v_i = (\psi_i, \psi'_i \nabla\ell_i)` and :math:`L = [\nabla C \mid C I]`, so
:math:`J = \frac1n\sum_i g_i g_i^\top = \nabla A \nabla A^\top + \nabla A (L\bar v)^\top
+ (L\bar v) \nabla A^\top + L\, \overline{v v^\top} L^\top` from the first and second moments of
:math:`v` (``local_moments(..., outer=True)``).

**Scaled** (CRPS and Hyvärinen on location-scale forecasts; :mod:`likelab.objectives.scaled`):
:math:`S = \sigma^a h(z)`, :math:`z = (y - \mu)/\sigma`; the risk's derivatives are means of
:math:`h, h', h''` times powers of σ (formulas there), and of :math:`h`'s derivatives in a shape
parameter where the form gives them (a Student-t's df under the Hyvärinen score):
:math:`S_\nu = \sigma^a h_\nu`, :math:`S_{\nu\mu} = -\sigma^{a-1} h_{\nu z}`,
:math:`S_{\nu\sigma} = \sigma^{a-1}(a h_\nu - z h_{\nu z})`.

Both give the same numbers as autograd of the objective's loss to rounding (tested to 1e-12
relative, value, gradient, Hessian and SEs). Sandwich covariance: White (1982), Econometrica
50:1-25; M-estimation calculus: Stefanski & Boos (2002), Amer. Statist. 56:29-38.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

from likelab.estimate.moments import local_moments, local_value
from likelab.estimate.sandwich import sandwich_from_moments
from likelab.families import Family
from likelab.families.derivatives import log_prob_derivatives
from likelab.families.integrals import log_power_integral_derivatives
from likelab.objectives import Objective
from likelab.objectives.affine import AffineForm, affine_form
from likelab.objectives.scaled import has_scaled_form, scaled_form

__all__ = ["Plan", "plan", "standard_errors", "to_unconstrained"]

_LINKS = {  # θ = h(u) per domain: (h'(u), h''(u)) as functions of θ
    "real": (torch.ones_like, torch.zeros_like),
    "positive": (lambda t: t, lambda t: t),
    "unit": (lambda t: t * (1 - t), lambda t: t * (1 - t) * (1 - 2 * t)),
}


def to_unconstrained(
    fam: Family, natural: Mapping[str, torch.Tensor], g_t: torch.Tensor, h_t: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradient ``(B, p)`` and Hessian ``(B, p, p)`` in the free natural parameters mapped to the
    unconstrained coordinates ``u`` (elementwise links θ_j = h_j(u_j)): chain rule
    ``g_u = g_θ h'``, ``H_u = H_θ h'h'ᵀ + diag(g_θ h'')``."""
    d1, d2 = _link_derivatives(fam, natural)
    g_u = g_t * d1
    p = g_t.shape[-1]
    # entry by entry: broadcasts over (B, p, p) cost ~10x more per element (estimate/small.py)
    c1, c2, gc = d1.unbind(-1), d2.unbind(-1), g_t.unbind(-1)
    rows = []
    for i in range(p):
        row = [h_t[:, i, j] * (c1[i] * c1[j]) for j in range(p)]
        row[i] = row[i] + gc[i] * c2[i]
        rows.append(torch.stack(row, -1))
    return g_u, torch.stack(rows, -2)


def _link_derivatives(fam: Family, natural: Mapping[str, torch.Tensor]):
    """``(h'(u), h''(u))``, each ``(B, p)``, of the free parameters' links θ_j = h_j(u_j)."""
    theta = torch.stack([natural[n] for n in fam.free], -1)
    links = [_LINKS[fam.param(n).domain] for n in fam.free]
    d1 = torch.stack([link[0](theta[..., j]) for j, link in enumerate(links)], -1)
    d2 = torch.stack([link[1](theta[..., j]) for j, link in enumerate(links)], -1)
    return d1, d2


@dataclass(frozen=True)
class Plan:
    """How ``fit`` gets a non-local rule's risk derivatives in closed form on a family.

    ``derivatives(u, y)``: risk ``(B,)``, gradient ``(B, p)``, Hessian ``(B, p, p)`` in the
    unconstrained coordinates, ``y`` of shape ``(B, n)``; ``value(u, y)``: the risk alone, for
    the affine rules (:attr:`has_value`; elsewhere the objective's own risk is as cheap);
    ``covariance(u, y)``: the sandwich covariance ``(B, p, p)`` in the free natural parameters.
    """

    fam: Family
    obj: Objective
    affine: AffineForm | None
    #: the affine rules' local part by the fused kernel (fit decides once per problem)
    fused: bool = False

    def derivatives(self, u: torch.Tensor, y: torch.Tensor, rows: torch.Tensor | None = None):
        """With ``rows``, the datasets are ``y[rows]``."""
        natural = self.fam.to_natural(u)
        if self.affine is not None:
            value, g, h, _ = _affine(
                self.fam, self.affine, natural, y, outer=False, fused=self.fused, rows=rows
            )
        else:
            y = y if rows is None else y[rows]
            value, g, h, _ = _scaled(self.fam, self.obj, natural, y, outer=False)
        g_u, h_u = to_unconstrained(self.fam, natural, g, h)
        return value, g_u, h_u

    @property
    def has_value(self) -> bool:
        """Whether :meth:`value` is cheaper than the objective's own risk."""
        return self.affine is not None

    def value(
        self, u: torch.Tensor, y: torch.Tensor, rows: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The risk ``A + C · mean ψ(ℓ)`` (affine rules only); with ``rows``, of ``y[rows]``."""
        if self.affine is None:
            raise TypeError("only an affine rule has a structured value")
        natural = self.fam.to_natural(u)
        with torch.no_grad():
            a, c = self.affine.coefficients(_dist(self.fam, natural))
        psi = self.affine.psi
        return a + c * local_value(self.fam, natural, y, psi, fused=self.fused, rows=rows)

    def covariance(self, u: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The sandwich formed in the unconstrained coordinates (as autograd's, and better
        conditioned: a Student-t's df on its log scale), mapped to the natural ones by the
        delta method, ``D V_u D`` with ``D = diag(h'(u))``."""
        natural = self.fam.to_natural(u)
        if self.affine is not None:
            _, g, h, j = _affine(self.fam, self.affine, natural, y, outer=True, fused=self.fused)
        else:
            _, g, h, j = _scaled(self.fam, self.obj, natural, y, outer=True)
        _, h_u = to_unconstrained(self.fam, natural, g, h)
        d1, _ = _link_derivatives(self.fam, natural)
        outer_d = d1[:, :, None] * d1[:, None, :]
        return sandwich_from_moments(h_u, j * outer_d, y.shape[-1]) * outer_d


def plan(fam: Family, obj: Objective, y_probe: torch.Tensor) -> Plan | None:
    """A :class:`Plan` for ``obj`` on ``fam``, or ``None`` (autograd then).

    Affine rules need the family's closed-form log-density derivatives
    (:mod:`likelab.families.derivatives`) and elementwise maps to unconstrained coordinates;
    scaled rules need a registered form on the family's distribution type, with every free
    parameter among ``loc``, ``scale`` and the form's shape parameter if it has its derivatives
    (hyvarinen and crps on a Student-t with df free).
    """
    if any(fam.param(n).domain == "simplex" for n in fam.free):
        return None
    if type(fam).to_natural is not Family.to_natural:  # e.g. uniform's coupled (low, high)
        return None
    dist = _dist(fam, fam.start(y_probe.to(torch.float64)), obs=True)
    form = affine_form(obj)
    if form is not None:
        if log_prob_derivatives(dist, y_probe) is None:
            return None
        return Plan(fam, obj, form)
    if has_scaled_form(obj, type(dist)):
        form = scaled_form(obj, dist)
        if set(fam.free) <= {"loc", "scale"} | ({form.shape} if form.h_shape else set()):
            return Plan(fam, obj, None)
    return None


# ---------------------------------------------------------------------- pieces
def _dist(fam: Family, natural: Mapping[str, torch.Tensor], obs: bool = False):
    """The family at per-dataset parameters ``(B,)`` (``obs``: with a trailing axis of 1)."""
    if obs:
        natural = {k: v.reshape(*v.shape, 1) for k, v in natural.items()}
    return fam.distribution_unchecked(natural)


def _coefficient_derivatives(fam: Family, form: AffineForm, natural: Mapping[str, torch.Tensor]):
    """``(A, ∇A, ∇²A), (C, ∇C, ∇²C)`` in the free natural parameters: by the chain rule from
    the closed-form derivatives of ``L = log ∫ f^k`` where the form and the family have them
    (:func:`_coefficients_by_chain_rule`), else by autograd on the per-dataset parameters
    ``(B, p)`` (independent rows: one backward pass of the sum gives every gradient, p more every
    Hessian). A derivative that is identically zero (a constant coefficient, or one linear in
    the parameters) is ``None``: the caller skips its terms."""
    closed = _coefficients_by_chain_rule(fam, form, natural)
    if closed is not None:
        return closed
    b, p = next(iter(natural.values())).shape[0], fam.n_free
    with torch.enable_grad():
        theta = torch.stack([natural[n].detach() for n in fam.free], -1).requires_grad_(True)
        a, c = form.coefficients(_dist(fam, {n: theta[:, j] for j, n in enumerate(fam.free)}))
        out = []
        for t in (a.expand(b), c.expand(b)):
            if not t.requires_grad:
                out.append((t.detach(), None, None))
                continue
            (g,) = torch.autograd.grad(t.sum(), theta, create_graph=True, allow_unused=True)
            if g is None or not g.requires_grad:
                out.append((t.detach(), None if g is None else g.detach(), None))
                continue
            rows = []
            for j in range(p):
                (hj,) = torch.autograd.grad(
                    g[:, j].sum(), theta, retain_graph=True, allow_unused=True
                )
                rows.append(theta.new_zeros(b, p) if hj is None else hj)
            out.append((t.detach(), g.detach(), torch.stack(rows, 1).detach()))
    return out[0], out[1]


def _coefficients_by_chain_rule(fam: Family, form: AffineForm, natural: Mapping[str, torch.Tensor]):
    r"""The coefficients' derivatives where they are functions :math:`g` of
    :math:`L = \log\int f^k` alone (``form.of_log_integral``) and the family's distribution has
    closed-form derivatives of L
    (:func:`~likelab.families.integrals.log_power_integral_derivatives`), else ``None``:
    :math:`\nabla g = g'(L)\nabla L`,
    :math:`\nabla^2 g = g''(L)\nabla L\nabla L^\top + g'(L)\nabla^2 L`, with :math:`g', g''`
    by autograd in the one variable L. The values are ``form.coefficients``' own (both are
    ``g(log ∫ f^k)``), so that a line search compares like with like. Autograd through the
    special functions of L (a Student-t's ``lgamma`` series, twice) cost more than the fused
    kernel's pass over every observation."""
    if form.power is None or form.of_log_integral is None:
        return None
    dist = _dist(fam, natural)
    got = log_power_integral_derivatives(dist, form.power)
    if got is None:
        return None
    log_i, dl, d2l = got
    free = fam.free
    b = next(iter(natural.values())).shape[0]
    like = log_i.reshape(b)
    zero = torch.zeros_like(like)
    grad_l = [dl[n].reshape(b) if n in dl else None for n in free]
    hess_l = [
        [d2l.get((m, n), d2l.get((n, m))) for n in free] for m in free
    ]  # None where identically zero
    if all(g is None for g in grad_l) and all(h is None for row in hess_l for h in row):
        grad_l = None  # L does not depend on the free parameters (a location alone)
    with torch.enable_grad():
        x = like.detach().requires_grad_(True)
        outs = form.of_log_integral(x)  # the values of form.coefficients(dist), bit for bit
        result = []
        for t in outs:
            value = t.reshape(b).detach()
            if grad_l is None or not t.requires_grad:
                result.append((value, None, None))
                continue
            (g1,) = torch.autograd.grad(t.sum(), x, create_graph=True)
            if g1.requires_grad:
                (g2,) = torch.autograd.grad(g1.sum(), x, retain_graph=True)
            else:
                g2 = zero
            g1, g2 = g1.detach(), g2.detach()
            cols = [zero if g is None else g for g in grad_l]
            grad = torch.stack([g1 * c for c in cols], -1)
            rows = []
            for i in range(len(free)):
                row = []
                for j in range(len(free)):
                    entry = g2 * (cols[i] * cols[j])
                    h = hess_l[i][j]
                    row.append(entry if h is None else entry + g1 * h.reshape(b))
                rows.append(torch.stack(row, -1))
            result.append((value, grad, torch.stack(rows, -2)))
    return result[0], result[1]


def _affine(
    fam: Family,
    form: AffineForm,
    natural,
    y: torch.Tensor,
    outer: bool,
    fused: bool | None = False,
    rows: torch.Tensor | None = None,
):
    """Risk, gradient, Hessian (and J, the mean of g_i g_iᵀ, if ``outer``) in the free natural
    parameters of ``A + C · mean ψ``."""
    (a, ga, ha), (c, gc, hc) = _coefficient_derivatives(fam, form, natural)
    m = local_moments(fam, natural, y, form.psi, outer=outer, fused=fused, rows=rows)
    cc = c[:, None]
    value = a + c * m.value
    grad = cc * m.grad
    hess = cc[..., None] * m.hess
    if ga is not None:
        grad = grad + ga
    if ha is not None:
        hess = hess + ha
    if gc is not None:
        grad = grad + m.value[:, None] * gc
        cross = gc[:, :, None] * m.grad[:, None, :]
        hess = hess + cross + cross.transpose(-1, -2)
    if hc is not None:
        hess = hess + m.value[:, None, None] * hc
    j = None
    if outer:
        p = m.grad.shape[-1]
        zeros = m.grad.new_zeros(m.grad.shape)
        ga = zeros if ga is None else ga
        gc = zeros if gc is None else gc
        eye = torch.eye(p, dtype=m.grad.dtype, device=m.grad.device)
        lmat = torch.cat([gc[:, :, None], cc[..., None] * eye], -1)  # (B, p, p + 1)
        vbar = torch.cat([m.value[:, None], m.grad], -1)  # (B, p + 1)
        lv = (lmat @ vbar[..., None]).squeeze(-1)
        mixed = ga[:, :, None] * lv[:, None, :]
        j = (
            ga[:, :, None] * ga[:, None, :]
            + mixed
            + mixed.transpose(-1, -2)
            + lmat @ m.outer @ lmat.transpose(-1, -2)
        )
    return value, grad, hess, j


def _scaled(fam: Family, obj: Objective, natural, y: torch.Tensor, outer: bool):
    """Risk, gradient, Hessian (and J if ``outer``) of ``mean σ^a h(z)`` in the free natural
    parameters (among loc, scale and the form's shape parameter)."""
    form = scaled_form(obj, _dist(fam, natural, obs=True))
    sig = form.scale.reshape(-1, 1)
    z = (y - form.loc) / form.scale
    h0, h1, h2, hs = form.h(z)
    a = form.power
    if hs is None:
        hs = a * h0 - z * h1

    def mean(t: torch.Tensor) -> torch.Tensor:
        return t.expand_as(z).mean(-1)

    s_a, s_a1, s_a2 = (sig**a).squeeze(-1), (sig ** (a - 1.0)).squeeze(-1), (sig ** (a - 2.0))
    s_a2 = s_a2.squeeze(-1)
    m0, m1 = mean(h0), mean(h1)
    zh2 = z * h2
    per_obs = {"loc": -(sig ** (a - 1.0)) * h1, "scale": sig ** (a - 1.0) * hs}
    hess = {
        ("loc", "loc"): s_a2 * mean(h2),
        ("loc", "scale"): s_a2 * ((1.0 - a) * m1 + mean(zh2)),
        ("scale", "scale"): s_a2 * mean(z * zh2),
    }
    if a != 1.0:  # terms that vanish for the CRPS (a = 1)
        hess["scale", "scale"] = hess["scale", "scale"] + s_a2 * (a - 1.0) * (
            a * m0 - 2.0 * mean(z * h1)
        )
    if (
        form.shape in fam.free
    ):  # S_ν = σ^a h_ν, S_νμ = -σ^(a-1) h_νz, S_νσ = σ^(a-1)(a h_ν - z h_νz)
        hn, hnn, hnz = form.h_shape(z)
        per_obs[form.shape] = sig**a * hn
        mn = mean(hn)
        hess[form.shape, form.shape] = s_a * mean(hnn)
        hess[form.shape, "loc"] = -s_a1 * mean(hnz)
        hess[form.shape, "scale"] = s_a1 * (a * mn - mean(z * hnz))

    def entry(k: str, m: str) -> torch.Tensor:
        return hess[k, m] if (k, m) in hess else hess[m, k]

    free = fam.free
    value = s_a * m0
    grad = torch.stack([mean(per_obs[k]) for k in free], -1)
    h_mat = torch.stack([torch.stack([entry(k, m) for m in free], -1) for k in free], -2)
    j = None
    if outer:
        g = [per_obs[k].expand_as(z) for k in free]
        j = torch.stack([torch.stack([(gk * gm).mean(-1) for gm in g], -1) for gk in g], -2)
    return value, grad, h_mat, j


def standard_errors(
    plan: Plan, u: torch.Tensor, y: torch.Tensor, chunk: int
) -> dict[str, torch.Tensor]:
    """Sandwich SEs of the free natural parameters (:meth:`Plan.covariance`), ``chunk``
    datasets at a time."""
    covs = [
        plan.covariance(u[i : i + chunk], y[i : i + chunk]) for i in range(0, u.shape[0], chunk)
    ]
    var = torch.diagonal(torch.cat(covs), dim1=-2, dim2=-1)
    sd = var.clamp(min=0).sqrt().where(torch.isfinite(var), var)
    return {name: sd[:, j] for j, name in enumerate(plan.fam.free)}
