"""Properness over a forecast family: verdicts against registry claims and closed-form optima."""

import math

import numpy as np
import pytest

from likelab import check_properness
from likelab.errors import LikelabError, ParameterError, UnknownNameError, UnsupportedError
from likelab.objectives import list_objectives
from likelab.properness import check_density

SCORING_RULES = [o for o in list_objectives(include_user=False) if o != "product"]
TRUTHS = [
    "normal:loc=0,scale=1",
    "normal:loc=2,scale=0.5",
    "laplace:loc=0,scale=1",
    "student_t:loc=0,scale=1,df=5",
]
# the pointwise Hyvärinen formula cannot see the Laplace kink's point mass: refused by name
REFUSED = {("hyvarinen", "laplace")}


@pytest.mark.parametrize("truth", TRUTHS)
@pytest.mark.parametrize("name", SCORING_RULES)
def test_every_verdict_agrees_with_the_registry_claim(name, truth):
    family = truth.split(":")[0]
    if (name, family) in REFUSED:
        with pytest.raises(UnsupportedError, match="kink"):
            check_density(name, truth)
        return
    v = check_density(name, truth)
    assert v.claimed is not None
    assert v.verdict == v.claimed, (v.verdict, v.claimed, v.optimum, v.gap, v.how)
    if v.verdict == "strictly proper":
        assert v.distance < 1e-3 and v.gap <= 1e-9 * (1 + abs(v.at_truth))
    else:
        assert v.gap > 1e-9 * (1 + abs(v.at_truth))


@pytest.mark.parametrize("q", [0.3, 0.5, 0.8])
def test_lq_and_gce_optimum_is_the_closed_form_scale(q):
    # E_N(0,1)[N(Y; 0, σ)^a] ∝ σ^-a (1 + a/σ²)^(-1/2) is maximised at σ² = 1 - a: lq:q has
    # a = 1 - q (σ² = q), gce:q has a = q (σ² = 1 - q)
    lq = check_density(f"lq:q={q}", "normal:loc=0,scale=1")
    assert lq.verdict == "improper"
    assert abs(lq.optimum["scale"] - math.sqrt(q)) < 1e-7 and abs(lq.optimum["loc"]) < 1e-7
    assert "sharper than the truth" in lq.how
    gce = check_density(f"gce:q={q}", "normal:loc=0,scale=1")
    assert abs(gce.optimum["scale"] - math.sqrt(1 - q)) < 1e-7


def test_linear_drives_the_scale_to_zero():
    v = check_density("linear", "normal:loc=0,scale=1")
    assert v.verdict == "improper" and v.reason == "edge"
    assert "scale → 0" in v.how and v.optimum["scale"] < 1e-10
    # the infimum: E[-N(Y; 0, σ)] → -φ(0) as σ → 0, against -1/(2√π) at the truth
    assert abs(v.value + 1 / math.sqrt(2 * math.pi)) < 1e-9
    assert abs(v.at_truth + 1 / (2 * math.sqrt(math.pi))) < 1e-14


def test_log_outside_the_family_is_the_kullback_leibler_projection():
    # the KL projection onto the normal family matches moments: t(5) has variance 5/3
    v = check_density("log", "student_t:loc=1,scale=1,df=5", "normal")
    assert v.verdict is None and v.agrees_with_claim is None and v.gap is None
    assert abs(v.optimum["loc"] - 1) < 1e-7 and abs(v.optimum["scale"] - math.sqrt(5 / 3)) < 1e-7
    assert "Kullback-Leibler projection" in v.how
    # a contaminated truth: mean 0.8, variance 0.9·1 + 0.1·1 + 0.9·0.1·8² = 6.76
    v = check_density("log", "0.9 normal:loc=0,scale=1 + 0.1 normal:loc=8,scale=1", "normal")
    assert abs(v.optimum["loc"] - 0.8) < 1e-7 and abs(v.optimum["scale"] - 2.6) < 1e-7
    # a fixed parameter that disagrees with the truth puts it outside the family too
    v = check_density("log", "normal:loc=0,scale=1", "normal:scale=2")
    assert v.verdict is None and abs(v.optimum["loc"]) < 1e-7


