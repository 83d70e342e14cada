r"""A scikit-learn classifier trained with any likelab objective.

:class:`ObjectiveClassifier` wraps :func:`likelab.classify.train`: the network named by ``model``
(``logistic``, ``mlp:64,64``; :mod:`likelab.classify.models`) gives logits, its predictive is
``Categorical(logits)`` and training minimises the empirical risk of ``objective``,

.. math:: \hat\theta = \arg\min_\theta \frac1n \sum_{i=1}^n S\big(\mathrm{Cat}(\mathrm{softmax}
          (g_\theta(x_i))), y_i\big),

by Adam or SGD on mini-batches (``log`` is multinomial logistic regression / cross-entropy,
``brier`` the quadratic score, ``gce:q=0.7`` the generalised cross-entropy of Zhang & Sabuncu
2018, ...). It follows scikit-learn's conventions (the estimator API of Buitinck et al. 2013, API
design for machine learning software, arXiv:1309.0238): the constructor stores its parameters
unchanged and :meth:`fit` validates them; labels may be any values (``classes_``); it works in a
:class:`~sklearn.pipeline.Pipeline` and in :class:`~sklearn.model_selection.GridSearchCV`; with an
integer ``random_state`` the fit is reproducible bit for bit, and equal to
``likelab.classify.train(..., seed=random_state)`` on the same data.

>>> import numpy as np
>>> from likelab.sklearn import ObjectiveClassifier
>>> X = np.array([[-2.0], [-1.0], [-0.5], [0.5], [1.0], [2.0]])
>>> y = np.array(["no", "no", "no", "yes", "yes", "yes"])
>>> clf = ObjectiveClassifier("brier", epochs=200, lr=0.1, random_state=0).fit(X, y)
>>> clf.classes_.tolist(), clf.predict([[-3.0], [3.0]]).tolist()
(['no', 'yes'], ['no', 'yes'])
>>> clf.score(X, y)
1.0
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from likelab.classify.datasets import Dataset
from likelab.classify.trainer import train
from likelab.errors import DataError, LikelabError, ParameterError

__all__ = ["ObjectiveClassifier"]

_TRAIN_DEFAULTS = {
    name: p.default
    for name, p in inspect.signature(train).parameters.items()
    if p.default is not inspect.Parameter.empty
}
#: ``train`` keywords this wrapper sets itself (no test set to evaluate on during training).
_RESERVED = {"model", "seed", "dtype", "eval_every"}
#: ``train`` keywords that are constructor parameters of :class:`ObjectiveClassifier`.
_EXPOSED = ("optimizer", "lr", "epochs", "batch_size", "validation", "patience", "tol")
_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def _default(name: str, fallback: Any) -> Any:
    return _TRAIN_DEFAULTS.get(name, fallback)


class ObjectiveClassifier(ClassifierMixin, BaseEstimator):
    """A classifier whose network is trained by minimising a likelab objective.

    Parameters
    ----------
    objective:
        An objective spec (``"log"``, ``"brier"``, ``"gce:q=0.7"``, ``"phi:-log(p)"``), an
        :class:`~likelab.Objective` or a user callable; any objective that scores a
        ``Categorical`` forecast (``crps`` and ``hyvarinen`` do not, and are refused by fit).
    model:
        ``"logistic"`` (one linear layer: multinomial logistic regression under ``log``) or
        ``"mlp:W1,W2,..."`` (ReLU hidden layers of those widths).
    optimizer, lr, epochs, batch_size, validation, patience, tol:
        Training options of :func:`likelab.classify.train` (defaults: its own; ``tol``, the
        gradient-norm tolerance of its stopping rule, where the trainer has one).
        ``batch_size=0`` trains on the whole training set at each step.
    dtype:
        ``"float32"`` or ``"float64"``: the network's weights (and the training arithmetic).
    random_state:
        ``None``, an integer or a ``numpy.random.RandomState``: seeds the initial weights, the
        order of the mini-batches and the validation split. An integer ``s`` is the trainer's
        ``seed=s``.
    train_options:
        Further keywords for :func:`likelab.classify.train` (a dict), for options not listed
        above.

    Attributes
    ----------
    classes_: the labels seen in fit, sorted; ``predict_proba``'s columns are in this order.
    n_features_in_, feature_names_in_: as in scikit-learn.
    network_: the trained ``torch.nn.Module``, mapping features to logits.
    history_: per-epoch training history (mean loss, gradient norm, ...; see ``train``).
    n_iter_: the number of epochs run.
    stop_: when and why training stopped (``status``, ``epoch``, ``reason``), as the trainer
    records it (empty where it records none).
    objective_: the objective's canonical spec.
    train_metrics_: accuracy, NLL, Brier, ECE and confidence on the training set at the end.
    """

    def __init__(
        self,
        objective: Any = "log",
        model: str = "logistic",
        *,
        optimizer: str = _default("optimizer", "adam"),
        lr: float = _default("lr", 0.01),
        epochs: int = _default("epochs", 100),
        batch_size: int = _default("batch_size", 64),
        validation: float = _default("validation", 0.0),
        patience: int | None = _default("patience", None),
        tol: float | None = _default("tol", None),
        dtype: str = "float32",
        random_state: int | np.random.RandomState | None = None,
        train_options: dict[str, Any] | None = None,
    ) -> None:
        self.objective = objective
        self.model = model
        self.optimizer = optimizer
        self.lr = lr
        self.epochs = epochs
        self.batch_size = batch_size
        self.validation = validation
        self.patience = patience
        self.tol = tol
        self.dtype = dtype
        self.random_state = random_state
        self.train_options = train_options

    # ------------------------------------------------------------------ fit
    def fit(self, X: Any, y: Any) -> ObjectiveClassifier:
        """Train a fresh network on ``(X, y)``; returns ``self``.

        Raises :class:`~likelab.DataError` (a ``ValueError``) for NaN or infinite features,
        inconsistent lengths, continuous targets or a single class, and likelab's errors for
        invalid options; a run that diverges (non-finite loss or weights) raises
        :class:`~likelab.ParameterError` naming the epoch (lower ``lr``).
        """
        X, y = _as_data_error(lambda: validate_data(self, X, y, dtype=np.float64))
        X = X if X.flags.writeable else X.copy()  # torch takes writable arrays only
        _as_data_error(lambda: check_classification_targets(y))
        classes, y_enc = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise DataError(
                f"{type(self).__name__} needs samples of at least 2 classes; y has one class "
                f"({classes[0]!r})"
            )
        options = self._train_options(len(y_enc))
        data = Dataset(
            name="sklearn",
            x_train=X,
            y_train=y_enc.astype(np.int64),
            x_test=X,  # the trainer reports its final metrics here: training-set metrics
            y_test=y_enc.astype(np.int64),
            num_classes=len(classes),
        )
        result = train(data=data, objective=self.objective, **options)
        failed = getattr(result, "failed", None)
        if failed is not None:
            raise ParameterError(
                f"training with {result.objective} ({result.model}) failed: {failed}"
            )
        if result.diverged is not None:
            raise ParameterError(
                f"training with {result.objective} ({result.model}) {result.diverged}; lower lr "
                f"(now {options.get('lr')!r})"
            )
        self.classes_ = classes
        self.network_ = result.network.eval()
        self.history_ = result.history
        self.n_iter_ = result.epochs_run
        self.stop_ = dict(getattr(result, "stop", None) or {})
        self.objective_ = result.objective
        self.train_metrics_ = result.metrics
        return self

    def _train_options(self, n: int) -> dict[str, Any]:
        if self.dtype not in _DTYPES:
            raise ParameterError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")
        if not isinstance(self.model, str):
            raise ParameterError(
                f"model must be a spec string such as 'logistic', got {self.model!r}"
            )
        options: dict[str, Any] = {
            "model": self.model,
            "dtype": _DTYPES[self.dtype],
            "seed": _seed(self.random_state),
        }
        if "eval_every" in _TRAIN_DEFAULTS:
            options["eval_every"] = 0  # no test set: the history holds training quantities
        for name in _EXPOSED:
            if name in _TRAIN_DEFAULTS:
                options[name] = getattr(self, name)
            elif getattr(self, name) is not None:
                raise ParameterError(f"{name}: likelab.classify.train has no such option here")
        if isinstance(options.get("batch_size"), int) and options["batch_size"] == 0:
            options["batch_size"] = n  # the whole training set, as the CLI's --batch-size 0
        extra = self.train_options or {}
        if not isinstance(extra, dict):
            raise ParameterError(f"train_options must be a dict, got {type(extra).__name__}")
        for key, value in extra.items():
            if key not in _TRAIN_DEFAULTS or key == "objective":
                raise ParameterError(
                    f"train_options: likelab.classify.train has no option {key!r} (its options: "
                    f"{', '.join(k for k in _TRAIN_DEFAULTS if k not in _RESERVED)})"
                )
            if key == "eval_every":
                raise ParameterError(
                    "train_options: eval_every is set by the estimator (0: it has no test set)"
                )
            if key in _RESERVED or key in _EXPOSED:
                raise ParameterError(
                    f"train_options: give {key!r} as the estimator's own parameter"
                    + (" (random_state)" if key == "seed" else "")
                )
            options[key] = value
        return options

    # ------------------------------------------------------------------ predict
    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, shape ``(n_samples, n_classes)``, columns in ``classes_`` order:
        the softmax of the network's logits (computed in float64)."""
        check_is_fitted(self)
        X = _as_data_error(lambda: validate_data(self, X, reset=False, dtype=np.float64))
        X = X if X.flags.writeable else X.copy()
        weight = next(self.network_.parameters())
        x = torch.as_tensor(X).to(dtype=weight.dtype, device=weight.device)
        self.network_.eval()
        with torch.no_grad():
            logits = self.network_(x)
        return torch.softmax(logits.to(torch.float64), dim=-1).cpu().numpy()

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each row (ties: the first in ``classes_``)."""
        proba = self.predict_proba(X)  # first: it checks that the estimator is fitted
        return self.classes_[np.argmax(proba, axis=1)]

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """``log`` of :meth:`predict_proba`."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))


def _seed(random_state: Any) -> int:
    """The trainer's seed: an integer as it is (the trainer checks its range), otherwise drawn
    from ``check_random_state(random_state)`` (``None``: numpy's global RandomState)."""
    if isinstance(random_state, int | np.integer) and not isinstance(random_state, bool):
        return int(random_state)
    try:
        rng = check_random_state(random_state)
    except ValueError:
        raise ParameterError(
            f"random_state must be None, an integer or a numpy RandomState, got {random_state!r}"
        ) from None
    return int(rng.randint(np.iinfo(np.int32).max))


def _as_data_error(fn):
    """Run scikit-learn's validation, re-raising its ``ValueError`` as likelab's
    :class:`~likelab.DataError` (also a ``ValueError``) with the same message."""
    try:
        return fn()
    except LikelabError:
        raise
    except ValueError as exc:
        if type(exc) is not ValueError:  # NotFittedError and other specific errors stay
            raise
        raise DataError(str(exc)) from exc
