"""Bad input to ``likelab.estimate.fit`` raises a likelab error that names the problem."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from likelab.errors import (
    DataError,
    LikelabError,
    ParameterError,
    UnknownNameError,
    UnsupportedError,
)
from likelab.estimate import fit

Y = np.random.default_rng(0).normal(size=(5, 20))


@pytest.mark.parametrize(("bad", "word"), [(np.nan, "nan"), (np.inf, "inf"), (-np.inf, "-inf")])
def test_non_finite_observation_is_named_by_its_index(bad, word):
    y = Y.copy()
    y[3, 17] = bad
    with pytest.raises(DataError, match=r"\(3, 17\)") as err:
        fit(y, "normal")
    assert word in str(err.value)
    one = Y[0].copy()
    one[17] = bad
    with pytest.raises(DataError, match=r"\b17\b") as err:
        fit(one, "normal")
    assert word in str(err.value)


def test_first_bad_index_is_named():
    y = Y.copy()
    y[4, 0] = np.nan
    y[2, 9] = np.inf
    with pytest.raises(DataError, match=r"\(2, 9\)"):
        fit(y, "normal")


@pytest.mark.parametrize(
    ("family", "data", "index", "value"),
    [
        ("exponential", [1.0, 0.0, -0.5, 2.0], "2", "-0.5"),
        ("poisson", [0.0, 3.0, 1.5, 2.0], "2", "1.5"),
        ("gamma", [1.0, 2.0, 0.0], "2", "0"),
        ("bernoulli", [0.0, 1.0, 2.0], "2", "2"),
    ],
)
def test_data_outside_the_support(family, data, index, value):
    with pytest.raises(DataError) as err:
        fit(data, family)
    msg = str(err.value)
    assert index in msg and value in msg and "support" in msg and family in msg


def test_too_few_observations_for_the_free_parameters():
    with pytest.raises(DataError, match="student_t") as err:
        fit([0.3, 1.2], "student_t")
    assert "2" in str(err.value) and "3" in str(err.value)
    with pytest.raises(DataError):
        fit(np.ones((4, 2)), "student_t")
    # with df fixed, two observations identify loc and scale: no error
    res = fit([0.3, 1.2], "student_t", fixed={"df": 3.0})
    assert res.free == ("loc", "scale")


def test_unknown_fixed_parameter():
    with pytest.raises(UnknownNameError, match="nu") as err:
        fit(Y, "student_t", fixed={"nu": 3.0})
    assert "df" in str(err.value)  # lists the real parameter names


def test_invalid_fixed_value():
    with pytest.raises(ParameterError, match="scale"):
        fit(Y, "normal", fixed={"scale": -1.0})


def test_unknown_family_and_objective():
    with pytest.raises(UnknownNameError, match="nosuch"):
        fit(Y, "nosuch")
    with pytest.raises(UnknownNameError, match="nosuch"):
        fit(Y, "normal", "nosuch")
    with pytest.raises(UnknownNameError, match="normal"):  # the message lists known families
        fit(Y, "norml")


def test_product_objective_is_refused_with_a_pointer_to_log():
    with pytest.raises(UnsupportedError) as err:
        fit(Y, "normal", "product")
    msg = str(err.value)
    assert "'log'" in msg or '"log"' in msg or " log" in msg
    assert "underflow" in msg


@pytest.mark.parametrize(
    "data",
    [
        np.ones((2, 3, 4)),  # 3-d
        np.array(1.5),  # 0-d
        1.5,  # a bare number
        np.array([]),  # empty
        np.ones((3, 0)),  # R datasets of no observation
        np.ones((0, 3)),  # no dataset
        [],
    ],
    ids=["3d", "0d-array", "scalar", "empty", "3x0", "0x3", "empty-list"],
)
def test_bad_data_shapes(data):
    with pytest.raises(DataError):
        fit(data, "normal")


def test_non_numeric_data():
    with pytest.raises(DataError):
        fit(["a", "b", "c"], "normal")


def test_nothing_to_fit():
    with pytest.raises(LikelabError, match="fixed"):
        fit(Y, "normal:loc=0,scale=1")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"multistart": 0},
        {"multistart": -2},
        {"multistart": 1.5},
        {"max_iter": -1},
        {"start": {"df": 3.0}},  # not a free parameter of normal
        {"start": {"scale": -1.0}},  # outside the domain
        {"start": {"loc": [0.0, 1.0]}},  # 2 values for 5 datasets
        {"dtype": torch.int64},  # fitting needs a floating dtype
        {"seed": -1, "multistart": 3},  # numpy rejects negative seeds
    ],
    ids=lambda k: next(iter(k)) + "=" + repr(next(iter(k.values()))),
)
def test_bad_options_raise_likelab_errors(kwargs):
    with pytest.raises(LikelabError):
        fit(Y, "normal", **kwargs)


def test_every_error_is_a_value_error():
    # LikelabError subclasses ValueError: callers catching ValueError see every bad input.
    with pytest.raises(ValueError):
        fit(Y, "normal", "product")
