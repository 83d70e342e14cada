"""An objective as the user spelled it: ``brier`` stays ``brier``, not ``quadratic``.

Results are keyed by each objective's canonical spec (``brier`` -> ``quadratic``, ``nll`` ->
``log``, ``sum`` -> ``linear``), so that JSON keys are stable; what a person reads (tables,
figures, pages) names the objective as it was asked for, the canonical spec in brackets where the
two differ: ``brier (quadratic)``. :func:`spellings` records the spellings where a result is
computed; :func:`objective_label` writes the label.

>>> given = spellings(["brier", "log"])
>>> given
{'quadratic': 'brier', 'log': 'log'}
>>> objective_label("quadratic", given), objective_label("log", given)
('brier (quadratic)', 'log')
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from likelab.objectives.base import get_objective

__all__ = ["objective_label", "spellings"]


def spellings(objectives: Iterable[Any]) -> dict[str, str]:
    """Canonical spec -> the spelling asked for, for every objective given as a spec string
    (an :class:`~likelab.objectives.Objective` or a callable has no spelling but its spec).
    The first spelling of a spec wins; strings that are not objectives are left out (they are
    refused where the objective is built)."""
    out: dict[str, str] = {}
    for o in objectives:
        if not isinstance(o, str):
            continue
        try:
            spec = get_objective(o).spec
        except ValueError:  # LikelabError: refused where the objective is used
            continue
        out.setdefault(spec, o.strip())
    return out


def objective_label(spec: str, given: Mapping[str, str] | None = None) -> str:
    """``spec`` as the user spelled it (``given[spec]``), the canonical spec in brackets where
    they differ: ``brier (quadratic)``; ``spec`` alone where no other spelling was given."""
    spelled = (given or {}).get(spec, spec)
    return spec if spelled == spec else f"{spelled} ({spec})"
