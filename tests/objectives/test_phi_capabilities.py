"""φ-objectives in every capability: ``phi:-p`` gives the numbers of ``linear`` and ``phi:-l``
those of ``log`` in landscapes, fits, properness (classes and densities), studies (the stored
estimates and the summary), training and the study page; an affine function of ``l`` is judged
strictly proper and a power of ``p`` improper.

The oracle is the built-in rule written by hand (:mod:`likelab.objectives.local`), a code path
the expression parser never touches; equality is exact where the two run the same arithmetic,
to 1e-12 where they sum in another order (``log``'s fused ``cross_entropy``).
"""

from __future__ import annotations

import duckdb
import numpy as np
import pytest
import torch

import likelab
from likelab.families import get_family

PAIRS = [("phi:-p", "linear"), ("phi:-l", "log")]


@pytest.mark.parametrize(("phi", "builtin"), PAIRS)
def test_landscape(phi, builtin):
    from likelab.landscape import evaluate

    y = get_family("laplace").sample(25, seed=41, loc=0.3, scale=0.4)
    one = evaluate(y, "normal:scale=0.2", [phi, builtin], {"loc": np.linspace(-1, 1.5, 51)})
    two = evaluate(
        y, "normal", [phi, builtin], {"loc": np.linspace(-1, 1.5, 11), "scale": [0.1, 0.5, 2]}
    )
    for land in (one, two):
        assert list(land.results) == [phi, builtin]  # the spec is the key
        np.testing.assert_array_equal(land.results[phi].values, land.results[builtin].values)
        assert land.results[phi].local_minima == land.results[builtin].local_minima


@pytest.mark.parametrize(("phi", "builtin"), PAIRS)
@pytest.mark.parametrize(
    ("family", "data"),
    [("normal", ("student_t", {"df": 3.0, "loc": 1.0, "scale": 2.0})), ("poisson", None)],
)
def test_fit(phi, builtin, family, data):
    name, params = data or ("poisson", {"rate": 3.5})
    y = get_family(name).sample((4, 60), seed=42, **params)
    mine, ref = likelab.fit(y, family, phi), likelab.fit(y, family, builtin)
    assert mine.objective == phi
    for key in ref.params:
        np.testing.assert_array_equal(mine.params[key], ref.params[key])
        np.testing.assert_array_equal(mine.se[key], ref.se[key])
    np.testing.assert_array_equal(mine.value, ref.value)
    np.testing.assert_array_equal(mine.converged, ref.converged)
    np.testing.assert_array_equal(mine.reason, ref.reason)


@pytest.mark.parametrize(("phi", "builtin"), PAIRS)
def test_properness_on_classes_and_densities(phi, builtin):
    densities = [
        {"truth": "normal:loc=0.3,scale=1", "family": "normal:scale=1"},  # a density
        {"truth": "poisson:rate=3"},  # a probability mass function
    ]
    for where in ({"classes": 3}, *densities):
        mine = likelab.check_properness(phi, **where)
        ref = likelab.check_properness(builtin, **where)
        assert mine.verdict == ref.verdict
        assert mine.objective == phi
        np.testing.assert_allclose(mine.gap, ref.gap, rtol=1e-12, atol=1e-15)
        if isinstance(ref.optimum, dict):
            for key in ref.optimum:
                np.testing.assert_allclose(mine.optimum[key], ref.optimum[key], rtol=1e-12)
        else:
            np.testing.assert_allclose(mine.optimum, ref.optimum, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(
    ("spec", "verdict"),
    [("phi:-2*l+3", "strictly proper"), ("phi:-p**0.5", "improper"), ("phi:-p/(1+p)", "improper")],
)
def test_affine_in_l_is_strictly_proper_and_a_power_of_p_is_not(spec, verdict):
    # Bernardo (1979): on three or more outcomes only affine functions of log p are proper
    assert likelab.check_properness(spec, classes=3).verdict == verdict


STUDY = """
    name: phi
    seed: 5
    dgps:
      - family: normal
        params: {loc: 0.5, scale: 1.5}
    sample_sizes: [15, 40]
    replicates: 6
    model: {family: normal, estimand: [loc, scale]}
    objectives: [log, linear, "phi:-l", "phi:-p"]
"""


@pytest.fixture(scope="module")
def study_store(tmp_path_factory):
    from tests.cli_support import make_study_store

    return make_study_store(tmp_path_factory.mktemp("phi_study"), STUDY, "phi")[1]


def _stored(store, objective):
    with duckdb.connect(str(store), read_only=True) as con:
        return con.execute(
            "SELECT cell_key, replicate, parameter, estimate, se, value, converged, reason "
            "FROM results WHERE objective = ? ORDER BY cell_key, parameter, replicate",
            [objective],
        ).fetchall()


@pytest.mark.parametrize(("phi", "builtin"), PAIRS)
def test_study_stores_and_summarises_the_same_numbers(study_store, phi, builtin):
    from likelab.study import summarise

    mine, ref = _stored(study_store, phi), _stored(study_store, builtin)
    assert len(mine) == len(ref) == 2 * 2 * 6  # cells x parameters x replicates
    assert mine == ref  # the same bits
    rows = summarise(study_store)
    assert {r["objective"] for r in rows} == {"log", "linear", "phi:-l", "phi:-p"}
    by = {(r["dgp"], r["n"], r["objective"], r["parameter"]): r for r in rows}
    for (dgp, n, objective, parameter), r in by.items():
        if objective != builtin:
            continue
        other = by[(dgp, n, phi, parameter)]
        for key, value in r.items():
            if key in ("objective", "theory_note") or not isinstance(value, float):
                assert key == "objective" or other[key] == value
                continue
            np.testing.assert_allclose(other[key], value, rtol=1e-12, equal_nan=True)


def test_the_study_page_names_the_phi_objectives(study_store, tmp_path):
    from likelab.report import write_study_report

    page = write_study_report(study_store, tmp_path / "page", theory=False).read_text()
    for spec in ("phi:-l", "phi:-p", "linear"):
        assert spec in page


@pytest.mark.parametrize(("phi", "builtin"), PAIRS)
def test_training_gives_the_same_losses(phi, builtin):
    from likelab.classify import compare

    runs = compare(
        "xor:repeat=10,flip=0.2",
        [phi, builtin],
        seeds=1,
        epochs=25,
        model="mlp:6",
        dtype=torch.float64,
    ).runs
    assert [r.objective for r in runs] == [phi, builtin]
    mine, ref = runs
    assert mine.epochs_run == ref.epochs_run == 25
    for a, b in zip(mine.history, ref.history, strict=True):
        np.testing.assert_allclose(a["train_loss"], b["train_loss"], rtol=1e-12)
    for key, value in ref.metrics.items():
        np.testing.assert_allclose(mine.metrics[key], value, rtol=1e-10, atol=1e-12)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize(("phi", "builtin"), PAIRS)
def test_fit_on_cuda(phi, builtin):
    y = get_family("normal").sample((4, 50), seed=43, loc=0.2, scale=1.1)
    mine = likelab.fit(y, "normal", phi, device="cuda")
    ref = likelab.fit(y, "normal", builtin, device="cuda")
    for key in ref.params:
        np.testing.assert_array_equal(mine.params[key], ref.params[key])
        np.testing.assert_array_equal(mine.se[key], ref.se[key])
