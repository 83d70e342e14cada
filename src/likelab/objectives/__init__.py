"""Objectives: scoring rules in loss orientation, and their registry.

>>> import torch
>>> from likelab.objectives import get_objective, list_objectives
>>> "log" in list_objectives()
True
>>> F = torch.distributions.Categorical(probs=torch.tensor([0.7, 0.2, 0.1]))
>>> round(float(get_objective("brier")(F, torch.tensor(0))), 4)  # Σp² - 2p_y
-0.86
"""

from __future__ import annotations

from likelab.objectives.base import (
    Hyper,
    Objective,
    Properties,
    check_observations,
    get_objective,
    list_objectives,
    local_objective,
    objective,
    register_objective,
)

__all__ = [
    "Hyper",
    "Objective",
    "Properties",
    "check_observations",
    "get_objective",
    "list_objectives",
    "local_objective",
    "objective",
    "register_objective",
]
