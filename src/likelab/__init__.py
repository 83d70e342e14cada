"""likelab: a laboratory for likelihood-based objectives.

Why do we maximise the product of per-sample likelihoods (minimise the NLL) rather than their sum,
or anything else, and what exactly goes wrong if we don't? likelab answers it on your own data and
models: objectives are scoring rules (:mod:`likelab.objectives`), models are parametric families
(:mod:`likelab.families`), :mod:`likelab.landscape` draws what an objective looks like,
:mod:`likelab.estimate` fits with it and :mod:`likelab.properness` checks whether the truth
minimises it.
"""

from __future__ import annotations

# first: starts torch's intra-op threads before any number is computed (see likelab._runtime)
import likelab._runtime  # noqa: F401
from likelab.asymptotics import AsymptoticsResult, asymptotics
from likelab.errors import (
    DataError,
    LikelabError,
    ParameterError,
    SpecError,
    UnknownNameError,
    UnsupportedError,
)
from likelab.estimate import FitResult, fit
from likelab.families import Family, get_family, list_families
from likelab.objectives import (
    Objective,
    get_objective,
    list_objectives,
    local_objective,
    objective,
)
from likelab.properness import check_properness
from likelab.scoring import score

__version__ = "0.1.0"

__all__ = [
    "AsymptoticsResult",
    "DataError",
    "Family",
    "FitResult",
    "LikelabError",
    "Objective",
    "ParameterError",
    "SpecError",
    "UnknownNameError",
    "UnsupportedError",
    "__version__",
    "asymptotics",
    "check_properness",
    "fit",
    "get_family",
    "get_objective",
    "list_families",
    "list_objectives",
    "local_objective",
    "objective",
    "score",
]


def __getattr__(name: str):
    """``likelab.sklearn`` on first use: scikit-learn is imported only by those who use it."""
    if name == "sklearn":
        import importlib

        return importlib.import_module("likelab.sklearn")
    raise AttributeError(f"module 'likelab' has no attribute {name!r}")
