"""Helpers shared by the CLI tests: run ``likelab`` in-process and capture what it printed."""

import json

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
