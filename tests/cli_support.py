"""Helpers shared by the CLI tests: run ``likelab`` in-process and capture what it printed."""

import json
import textwrap

from likelab.cli import main


def run(capsys, *args):
    """Exit code, stdout and stderr of ``likelab ARGS``."""
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys, *args):
    """The parsed ``--json`` output of ``likelab ARGS`` (which must succeed)."""
    code, out, err = run(capsys, *args, "--json")
    assert code == 0, err
    return json.loads(out)


def make_study_store(folder, text, name):
    """Write the study file ``NAME.yaml`` (``text``, dedented) in ``folder`` and run it with the
    local executor into ``NAME.duckdb``: (study file, store)."""
    from likelab.study import load_study, run_study

    path = folder / f"{name}.yaml"
    path.write_text(textwrap.dedent(text))
    store = folder / f"{name}.duckdb"
    run_study(load_study(path), store, executor="local")
    return path, store
