"""The user-objective contract: one floating loss per observation, checked once on a probe;
errors inside user code (at import or call) reported as such, in the library and in every command
that runs user code (fit, landscape, properness, train)."""

from __future__ import annotations

import json
import sys
import textwrap

import numpy as np
import pytest
import torch

import likelab
from cli_support import run
from likelab.errors import SpecError, UnknownNameError, UserCodeError
from likelab.estimate import fit
from likelab.families import get_family
from likelab.landscape import evaluate
from likelab.objectives import get_objective
from likelab.properness import check_classes, check_density

# a fixed tag: test ids must be the same in every pytest-xdist worker (each worker writes these
# modules into its own temporary directory)
TAG = "c0ntract"
BAD = f"user_bad_{TAG}"  # user functions breaking the contract, each in its own way
GOOD = f"user_good_{TAG}"  # correct user objectives

BAD_SOURCE = """
import torch

def of_three(dist, y, z):
    return -dist.log_prob(y)

def of_nothing():
    return torch.zeros(())

def needs_keyword(dist, y, *, scale):
    return -scale * dist.log_prob(y)

def raises(dist, y):
    raise ValueError("the user's own message 4711")

def returns_nan(dist, y):
    return dist.log_prob(y) * float("nan")

def returns_none(dist, y):
    -dist.log_prob(y)

def returns_float(dist, y):
    return float(-dist.log_prob(y).detach().sum())

def returns_string(dist, y):
    return "a loss"

def returns_integers(dist, y):
    return (-dist.log_prob(y)).round().long()

def squeezes(dist, y):
    return (-dist.log_prob(y)).squeeze()

def wrong_shape(dist, y):
    return -dist.log_prob(y).sum(-1)

def returns_mean(dist, y):
    return -dist.log_prob(y).mean()

def returns_numpy(dist, y):
    return (-dist.log_prob(y)).detach().numpy()

def detached(dist, y):
    return (-dist.log_prob(y)).detach()

def recurses(dist, y):
    return recurses(dist, y)

def exits(dist, y):
    raise SystemExit("bye from user code")

def interrupted(dist, y):
    raise KeyboardInterrupt

def breaks_on_large_batches(dist, y):
    if y.numel() > 20:
        raise MemoryError("too many observations for me")
    return -dist.log_prob(y)

def chatty(dist, y):
    print("hello from the user's objective")
    return -dist.log_prob(y)

def writes_to_fd_1(dist, y):
    import os
    os.write(1, b"raw bytes on file descriptor 1\\n")
    return -dist.log_prob(y)
"""

GOOD_SOURCE = '''
import torch

def nll(dist, y):
    """the log score, by hand"""
    return -dist.log_prob(y)

def of_likelihood(p):
    return -torch.log(p)

def of_log_likelihood(l):
    return -l

def flat(dist, y):
    return torch.zeros_like(dist.log_prob(y))

CALLS = []

def counted(dist, y):
    CALLS.append(tuple(y.shape))
    return -dist.log_prob(y)
'''

IMPORT_FAILURES = {
    f"syntax_{TAG}": ("def f(dist, y)\n    return 0\n", "SyntaxError"),
    f"raising_{TAG}": ("raise RuntimeError('broken at import 987')\n", "broken at import 987"),
    f"exiting_{TAG}": ("import sys\nsys.exit('exit at import 654')\n", "exit at import 654"),
    f"missing_dep_{TAG}": ("import no_such_dependency_" + TAG + "\n", "no_such_dependency_"),
}


@pytest.fixture(scope="module", autouse=True)
def user_modules(tmp_path_factory):
    root = tmp_path_factory.mktemp("user_objectives")
    (root / f"{BAD}.py").write_text(textwrap.dedent(BAD_SOURCE))
    (root / f"{GOOD}.py").write_text(textwrap.dedent(GOOD_SOURCE))
    for name, (source, _) in IMPORT_FAILURES.items():
        (root / f"{name}.py").write_text(source)
    sys.path.insert(0, str(root))
    yield root
    sys.path.remove(str(root))
    for name in [BAD, GOOD, *IMPORT_FAILURES]:
        sys.modules.pop(name, None)