def test_robust_rules_under_contamination_match_closed_forms():
    # 10% contamination at 8. log follows it (moments: loc 0.8, scale 2.6, above); dpd:beta
    # keeps loc near 0 but inflates the scale; its expected objective has a closed form:
    # ∫f^(1+β) - (1 + 1/β) E_G f^β with, for f = N(μ, σ²) and G = Σ w_j N(m_j, s_j²),
    # ∫f^(1+β) = (2πσ²)^(-β/2) (1+β)^(-1/2) and E_N(m,s²) f^β = (2πσ²)^(-β/2) (1 + β s²/σ²)^(-1/2)
    # exp(-β (m-μ)² / (2(σ² + β s²))); minimised here by Nelder-Mead to 1e-12.
    from scipy.optimize import minimize

    truth = "0.9 normal:loc=0,scale=1 + 0.1 normal:loc=8,scale=1"
    for beta in (0.5, 1.0):

        def h(x, beta=beta):
            mu, sigma = x[0], math.exp(x[1])
            c = (2 * math.pi * sigma**2) ** (-beta / 2)
            e = sum(
                w
                * (1 + beta / sigma**2) ** -0.5
                * math.exp(-beta * (m - mu) ** 2 / (2 * (sigma**2 + beta)))
                for w, m in ((0.9, 0.0), (0.1, 8.0))
            )
            return c * ((1 + beta) ** -0.5 - (1 + 1 / beta) * e)

        want = minimize(
            h, [0.0, 0.0], method="Nelder-Mead", options={"xatol": 1e-12, "fatol": 1e-15}
        )
        v = check_density(f"dpd:beta={beta}", truth, "normal")
        assert abs(v.optimum["loc"] - want.x[0]) < 1e-6
        assert abs(v.optimum["scale"] - math.exp(want.x[1])) < 1e-6
        assert v.optimum["scale"] > 1.03  # the inflation is real, not an optimiser artefact
    # the gamma-divergence (Fujisawa & Eguchi 2008) is nearly unaffected by a far contamination
    g = check_density("gamma:gamma=0.5", truth, "normal")
    assert abs(g.optimum["loc"]) < 1e-4 and abs(g.optimum["scale"] - 1) < 1e-3


def test_user_objectives_are_judged_like_built_in_ones(tmp_path, monkeypatch):
    (tmp_path / "density_scores.py").write_text(
        "import torch\n"
        "def my_log(dist, y):\n"
        "    return -dist.log_prob(y)\n"
        "def flat(dist, y):\n"
        "    return torch.zeros_like(dist.log_prob(y))\n"
        "def half_linear(dist, y):\n"
        "    return -0.5 * dist.log_prob(y).exp()\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert check_density("density_scores:my_log", "laplace:loc=0,scale=1").verdict == (
        "strictly proper"
    )
    flat = check_density("density_scores:flat", "normal:loc=0,scale=1")
    assert flat.verdict == "proper" and flat.claimed is None and flat.distance > 1e-3
    half = check_density("density_scores:half_linear", "normal:loc=0,scale=1")
    assert half.verdict == "improper" and "scale → 0" in half.how


def test_check_properness_dispatches_to_both_settings():
    assert check_properness("brier").setting == "classes:3"
    assert check_properness("brier", classes=5).setting == "classes:5"
    v = check_properness("brier", truth="normal:loc=0,scale=1")
    assert v.setting == "density" and v.verdict == "strictly proper"
    d = v.to_dict()
    assert d["objective"] == "quadratic" and d["verdict"] == "strictly proper"
    assert set(d) >= {"truth", "family", "optimum", "at_truth", "gap", "how", "claimed"}


def test_results_are_reproducible():
    a = check_density("focal:gamma=2", "student_t:loc=0,scale=1,df=5", seed=3).to_dict()
    b = check_density("focal:gamma=2", "student_t:loc=0,scale=1,df=5", seed=3).to_dict()
    assert a == b


