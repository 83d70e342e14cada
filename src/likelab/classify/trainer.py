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
from likelab.errors import ParameterError, UnsupportedError, UserCodeError
from likelab.objectives import Objective, get_objective
from likelab.objectives.naming import objective_label, spellings

__all__ = ["Comparison", "TrainResult", "compare", "stop_summary", "train"]

#: The most seeds one comparison trains (each seed trains every objective once).
MAX_SEEDS = 1000

METRICS = ("accuracy", "nll", "brier", "ece", "confidence", "prob_gap")

#: The largest training set trained in full batches by default (one deterministic gradient per
#: epoch, whose norm tests stationarity); larger ones take mini-batches of :data:`MINI_BATCH`.
FULL_BATCH_MAX = 4096
MINI_BATCH = 256
#: The default epoch caps: full-batch epochs are single steps, so they get more of them.
FULL_BATCH_EPOCHS = 1000
MINI_BATCH_EPOCHS = 100
#: The default stationarity tolerance on the norm of the training risk's gradient; reached in
#: float32 on the toy datasets (around 1e-6 to 1e-5 is where float32 rounding takes over).
DEFAULT_TOL = 1e-5
#: How many rows one chunk of the full-gradient computation holds (mini-batch training).
_CHUNK = 8192


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
    #: When and why training stopped: ``status`` (``converged``, ``epoch_limit``,
    #: ``early_stopping``, ``stalled``, ``diverged`` or ``failed``), ``epoch`` and ``reason``, a
    #: sentence with the evidence (``"converged at epoch 172: gradient norm 9.4e-06 <= tol
    #: 1e-05 over the whole training set"``).
    stop: dict[str, Any] = field(default_factory=dict)
    batch_size: int | None = None
    max_epochs: int | None = None
    #: Why the run could not train at all (the objective raised for this model or data); the
    #: metrics are then empty and ``probs_test`` is NaN.
    failed: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the run has metrics (it neither failed nor diverged)."""
        return self.diverged is None and self.failed is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "objective": self.objective,
            "dataset": self.dataset,
            "model": self.model,
            "seed": self.seed,
            "epochs_run": self.epochs_run,
            "max_epochs": self.max_epochs,
            "batch_size": self.batch_size,
            "stop": self.stop,
            "diverged": self.diverged,
            "failed": self.failed,
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
    epochs: int | None = None,
    batch_size: int | None = None,
    seed: int = 0,
    validation: float = 0.0,
    patience: int | None = None,
    eval_every: int | None = None,
    tol: float = DEFAULT_TOL,
    dtype: torch.dtype = torch.float32,
) -> TrainResult:
    """Train ``model`` on ``data`` by minimising ``objective``; metrics on the clean test set.

    Defaults that reach a stationary point on small data without tuning: ``batch_size=None``
    takes the whole training set as one batch when it holds at most :data:`FULL_BATCH_MAX`
    examples (a deterministic gradient, so stationarity can be tested), mini-batches of
    :data:`MINI_BATCH` otherwise; ``epochs=None`` caps training at :data:`FULL_BATCH_EPOCHS`
    full-batch steps or :data:`MINI_BATCH_EPOCHS` mini-batch epochs.

    Training stops at the first of (recorded in :attr:`TrainResult.stop`):

    - *converged*: the gradient of the training risk over the whole training set, at the
      current weights, has Euclidean norm ``0 < ‖∇R(θ)‖ ≤ tol`` (first-order stationarity,
      Nocedal & Wright 2006, §2.1; for the batch-level ``product``, whose risk is scaled by the
      product itself, ``‖∇R‖ ≤ tol·|R|``). With full batches that gradient is the epoch's own;
      with mini-batches it is computed at the end of every epoch, in chunks, without a step;
    - *diverged*: a non-finite loss or non-finite weights;
    - *stalled*: the loss (batch-level objectives) or the gradient is exactly 0, an underflow
      or a saturation, not evidence of a stationary point;
    - *early stopping*: with ``validation`` > 0 and ``patience``, the objective's validation
      risk has not improved for ``patience`` epochs (the best weights are restored);
    - *epoch limit*: ``epochs`` reached without any of the above; the stop says whether the
      training loss was still falling and the last and smallest gradient norms.

    ``eval_every`` epochs the history records test metrics (0: only at the end; ``None``:
    every epoch up to 200 epochs, thinned to about 200 records beyond).

    >>> from likelab.classify import load_dataset
    >>> r = train(load_dataset("xor:flip=0.2"), "log")
    >>> r.stop["status"], round(float(r.probs_test[:, 1].max()), 1)
    ('converged', 0.8)
    """
    obj = _classification_objective(objective)
    _check_seed(seed)
    n_all = len(data.y_train)
    full_batch = batch_size is None and n_all <= FULL_BATCH_MAX
    if batch_size is None:
        batch_size = max(n_all, 1) if full_batch else MINI_BATCH
    if epochs is None:
        epochs = FULL_BATCH_EPOCHS if batch_size >= n_all else MINI_BATCH_EPOCHS
    if eval_every is None:
        eval_every = max(1, -(-epochs // 200)) if isinstance(epochs, int) else 1
    _check_options(optimizer, lr, epochs, batch_size, validation, patience, eval_every, dtype)
    if isinstance(tol, bool) or not (isinstance(tol, int | float) and 0 <= tol < math.inf):
        raise ParameterError(f"tol must be a finite number >= 0, got {tol!r}")
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
    one_batch = batch_size >= n  # every step sees the whole training set: a true gradient
    history: list[dict[str, float]] = []
    best_val, best_state, best_epoch, since_best = math.inf, None, 0, 0
    epochs_run = 0
    diverged: str | None = None
    stop: dict[str, Any] | None = None
    smallest = (math.inf, 0)  # the smallest full gradient norm seen, and its epoch
    for epoch in range(1, epochs + 1):
        net.train()
        order = torch.randperm(n, generator=gen)
        losses, norms = [], []  # kept as tensors: one conversion per epoch, not per batch
        full_norm: float | None = None
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            loss = obj.risk_from_logits(net(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            norms.append(_grad_norm(params))
            losses.append(loss.detach())
            if one_batch:
                # the gradient at the current weights over the whole training set: test
                # stationarity before stepping, so that converged weights are the ones tested
                full_norm = float(norms[-1])
                stop = _stationary(obj, epoch, float(losses[-1]), full_norm, tol)
                if stop is not None or not math.isfinite(float(losses[-1])):
                    break
            opt.step()
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
            stop = {"status": "diverged", "epoch": epoch, "reason": diverged}
            break
        if full_norm is None and stop is None and not obj.batch_level:
            full_loss, full_norm = _full_gradient(net, obj, x, y, params)
            stop = _stationary(obj, epoch, full_loss, full_norm, tol)
        if full_norm is not None:
            row["full_grad_norm"] = full_norm
            if math.isfinite(full_norm) and full_norm < smallest[0]:
                smallest = (full_norm, epoch)
        last = stop is not None or epoch == epochs
        if eval_every and (epoch % eval_every == 0 or last):
            probs = _predict(net, x_test)
            row.update({f"test_{k}": v for k, v in _metrics(probs, data).items()})
        if len(val_idx):
            with torch.no_grad():
                net.eval()
                val = float(obj.risk_from_logits(net(x_val), y_val))
            row["val_loss"] = val
            if val < best_val:
                best_val, since_best, best_epoch = val, 0, epoch
                best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            else:
                since_best += 1
        history.append(row)
        if stop is not None:
            break
        if patience is not None and len(val_idx) and since_best >= patience:
            stop = {
                "status": "early_stopping",
                "epoch": epoch,
                "reason": f"early stopping at epoch {epoch}: the validation risk did not "
                f"improve for {patience} epochs (best {best_val:.6g} at epoch {best_epoch}, "
                "whose weights are kept)",
            }
            break
    if stop is None:
        stop = _epoch_limit(epochs, history, smallest, tol, obj, one_batch)
    stop.setdefault("tol", tol)
    stop.setdefault("full_batch", one_batch)
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
        stop=stop,
        batch_size=batch_size,
        max_epochs=epochs,
    )


@dataclass
class Comparison:
    """Objectives trained on the same datasets (one per seed); rows of mean ± sd over seeds."""

    dataset: str
    noise: str | None
    model: str
    seeds: list[int]
    runs: list[TrainResult]
    #: How each objective was spelled, keyed by canonical spec (``{"quadratic": "brier"}``):
    #: figures and pages name it so (:meth:`label`).
    given: dict[str, str] = field(default_factory=dict)

    @property
    def objectives(self) -> list[str]:
        return list(dict.fromkeys(r.objective for r in self.runs))

    def label(self, spec: str) -> str:
        """The objective ``spec`` as it was spelled, the canonical spec in brackets where they
        differ (``brier (quadratic)``): :func:`likelab.objectives.naming.objective_label`."""
        return objective_label(spec, self.given)

    @property
    def all_diverged(self) -> bool:
        """Whether no run has metrics (every one diverged or failed): nothing is determined."""
        return all(not r.ok for r in self.runs)

    @property
    def any_failed(self) -> bool:
        """Whether some run diverged or failed (the CLI's exit status 1)."""
        return any(not r.ok for r in self.runs)

    def metric_keys(self) -> list[str]:
        """The metrics of this comparison (``prob_gap`` only where the truth is known)."""
        known = all(r.p_test is not None for r in self.runs)
        return [k for k in METRICS if k != "prob_gap" or known]

    def rows(self) -> list[dict[str, Any]]:
        """Per objective: each metric's mean and sd over the seeds whose run neither diverged
        nor failed (``None``: undetermined, no run left), the seed count, the divergences and
        failures (``"seed 0: ..."``), and when and why each run stopped (``stops``, with a
        one-line summary in ``stopped``)."""
        out = []
        for spec in self.objectives:
            runs = [r for r in self.runs if r.objective == spec]
            ok = [r for r in runs if r.ok]
            row: dict[str, Any] = {"objective": spec}
            for key in self.metric_keys():
                vals = [r.metrics[key] for r in ok]
                row[key] = float(np.mean(vals)) if vals else None
                row[f"{key}_sd"] = (
                    float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0 if vals else None
                )
            row["seeds"] = len(runs)
            row["diverged"] = sum(r.diverged is not None for r in runs)
            row["divergence"] = [f"seed {r.seed}: {r.diverged}" for r in runs if r.diverged]
            row["failed"] = sum(r.failed is not None for r in runs)
            row["failures"] = [f"seed {r.seed}: {r.failed}" for r in runs if r.failed]
            row["stops"] = [{"seed": r.seed, **r.stop} for r in runs]
            row["stopped"] = stop_summary(runs)
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
    dataset: str | Callable[[int], Dataset],
    objectives: Sequence[str | Objective | Callable[..., torch.Tensor]],
    *,
    seeds: int | Sequence[int] = 3,
    noise: str | None = None,
    test_size: float = 0.3,
    on_run: Callable[[TrainResult], None] | None = None,
    **options: Any,
) -> Comparison:
    """Train each objective on the dataset for each seed (paired) and collect the runs.

    ``dataset`` is a spec string for :func:`~likelab.classify.load_dataset` or a function of
    the seed returning the :class:`Dataset` of that seed (a user's table,
    :meth:`likelab.classify.tabular.Table.dataset`; ``noise`` and ``test_size`` are then its
    own). ``options`` go to :func:`train` (model, optimizer, lr, epochs, batch_size, tol, ...);
    ``on_run`` is called after every run (the CLI's progress bar).

    An objective that cannot train this model on this data (it raises
    :class:`~likelab.errors.UnsupportedError`, e.g. ``crps`` on a ``Categorical``, or a user
    objective breaks its contract, :class:`~likelab.errors.UserCodeError`) does not stop the
    others: its runs are recorded as failed, with the reason (:attr:`TrainResult.failed`).
    A name that is not an objective, or a bad option, is still an error.
    """
    if isinstance(seeds, int) and not 1 <= seeds <= MAX_SEEDS:
        raise ParameterError(f"seeds must be an integer in [1, {MAX_SEEDS}], got {seeds!r}")
    seed_list = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    if not 1 <= len(seed_list) <= MAX_SEEDS:
        raise ParameterError(f"seeds must name 1 to {MAX_SEEDS} seeds, got {len(seed_list)}")
    for s in seed_list:
        _check_seed(s)
    if not objectives:
        raise ParameterError("no objectives given")
    objs: list[tuple[Objective, str | None]] = []
    for o in objectives:
        obj = get_objective(o)  # an unknown name or a bad parameter is the user's error
        try:
            objs.append((_classification_objective(obj), None))
        except (UnsupportedError, UserCodeError) as exc:
            objs.append((obj, str(exc)))
    if callable(dataset):
        load = dataset
    else:
        spec = dataset

        def load(s: int) -> Dataset:
            return load_dataset(spec, seed=s, noise=noise, test_size=test_size)

    runs = []
    name = dataset if isinstance(dataset, str) else None
    for s in seed_list:
        data = load(s)
        name = data.name
        for obj, failure in objs:
            if failure is None:
                try:
                    result = train(data, obj, seed=s, **options)
                except (UnsupportedError, UserCodeError) as exc:
                    failure = str(exc)
            if failure is not None:
                result = _failed_run(data, obj, s, failure, options)
            runs.append(result)
            if on_run is not None:
                on_run(result)
    return Comparison(
        dataset=str(name),
        noise=noise if isinstance(dataset, str) else data.noise,
        model=options.get("model", "mlp:64,64"),
        seeds=seed_list,
        runs=runs,
        given=spellings(objectives),
    )


