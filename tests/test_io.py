"""Reading observations from text and CSV files."""

import re

import numpy as np
import pytest

from likelab.errors import DataError
from likelab.io import read_column, read_data


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
        ("1\nx\n3\n", None, "line 2, column 1: 'x' is not a number"),
        ("1\nnan\n", None, r"d.txt, column 1: 1 row has a missing value: line 2 \('nan'\)"),
        ("1\ninf\n", None, "not finite"),
        ("1\n-Infinity\n", None, "not finite"),
        ("1\n1e999\n", None, "overflows"),
        ("# nothing\n\n", None, "no observations"),
        ("a,b\n", None, "2 columns"),
        ("a,b\n", "a", r"header \(a, b\) but no data rows"),
        ("a,b\n1,2\n", None, "2 columns"),
        ("a,b\n1,2\n", "c", "no column 'c'; columns: a, b"),
        ("a,b\n1,2\n", 5, "no column 5"),
        ("a,b\n1,2\n3\n", "b", "line 3: 1 cell"),
        ("a,b\n1,\n2,3\n", "b", r"column 2 \('b'\): 1 row has a missing value: line 2 \(''\)"),
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


def write_bytes(tmp_path, data, name="d.csv"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_bom_with_crlf_and_a_real_header_keeps_every_value(tmp_path):
    path = write_bytes(tmp_path, b"\xef\xbb\xbfheight,weight\r\n1.5,60\r\n2.5,70\r\n-3,80\r\n")
    np.testing.assert_array_equal(read_column(path, "height"), [1.5, 2.5, -3.0])
    np.testing.assert_array_equal(read_column(path, "weight"), [60.0, 70.0, 80.0])


def test_bom_before_a_number_is_data_not_a_header(tmp_path):
    path = write_bytes(tmp_path, b"\xef\xbb\xbf-7.25\r\n4\r\n8\r\n", "d.txt")
    np.testing.assert_array_equal(read_column(path), [-7.25, 4.0, 8.0])


@pytest.mark.parametrize(
    "cell,value",
    [("1e3", 1000.0), ("-2.5E-1", -0.25), (".5", 0.5), ("7.", 7.0), ("+4", 4.0), (" 3 ", 3.0)],
)
def test_decimal_numbers_in_the_csv_sense_are_accepted(tmp_path, cell, value):
    path = write(tmp_path, f"v\n1\n{cell}\n")
    np.testing.assert_array_equal(read_column(path), [1.0, value])


@pytest.mark.parametrize("cell", ["1_5", "0b11", "0o7", "0xff", "1_000.5", "१२"])
def test_python_literal_syntax_is_refused_in_data_rows(tmp_path, cell):
    path = write(tmp_path, f"v\n2\n{cell}\n")
    with pytest.raises(DataError, match=rf"line 3, column 1 \('v'\): '{cell}' is not a "):
        read_column(path)


@pytest.mark.parametrize("first", ["0b101", "0o17", "2_5"])
def test_a_python_literal_first_row_is_not_taken_for_a_header(tmp_path, first):
    path = write(tmp_path, f"{first}\n4\n5\n")
    with pytest.raises(DataError, match=f"line 1, column 1: '{first}' is not a decimal number"):
        read_column(path)


def test_ragged_row_in_the_middle_of_a_table_with_a_header(tmp_path):
    path = write(tmp_path, "a,b,c\n1,2,3\n4,5,6\n7,8\n9,10,11\n")
    for column in ("a", "c", 0):
        with pytest.raises(DataError, match=r"line 4: 2 cell\(s\) where the header has 3"):
            read_column(path, column)
    longer = write(tmp_path, "5\n6\n7,8\n", "e.txt")
    with pytest.raises(DataError, match=r"line 3: 2 cell\(s\) where the first row has 1"):
        read_column(longer)


def test_a_first_row_mixing_names_and_numbers_is_an_error(tmp_path):
    with pytest.raises(DataError, match="line 1 mixes numbers and text"):
        read_column(write(tmp_path, "x,2020\n1,2\n"), 0)


def test_a_text_column_beside_the_chosen_one_is_allowed(tmp_path):
    path = write(tmp_path, "name,score\nann,1.5\nbob,2\n")
    np.testing.assert_array_equal(read_column(path, "score"), [1.5, 2.0])
    with pytest.raises(DataError, match=r"line 2, column 1 \('name'\): 'ann' is not a number"):
        read_column(path, "name")


def test_files_that_are_not_data_files(tmp_path):
    with pytest.raises(DataError, match="is a directory"):
        read_column(tmp_path)
    with pytest.raises(DataError, match="is empty"):
        read_column(write(tmp_path, "", "empty.txt"))
    latin1 = write_bytes(tmp_path, "x\n1\n2\n\u00e9t\u00e9\n".encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8 text: line 4 has byte 0xe9"):
        read_column(latin1)


def test_column_errors_list_the_available_columns(tmp_path):
    path = write(tmp_path, "alpha,beta\n1,2\n", "t.csv")
    with pytest.raises(DataError, match="no column 'gamma'; columns: alpha, beta"):
        read_column(path, "gamma")
    with pytest.raises(DataError, match=r"no column 2 \(0-based; it has 2: alpha, beta\)"):
        read_column(path, 2)
    headerless = write(tmp_path, "1,2\n3,4\n", "h.csv")
    with pytest.raises(DataError, match=r"no column 'x'; columns: indices 0\.\.1, no header row"):
        read_column(headerless, "x")


def test_large_files_are_refused_from_an_estimate_before_reading(tmp_path):
    path = write(tmp_path, "1.25\n" * 40_000)  # 200 kB, 40 000 rows
    with pytest.raises(DataError, match=r"holds about 40,000 rows .* more than the 10,000"):
        read_column(path, max_values=10_000)
    assert len(read_column(path, max_values=40_000)) == 40_000
    # an estimate from the first lines can be wrong: the count is also checked while reading
    skewed = write(tmp_path, "#" + "x" * 70_000 + "\n" + "1\n" * 3_000, "s.txt")
    with pytest.raises(DataError, match="more than 2,000 observations"):
        read_column(skewed, max_values=2_000)


# ---------------------------------------------------------------------- missing values
SPELLINGS = ["", "NA", "na", "N/A", "n/a", "NaN", "nan", "-nan", "+NaN", "NULL", "null", "None"]
SPELLINGS += ["<NA>", "#N/A", "#NA", " NA ", "\tnan"]


@pytest.mark.parametrize("token", SPELLINGS)
def test_each_missing_spelling_is_refused_by_default_and_dropped_on_request(tmp_path, token):
    path = write(tmp_path, f"id,v\n1,2.5\n2,{token}\n3,-4\n", "m.csv")
    with pytest.raises(
        DataError,
        match=rf"m\.csv, column 2 \('v'\): 1 row has a missing value: "
        rf"line 3 \({re.escape(repr(token.strip()))}\); pass --missing drop",
    ):
        read_column(path, "v")
    got = read_data(path, "v", missing="drop")
    np.testing.assert_array_equal(got.values, [2.5, -4.0])
    assert (got.rows, got.dropped_missing, got.missing_lines.tolist()) == (3, 1, [3])
    assert got.column == "column 2 ('v')"
    np.testing.assert_array_equal(read_column(path, 1, missing="drop"), [2.5, -4.0])


@pytest.mark.parametrize("token", ["inf", "-Infinity", "1e999", "x", "0x1f", "NAN2", "Na N", "."])
def test_what_is_not_missing_is_still_refused_with_drop(tmp_path, token):
    path = write(tmp_path, f"v\n1\nNA\n{token}\n")
    with pytest.raises(DataError, match=rf"line 4, column 1 \('v'\): {re.escape(repr(token))}"):
        read_data(path, missing="drop")


def test_the_error_lists_the_first_rows_and_counts_them_all(tmp_path):
    # 40 rows; rows with a missing value at lines 3, 4, 9, 10, 17, 25, 33, 41 (8 of them)
    cells = {3: "", 4: "NA", 9: "nan", 10: "null", 17: "N/A", 25: "", 33: "NaN", 41: "None"}
    lines = ["x,y"] + [f"{i},{cells.get(i, i / 4)}" for i in range(2, 42)]
    path = write(tmp_path, "\n".join(lines) + "\n", "t.csv")
    with pytest.raises(DataError) as info:
        read_column(path, "y")
    message = str(info.value)
    assert message.startswith("t.csv, column 2 ('y'): 8 rows have a missing value: ")
    assert "lines 3 (''), 4 ('NA'), 9 ('nan'), 10 ('null'), 17 ('N/A') and 3 more;" in message
    assert "--missing drop" in message and "\n" not in message
    got = read_data(path, "y", missing="drop")
    assert got.rows == 40 and got.dropped_missing == 8
    assert got.missing_lines.tolist() == sorted(cells)
    np.testing.assert_array_equal(got.values, [i / 4 for i in range(2, 42) if i not in cells])
    # the other column has no missing value: nothing is dropped, nothing refused
    x = read_data(path, "x", missing="drop")
    assert x.dropped_missing == 0 and x.missing_lines.size == 0
    np.testing.assert_array_equal(x.values, np.arange(2.0, 42.0))


@pytest.mark.parametrize("missing", ["error", "drop"])
def test_a_column_with_no_value_at_all_is_an_error_even_with_drop(tmp_path, missing):
    path = write(tmp_path, "a,b\n1,\n2,NA\n3,nan\n4,\n", "e.csv")
    with pytest.raises(
        DataError,
        match=r"e\.csv, column 2 \('b'\): every data row \(4\) has a missing value: "
        r"lines 2 \(''\), 3 \('NA'\), 4 \('nan'\), 5 \(''\); there is no observation",
    ):
        read_data(path, "b", missing=missing)
    headerless = write(tmp_path, "NA\nnan\n", "f.txt")
    with pytest.raises(DataError, match=r"every data row \(2\) has a missing value"):
        read_data(headerless, missing=missing)


def test_missing_values_in_columns_not_chosen_are_never_looked_at(tmp_path):
    path = write(tmp_path, "name,score,note\n,1.5,NA\nbob,,\n,2,n/a\n", "n.csv")
    got = read_data(path, "score", missing="drop")
    np.testing.assert_array_equal(got.values, [1.5, 2.0])
    assert got.dropped_missing == 1 and got.missing_lines.tolist() == [3]
    with pytest.raises(DataError, match=r"1 row has a missing value: line 3 \(''\)"):
        read_column(path, "score")


def test_a_first_row_with_missing_cells_is_data_not_a_header(tmp_path):
    path = write(tmp_path, "NA,1\n2,3\n", "h.csv")
    np.testing.assert_array_equal(read_column(path, 1), [1.0, 3.0])
    got = read_data(path, 0, missing="drop")
    assert got.values.tolist() == [2.0] and got.missing_lines.tolist() == [1]
    # a header may still have an empty name (pandas writes one for the index column)
    indexed = write(tmp_path, ",x\n0,1.5\n1,2.5\n", "i.csv")
    np.testing.assert_array_equal(read_column(indexed, "x"), [1.5, 2.5])
    # names beside a Python literal are a mixed row, as before
    with pytest.raises(DataError, match="line 1 mixes numbers and text"):
        read_column(write(tmp_path, "x,0b101\n1,2\n", "j.csv"), 0)


def test_a_row_starting_with_hash_na_is_data_not_a_comment(tmp_path):
    # spreadsheets write #N/A; such a row must not vanish as a comment with the values beside it
    path = write(tmp_path, "a,b\n# a comment\n#N/A,1\n2,3\n#NA ,5\n", "x.csv")
    np.testing.assert_array_equal(read_column(path, "b"), [1.0, 3.0, 5.0])
    got = read_data(path, "a", missing="drop")
    assert got.values.tolist() == [2.0] and got.missing_lines.tolist() == [3, 5]
    single = write(tmp_path, "#N/A\n1\n# note\n2\n", "y.txt")
    assert read_data(single, missing="drop").missing_lines.tolist() == [1]


def test_missing_must_be_error_or_drop(tmp_path):
    path = write(tmp_path, "1\n2\n")
    with pytest.raises(DataError, match="missing must be 'error' or 'drop', got 'skip'"):
        read_data(path, missing="skip")
