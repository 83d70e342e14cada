"""Datasets: splits, standardisation, known truths, label noise."""

import numpy as np
import pytest
from scipy import stats

from likelab.classify import CORPUS, add_label_noise, list_datasets, load_dataset
from likelab.errors import LikelabError, ParameterError, UnknownNameError


@pytest.mark.parametrize("name", list_datasets())
def test_every_dataset_loads_splits_and_standardises(name):
    d = load_dataset(name, seed=1)
    assert len(d.x_train) == len(d.y_train) and len(d.x_test) == len(d.y_test)
    assert d.y_train.dtype == np.int64 and set(np.unique(d.y_test)) <= set(range(d.num_classes))
    assert len(d.classes) == d.num_classes
    if not d.tokens:
        assert d.x_train.dtype == np.float32
        np.testing.assert_allclose(d.x_train.mean(0), 0.0, atol=1e-5)
        sd = d.x_train.std(0)
        assert np.all((np.abs(sd - 1) < 1e-4) | (sd == 0))
    # stratified: every class's share agrees between train and test to within one example
    for c in range(d.num_classes):
        share_train = (d.y_train == c).mean()
        share_test = (d.y_test == c).mean()
        assert abs(share_train - share_test) <= 1.5 / len(d.y_test) + 1.5 / len(d.y_train)
    again = load_dataset(name, seed=1)
    np.testing.assert_array_equal(d.x_train, again.x_train)
    np.testing.assert_array_equal(d.y_test, again.y_test)


def test_xor_flip_makes_the_empirical_frequencies_the_truth():
    d = load_dataset("xor:flip=0.2,repeat=50", seed=3)
    for x, y, p in ((d.x_train, d.y_train, d.p_train), (d.x_test, d.y_test, d.p_test)):
        for point in np.unique(x, axis=0):
            at = (x == point).all(1)
            assert np.unique(p[at, 1]).size == 1
            assert abs(y[at].mean() - p[at, 1][0]) < 1e-12
    assert sorted(np.unique(d.p_test[:, 1])) == [0.2, 0.8]
    clean = load_dataset("xor", seed=3)
    assert np.array_equal(np.unique(clean.p_test[:, 1]), [0.0, 1.0])


def test_xor_gauss_truth_is_the_bayes_posterior():
    d = load_dataset("xor-gauss:n=400,sigma=0.7", seed=0)
    # undo the standardisation, then Bayes' rule with scipy's bivariate normal densities
    x = d.x_test.astype(np.float64) * d.info["feature_sd"] + d.info["feature_mean"]
    centres = {0: [(1, 1), (-1, -1)], 1: [(1, -1), (-1, 1)]}
    dens = {
        c: sum(stats.multivariate_normal(m, 0.49 * np.eye(2)).pdf(x) for m in ms)
        for c, ms in centres.items()
    }
    # float32 features: the posterior moves by ~1e-7 relative at most
    np.testing.assert_allclose(d.p_test[:, 1], dens[1] / (dens[0] + dens[1]), atol=1e-5)


def test_next_word_truth_is_the_corpus_frequency():
    d = load_dataset("next-word", seed=0)
    idx = {w: i for i, w in enumerate(d.vocab)}
    ctx = [idx["data"], idx["science"], idx["is"]]
    row = np.flatnonzero((d.x_test == ctx).all(1))[0]
    assert d.p_test[row, idx["fun"]] == 0.6 and d.p_test[row, idx["hard"]] == 0.3
    ctx = [idx["<s>"], idx["statistics"], idx["is"]]
    row = np.flatnonzero((d.x_test == ctx).all(1))[0]
    assert d.p_test[row, idx["useful"]] == 0.8
    np.testing.assert_allclose(d.p_train.sum(1), 1.0)
    assert dict(CORPUS)["data science is fun"] == 6


@pytest.mark.parametrize("kind", ["symmetric", "pairflip"])
def test_label_noise_rates_and_targets(kind):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, size=50_000)
    noisy = add_label_noise(y, 5, f"{kind}:0.3", np.random.default_rng(1))
    flipped = noisy != y
    # binomial: sd of the rate is sqrt(.21/50000) = 0.002; 5 sd
    assert abs(flipped.mean() - 0.3) < 0.01
    moved = (noisy[flipped] - y[flipped]) % 5
    if kind == "pairflip":
        assert np.all(moved == 1)
    else:
        counts = np.bincount(moved, minlength=5)[1:]
        assert np.all(np.abs(counts / counts.sum() - 0.25) < 0.02)


