"""Classifiers whose logits become a ``Categorical`` predictive: named by spec strings.

- ``logistic``: multinomial logistic regression, one linear layer;
- ``mlp:64,64``: a multilayer perceptron with those hidden widths and ReLU activations;
- ``next-word:16`` (for token inputs): each context word embedded in 16 dimensions, the
  embeddings concatenated, one hidden ReLU layer of 64 units, logits over the vocabulary.

Weights are initialised by PyTorch's defaults under :func:`torch.random.fork_rng` seeded with
``seed``, so the same seed gives the same network without touching the global random state.
"""

from __future__ import annotations

from itertools import pairwise

import torch
from torch import nn

from likelab.errors import ParameterError, UnknownNameError

__all__ = ["MAX_PARAMETERS", "build_model", "count_parameters"]

#: The most weights a model may have (10⁸: 1.6 GB to train in float32 with Adam).
MAX_PARAMETERS = 100_000_000


class NextWordModel(nn.Module):
    """Embed each of ``context`` token ids, concatenate, one hidden layer, vocabulary logits."""

    HIDDEN = 64

    def __init__(self, vocab: int, context: int, dim: int, hidden: int = HIDDEN) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.net = nn.Sequential(
            nn.Linear(context * dim, hidden), nn.ReLU(), nn.Linear(hidden, vocab)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.embed(x).flatten(1))


def count_parameters(
    name: str, sizes: list[int], in_features: int, num_classes: int, *, tokens: bool = False
) -> int:
    """The number of weights of model ``name`` with hidden ``sizes``, computed before building it
    (0 for a name that is not a model: :func:`build_model` reports it)."""
    if name == "next-word":
        dim, hidden = (sizes[0] if sizes else 16), NextWordModel.HIDDEN
        return num_classes * dim + (in_features * dim + 1) * hidden + (hidden + 1) * num_classes
    if name == "logistic":
        return (in_features + 1) * num_classes
    if name == "mlp":
        widths = [in_features, *(sizes or [64, 64]), num_classes]
        return sum((a + 1) * b for a, b in pairwise(widths))
    return 0


def build_model(
    spec: str,
    in_features: int,
    num_classes: int,
    *,
    seed: int = 0,
    tokens: bool = False,
    dtype: torch.dtype = torch.float32,
) -> nn.Module:
    """The network named by ``spec`` for ``in_features`` inputs (context length for tokens).

    >>> m = build_model("mlp:8,8", 2, 3, seed=0)
    >>> tuple(m(torch.zeros(5, 2)).shape)
    (5, 3)
    """
    name, colon, rest = spec.partition(":")
    name = name.strip()
    try:
        # after a ':', a list of integers and nothing else: 'mlp:' or 'mlp:64,,64' is a typo,
        # not the default widths
        sizes = [int(s) for s in rest.split(",")] if colon else []
    except ValueError:
        raise ParameterError(
            f"model spec {spec!r}: expected integers after ':', e.g. mlp:64,64"
        ) from None
    if any(s < 1 for s in sizes):
        raise ParameterError(f"model spec {spec!r}: sizes must be positive integers")
    count = count_parameters(name, sizes, in_features, num_classes, tokens=tokens)
    if count > MAX_PARAMETERS:
        nbytes = 4 * count * torch.empty((), dtype=dtype).element_size()
        raise ParameterError(
            f"model {spec!r} for {in_features} inputs and {num_classes} classes has {count:,} "
            f"weights (~{nbytes / 1e9:.3g} GB to train with Adam: weights, gradients and two "
            f"moments in {str(dtype).removeprefix('torch.')}), more than the "
            f"{MAX_PARAMETERS:,} likelab allocates"
        )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if name == "next-word":
            if not tokens:
                raise ParameterError("model next-word needs token inputs (the next-word dataset)")
            if len(sizes) > 1:
                raise ParameterError(f"model spec {spec!r}: next-word takes one embedding size")
            model: nn.Module = NextWordModel(num_classes, in_features, sizes[0] if sizes else 16)
        elif tokens:
            raise ParameterError(
                f"model {name!r} takes numeric features; the next-word dataset needs the "
                "next-word model (e.g. next-word:16)"
            )
        elif name == "logistic":
            if sizes:
                raise ParameterError(f"model spec {spec!r}: logistic takes no sizes")
            model = nn.Linear(in_features, num_classes)
        elif name == "mlp":
            widths = sizes or [64, 64]
            layers: list[nn.Module] = []
            prev = in_features
            for w in widths:
                layers += [nn.Linear(prev, w), nn.ReLU()]
                prev = w
            layers.append(nn.Linear(prev, num_classes))
            model = nn.Sequential(*layers)
        else:
            raise UnknownNameError(
                f"unknown model {name!r}; choose logistic, mlp:W1,W2,... or next-word:DIM"
            )
    return model.to(dtype)