@pytest.fixture(scope="module")
def data_file(user_modules):
    path = user_modules / "data.txt"
    y = get_family("logistic").sample(30, seed=11, loc=0.4, scale=1.3)
    path.write_text("\n".join(f"{v:.17g}" for v in y) + "\n")
    return path


# ----------------------------------------------------------------------------- the table
# (function, what the message must contain); each breaks the contract wherever it is used
BROKEN = [
    ("of_three", "takes 3 required arguments"),
    ("of_nothing", "takes no argument"),
    ("needs_keyword", "keyword argument(s) scale"),
    ("raises", "ValueError: the user's own message 4711"),
    ("returns_nan", "returned nan where the log score is finite"),
    ("returns_none", "returned None"),
    ("returns_float", "returned a float"),
    ("returns_string", "returned a str"),
    ("returns_integers", "dtype torch.int64, not floating point"),
    ("wrong_shape", "returned shape (2,), expected (2, 4)"),
    ("returns_mean", "returned one number (shape ())"),
    ("returns_numpy", "returned a numpy array"),
    ("detached", "does not require grad"),
    ("recurses", "RecursionError"),
    ("exits", "SystemExit: bye from user code"),
]
NOT_OBJECTIVES = [
    ("os:system", "os:system is a built-in function"),
    ("math:pi", "math:pi is a float, not a function"),
    ("os:path", "os:path is a module, not a function"),
    ("collections:OrderedDict", "is a class (OrderedDict), not a function"),
]
SPECS = (
    [(f"{BAD}:{name}", fragment) for name, fragment in BROKEN]
    + [(f"{mod}:f", fragment) for mod, (_, fragment) in IMPORT_FAILURES.items()]
    + NOT_OBJECTIVES
)
COMMANDS = {
    "fit": lambda spec, data: ["fit", data, "--objective", spec],
    "landscape": lambda spec, data: [
        "landscape",
        "--data",
        data,
        "--param",
        "loc=-1:1:7",
        "--fix",
        "scale=1",
        "--objectives",
        f"log,{spec}",
    ],
    "properness-classes": lambda spec, data: ["properness", "--objectives", spec, "--classes", 3],
    "properness-density": lambda spec, data: [
        "properness",
        "--objectives",
        spec,
        "--truth",
        "logistic:loc=0,scale=1",
    ],
    "train": lambda spec, data: [
        "train",
        "--dataset",
        "iris",
        "--model",
        "logistic",
        "--objectives",
        spec,
        "--epochs",
        1,
        "--seeds",
        1,
    ],
}
# Landscapes take no derivatives: a detached (or numpy-computed) loss is fine there.
NEEDS_GRAD_ONLY = {"detached"}


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize(("spec", "fragment"), SPECS, ids=[s for s, _ in SPECS])
def test_broken_user_code_is_one_clear_line_in_every_command(
    capsys, data_file, command, spec, fragment
):
    if command == "landscape" and spec.split(":")[1] in NEEDS_GRAD_ONLY:
        code, out, err = run(capsys, *COMMANDS[command](spec, data_file))
        assert code == 0, err
        return
    code, out, err = run(capsys, *COMMANDS[command](spec, data_file))
    assert code == 2, (out, err)
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert fragment in err, err
    assert "internal error" not in err and "Traceback" not in out + err
    if ":" in spec and spec.split(":")[0] in (BAD, *IMPORT_FAILURES):
        assert spec.split(":")[0] in err  # the user's function (or module) is named
    if spec.startswith(BAD):
        assert "the contract: a user objective is fn(dist, y) -> one loss per observation" in err