def test_noise_touches_training_labels_only():
    clean = load_dataset("digits", seed=2)
    noisy = load_dataset("digits", seed=2, noise="symmetric:0.4")
    np.testing.assert_array_equal(clean.y_test, noisy.y_test)
    np.testing.assert_array_equal(clean.y_train, noisy.y_train_clean)
    assert abs((noisy.y_train != clean.y_train).mean() - 0.4) < 0.05


@pytest.mark.parametrize(
    ("spec", "kwargs", "error", "fragment"),
    [
        ("nope", {}, UnknownNameError, "unknown dataset"),
        ("xor:flip=0.7", {}, ParameterError, "flip"),
        ("xor:repeat=1.5", {}, ParameterError, "repeat"),
        ("xor:bogus=1", {}, ParameterError, "bogus"),
        ("digits", {"noise": "symmetric:1.0"}, ParameterError, r"\[0, 1\)"),
        ("digits", {"noise": "symmetric:-0.1"}, ParameterError, r"\[0, 1\)"),
        ("digits", {"noise": "random:0.1"}, ParameterError, "symmetric"),
        ("digits", {"test_size": 1.5}, ParameterError, "test_size"),
    ],
)
def test_bad_inputs(spec, kwargs, error, fragment):
    with pytest.raises(error, match=fragment) as info:
        load_dataset(spec, **kwargs)
    assert isinstance(info.value, LikelabError)


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("xor:flip=abc", r"dataset 'xor': flip must be a number in \[0, 0.5\), got 'abc'"),
        ("xor:flip=-0.01", r"flip must be a number in \[0, 0.5\), got -0.01"),
        ("xor:flip=0.5", r"\[0, 0.5\)"),
        ("xor:repeat=1", "repeat must be an integer >= 2, got 1"),
        ("xor-gauss:sigma=0", r"sigma must be a number > 0, got 0"),
        ("xor-gauss:n=ten", "n must be an integer >= 8, got 'ten'"),
        ("xor-gauss:n=7", "n must be an integer >= 8"),
        ("moons:noise=-0.5", "noise must be a number >= 0"),
        ("moons:n=100.5", "n must be an integer >= 8"),
        ("circles:factor=1", r"factor must be a number in \[0, 1\)"),
        ("circles:noise=x", "noise must be a number >= 0"),
        ("next-word:context=0", r"context must be an integer in \[1, 64\]"),
        ("next-word:repeat=0", "repeat must be an integer >= 1"),
        ("wine:n=5", "dataset 'wine' takes no parameters, got 'n'"),
        ("moons:sigma=1", r"no parameter 'sigma'; it takes n \(an integer >= 8, default 1000\)"),
        ("xor-gauss:n=1e9", r"would hold 1,000,000,000 examples \(~.* GB while building\)"),
        ("next-word:repeat=100000", "would hold 15,000,000 examples"),
        ("circles:n=5000001", "more than the 5,000,000"),
    ],
)
def test_every_dataset_parameter_is_checked_against_its_range(spec, fragment):
    with pytest.raises(ParameterError, match=fragment):
        load_dataset(spec)


def test_dataset_parameters_at_their_limits_load():
    assert (
        load_dataset("xor:repeat=2,flip=0").info["n_train"]
        + load_dataset("xor:repeat=2").info["n_test"]
        == 8
    )
    assert load_dataset("circles:n=8,factor=0,noise=0").num_classes == 2
    assert load_dataset("next-word:context=1,repeat=1").x_train.shape[1] == 1


@pytest.mark.parametrize("rate", ["abc", "1", "-0", "nan", "1e9"])
def test_label_noise_rate_names_its_range(rate):
    fragment = r"must be a number in \[0, 1\)" if rate != "-0" else None
    if fragment is None:  # -0 is 0: no noise, accepted
        load_dataset("xor", noise=f"pairflip:{rate}")
        return
    with pytest.raises(ParameterError, match=fragment):
        load_dataset("xor", noise=f"symmetric:{rate}")