@pytest.mark.parametrize(
    ("kwargs", "error", "fragment"),
    [
        ({"objective": "nope", "truth": "normal:loc=0,scale=1"}, UnknownNameError, "nope"),
        ({"objective": "log", "classes": 1}, ParameterError, "K must be an integer >= 2"),
        (
            {"objective": "log", "truth": "normal:loc=0,scale=1", "family": "exponential"},
            ParameterError,
            "outside the support",
        ),
        (
            {"objective": "log", "truth": "poisson:rate=3", "family": "bernoulli"},
            ParameterError,
            "outside the support",
        ),
        (
            {"objective": "log", "truth": "normal:loc=0,scale=1", "family": "poisson"},
            ParameterError,
            "outside the support",
        ),
        (
            {"objective": "crps", "truth": "cauchy:loc=0,scale=1"},
            UnsupportedError,
            "cannot score cauchy",
        ),
        (
            {"objective": "hyvarinen", "truth": "normal:loc=0,scale=1", "family": "uniform"},
            UnsupportedError,
            "uniform",
        ),
        (
            {"objective": "product", "truth": "normal:loc=0,scale=1"},
            UnsupportedError,
            "batch-level",
        ),
        (
            {"objective": "log", "truth": "0.5 normal:loc=0,scale=1 + 0.5 normal:loc=3,scale=1"},
            ParameterError,
            "name the forecast family",
        ),
        ({"objective": "log", "truth": "normal:loc=0,scale=-1"}, ParameterError, "scale"),
        ({"objective": "log", "truth": "normal:loc=0"}, ParameterError, "scale"),
        (
            {"objective": "log", "truth": "normal:loc=0,scale=1", "family": "normal:loc=0,scale=1"},
            ParameterError,
            "no free parameter",
        ),
        (
            {"objective": "log", "truth": "normal:loc=0,scale=1", "classes": 3},
            ParameterError,
            "not both",
        ),
        ({"objective": "log", "family": "normal"}, ParameterError, "give truth"),
    ],
)
def test_bad_inputs(kwargs, error, fragment):
    obj = kwargs.pop("objective")
    with pytest.raises(error, match=fragment) as info:
        check_properness(obj, **kwargs)
    assert isinstance(info.value, LikelabError)


def test_starts_are_validated():
    with pytest.raises(ParameterError, match="starts"):
        check_density("log", "normal:loc=0,scale=1", starts=0)
    v = check_density("log", "normal:loc=0,scale=1", starts=6)
    assert len(v.details["starts"]) == 6
    assert np.isfinite([s["value"] for s in v.details["starts"]]).all()


# ---------------------------------------------------------------------- truths with atoms
def test_a_point_mass_contamination_gives_the_moment_matching_projection():
    # log score, normal family: the KL projection matches the mixture's mean and variance,
    # 0.1 * 8 = 0.8 and 0.9 * 1 + 0.9 * 0.1 * 64 = 6.66
    v = check_density("log", "0.9 normal:loc=0,scale=1 + 0.1 point:at=8", "normal")
    assert v.verdict is None and "no verdict" in v.how
    assert abs(v.optimum["loc"] - 0.8) < 1e-7
    assert abs(v.optimum["scale"] - math.sqrt(6.66)) < 1e-7


def test_atoms_are_checked_against_the_family_support_exactly():
    # an atom at the boundary 0 of the gamma's y > 0, with a weight no sample would show
    with pytest.raises(ParameterError, match=r"outside the support.*at y = 0:"):
        check_density("log", "0.999999 gamma:concentration=2,rate=1 + 1e-06 point:at=0", "gamma")
    with pytest.raises(ParameterError, match=r"outside the support.*at y = -1:"):
        check_density("log", "point:at=-1", "exponential")
    with pytest.raises(ParameterError, match=r"outside the support.*at y = 2\.5:"):
        check_density("log", "point:at=2.5", "poisson")
    # an atom at an integer is inside the Poisson's support (no nudge off the point): the log
    # score's optimum is the point itself, rate 20
    v = check_density("log", "point:at=20", "poisson")
    assert abs(v.optimum["rate"] - 20.0) < 1e-6
    # no family given: a point mass is no family's member
    with pytest.raises(ParameterError, match="not a member of a family"):
        check_density("log", "point:at=8")
