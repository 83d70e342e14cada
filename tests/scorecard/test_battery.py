"""battery: seeds from names, failures as data, JSON-ready rows."""

import hashlib
import json
import math

import numpy as np
import pytest
import torch

from likelab.errors import ParameterError, UnsupportedError, UserCodeError
from likelab.scorecard import battery
from likelab.scorecard.battery import guarded, jsonable, stream_seed


def test_stream_seed_is_sha256_of_the_names():
    digest = hashlib.sha256(b"7|robustness|family normal").digest()
    assert (
        stream_seed(7, "robustness", "family normal") == int.from_bytes(digest[:8], "big") % 2**63
    )


def test_stream_seed_changes_with_each_name_and_fits_63_bits():
    base = stream_seed(0, "properness", "classes K=3")
    others = {
        stream_seed(1, "properness", "classes K=3"),
        stream_seed(0, "landscape", "classes K=3"),
        stream_seed(0, "properness", "classes K=10"),
    }
    assert base not in others and len(others) == 3
    assert all(0 <= s < 2**63 for s in others | {base})
    # a seed numpy and torch both accept
    np.random.default_rng(base)
    torch.Generator().manual_seed(base)


def test_guarded_keeps_the_unit_and_records_failures_as_data():
    unit = {"setting": "s", "family": "normal"}

    def raises(exc):
        def work():
            raise exc

        return work

    row = guarded(unit, raises(UserCodeError("user objective f raised ValueError: my words")))
    assert row == {
        "setting": "s",
        "family": "normal",
        "status": "failed",
        "reason": "user objective f raised ValueError: my words",
    }
    row = guarded(unit, raises(UnsupportedError("crps cannot score classes")))
    assert row["status"] == "not applicable" and row["reason"] == "crps cannot score classes"
    row = guarded(unit, raises(ParameterError("bad\n  value")))
    assert row["status"] == "failed" and row["reason"] == "bad value"  # one line
    row = guarded(unit, raises(ZeroDivisionError("oops")))
    assert row["status"] == "failed" and row["internal"] is True
    assert row["reason"] == "internal error: ZeroDivisionError: oops"
    ok = guarded(unit, lambda: {"status": "ok", "x": np.float64(0.5)})
    assert ok == {"setting": "s", "family": "normal", "status": "ok", "x": 0.5, "reason": ""}
    with pytest.raises(KeyboardInterrupt):
        guarded(unit, raises(KeyboardInterrupt()))


def test_jsonable_leaves_only_plain_types():
    value = {
        "a": (np.float32(1.5), np.int64(2), np.bool_(True)),
        "t": torch.tensor([1.0, math.inf]),
        "n": np.array([[math.nan]]),
        3: None,
    }
    out = jsonable(value)
    assert out == {"a": [1.5, 2, True], "t": [1.0, math.inf], "n": [[out["n"][0][0]]], "3": None}
    assert math.isnan(out["n"][0][0])
    assert type(out["a"][0]) is float and type(out["a"][1]) is int and type(out["a"][2]) is bool
    json.dumps(out)  # nan/inf are written as JSON's extensions
    with pytest.raises(TypeError, match="not JSON-ready"):
        jsonable(object())


def test_every_quick_size_is_no_larger_than_the_full_one():
    for table in (battery.PROPERNESS_CLASS_SIZES, battery.PROPERNESS_DENSITY_SIZES):
        assert all(table["quick"][k] <= table["full"][k] for k in table["quick"])
    assert set(battery.EFFICIENCY_SETTINGS["quick"]) <= set(battery.EFFICIENCY_SETTINGS["full"])
    assert set(battery.ROBUSTNESS_SETTINGS["quick"]) <= set(battery.ROBUSTNESS_SETTINGS["full"])
