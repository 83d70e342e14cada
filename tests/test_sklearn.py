"""The scikit-learn classifier: what it learns (against scikit-learn's own logistic regression and
likelab's trainer), labels, reproducibility, clone/pickle, Pipeline and GridSearchCV, errors.

scikit-learn's own estimator checks are in test_sklearn_checks.py.
"""

import inspect
import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from likelab.classify import train
from likelab.classify.datasets import Dataset
from likelab.errors import (
    DataError,
    LikelabError,
    ParameterError,
    UnknownNameError,
    UnsupportedError,
)
from likelab.sklearn import ObjectiveClassifier

FAST = {"batch_size": 0, "lr": 0.1, "epochs": 40}


@pytest.fixture(scope="module")
def blobs():
    """Three overlapping Gaussian classes in 2-D (not separable: the MLE is finite)."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    x = rng.normal(size=(300, 2)) + np.array([[0.0, 0.0], [1.2, 0.3], [0.2, 1.4]])[y]
    return x, y


def test_log_with_a_linear_model_is_scikit_learns_unpenalised_logistic_regression(blobs):
    x, y = blobs
    # Both minimise the same convex multinomial NLL; lbfgs at tol 1e-12 and full-batch Adam
    # (gradient norm < 1e-6 after 300 epochs at lr 0.1, measured) agree on the MLE's
    # probabilities to ~1e-6; 1e-5 leaves a margin and is far below what any other objective
    # gives (brier differs by > 1e-3: asserted).
    ref = LogisticRegression(C=np.inf, tol=1e-12, max_iter=100_000).fit(x, y).predict_proba(x)
    opts = {"batch_size": 0, "lr": 0.1, "dtype": "float64", "random_state": 0}
    if "tol" in inspect.signature(train).parameters:
        opts["tol"] = 0.0  # the trainer's stationarity stop off: this test measures the optimum
    clf = ObjectiveClassifier("log", "logistic", epochs=300, **opts).fit(x, y)
    assert np.abs(clf.predict_proba(x) - ref).max() < 1e-5
    brier = ObjectiveClassifier("brier", "logistic", epochs=300, **opts).fit(x, y)
    assert np.abs(brier.predict_proba(x) - ref).max() > 1e-3


def test_an_integer_random_state_is_the_trainers_seed(blobs):
    x, y = blobs
    clf = ObjectiveClassifier("gce:q=0.7", "mlp:8", random_state=5, **FAST).fit(x, y)
    data = Dataset("d", x.astype(np.float32), y, x.astype(np.float32), y, num_classes=3)
    ref = train(
        data, "gce:q=0.7", model="mlp:8", seed=5, eval_every=0, batch_size=len(y), lr=0.1, epochs=40
    )
    with torch.no_grad():
        want = torch.softmax(ref.network(torch.as_tensor(x, dtype=torch.float32)).double(), -1)
    np.testing.assert_array_equal(clf.predict_proba(x), want.numpy())
    assert clf.n_iter_ == ref.epochs_run and len(clf.history_) == ref.epochs_run
    assert clf.objective_ == "gce:q=0.7"
    assert clf.history_[0]["batches"] == 1  # batch_size=0: the whole training set per step


def test_same_random_state_same_fit_and_another_seed_another_fit(blobs):
    x, y = blobs
    kw = {"objective": "log", "model": "mlp:8", "epochs": 10, "batch_size": 100, "lr": 0.05}
    a = ObjectiveClassifier(random_state=1, **kw).fit(x, y).predict_proba(x)
    b = ObjectiveClassifier(random_state=1, **kw).fit(x, y).predict_proba(x)
    c = ObjectiveClassifier(random_state=2, **kw).fit(x, y).predict_proba(x)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-4
    # a RandomState draws the seed: the same state gives the same fit
    d = ObjectiveClassifier(random_state=np.random.RandomState(7), **kw).fit(x, y)
    e = ObjectiveClassifier(random_state=np.random.RandomState(7), **kw).fit(x, y)
    np.testing.assert_array_equal(d.predict_proba(x), e.predict_proba(x))


@pytest.mark.parametrize(
    "labels",
    [np.array(["cat", "dog", "eel"]), np.array([-5, 10, 42])],
)
def test_any_labels_are_classes(blobs, labels):
    x, y = blobs
    # labels[y] is an increasing relabelling of 0, 1, 2: the same classes in the same order,
    # so the same fit as on the integer codes
    coded = ObjectiveClassifier(random_state=0, **FAST).fit(x, y)
    clf = ObjectiveClassifier(random_state=0, **FAST).fit(x, labels[y])
    np.testing.assert_array_equal(clf.classes_, labels)
    np.testing.assert_array_equal(clf.predict_proba(x), coded.predict_proba(x))
    np.testing.assert_array_equal(clf.predict(x), labels[coded.predict(x)])
    assert clf.n_features_in_ == 2
    assert clf.score(x, labels[y]) == pytest.approx(np.mean(clf.predict(x) == labels[y]))


def test_two_string_classes_in_a_pipeline_with_a_scaler():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 200)
    x = np.c_[1000 + 300 * (rng.normal(size=200) + 1.5 * y), rng.normal(size=200)]
    labels = np.array(["ham", "spam"])[y]
    pipe = make_pipeline(StandardScaler(), ObjectiveClassifier(random_state=0, **FAST))
    pipe.fit(x, labels)
    assert set(pipe.predict(x)) == {"ham", "spam"}
    assert pipe.score(x, labels) > 0.7  # Bayes accuracy Φ(0.75) = 0.77 for these classes


def test_grid_search_over_objectives(blobs):
    x, y = blobs
    pipe = make_pipeline(StandardScaler(), ObjectiveClassifier(random_state=0, **FAST))
    grid = GridSearchCV(pipe, {"objectiveclassifier__objective": ["log", "brier"]}, cv=3)
    grid.fit(x, y)
    scores = grid.cv_results_["mean_test_score"]
    assert np.isfinite(scores).all() and (scores > 0.6).all()
    assert grid.best_params_["objectiveclassifier__objective"] in ("log", "brier")
    assert grid.best_estimator_[-1].objective_ in ("log", "quadratic")


def test_get_params_set_params_and_clone(blobs):
    x, y = blobs
    clf = ObjectiveClassifier("brier", "mlp:4", lr=0.2, random_state=3, train_options=None)
    params = clf.get_params()
    assert params["objective"] == "brier" and params["model"] == "mlp:4" and params["lr"] == 0.2
    assert {"epochs", "batch_size", "optimizer", "validation", "patience", "dtype"} <= set(params)
    clf.set_params(objective="log", epochs=5)
    assert clf.objective == "log" and clf.epochs == 5
    clf.fit(x, y)
    twin = clone(clf)
    assert twin.get_params() == clf.get_params()
    assert not hasattr(twin, "network_") and not hasattr(twin, "classes_")
    np.testing.assert_array_equal(twin.fit(x, y).predict_proba(x), clf.predict_proba(x))


def test_constructor_stores_anything_and_fit_validates():
    clf = ObjectiveClassifier("no-such-objective", "resnet", lr=-1.0, dtype="float16")
    assert clf.objective == "no-such-objective" and clf.lr == -1.0 and clf.dtype == "float16"
    x, y = np.zeros((4, 2)), np.array([0, 1, 0, 1])
    with pytest.raises(UnknownNameError, match="no-such-objective"):
        ObjectiveClassifier("no-such-objective").fit(x, y)
    with pytest.raises(UnknownNameError, match="resnet"):
        ObjectiveClassifier(model="resnet").fit(x, y)
    with pytest.raises(ParameterError, match="lr"):
        ObjectiveClassifier(lr=-1.0).fit(x, y)
    with pytest.raises(ParameterError, match="dtype"):
        ObjectiveClassifier(dtype="float16").fit(x, y)
    with pytest.raises(ParameterError, match="random_state"):
        ObjectiveClassifier(random_state="zero").fit(x, y)


def test_the_pickled_fitted_estimator_predicts_the_same(blobs):
    x, y = blobs
    clf = ObjectiveClassifier("brier", "mlp:8", random_state=0, **FAST).fit(x, y)
    back = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(back.predict_proba(x), clf.predict_proba(x))
    np.testing.assert_array_equal(back.classes_, clf.classes_)


def test_early_stopping_and_extra_trainer_options(blobs):
    x, y = blobs
    clf = ObjectiveClassifier(
        validation=0.3, patience=2, epochs=500, lr=0.5, batch_size=0, random_state=0
    ).fit(x, y)
    assert clf.n_iter_ < 500 and all("val_loss" in row for row in clf.history_)
    sgd = ObjectiveClassifier(optimizer="sgd", random_state=0, **FAST).fit(x, y)
    assert sgd.score(x, y) > 0.5
    with pytest.raises(ParameterError, match="no option 'momentum'"):
        ObjectiveClassifier(train_options={"momentum": 0.9}).fit(x, y)
    with pytest.raises(ParameterError, match="random_state"):
        ObjectiveClassifier(train_options={"seed": 1}).fit(x, y)
    with pytest.raises(ParameterError, match="estimator's own parameter"):
        ObjectiveClassifier(train_options={"epochs": 3}).fit(x, y)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_features_are_a_data_error(blobs, bad):
    x, y = blobs
    x = x.copy()
    x[3, 1] = bad
    with pytest.raises(DataError, match="NaN" if np.isnan(bad) else "infinity"):
        ObjectiveClassifier(**FAST).fit(x, y)
    clf = ObjectiveClassifier(random_state=0, **FAST).fit(blobs[0], y)
    with pytest.raises(DataError, match="NaN" if np.isnan(bad) else "infinity"):
        clf.predict(x)


def test_errors_name_what_is_wrong(blobs):
    x, y = blobs
    with pytest.raises(NotFittedError):
        ObjectiveClassifier().predict(x)
    with pytest.raises(NotFittedError):
        ObjectiveClassifier().predict_proba(x)
    with pytest.raises(DataError, match="one class"):
        ObjectiveClassifier().fit(x, np.ones(len(x)))
    with pytest.raises(DataError, match="Unknown label type"):
        ObjectiveClassifier().fit(x, x[:, 0])
    with pytest.raises(DataError, match="inconsistent numbers of samples"):
        ObjectiveClassifier().fit(x, y[:-1])
    with pytest.raises(UnsupportedError, match="crps cannot train a classifier"):
        ObjectiveClassifier("crps").fit(x, y)
    clf = ObjectiveClassifier(random_state=0, **FAST).fit(x, y)
    with pytest.raises(DataError, match="expecting 2 features"):
        clf.predict(np.zeros((3, 5)))
    diverged = r"diverged at epoch 1 \(non-finite (loss|parameters)\); lower lr"
    with pytest.raises(ParameterError, match=diverged):
        ObjectiveClassifier(lr=1e36, epochs=3, random_state=0).fit(x * 1e3, y)
    # every error is likelab's and a ValueError, as scikit-learn's conventions expect
    assert issubclass(DataError, LikelabError) and issubclass(DataError, ValueError)


def test_reachable_as_likelab_sklearn():
    import likelab

    assert likelab.sklearn.ObjectiveClassifier is ObjectiveClassifier


def test_a_training_option_the_trainer_lacks_is_refused_not_ignored(blobs):
    x, y = blobs
    if "tol" in inspect.signature(train).parameters:  # the trainer has a stopping rule
        clf = ObjectiveClassifier(tol=1e-3, random_state=0, **FAST).fit(x, y)
        assert clf.stop_["status"] in ("converged", "epoch_limit")
    else:
        with pytest.raises(ParameterError, match="has no such option"):
            ObjectiveClassifier(tol=1e-3, **FAST).fit(x, y)
        assert ObjectiveClassifier(random_state=0, **FAST).fit(x, y).stop_ == {}