def test_the_input_that_broke_it_is_named(capsys, data_file):
    """Fine on the probe, broken on the real batch: the message names that batch. A failure on
    the data is the objective's failed column with that message (the others would still be
    fitted) and exit status 1."""
    code, out, err = run(capsys, "fit", data_file, "--objective", f"{BAD}:breaks_on_large_batches")
    assert code == 1 and "could not be fitted" in err and err.count("\n") == 1, err
    assert "raised MemoryError: too many observations for me" in out
    assert "(on a Normal forecast with batch shape (1, 1) and y of shape (1, 30))" in out


def test_a_users_print_does_not_corrupt_json(capsys, data_file):
    code, out, err = run(capsys, "fit", data_file, "--objective", f"{BAD}:chatty", "--json")
    assert code == 0, err
    assert json.loads(out)["fits"][0]["objective"] == f"{BAD}:chatty"
    assert "hello from the user's objective" in err
    # without --json the print stays where the user put it
    code, out, err = run(capsys, "fit", data_file, "--objective", f"{BAD}:chatty")
    assert code == 0 and "hello from the user's objective" in out


def test_writes_to_the_stdout_file_descriptor_do_not_corrupt_json(user_modules, data_file):
    """What bypasses sys.stdout (a worker process, C code) is diverted too."""
    import os
    import subprocess
    from pathlib import Path

    src = Path(likelab.__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(user_modules), str(src)])}
    code = "import sys; from likelab.cli import main; sys.exit(main(sys.argv[1:]))"
    args = ["fit", str(data_file), "--objective", f"{BAD}:writes_to_fd_1", "--json"]
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["fits"][0]["objective"] == f"{BAD}:writes_to_fd_1"
    assert "raw bytes on file descriptor 1" in done.stderr


def test_keyboard_interrupt_in_user_code_propagates_untouched():
    y = get_family("normal").sample(20, seed=3, loc=0.0, scale=1.0)
    with pytest.raises(KeyboardInterrupt):
        fit(y, "normal", f"{BAD}:interrupted")
    with pytest.raises(KeyboardInterrupt):
        check_classes(f"{BAD}:interrupted", 3)


# ----------------------------------------------------------------------------- library level
def test_a_mean_loss_is_refused_before_it_can_mislead():
    """The issue's case on other data: a mean instead of per-observation losses made properness
    call the log score improper and fit crash. Now it is a UserCodeError everywhere."""
    mean_nll = get_objective(f"{BAD}:returns_mean")
    y = get_family("gamma").sample(40, seed=5, concentration=2.0, rate=0.5)
    with pytest.raises(UserCodeError, match=r"returned one number \(shape \(\)\)"):
        fit(y, "gamma", mean_nll)
    with pytest.raises(UserCodeError, match="reduction='none'"):
        check_classes(mean_nll, 4)
    with pytest.raises(UserCodeError, match="a mean or sum"):
        check_density(mean_nll, "gamma:concentration=2,rate=0.5")
    with pytest.raises(UserCodeError, match="a mean or sum"):
        evaluate(y, "gamma:rate=0.5", [mean_nll], {"concentration": np.linspace(1, 3, 5)})
    # called directly, on any batch: the shape is checked on every call
    F = get_family("laplace").distribution(loc=torch.zeros(3, 1), scale=torch.ones(3, 1))
    with pytest.raises(UserCodeError, match=r"probe, a Laplace forecast with batch shape"):
        mean_nll.loss(F, torch.linspace(-1, 1, 5))


def test_the_shape_is_checked_on_every_call_not_only_on_the_probe():
    """``.squeeze()`` is harmless on the probe's (2, 4) losses but drops the batch axis of a
    single dataset's (1, n): caught on the call that does it, with that call's shapes."""
    y = get_family("exponential").sample(12, seed=2, rate=2.0)
    with pytest.raises(UserCodeError, match=r"returned shape \(12,\), expected \(1, 12\)"):
        fit(y, "exponential", f"{BAD}:squeezes")