def stop_summary(runs: Sequence[TrainResult]) -> str:
    """One line on when and why ``runs`` (one objective's seeds) stopped: the reason itself for
    one run, else counts by status with the epoch range (``"converged 3/3 (epochs 160-181)"``)."""
    if len(runs) == 1:
        return runs[0].stop.get("reason", "")
    parts = []
    for status in ("converged", "epoch_limit", "early_stopping", "stalled", "diverged", "failed"):
        group = [r for r in runs if r.stop.get("status") == status]
        if not group:
            continue
        epochs = sorted(int(r.stop.get("epoch") or 0) for r in group)
        span = (
            f"epoch {epochs[0]}" if epochs[0] == epochs[-1] else f"epochs {epochs[0]}-{epochs[-1]}"
        )
        label = status.replace("_", " ")
        parts.append(
            f"{label} {len(group)}/{len(runs)}" + ("" if status == "failed" else f" ({span})")
        )
    return ", ".join(parts)


def _failed_run(
    data: Dataset, obj: Objective, seed: int, reason: str, options: dict[str, Any]
) -> TrainResult:
    """The record of a run that could not train: no metrics, NaN probabilities, the reason."""
    return TrainResult(
        objective=obj.spec,
        dataset=data.name,
        model=options.get("model", "mlp:64,64"),
        seed=int(seed),
        metrics={},
        probs_test=np.full((len(data.y_test), data.num_classes), np.nan),
        y_test=data.y_test,
        history=[],
        epochs_run=0,
        network=nn.Identity(),
        p_test=data.p_test,
        stop={"status": "failed", "epoch": 0, "reason": f"failed: {reason}"},
        failed=reason,
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


def _stationary(
    obj: Objective, epoch: int, loss: float, norm: float, tol: float
) -> dict[str, Any] | None:
    """The stop at ``epoch`` if the full training-set gradient (norm ``norm``, risk ``loss``)
    is stationary (``converged``) or exactly 0 (``stalled``), else ``None``."""
    if not (math.isfinite(loss) and math.isfinite(norm)):
        return None  # the divergence check reports it
    if obj.batch_level and loss == 0.0:
        return {
            "status": "stalled",
            "epoch": epoch,
            "grad_norm": norm,
            "reason": f"stalled at epoch {epoch}: the {obj.spec} loss underflowed to exactly 0 "
            f"(gradient norm {norm:.2g}), which is not a stationary point",
        }
    if norm == 0.0:
        return {
            "status": "stalled",
            "epoch": epoch,
            "grad_norm": norm,
            "reason": f"stalled at epoch {epoch}: the gradient is exactly 0 (underflow or "
            "saturation), which is not evidence of a stationary point",
        }
    if obj.batch_level:
        if norm <= tol * abs(loss):
            return {
                "status": "converged",
                "epoch": epoch,
                "grad_norm": norm,
                "reason": f"converged at epoch {epoch}: gradient norm / |loss| "
                f"{norm / abs(loss):.2g} <= tol {tol:.2g} over the whole training set",
            }
        return None
    if norm <= tol:
        return {
            "status": "converged",
            "epoch": epoch,
            "grad_norm": norm,
            "reason": f"converged at epoch {epoch}: gradient norm {norm:.2g} <= tol {tol:.2g} "
            "over the whole training set",
        }
    return None


def _full_gradient(
    net: nn.Module, obj: Objective, x: torch.Tensor, y: torch.Tensor, params: list[torch.Tensor]
) -> tuple[float, float]:
    """The training risk (the mean loss over all of ``x``) and the norm of its gradient at the
    current weights, accumulated over chunks of :data:`_CHUNK` rows; the gradients are left in
    ``.grad`` (the next batch zeroes them)."""
    n = len(y)
    for p in params:
        p.grad = None
    total = torch.zeros((), dtype=torch.float64)
    for start in range(0, n, _CHUNK):
        xs, ys = x[start : start + _CHUNK], y[start : start + _CHUNK]
        part = obj.risk_from_logits(net(xs), ys) * (len(ys) / n)
        part.backward()
        total = total + part.detach().double()
    return float(total), float(_grad_norm(params))


def _epoch_limit(
    epochs: int,
    history: list[dict[str, float]],
    smallest: tuple[float, int],
    tol: float,
    obj: Objective,
    one_batch: bool,
) -> dict[str, Any]:
    """The stop of a run that used every epoch: not converged, with the last gradient norm,
    the smallest, and whether the training loss was still falling."""
    losses = [row["train_loss"] for row in history]
    w = max(1, min(10, len(losses) // 2))
    trend = ""
    if len(losses) >= 2 * w:
        change = float(np.mean(losses[-w:]) - np.mean(losses[-2 * w : -w]))
        scale = 1e-6 * max(1.0, abs(losses[-1]))
        word = "still falling" if change < -scale else "rising" if change > scale else "flat"
        trend = f"training loss {word} ({change:+.2g} over the last {w} epoch(s))"
    last = history[-1].get("full_grad_norm") if history else None
    if last is None:
        grad = (
            f"stationarity not tested: the {obj.spec} risk of a mini-batch is not a mean over "
            "examples"
            if obj.batch_level and not one_batch
            else "stationarity not tested"
        )
    else:
        grad = f"gradient norm {last:.2g} > tol {tol:.2g}"
        if smallest[1] and smallest[0] < last:
            grad += f" (smallest {smallest[0]:.2g} at epoch {smallest[1]})"
    detail = "; ".join(part for part in (grad, trend) if part)
    return {
        "status": "epoch_limit",
        "epoch": epochs,
        "grad_norm": last,
        "reason": f"epoch limit {epochs} reached, not converged: {detail}",
    }


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
