"""Train a classifier with any objective of the registry and record what it learns.

:func:`train` fits one network to one dataset with one objective: the network's logits become a
``Categorical`` predictive F, and each mini-batch's loss is ``objective.risk(F, y)``
(computed by :meth:`~likelab.objectives.Objective.risk_from_logits`, fused where it can be), the
mean score, or, for the batch-level ``product``, the naive product of the likelihoods, negated and
*not* rescued: in float32 a batch of a few hundred underflows to a loss of exactly 0 and
gradients of exactly 0, and the history shows it. A run whose loss or weights become non-finite
(a learning rate far too large) has *diverged*: training stops at that epoch, the run records
``"diverged at epoch k (non-finite loss)"`` and its metrics are undetermined (absent, never NaN
presented as numbers). Adam or SGD, mini-batches reshuffled every
epoch by a seeded generator, optional early stopping on a validation split carved out of the
training set (stratified), a per-epoch history (mean train loss and gradient norm over the
batches, how many batches had a loss or a gradient of exactly 0, test metrics).

:func:`compare` trains every objective on the same datasets, one per seed (paired: the same split,
label noise, initial weights and batch order for every objective), and summarises the clean test
metrics as mean and standard deviation over the seeds whose run did not diverge, with the
divergences listed beside them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.distributions import Categorical

from likelab.classify.datasets import Dataset, load_dataset
from likelab.classify.metrics import classification_metrics
from likelab.classify.models import build_model
from likelab.errors import ParameterError, UnsupportedError
from likelab.objectives import Objective, get_objective

__all__ = ["Comparison", "TrainResult", "compare", "train"]

#: The most seeds one comparison trains (each seed trains every objective once).
MAX_SEEDS = 1000

METRICS = ("accuracy", "nll", "brier", "ece", "confidence", "prob_gap")


@dataclass
class TrainResult:
    """One trained network: its test metrics, test probabilities (with the test labels and, where
    the dataset knows them, the true class probabilities ``p_test``) and per-epoch history."""

    objective: str
    dataset: str
    model: str
    seed: int
    metrics: dict[str, float]
    probs_test: np.ndarray
    y_test: np.ndarray
    history: list[dict[str, float]]
    epochs_run: int
    network: nn.Module = field(repr=False)
    p_test: np.ndarray | None = field(default=None, repr=False)
    #: ``"diverged at epoch k (non-finite loss)"`` (or ``parameters``) when training diverged;
    #: the metrics are then empty and ``probs_test`` is NaN.
    diverged: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "objective": self.objective,
            "dataset": self.dataset,
            "model": self.model,
            "seed": self.seed,
            "epochs_run": self.epochs_run,
            "diverged": self.diverged,
            **self.metrics,
            "history": self.history,
        }


def train(
    data: Dataset,
    objective: str | Objective | Callable[..., torch.Tensor],
    *,
    model: str = "mlp:64,64",
    optimizer: str = "adam",
    lr: float = 0.01,
    epochs: int = 100,
    batch_size: int = 64,
    seed: int = 0,
    validation: float = 0.0,
    patience: int | None = None,
    eval_every: int = 1,
    dtype: torch.dtype = torch.float32,
) -> TrainResult:
    """Train ``model`` on ``data`` by minimising ``objective``; metrics on the clean test set.

    ``eval_every`` epochs the history records test metrics (0: only the train loss and gradient
    norm, and the test metrics once at the end). With ``validation`` > 0 that share of the
    training set is held out; with ``patience`` training stops when the objective's validation
    risk has not improved for that many epochs, and the best weights are restored.

    >>> from likelab.classify import load_dataset
    >>> r = train(load_dataset("xor:flip=0.2"), "log", epochs=200, batch_size=64)
    >>> round(float(r.probs_test[:, 1].max()), 1)
    0.8
    """
    obj = _classification_objective(objective)
    _check_seed(seed)
    _check_options(optimizer, lr, epochs, batch_size, validation, patience, eval_every, dtype)
    x_all = torch.as_tensor(data.x_train)
    x_all = x_all if data.tokens else x_all.to(dtype)
    y_all = torch.as_tensor(data.y_train)
    x_test = torch.as_tensor(data.x_test)
    x_test = x_test if data.tokens else x_test.to(dtype)
    gen = torch.Generator().manual_seed(int(seed))
    train_idx, val_idx = _validation_split(data.y_train, validation, seed)
    x, y = x_all[train_idx], y_all[train_idx]
    x_val, y_val = x_all[val_idx], y_all[val_idx]
    in_features = x.shape[1]
    net = build_model(
        model, in_features, data.num_classes, seed=seed, tokens=data.tokens, dtype=dtype
    )
    params = list(net.parameters())
    opt = (
        torch.optim.Adam(params, lr=lr)
        if optimizer == "adam"
        else torch.optim.SGD(params, lr=lr, momentum=0.9)
    )
    n = len(y)
    history: list[dict[str, float]] = []
    best_val, best_state, since_best = math.inf, None, 0
    epochs_run = 0
    diverged: str | None = None
    for epoch in range(1, epochs + 1):
        net.train()
        order = torch.randperm(n, generator=gen)
        losses, norms = [], []  # kept as tensors: one conversion per epoch, not per batch
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            loss = obj.risk_from_logits(net(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            norms.append(_grad_norm(params))
            opt.step()
            losses.append(loss.detach())
        epochs_run = epoch
        loss_t, norm_t = torch.stack(losses).double(), torch.stack(norms).double()
        row: dict[str, float] = {
            "epoch": epoch,
            "train_loss": float(loss_t.mean()),
            "grad_norm": float(norm_t.mean()),
            "batches": len(losses),
            "zero_loss_batches": int((loss_t == 0).sum()),
            "zero_grad_batches": int((norm_t == 0).sum()),
        }
        diverged = _divergence(epoch, loss_t, params)
        if diverged is not None:
            history.append(row)
            break
        if eval_every and epoch % eval_every == 0:
            probs = _predict(net, x_test)
            row.update({f"test_{k}": v for k, v in _metrics(probs, data).items()})
        if len(val_idx):
            with torch.no_grad():
                net.eval()
                val = float(obj.risk_from_logits(net(x_val), y_val))
            row["val_loss"] = val
            if val < best_val:
                best_val, since_best = val, 0
                best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            else:
                since_best += 1
        history.append(row)
        if patience is not None and len(val_idx) and since_best >= patience:
            break
    if diverged is not None:
        probs = np.full((len(data.y_test), data.num_classes), np.nan)
        metrics: dict[str, float] = {}
    else:
        if best_state is not None and patience is not None:
            net.load_state_dict(best_state)
        probs = _predict(net, x_test)
        metrics = _metrics(probs, data)
    return TrainResult(
        objective=obj.spec,
        dataset=data.name,
        model=model,
        seed=int(seed),
        metrics=metrics,
        probs_test=probs,
        y_test=data.y_test,
        history=history,
        epochs_run=epochs_run,
        network=net,
        p_test=data.p_test,
        diverged=diverged,
    )


@dataclass
class Comparison:
    """Objectives trained on the same datasets (one per seed); rows of mean ± sd over seeds."""

    dataset: str
    noise: str | None
    model: str
    seeds: list[int]
    runs: list[TrainResult]

    @property
    def objectives(self) -> list[str]:
        return list(dict.fromkeys(r.objective for r in self.runs))

    @property
    def all_diverged(self) -> bool:
        """Whether every run diverged (no metric of any objective is determined)."""
        return all(r.diverged is not None for r in self.runs)

    def metric_keys(self) -> list[str]:
        """The metrics of this comparison (``prob_gap`` only where the truth is known)."""
        known = all(r.p_test is not None for r in self.runs)
        return [k for k in METRICS if k != "prob_gap" or known]

    def rows(self) -> list[dict[str, Any]]:
        """Per objective: each metric's mean and sd over the seeds whose run did not diverge
        (``None``: undetermined, every run diverged), the seed count, and the divergences."""
        out = []
        for spec in self.objectives:
            runs = [r for r in self.runs if r.objective == spec]
            ok = [r for r in runs if r.diverged is None]
            row: dict[str, Any] = {"objective": spec}
            for key in self.metric_keys():
                vals = [r.metrics[key] for r in ok]
                row[key] = float(np.mean(vals)) if vals else None
                row[f"{key}_sd"] = (
                    float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0 if vals else None
                )
            row["seeds"] = len(runs)
            row["diverged"] = len(runs) - len(ok)
            row["divergence"] = [f"seed {r.seed}: {r.diverged}" for r in runs if r.diverged]
            out.append(row)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "noise": self.noise,
            "model": self.model,
            "seeds": self.seeds,
            "results": self.rows(),
        }


def compare(
    dataset: str,
    objectives: Sequence[str | Objective | Callable[..., torch.Tensor]],
    *,
    seeds: int | Sequence[int] = 3,
    noise: str | None = None,
    test_size: float = 0.3,
    on_run: Callable[[TrainResult], None] | None = None,
    **options: Any,
) -> Comparison:
    """Train each objective on the dataset for each seed (paired) and collect the runs.

    ``options`` go to :func:`train` (model, optimizer, lr, epochs, batch_size, ...);
    ``on_run`` is called after every run (the CLI's progress bar).
    """
    if isinstance(seeds, int) and not 1 <= seeds <= MAX_SEEDS:
        raise ParameterError(f"seeds must be an integer in [1, {MAX_SEEDS}], got {seeds!r}")
    seed_list = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    if not 1 <= len(seed_list) <= MAX_SEEDS:
        raise ParameterError(f"seeds must name 1 to {MAX_SEEDS} seeds, got {len(seed_list)}")
    for s in seed_list:
        _check_seed(s)
    objs = [_classification_objective(o) for o in objectives]
    if not objs:
        raise ParameterError("no objectives given")
    runs = []
    for s in seed_list:
        data = load_dataset(dataset, seed=s, noise=noise, test_size=test_size)
        for obj in objs:
            result = train(data, obj, seed=s, **options)
            runs.append(result)
            if on_run is not None:
                on_run(result)
    return Comparison(
        dataset=dataset,
        noise=noise,
        model=options.get("model", "mlp:64,64"),
        seeds=seed_list,
        runs=runs,
    )


# ---------------------------------------------------------------------- helpers
def _classification_objective(objective: Any) -> Objective:
    obj = get_objective(objective)
    probe = Categorical(logits=torch.zeros(2, 3))
    try:
        if obj.batch_level:
            obj.risk(probe, torch.tensor([0, 1]), validate=False)
        else:
            obj.loss(probe, torch.tensor([0, 1]), validate=False)
    except UnsupportedError as exc:
        raise UnsupportedError(f"{obj.spec} cannot train a classifier: {exc}") from None
    return obj


def _check_options(
    optimizer, lr, epochs, batch_size, validation, patience, eval_every, dtype
) -> None:
    if optimizer not in ("adam", "sgd"):
        raise ParameterError(f"optimizer must be 'adam' or 'sgd', got {optimizer!r}")
    # Adam's first step is lr / (1 - beta1) = 10 lr: it must be a number in the weights' dtype.
    top = float(torch.finfo(dtype).max) / 10 if dtype.is_floating_point else math.inf
    if isinstance(lr, bool) or not (isinstance(lr, int | float) and 0 < lr <= top):
        raise ParameterError(
            f"lr must be a number in (0, {top:.3g}] (a step of 10 lr must be finite in "
            f"{str(dtype).removeprefix('torch.')}), got {lr!r}"
        )
    for name, value, low in (("epochs", epochs, 1), ("batch_size", batch_size, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ParameterError(f"{name} must be an integer >= {low}, got {value!r}")
    if not 0.0 <= validation < 1.0:
        raise ParameterError(f"validation must lie in [0, 1), got {validation!r}")
    if patience is not None and (not isinstance(patience, int) or patience < 1):
        raise ParameterError(f"patience must be an integer >= 1, got {patience!r}")
    if patience is not None and validation == 0.0:
        raise ParameterError("early stopping (patience) needs a validation share > 0")
    if isinstance(eval_every, bool) or not isinstance(eval_every, int) or eval_every < 0:
        raise ParameterError(f"eval_every must be an integer >= 0, got {eval_every!r}")


def _check_seed(seed: object) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or not 0 <= seed < 2**63:
        raise ParameterError(f"a seed must be an integer in [0, 2**63), got {seed!r}")


def _validation_split(y: np.ndarray, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    n = len(y)
    if share == 0.0:
        return np.arange(n), np.arange(0)
    rng = np.random.default_rng([int(seed), 0xA11])
    val = []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        val.append(idx[: round(share * len(idx))])
    val_idx = np.sort(np.concatenate(val))
    train_idx = np.setdiff1d(np.arange(n), val_idx)
    return train_idx, val_idx


def _divergence(epoch: int, losses: torch.Tensor, params: list[torch.Tensor]) -> str | None:
    """Why training diverged in this epoch (a non-finite batch loss, or non-finite weights after
    the updates), or ``None``; one synchronisation per epoch."""
    finite = torch.stack(
        [torch.isfinite(losses).all(), *(torch.isfinite(p.detach()).all() for p in params)]
    ).cpu()
    if not finite[0]:
        return f"diverged at epoch {epoch} (non-finite loss)"
    if not finite[1:].all():
        return f"diverged at epoch {epoch} (non-finite parameters)"
    return None


def _grad_norm(params: list[torch.Tensor]) -> torch.Tensor:
    """The Euclidean norm of all gradients together (0 where none was produced)."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))


def _predict(net: nn.Module, x: torch.Tensor) -> np.ndarray:
    net.eval()
    with torch.no_grad():
        return torch.softmax(net(x).to(torch.float64), -1).numpy()


def _metrics(probs: np.ndarray, data: Dataset) -> dict[str, float]:
    return classification_metrics(probs, data.y_test, data.p_test)
