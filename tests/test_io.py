"""Reading observations from text and CSV files."""

import numpy as np
import pytest

from likelab.errors import DataError
from likelab.io import read_column


def write(tmp_path, text, name="d.txt"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_one_number_per_line_with_comments_and_blanks(tmp_path):
    path = write(tmp_path, "# draws\n1.5\n\n-2\n3e-1\n")
    np.testing.assert_array_equal(read_column(path), [1.5, -2.0, 0.3])


def test_csv_column_by_name_and_index(tmp_path):
    path = write(tmp_path, "a,b\n1,10\n2,20\n", "d.csv")
    np.testing.assert_array_equal(read_column(path, "b"), [10.0, 20.0])
    np.testing.assert_array_equal(read_column(path, 0), [1.0, 2.0])
    np.testing.assert_array_equal(read_column(path, "1"), [10.0, 20.0])


@pytest.mark.parametrize(
    "text,column,fragment",
    [
        ("1\nx\n3\n", None, "line 2: 'x' is not a number"),
        ("1\nnan\n", None, "line 2: 'nan' is not finite"),
        ("1\ninf\n", None, "not finite"),
        ("# nothing\n\n", None, "no observations"),
        ("a,b\n", None, "2 columns"),
        ("a,b\n1,2\n", None, "2 columns"),
        ("a,b\n1,2\n", "c", "no column 'c'"),
        ("a,b\n1,2\n", 5, "no column 5"),
        ("a,b\n1,2\n3\n", "b", "line 3: no column 1"),
    ],
)
def test_bad_files_name_the_problem(tmp_path, text, column, fragment):
    with pytest.raises(DataError, match=fragment):
        read_column(write(tmp_path, text), column)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_column(tmp_path / "missing.txt")


def test_as_observations_accepts_lists_arrays_and_tensors():
    import torch

    from likelab.io import as_observations

    for data in ([1, 2.5], np.array([1.0, 2.5]), torch.tensor([1.0, 2.5], dtype=torch.float32)):
        out = as_observations(data)
        assert out.dtype == np.float64
        np.testing.assert_array_equal(out, [1.0, 2.5])
    with pytest.raises(DataError, match="must be numbers"):
        as_observations(["a", "b"])