def test_a_hand_written_log_score_gives_the_builtin_results():
    y = get_family("student_t").sample((3, 60), seed=21, df=4.0, loc=-0.5, scale=2.0)
    for spec in (f"{GOOD}:nll", f"{GOOD}:of_log_likelihood", f"{GOOD}:of_likelihood"):
        mine, ref = fit(y, "logistic", spec), fit(y, "logistic", "log")
        assert mine.converged.all()
        for name in ("loc", "scale"):
            np.testing.assert_allclose(mine.params[name], ref.params[name], rtol=1e-9)
            np.testing.assert_allclose(mine.se[name], ref.se[name], rtol=1e-7)
        np.testing.assert_allclose(mine.value, ref.value, rtol=1e-12)
        assert check_classes(spec, 4).verdict == check_classes("log", 4).verdict
        assert check_density(spec, "laplace:loc=1,scale=0.5").verdict == "strictly proper"
    land = evaluate(y[0], "normal:scale=2", [f"{GOOD}:nll", "log"], {"loc": np.linspace(-2, 1, 31)})
    a, b = (land.results[s] for s in (f"{GOOD}:nll", "log"))
    np.testing.assert_array_equal(a.values, b.values)


def test_a_function_of_the_likelihood_is_one_objective_by_path_callable_and_registry():
    name = f"phi_{TAG}"

    @likelihood_objective(name)
    def of_p(p):
        return -torch.log(p)

    from importlib import import_module

    by_path = get_objective(f"{GOOD}:of_likelihood")
    by_callable = get_objective(import_module(GOOD).of_likelihood)
    by_name = get_objective(name)
    F = get_family("cauchy").distribution(loc=torch.zeros(2, 1), scale=torch.ones(2, 1))
    y = torch.tensor([-3.0, 0.0, 2.5], dtype=torch.float64)
    want = get_objective("log").loss(F, y)
    for obj in (by_path, by_callable, by_name):
        assert obj.user and obj.properties.local is True
        torch.testing.assert_close(obj.loss(F, y), want, rtol=1e-14, atol=0)


def likelihood_objective(name):
    return likelab.objective(name, formula="-log p")


def test_bad_signatures_are_refused_when_named_not_when_run():
    with pytest.raises(UserCodeError, match=r"takes 3 required arguments, likelab passes 2"):
        get_objective(f"{BAD}:of_three")
    with pytest.raises(UserCodeError, match="takes no argument"):
        likelab.objective(f"nothing_{TAG}")(lambda: torch.zeros(()))
    # a registered objective's hyperparameters are passed by keyword: not missing arguments
    from likelab.objectives import Hyper

    @likelab.objective(f"scaled_{TAG}", hypers=(Hyper("c", 2.0, lambda v: v > 0, "c > 0"),))
    def scaled(dist, y, c):
        return -c * dist.log_prob(y)

    F = get_family("normal").distribution(loc=0.0, scale=1.0)
    assert float(get_objective(f"scaled_{TAG}:c=3")(F, 0.0)) == pytest.approx(
        1.5 * np.log(2 * np.pi)
    )


@pytest.mark.parametrize(("module", "case"), list(IMPORT_FAILURES.items()))
def test_an_error_inside_the_users_module_is_user_code(module, case):
    with pytest.raises(UserCodeError, match=f"importing module '{module}' failed") as info:
        get_objective(f"{module}:f")
    assert case[1] in str(info.value)


def test_a_module_that_is_not_there_is_an_unknown_name():
    with pytest.raises(UnknownNameError, match="cannot import module"):
        get_objective(f"not_there_{TAG}:f")
    with pytest.raises(UnknownNameError, match="cannot import module"):
        get_objective(f"not_there_{TAG}.sub:f")


