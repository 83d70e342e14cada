"""Models: built from specs, their size counted (and refused) before anything is allocated."""

import pytest
import torch

from likelab.classify.models import MAX_PARAMETERS, build_model, count_parameters
from likelab.errors import ParameterError, UnknownNameError


@pytest.mark.parametrize(
    ("spec", "inputs", "classes", "tokens"),
    [
        ("logistic", 4, 3, False),
        ("mlp", 13, 3, False),
        ("mlp:5", 2, 2, False),
        ("mlp:7,3,9", 64, 10, False),
        ("next-word", 3, 17, True),
        ("next-word:5", 2, 9, True),
    ],
)
def test_the_count_is_the_number_of_weights_built(spec, inputs, classes, tokens):
    name, _, rest = spec.partition(":")
    sizes = [int(s) for s in rest.split(",")] if rest else []
    net = build_model(spec, inputs, classes, tokens=tokens)
    assert count_parameters(name, sizes, inputs, classes, tokens=tokens) == sum(
        p.numel() for p in net.parameters()
    )


def test_a_model_too_large_is_refused_with_its_estimate_before_allocation(monkeypatch):
    def no_allocation(*args, **kwargs):
        raise AssertionError("a layer was allocated")

    monkeypatch.setattr(torch.nn.Linear, "__init__", no_allocation)
    with pytest.raises(ParameterError, match=r"has 10,000,600,002 weights \(~160 GB to train"):
        build_model("mlp:100000,100000", 2, 2)
    with pytest.raises(ParameterError, match=r"~320 GB .* float64\), more than the 100,000,000"):
        build_model("mlp:100000,100000", 2, 2, dtype=torch.float64)
    with pytest.raises(ParameterError, match="weights"):
        build_model("next-word:2000000", 3, 17, tokens=True)
    assert MAX_PARAMETERS == 100_000_000


@pytest.mark.parametrize(
    ("spec", "error", "fragment"),
    [
        ("mlp:0", ParameterError, "positive"),
        ("mlp:abc", ParameterError, "integers"),
        ("mlp:1.5", ParameterError, "integers"),
        ("mlp:", ParameterError, "integers"),
        ("mlp:16,,16", ParameterError, "integers"),
        ("next-word:", ParameterError, "integers"),
        ("next-word:-1", ParameterError, "positive"),
        ("logistic:3", ParameterError, "no sizes"),
        ("cnn", UnknownNameError, "unknown model"),
    ],
)
def test_bad_model_specs(spec, error, fragment):
    tokens = spec.startswith("next-word")
    with pytest.raises(error, match=fragment):
        build_model(spec, 3, 4, tokens=tokens)
