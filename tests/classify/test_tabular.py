"""A user's table as a classification dataset (classify.tabular): CSV and Parquet, classes from
the target, training-split standardisation, missing values, refusals."""

import numpy as np
import pytest

from likelab.classify.tabular import load_table, read_table
from likelab.errors import DataError, ParameterError


def _csv(tmp_path, text, name="t.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def _rows(n=30, *, label=lambda i: "ab"[i % 2]):
    return "".join(f"{i * 0.5},{(i * 7) % 5},{label(i)}\n" for i in range(n))


def test_classes_from_any_labels_and_features_standardised_on_the_training_split(tmp_path):
    path = _csv(tmp_path, "size,weight,kind\n" + _rows(30, label=lambda i: ["cat", "dog"][i % 2]))
    table = read_table(path, "kind")
    assert table.classes == ("cat", "dog") and table.features == ("size", "weight")
    d = table.dataset(3, test_size=0.25)
    assert d.classes == ("cat", "dog") and d.num_classes == 2
    assert len(d.y_train) + len(d.y_test) == 30 and d.p_test is None
    # the training split's own statistics: mean 0, sd 1 there, and the test rows mapped by them
    np.testing.assert_allclose(d.x_train.mean(0), 0, atol=1e-6)
    np.testing.assert_allclose(d.x_train.std(0), 1, atol=1e-6)
    mean, sd = np.array(d.info["feature_mean"]), np.array(d.info["feature_sd"])
    raw_test = d.x_test.astype(np.float64) * sd + mean
    dist = np.abs(raw_test[:, None, :] - table.x[None]).max(-1).min(1)
    assert dist.max() < 1e-5  # every test row is a row of the file, mapped back exactly
    raw_train = d.x_train.astype(np.float64) * sd + mean
    np.testing.assert_allclose(mean, raw_train.mean(0), atol=1e-5)
    assert not np.allclose(mean, table.x.mean(0))  # not the whole table's mean
    # labels line up with the rows: size i * 0.5 is a cat for even i
    size = d.x_train[:, 0] * sd[0] + mean[0]
    assert np.all(d.y_train == np.rint(size / 0.5).astype(int) % 2)


def test_numeric_labels_are_ordered_by_value(tmp_path):
    path = _csv(tmp_path, "x,grade\n" + "".join(f"{i},{[10, 9, 2][i % 3]}\n" for i in range(30)))
    assert read_table(path, "grade").classes == ("2", "9", "10")
    assert read_table(path, 1).target == "grade"  # a 0-based index works too


def test_missing_values_are_refused_with_rows_and_count_or_dropped(tmp_path):
    body = _rows(20).splitlines()
    body[3] = "NA,1,a"
    body[7] = "2.0,,b"
    body[9] = "2.5,3,nan"
    path = _csv(tmp_path, "x,y,label\n" + "\n".join(body) + "\n")
    with pytest.raises(DataError) as info:
        read_table(path, "label")
    msg = str(info.value)
    assert "3 rows have a missing value" in msg and "--missing drop" in msg
    assert "line 5 ('NA' in 'x')" in msg and "line 9 ('' in 'y')" in msg
    assert "line 11 ('nan' in 'label')" in msg
    table = read_table(path, "label", missing="drop")
    assert table.dropped_missing == 3 and table.rows == 20 and len(table.y) == 17
    assert table.missing_rows == ("line 5", "line 9", "line 11")


def test_a_text_feature_column_is_an_error_naming_it(tmp_path):
    path = _csv(tmp_path, "x,colour,label\n" + "".join(f"{i},red,{i % 2}\n" for i in range(9)))
    with pytest.raises(DataError, match=r"feature column 'colour': 'red' is text.*encode it"):
        read_table(path, "label")


def test_too_few_rows_of_a_class_for_the_split_is_an_error_naming_it(tmp_path):
    text = "x,label\n" + "".join(f"{i},{'a' if i else 'rare'}\n" for i in range(12))
    table = read_table(_csv(tmp_path, text), "label")
    with pytest.raises(DataError, match=r"class 'rare' \(1 row\) of target 'label' has fewer"):
        table.dataset(0)
    with pytest.raises(DataError, match="a single class"):
        read_table(_csv(tmp_path, "x,label\n1,a\n2,a\n3,a\n", "one.csv"), "label")


@pytest.mark.parametrize(
    ("text", "target", "fragment"),
    [
        ("1,2,3\n4,5,6\n", "a", "must be a header"),
        ("a,b\n1,x\n2,y\n", "a", "'b': 'x' is text"),
        ("a,b\n1,2\n", "c", "has no column 'c'"),
        ("label\na\nb\n", "label", "no feature"),
        ("a,b,c\n1,2\n", "c", "2 cell(s) where the header has 3"),
        ("a,b\n1,inf\n", "a", "not finite"),
        ("a,a\n1,2\n", "a", "twice"),
    ],
)
def test_bad_tables_are_data_errors(tmp_path, text, target, fragment):
    with pytest.raises(DataError) as info:
        read_table(_csv(tmp_path, text), target)
    assert fragment in str(info.value)


def test_label_noise_touches_the_training_labels_only(tmp_path):
    path = _csv(tmp_path, "x,y,label\n" + _rows(400))
    clean = load_table(path, "label", seed=1)
    noisy = load_table(path, "label", seed=1, noise="symmetric:0.4")
    assert np.array_equal(clean.y_test, noisy.y_test)
    assert np.array_equal(noisy.y_train_clean, clean.y_train)
    assert 0.3 < float(np.mean(noisy.y_train != clean.y_train)) < 0.5
    with pytest.raises(ParameterError, match="label noise"):
        load_table(path, "label", noise="gaussian:0.1")


def test_parquet_reads_like_the_csv(tmp_path):
    import duckdb

    csv = _csv(tmp_path, "x,y,label\n" + _rows(30) + "1.5,NA,b\n")
    pq = tmp_path / "t.parquet"
    duckdb.connect().execute(
        f"COPY (SELECT * FROM read_csv('{csv}', header=true, nullstr='NA')) TO '{pq}' "
        "(FORMAT parquet)"
    )
    a, b = read_table(csv, "label", missing="drop"), read_table(pq, "label", missing="drop")
    assert a.classes == b.classes and a.features == b.features
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.y, b.y)
    assert b.dropped_missing == 1 and b.missing_rows == ("row 31",)
    with pytest.raises(DataError, match="row 31 \\('null' in 'y'\\)"):
        read_table(pq, "label")
    bad = tmp_path / "bad.parquet"
    bad.write_text("not parquet")
    with pytest.raises(DataError, match=r"cannot read .* as Parquet"):
        read_table(bad, "label")