def test_the_probe_runs_once_per_kind_of_forecast():
    from importlib import import_module

    calls = import_module(GOOD).CALLS
    calls.clear()
    obj = get_objective(f"{GOOD}:counted")
    normal = get_family("normal").distribution(loc=torch.zeros(3, 1), scale=1.0)
    for _ in range(3):
        obj.loss(normal, torch.zeros(7))
    assert calls == [(4,), (7,), (7,), (7,)]  # the probe, then the three calls
    calls.clear()
    cat = torch.distributions.Categorical(logits=torch.zeros(5, 4))
    obj.loss(cat, torch.tensor([0, 1, 2, 3, 0]))
    obj.loss(cat, torch.tensor([0, 1, 2, 3, 0]))
    assert calls == [(4,), (5,), (5,)]


def test_a_constant_objective_is_differentiable_with_zero_derivatives():
    """A constant has no graph but is not a broken contract: its derivatives are 0."""
    y = get_family("normal").sample(25, seed=8, loc=0.0, scale=1.0)
    res = fit(y, "normal", f"{GOOD}:flat")
    assert float(res.value) == 0.0 and not bool(res.converged)
    with pytest.raises(UserCodeError, match="does not require grad"):
        fit(y, "normal", f"{BAD}:detached")


# ----------------------------------------------------------------------------- the documentation
def test_the_readme_example_runs_and_keeps_the_contract(capsys):
    from pathlib import Path

    from likelab.objectives import base

    readme = Path(__file__).resolve().parents[2] / "README.md"
    text = readme.read_text(encoding="utf-8")
    block = text.split("<!-- user-objective-example -->\n```python\n", 1)[1].split("```", 1)[0]
    base._REGISTRY.pop("soft_capped_nll", None)  # the example registers it
    namespace: dict = {}
    exec(compile(block, str(readme), "exec"), namespace)
    fits = namespace["fits"]
    assert all(bool(res.converged) for res in fits.values())
    assert "soft_capped_nll" in capsys.readouterr().out
    # where -log f(y) < 5 the example's loss is the log score itself
    obj = get_objective("soft_capped_nll")
    F = get_family("normal").distribution(loc=torch.zeros(2, 1), scale=torch.ones(2, 1))
    y = torch.tensor([-1.0, 0.5, 2.0], dtype=torch.float64)
    torch.testing.assert_close(obj.loss(F, y), get_objective("log").loss(F, y))


def test_objectives_help_states_the_contract(capsys):
    code, out, _ = run(capsys, "objectives", "--help")
    assert code == 0
    flat = " ".join(out.split())
    for fragment in (
        "fn(dist, y)",
        "one loss per observation, lower is better",
        "shape broadcast(dist.batch_shape, y.shape)",
        "differentiable",
        "function of the likelihood alone",
        "def capped_nll(dist, y):",
    ):
        assert fragment in flat


# ----------------------------------------------------------------------------- phi:EXPR
@pytest.mark.parametrize(
    ("expr", "builtin"),
    [
        ("-log(p)", "log"),
        ("-l", "log"),
        ("-p", "linear"),
        ("(1 - p^0.5) / 0.5", "lq:q=0.5"),
        ("-expm1(0.25 * l) / 0.25", "lq:q=0.75"),
        ("(1 - p**0.7) / 0.7", "gce:q=0.7"),
        ("2 * (1 - p)", "mae"),
    ],
)
def test_phi_expressions_are_the_local_rules_they_write(expr, builtin):
    obj = get_objective(f"phi:{expr}")
    # the spec is the expression as written, without its whitespace (as lq: q = 0.5 is lq:q=0.5)
    assert obj.spec == "phi:" + expr.replace(" ", "") and obj.properties.local is True
    F = get_family("logistic").distribution(
        loc=torch.tensor([[0.0], [1.5]], dtype=torch.float64), scale=0.7
    )
    y = torch.tensor([-2.0, 0.1, 0.9, 4.0], dtype=torch.float64)
    want = get_objective(builtin).loss(F, y)
    torch.testing.assert_close(obj.loss(F, y), want, rtol=1e-12, atol=1e-15)


