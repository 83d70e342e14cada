"""Properness over the K-simplex: verdicts against registry claims and against closed forms."""

import numpy as np
import pytest
import torch

from likelab.errors import LikelabError, ParameterError, UnknownNameError, UnsupportedError
from likelab.objectives import get_objective, list_objectives
from likelab.properness import check_classes, class_truths
from likelab.properness.classes import expected_class_score, newton_minimize

CLASS_OBJECTIVES = [
    o for o in list_objectives(include_user=False) if o not in ("product", "crps", "hyvarinen")
]


@pytest.mark.parametrize("k", [2, 3, 10])
@pytest.mark.parametrize("name", CLASS_OBJECTIVES)
def test_every_verdict_agrees_with_the_registry_claim(name, k):
    v = check_classes(name, k)
    assert v.claimed is not None
    assert v.verdict == v.claimed, (v.verdict, v.claimed, v.worst_truth, v.optimum, v.gap)


def test_lq_optimum_is_the_closed_form_sharpening():
    # Σ_k q_k (1 - p_k^a)/a with a = 1 - q is minimised on the simplex where q_k p_k^(a-1) is
    # constant (Lagrange), i.e. p ∝ q^(1/(1-a)); lq:q=0.5 gives p ∝ q².
    obj = get_objective("lq:q=0.5")
    q = torch.tensor([[0.5, 0.3, 0.2], [0.7, 0.2, 0.1]], dtype=torch.float64)

    def risk(u, idx):
        p = torch.softmax(torch.cat([torch.zeros_like(u[:, :1]), u], -1), -1)
        return expected_class_score(obj, p, q[idx])

    res = newton_minimize(risk, torch.zeros(2, 2, dtype=torch.float64))
    u = res.u
    p = torch.softmax(torch.cat([torch.zeros_like(u[:, :1]), u], -1), -1)
    np.testing.assert_allclose(p, (q**2 / (q**2).sum(-1, keepdim=True)).numpy(), atol=1e-8)


def test_linear_and_mae_put_everything_on_the_mode():
    for name in ("linear", "mae"):
        v = check_classes(name, 4)
        mode = int(np.argmax(v.worst_truth))
        assert v.verdict == "improper" and v.optimum[mode] > 0.999
        assert v.how.startswith("sharper than the truth")


def test_a_constant_score_is_proper_but_not_strictly(tmp_path, monkeypatch):
    (tmp_path / "user_scores.py").write_text(
        "import torch\n"
        "def flat(dist, y):\n"
        "    return torch.zeros_like(dist.log_prob(y))\n"
        "def negated_log(dist, y):\n"
        "    return dist.log_prob(y)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    flat = check_classes("user_scores:flat", 3)
    assert flat.verdict == "proper" and flat.claimed is None and flat.agrees_with_claim is None
    # a user objective by import path is judged like a built-in one
    assert check_classes("user_scores:negated_log", 3).verdict == "improper"


def test_truths_include_the_edge_cases_and_are_reproducible():
    t = class_truths(4, n_random=10, seed=3)
    np.testing.assert_allclose(t.sum(1), 1.0, rtol=1e-15)
    assert np.allclose(t[0], 0.25) and t[1].max() == pytest.approx(0.98)
    np.testing.assert_array_equal(t, class_truths(4, n_random=10, seed=3))


@pytest.mark.parametrize(
    ("args", "error", "fragment"),
    [
        (("log", 1), ParameterError, "K must be an integer >= 2"),
        (("log", 2.5), ParameterError, "K must be an integer >= 2"),
        (("nope", 3), UnknownNameError, "unknown objective"),
        (("crps", 3), UnsupportedError, "ordered"),
        (("product", 3), UnsupportedError, "batch-level"),
    ],
)
def test_bad_inputs(args, error, fragment):
    with pytest.raises(error, match=fragment) as info:
        check_classes(*args)
    assert isinstance(info.value, LikelabError)


def test_json_ready():
    import json

    d = check_classes("spherical", 3).to_dict()
    assert json.loads(json.dumps(d))["verdict"] == "strictly proper"
    assert d["setting"] == "classes:3" and d["agrees_with_claim"] is True
