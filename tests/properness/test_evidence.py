"""No verdict without evidence: heavy tails, flat strict minima, non-finite scores, unresolvable
truths and settings too large to hold (issue 12, items 3, 4 and 8, and the size guard).

Every case here uses data other than the issue's reproductions.
"""

import math

import pytest
import torch
from tests.cli_support import run

from likelab._budget import memory_limit
from likelab.errors import LikelabError, ParameterError
from likelab.properness import (
    UNDETERMINED,
    VERDICTS,
    check_classes,
    check_density,
    classes_cost,
    truth_mass,
)
from likelab.properness import classes as classes_module
from likelab.properness.classes import expected_class_score

# ------------------------------------------------------------------ 3: Hyvärinen, heavy tails


@pytest.mark.parametrize(
    "truth",
    ["student_t:df=1.2,loc=0.5,scale=2", "cauchy:loc=-2,scale=3"],
)
def test_hyvarinen_under_heavy_tails_converges_back_to_the_truth(truth):
    v = check_density("hyvarinen", truth, starts=3)
    reasons = [s["reason"] for s in v.details["starts"]]
    # every start converged: the verdict rests on them, not on an empty set
    assert all(r in ("gtol", "ftol", "xtol") for r in reasons), reasons
    assert v.details["returned"] == f"{len(reasons)} of {len(reasons)} starts converged"
    assert v.verdict == "strictly proper" and v.distance < 1e-3
    assert math.isfinite(v.at_truth) and abs(v.gap) <= 1e-9 * (1 + abs(v.at_truth))


def test_no_converged_start_is_undetermined_not_a_verdict(monkeypatch):
    # force every start to fail as the Hyvärinen score did in the tails: no verdict may follow
    import likelab.properness.density as density

    real = density.newton_minimize

    def failing(*args, **kwargs):
        res = real(*args, **kwargs)
        return type(res)(res.u, res.value, res.n_iter, ["nonfinite"] * len(res.reason))

    monkeypatch.setattr(density, "newton_minimize", failing)
    v = check_density("log", "normal:loc=1,scale=2")
    assert v.verdict == UNDETERMINED and v.agrees_with_claim is None
    assert "none of the 4 starts converged" in v.how and "4 × nonfinite" in v.how
    assert v.to_dict()["verdict"] == UNDETERMINED


# ------------------------------------------------------------------ 4: flat strict minima


@pytest.mark.parametrize(
    ("spec", "k"),
    [
        ("pseudospherical:gamma=5", 4),
        ("pseudospherical:gamma=8", 3),
        # the same fault class in other strictly proper families with strong hyperparameters
        ("power:alpha=6", 5),
        ("gamma:gamma=4", 5),
        ("dpd:beta=4", 3),
    ],
)
def test_flat_but_strict_minima_are_not_ties(spec, k):
    v = check_classes(spec, k)
    assert v.verdict == "strictly proper", (v.how, v.worst_truth, v.optimum, v.gap)
    # the check met flat optima away from the truth and showed each to be a strict minimum
    assert v.details["flat_strict_minima"] > 0


def test_a_flat_but_strict_minimum_is_resolved_where_its_gap_rounds_away():
    # pseudospherical:gamma=8 rises like |p - q|^8 towards a class the truth nearly lacks: the
    # gap at a forecast 0.02 away is at rounding level, its slope there is not
    obj = classes_module.get_objective("pseudospherical:gamma=8")
    q = torch.tensor([[0.55, 0.4498, 2e-4]], dtype=torch.float64)
    p = torch.tensor([[0.5434, 0.4444, 0.0122]], dtype=torch.float64)
    p = p / p.sum()
    gap = expected_class_score(obj, p, q) - expected_class_score(obj, q, q)
    assert 0 <= float(gap) < 1e-9  # within the refutation tolerance: a "tie" by value alone
    assert not bool(classes_module._flat_towards(obj, q, p)[0])