def test_a_phi_expression_fits_and_judges_like_its_builtin(capsys):
    y = get_family("laplace").sample((2, 80), seed=13, loc=0.3, scale=0.8)
    mine, ref = fit(y, "normal", "phi:-l"), fit(y, "normal", "log")
    np.testing.assert_allclose(mine.params["scale"], ref.params["scale"], rtol=1e-10)
    np.testing.assert_allclose(mine.se["loc"], ref.se["loc"], rtol=1e-7)
    code, out, err = run(capsys, "properness", "--objectives", "phi:-p", "--classes", 4, "--json")
    assert code == 0, err
    assert json.loads(out)["results"][0]["verdict"] == "improper"  # the linear score


@pytest.mark.parametrize(
    ("expr", "fragment"),
    [
        ("__import__('os').system('true')", "is not allowed"),
        ("p.real", "'p.real' is not allowed"),
        ("x + p", "'x' is not allowed"),
        ("q", "'q' is not allowed"),  # phi:NAME is tried as an import path first
        ("log(p, 2)", "'log(p, 2)' is not allowed"),
        ("p +", "cannot parse the expression"),
        ("", "give an expression after 'phi:'"),
        ("3 * pi", "does not use p or l"),
        ("[p]", "is not allowed"),
        ("p if p else l", "is not allowed"),
    ],
)
def test_phi_expressions_outside_the_grammar_are_refused(capsys, expr, fragment):
    with pytest.raises(SpecError, match="phi") as info:
        get_objective(f"phi:{expr}")
    assert fragment in str(info.value)
    code, _, err = run(capsys, "properness", "--objectives", f"phi:{expr}", "--classes", 3)
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1


def test_a_phi_expression_that_is_nan_is_refused_before_use():
    # NaN for every p in (0, 1]: refused where the objective is built, naming a p where it is
    with pytest.raises(SpecError, match=r"phi:sqrt\(-p\) is NaN at p from 1e-300 to 1 "):
        check_classes("phi:sqrt(-p)", 3)


# ----------------------------------------------------------------------------- dtypes, devices
def test_the_probe_follows_the_forecasts_dtype():
    y = get_family("normal").sample(40, seed=9, loc=0.2, scale=1.1)
    grid = {"loc": np.linspace(-1, 1, 21)}
    mine = evaluate(y, "normal:scale=1", [f"{GOOD}:nll"], grid, dtype=torch.float32)
    ref = evaluate(y, "normal:scale=1", ["log"], grid, dtype=torch.float32)
    np.testing.assert_array_equal(mine.results[f"{GOOD}:nll"].values, ref.results["log"].values)
    with pytest.raises(UserCodeError, match="a mean or sum"):
        evaluate(y, "normal:scale=1", [f"{BAD}:returns_mean"], grid, dtype=torch.float32)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_user_objectives_on_cuda():
    y = get_family("normal").sample((4, 50), seed=10, loc=0.2, scale=1.1)
    mine = fit(y, "normal", f"{GOOD}:nll", device="cuda")
    ref = fit(y, "normal", "log", device="cuda")
    np.testing.assert_allclose(mine.params["loc"], ref.params["loc"], rtol=1e-10)
    np.testing.assert_allclose(mine.se["scale"], ref.se["scale"], rtol=1e-7)
    F = torch.distributions.Categorical(logits=torch.zeros(3, 4, device="cuda"))
    labels = torch.tensor([0, 1, 3], device="cuda")
    assert get_objective("phi:-log(p)").loss(F, labels).device.type == "cuda"
    with pytest.raises(UserCodeError, match="a mean or sum"):
        fit(y, "normal", f"{BAD}:returns_mean", device="cuda")
