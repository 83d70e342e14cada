"""``fit_objectives``: a comparison that always finishes. An objective that cannot be fitted is
a ``FitFailure`` row with the reason ``fit`` raises for it alone; what all objectives share
raises up front; the single-objective ``fit`` still raises."""

import numpy as np
import pytest

from likelab.errors import (
    DataError,
    LikelabError,
    ParameterError,
    UnsupportedError,
    UserContractError,
)
from likelab.estimate import FitFailure, FitResult, fit, fit_objectives


@pytest.fixture
def counts():
    return np.random.default_rng(21).poisson(2.5, 60)


def test_failures_are_rows_and_the_others_equal_their_own_fits(counts):
    cmp = fit_objectives(counts, "poisson", ["log", "hyvarinen", "product", "crps"])
    kinds = [type(f).__name__ for f in cmp.fits]
    assert kinds == ["FitResult", "FitFailure", "FitFailure", "FitResult"]
    assert [f.objective for f in cmp.fits] == ["log", "hyvarinen", "product", "crps"]
    for f in cmp.fits:
        if isinstance(f, FitFailure):  # the reason is the error fit raises for it alone
            with pytest.raises(LikelabError) as info:
                fit(counts, "poisson", f.objective)
            assert f.reason == " ".join(str(info.value).split())
            assert f.to_dict() == {"objective": f.objective, "error": f.reason}
        else:
            alone = fit(counts, "poisson", f.objective)
            assert f.params == alone.params and f.se == alone.se and f.value == alone.value
    assert cmp.fits[0].params["rate"] == pytest.approx(counts.mean(), rel=1e-10)
    assert [f.objective for f in cmp.failures] == ["hyvarinen", "product"]
    assert cmp.ok is False and cmp.unconverged == []
    d = cmp.to_dict()
    assert d["family"] == "poisson" and d["n"] == 60 and len(d["fits"]) == 4
    assert d["fits"][1] == {"objective": "hyvarinen", "error": cmp.fits[1].reason}


def test_a_user_objective_that_raises_on_these_data_is_a_row(counts):
    def big_data_only(dist, y):  # fine on likelab's small probe, raises on the 60 counts
        if y.shape[-1] > 20:
            raise ZeroDivisionError("boom")
        return -dist.log_prob(y)

    cmp = fit_objectives(counts, "poisson", [big_data_only, "log"])
    assert isinstance(cmp.fits[0], FitFailure) and "ZeroDivisionError: boom" in cmp.fits[0].reason
    assert isinstance(cmp.fits[1], FitResult) and cmp.fits[1].converged is True


def test_a_user_objective_broken_whatever_the_data_is_bad_input(counts):
    def always(dist, y):  # fails on likelab's probe: a broken contract, as for a study
        raise ZeroDivisionError("boom")

    with pytest.raises(UserContractError, match="ZeroDivisionError"):
        fit_objectives(counts, "poisson", ["log", always])


def test_a_risk_without_minimum_is_an_unconverged_fit_not_a_failure():
    y = np.random.default_rng(4).normal(0.0, 1.0, 40)
    cmp = fit_objectives(y, "normal", ["log", "linear"])
    assert cmp.failures == [] and [f.objective for f in cmp.unconverged] == ["linear"]
    assert cmp.ok is False and cmp.fits[1].converged is False
    assert np.isnan(cmp.fits[1].se["scale"]) and "did not converge" in cmp.fits[1].se_reason


def test_what_every_objective_shares_raises_before_any_fit(counts):
    with pytest.raises(LikelabError, match="nope"):
        fit_objectives(counts, "poisson", ["log", "nope"])
    with pytest.raises(DataError):
        fit_objectives([0.5, -1.0, 2.0], "poisson", ["log", "crps"])
    with pytest.raises(ParameterError, match="multistart"):
        fit_objectives(counts, "poisson", ["log"], multistart=0)
    with pytest.raises(ParameterError, match="no objectives"):
        fit_objectives(counts, "poisson", [])
    with pytest.raises(UnsupportedError):  # one objective alone: fit itself still raises
        fit(counts, "poisson", "hyvarinen")


def test_batched_data_keep_arrays_in_a_comparison(counts):
    y = np.stack([counts, counts[::-1] + 1])
    cmp = fit_objectives(y, "poisson", ["log", "hyvarinen"])
    assert cmp.fits[0].params["rate"].shape == (2,) and isinstance(cmp.fits[1], FitFailure)


def test_progress_is_monotone_and_ends_at_the_number_of_objectives(counts):
    seen = []
    fit_objectives(
        counts, "poisson", ["log", "hyvarinen", "crps"], multistart=3,
        on_progress=lambda done, total: seen.append((done, total)),
    )  # fmt: skip
    assert seen[-1] == (3, 3) and all(t == 3 for _, t in seen)
    done = [d for d, _ in seen]
    assert done == sorted(done) and 0 < sum(0 < d < 1 for d in done)  # within the first fit


def test_fit_reports_progress_of_its_batched_newton():
    y = np.random.default_rng(9).standard_t(4.0, size=(5, 80))
    seen = []
    fit(y, "student_t", multistart=4, on_progress=lambda d, t: seen.append((d, t)))
    assert {t for _, t in seen} == {20}  # 4 starts x 5 datasets
    assert [d for d, _ in seen] == sorted(d for d, _ in seen) and seen[-1] == (20, 20)