def test_genuine_ties_stay_ties(tmp_path, monkeypatch):
    # the Brier score of the event {y = 0} alone is proper on K classes but not strictly: every
    # forecast with the truth's p_0 ties it, along a flat set
    (tmp_path / "tie_scores.py").write_text(
        "import torch\n"
        "def first_class_brier(dist, y):\n"
        "    p0 = dist.probs[..., 0]\n"
        "    return ((y == 0).to(p0.dtype) - p0) ** 2\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    v = check_classes("tie_scores:first_class_brier", 4, n_truths=10)
    assert v.verdict == "proper", v.how
    assert abs(v.worst_truth[0] - v.optimum[0]) < 1e-6 and v.distance > 1e-3


# ------------------------------------------------------------------ 8: non-finite evidence

BROKEN = (
    "import torch\n"
    "def all_nan(dist, y):\n"
    "    return torch.full_like(dist.log_prob(y), float('nan'))\n"
    "def all_inf(dist, y):\n"
    "    return torch.full_like(dist.log_prob(y), float('inf'))\n"
    "def nan_off_the_mode(dist, y):\n"
    "    lp = dist.log_prob(y)\n"
    "    return torch.where(lp > -0.5, -lp, torch.full_like(lp, float('nan')))\n"
)


@pytest.fixture
def broken(tmp_path, monkeypatch):
    (tmp_path / "broken_scores.py").write_text(BROKEN)
    monkeypatch.syspath_prepend(str(tmp_path))


@pytest.fixture(scope="module")
def defective():
    """The same scores registered as built-ins (no user-contract probe in front of them): a
    defective scoring rule whose non-finite values reach the properness check itself. (As user
    objectives they are refused before any check: test_the_user_probe_refuses_them_first.)"""
    from likelab.objectives import base
    from likelab.objectives.base import Properties, register_objective

    namespace: dict = {}
    exec(BROKEN, namespace)
    for fn in ("all_nan", "nan_off_the_mode"):
        register_objective(
            f"defective_{fn}",
            formula="(non-finite on purpose)",
            reference="test",
            properties=Properties(),
            kind="local",
            replace=True,
        )(namespace[fn])
    yield "defective_"
    for fn in ("all_nan", "nan_off_the_mode"):  # the registry is global: leave it as found
        base._REGISTRY.pop(f"defective_{fn}", None)


def _no_verdict_from(run_check):
    """The check either refuses (a LikelabError) or says "undetermined" with its reason."""
    try:
        v = run_check()
    except LikelabError as exc:
        return str(exc)
    assert v.verdict == UNDETERMINED, (v.verdict, v.how)
    assert v.how.startswith("undetermined: ") and v.agrees_with_claim is None
    return v.how


@pytest.mark.parametrize("name", ["all_nan", "all_inf"])
def test_a_non_finite_user_objective_gets_no_verdict_on_classes(broken, name):
    why = _no_verdict_from(lambda: check_classes(f"broken_scores:{name}", 4, n_truths=5))
    assert "nan" in why or "inf" in why or "finite" in why


@pytest.mark.parametrize("name", ["all_nan", "all_inf"])
def test_a_non_finite_user_objective_gets_no_verdict_on_densities(broken, name):
    why = _no_verdict_from(
        lambda: check_density(f"broken_scores:{name}", "logistic:loc=1,scale=0.5")
    )
    assert "nan" in why or "inf" in why or "finite" in why


def test_the_user_probe_refuses_them_first(broken):
    from likelab.errors import UserContractError

    for name in ("all_nan", "nan_off_the_mode"):
        with pytest.raises(UserContractError, match="where the log score is finite"):
            check_classes(f"broken_scores:{name}", 3, n_truths=5)


def test_partly_non_finite_scores_are_no_evidence_either(defective):
    # finite at the near one-hot forecasts, NaN elsewhere: never "strictly proper"
    v = check_classes(f"{defective}nan_off_the_mode", 3, n_truths=5)
    assert v.verdict in (UNDETERMINED, "improper"), v.how
    if v.verdict == "improper":
        assert math.isfinite(v.gap) and v.gap > 0


@pytest.mark.parametrize(
    "truth",
    ["normal:loc=0,scale=1e-250", "normal:loc=0,scale=1e-200", "normal:loc=5,scale=1e-100"],
)
def test_a_truth_the_quadrature_cannot_resolve_is_refused(truth):
    with pytest.raises(ParameterError, match="cannot be resolved"):
        check_density("linear", truth)


def test_truth_mass_is_one_where_the_truth_is_resolved():
    from likelab.families.dgp import parse_dgp

    for spec in ("normal:loc=0,scale=1e-120", "gamma:concentration=0.5,rate=2", "poisson:rate=4"):
        assert abs(truth_mass(parse_dgp(spec)) - 1) < 1e-9, spec
    # a large Poisson rate: its pmf's own rounding (k log λ ~ 1e4) leaves ~1e-13 unaccounted,
    # which no wider window can recover; neither a "heavy tail" error nor a refusal
    assert abs(truth_mass(parse_dgp("poisson:rate=2500")) - 1) < 1e-9
    assert check_density("log", "poisson:rate=2500").verdict == "strictly proper"
    assert truth_mass(parse_dgp("normal:loc=0,scale=1e-200")) == 0.0  # its variance underflows
    # nodes 3 + 1e-120 x all round to 3: nothing of the density is seen
    assert truth_mass(parse_dgp("normal:loc=3,scale=1e-120")) == 0.0


def test_verdicts_are_one_of_the_documented_values():
    assert VERDICTS == ("strictly proper", "proper", "improper", "undetermined")
    assert check_classes("brier", 2, n_truths=3).verdict in VERDICTS


# ------------------------------------------------------------------ size guard


def test_too_many_classes_are_refused_before_allocating():
    mem, sec = classes_cost(700)
    assert mem > memory_limit() and sec > 3600
    with pytest.raises(ParameterError) as info:
        check_classes("log", 700)
    msg = str(info.value)
    assert "needs about" in msg and "limit" in msg and "use K <=" in msg
    largest = int(msg.rsplit("use K <= ", 1)[1])
    assert classes_cost(largest)[0] <= memory_limit() < classes_cost(largest + 1)[0]


def test_the_budget_decides_and_the_estimate_grows_like_k_cubed(monkeypatch):
    small, big = classes_cost(40)[0], classes_cost(80)[0]
    assert 7 < (big - classes_module._BASE_BYTES) / (small - classes_module._BASE_BYTES) < 9
    monkeypatch.setenv("LIKELAB_MEMORY_LIMIT", str(int(classes_cost(6)[0])))
    with pytest.raises(ParameterError, match=r"set by LIKELAB_MEMORY_LIMIT.*use K <= 6"):
        check_classes("log", 7)
    assert check_classes("log", 6, n_truths=2).verdict == "strictly proper"


def test_cli_refuses_too_many_classes_in_one_line(capsys):
    code, out, err = run(capsys, "properness", "--objectives", "brier", "--classes", "5000")
    assert code == 2 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1 and ("GB" in err or "TB" in err)


def test_cli_json_carries_undetermined_with_its_reason(defective, capsys):
    from tests.cli_support import run_json

    rows = run_json(capsys, "properness", "--objectives", f"{defective}all_nan", "--classes", "3")[
        "results"
    ]
    assert [r["verdict"] for r in rows] == [UNDETERMINED]
    assert rows[0]["how"].startswith("undetermined: ") and rows[0]["agrees_with_claim"] is None
