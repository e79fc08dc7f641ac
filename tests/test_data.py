"""Datasets: built-in loaders, IDX parsing, offline errors and the validated .npz loader."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from compression import _tf
from compression.errors import CompressionError
from compression.inputs import builtin_datasets
from compression.inputs.builtin_datasets import list_datasets, read_idx, write_idx
from compression.inputs.data import load_dataset
from compression.inputs.dataset import Dataset
from compression.inputs.user_npz import load_npz

ROOT = Path(__file__).resolve().parents[1]
DEBIAN = Path(builtin_datasets.DEBIAN_FASHION_MNIST_DIR)
REAL_KERAS_DATASET_DIRS = builtin_datasets._keras_dataset_dirs


@pytest.fixture(autouse=True)
def no_local_datasets(monkeypatch, tmp_path):
    """Each test sees no env vars, an empty Keras cache and (unless it asks) no Debian package."""
    monkeypatch.delenv(builtin_datasets.FASHION_MNIST_ENV, raising=False)
    monkeypatch.delenv(builtin_datasets.MNIST_ENV, raising=False)
    monkeypatch.delenv("KERAS_HOME", raising=False)
    monkeypatch.setattr(builtin_datasets, "_keras_dataset_dirs", lambda: [tmp_path / "keras" / "datasets"])


@pytest.fixture
def debian_fashion_mnist() -> Path:
    """Debian's dataset-fashion-mnist, which `make test` installs: missing, the test fails saying so (no skip)."""
    if not DEBIAN.is_dir():
        pytest.fail(f"{DEBIAN} is missing: `make datasets` (apt-get install -y dataset-fashion-mnist) installs it.")
    return DEBIAN


@pytest.fixture
def no_debian(monkeypatch, tmp_path):
    monkeypatch.setattr(builtin_datasets, "DEBIAN_FASHION_MNIST_DIR", str(tmp_path / "no-debian"))


def _fake_keras(monkeypatch, **loaders):
    """Replace tf_keras (never imported here) by an object whose datasets use the given load_data functions."""
    datasets = types.SimpleNamespace(**{k: types.SimpleNamespace(load_data=v) for k, v in loaders.items()})
    monkeypatch.setattr(_tf, "keras", lambda: types.SimpleNamespace(datasets=datasets))


def _offline():
    raise Exception("URL fetch failure on https://example.org: None -- [Errno -2] Name or service not known")


# ---------------------------------------------------------------- digits and mnist1d


def test_digits():
    ds = load_dataset("digits")
    assert ds.kind == "image" and ds.input_shape == (8, 8, 1) and ds.num_classes == 10
    assert ds.x_train.shape == (1437, 8, 8, 1) and ds.x_test.shape == (360, 8, 8, 1)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert 0.0 == ds.x_train.min() and ds.x_train.max() == 1.0
    assert ds.class_names == tuple("0123456789")
    # stratified: every class is in the test split in about its share
    assert np.bincount(ds.y_test).min() >= 34
    again = load_dataset("digits")
    np.testing.assert_array_equal(ds.x_test, again.x_test)


def test_mnist1d_is_generated_offline_and_cached():
    state = np.random.get_state()[1].copy()
    ds = load_dataset("mnist1d")
    assert ds.kind == "sequence" and ds.input_shape == (40, 1) and ds.num_classes == 10
    assert ds.x_train.shape == (4000, 40, 1) and ds.x_test.shape == (1000, 40, 1)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert abs(float(ds.x_train.mean())) < 0.1 and 0.9 < float(ds.x_train.std()) < 1.1
    np.testing.assert_array_equal(np.random.get_state()[1], state)  # global RNG untouched
    ds.x_train[0] = 99.0  # a caller's change must not reach the cache
    assert builtin_datasets._mnist1d_arrays.cache_info().currsize == 1
    assert load_dataset("mnist1d").x_train[0, 0, 0] != 99.0


def test_dataset_is_frozen():
    ds = load_dataset("digits")
    with pytest.raises(dataclasses.FrozenInstanceError):
        ds.name = "other"
    assert "digits" in repr(ds) and "n_train=1437" in repr(ds)


def test_subsampling_is_seeded():
    a = load_dataset("digits", max_train=100, max_test=50, seed=1)
    b = load_dataset("digits", max_train=100, max_test=50, seed=1)
    c = load_dataset("digits", max_train=100, max_test=50, seed=2)
    assert len(a.y_train) == 100 and len(a.y_test) == 50
    np.testing.assert_array_equal(a.x_train, b.x_train)
    assert not np.array_equal(a.x_train, c.x_train)
    assert len(load_dataset("digits", max_train=10**6).y_train) == 1437
    with pytest.raises(CompressionError, match="max_train must be a positive whole number"):
        load_dataset("digits", max_train=0)


def test_unknown_name_lists_the_names():
    with pytest.raises(CompressionError, match="Unknown dataset 'imagenet'.*digits, mnist1d, fashion_mnist"):
        load_dataset("imagenet")


# ---------------------------------------------------------------- IDX files


def _write_idx_folder(folder: Path, n_train=12, n_test=6, shape=(6, 5), gz=True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    suffix = ".gz" if gz else ""
    for split, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, *shape), dtype=np.uint8)
        images[0, 0, 0] = 255
        write_idx(folder / f"{split}-images-idx3-ubyte{suffix}", images)
        write_idx(folder / f"{split}-labels-idx1-ubyte{suffix}", (np.arange(n) % 10).astype(np.uint8))
    return folder


@pytest.mark.parametrize("gz", [True, False])
def test_fashion_mnist_from_idx_files(tmp_path, gz):
    folder = _write_idx_folder(tmp_path / "fm", gz=gz)
    ds = load_dataset("fashion_mnist", path=str(folder))
    assert ds.x_train.shape == (12, 6, 5, 1) and ds.x_test.shape == (6, 6, 5, 1)
    assert ds.x_train.dtype == np.float32 and ds.x_train.max() == 1.0 and ds.x_train.min() >= 0
    np.testing.assert_array_equal(ds.y_train, np.arange(12) % 10)
    assert ds.class_names[0] == "T-shirt/top" and ds.class_names[9] == "Ankle boot"
    assert ds.kind == "image" and str(folder) in ds.description


def test_idx_round_trip_keeps_dtype_and_shape(tmp_path):
    a = np.arange(24, dtype=np.int16).reshape(2, 3, 4) - 5
    write_idx(tmp_path / "a.gz", a)
    b = read_idx(tmp_path / "a.gz")
    assert b.dtype == np.int16 and b.shape == (2, 3, 4)
    np.testing.assert_array_equal(a, b)


def test_idx_corrupt_magic(tmp_path):
    folder = _write_idx_folder(tmp_path / "fm")
    import gzip

    with gzip.open(folder / "train-images-idx3-ubyte.gz", "wb") as f:
        f.write(b"\x12\x34\x08\x03" + b"\0" * 64)
    with pytest.raises(CompressionError, match="train-images-idx3-ubyte.gz is not an IDX file.*magic number"):
        load_dataset("fashion_mnist", path=str(folder))


def test_idx_truncated(tmp_path):
    folder = _write_idx_folder(tmp_path / "fm", gz=False)
    p = folder / "t10k-images-idx3-ubyte"
    p.write_bytes(p.read_bytes()[:-7])
    with pytest.raises(CompressionError, match="t10k-images-idx3-ubyte is truncated"):
        load_dataset("fashion_mnist", path=str(folder))


def test_idx_not_gzip(tmp_path):
    folder = _write_idx_folder(tmp_path / "fm")
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(b"this is not gzip at all")
    with pytest.raises(CompressionError, match="train-labels-idx1-ubyte.gz could not be read"):
        load_dataset("fashion_mnist", path=str(folder))


def test_idx_label_count_mismatch(tmp_path):
    folder = _write_idx_folder(tmp_path / "fm")
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.zeros(5, np.uint8))
    with pytest.raises(CompressionError, match="test split has 6 images but 5 labels"):
        load_dataset("fashion_mnist", path=str(folder))


def test_idx_folder_missing_a_file(tmp_path):
    folder = _write_idx_folder(tmp_path / "fm")
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(CompressionError, match="lacks the fashion_mnist file.*t10k-labels-idx1-ubyte.gz"):
        load_dataset("fashion_mnist", path=str(folder))


def test_idx_folder_that_does_not_exist(tmp_path):
    with pytest.raises(CompressionError, match="The folder '.*nowhere' does not exist"):
        load_dataset("mnist", path=str(tmp_path / "nowhere"))


def test_environment_variables_point_to_idx_folders(tmp_path, monkeypatch, no_debian):
    monkeypatch.setenv(builtin_datasets.FASHION_MNIST_ENV, str(_write_idx_folder(tmp_path / "fm")))
    monkeypatch.setenv(builtin_datasets.MNIST_ENV, str(_write_idx_folder(tmp_path / "mn", n_train=20)))
    assert len(load_dataset("fashion_mnist").y_train) == 12
    mnist = load_dataset("mnist")
    assert len(mnist.y_train) == 20 and mnist.class_names == tuple("0123456789")


def test_keras_cache_is_used_without_network(tmp_path, monkeypatch, no_debian):
    cache = tmp_path / "keras" / "datasets"
    _write_idx_folder(cache / "fashion-mnist")
    rng = np.random.default_rng(0)
    np.savez(cache / "mnist.npz", x_train=rng.integers(0, 256, (8, 4, 4), dtype=np.uint8),
             y_train=np.arange(8) % 3, x_test=np.zeros((2, 4, 4), np.uint8), y_test=np.array([0, 1]))
    _fake_keras(monkeypatch, fashion_mnist=_offline, mnist=_offline)
    assert len(load_dataset("fashion_mnist").y_train) == 12
    assert load_dataset("mnist").x_train.shape == (8, 4, 4, 1)


def test_keras_dataset_dirs_follow_keras_home_and_home(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    dirs = REAL_KERAS_DATASET_DIRS()
    assert dirs[:2] == [tmp_path / "kh" / "datasets", tmp_path / "home" / ".keras" / "datasets"]


def test_debian_fashion_mnist(debian_fashion_mnist):
    ds = load_dataset("fashion_mnist", max_train=500, max_test=200)
    assert ds.x_train.shape == (500, 28, 28, 1) and len(ds.y_test) == 200
    assert str(DEBIAN) in ds.description and ds.x_train.max() <= 1.0
    assert set(np.unique(ds.y_train)) == set(range(10))


# ---------------------------------------------------------------- offline errors


def test_fashion_mnist_offline_says_what_to_install(monkeypatch, no_debian):
    _fake_keras(monkeypatch, fashion_mnist=_offline)
    with pytest.raises(CompressionError) as err:
        load_dataset("fashion_mnist")
    message = str(err.value)
    assert "not available offline" in message and "Name or service not known" in message
    assert "apt-get install -y dataset-fashion-mnist" in message and builtin_datasets.FASHION_MNIST_ENV in message


def test_cifar10_offline_error_when_not_cached(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    _fake_keras(monkeypatch, cifar10=_offline)
    with pytest.raises(CompressionError, match="cifar10 dataset is not available offline.*cifar-10-batches-py"):
        load_dataset("cifar10")


def test_cifar10_from_keras(monkeypatch):
    x = np.full((4, 32, 32, 3), 255, np.uint8)
    y = np.array([[0], [1], [2], [9]], np.uint8)
    _fake_keras(monkeypatch, cifar10=lambda: ((x, y), (x[:2], y[:2])))
    ds = load_dataset("cifar10")
    assert ds.x_train.shape == (4, 32, 32, 3) and ds.x_train.max() == 1.0
    assert ds.y_train.tolist() == [0, 1, 2, 9] and ds.class_names[9] == "truck"


# ---------------------------------------------------------------- list_datasets


def test_list_datasets(no_debian):
    entries = {d["name"]: d for d in list_datasets()}
    assert set(entries) == {"digits", "mnist1d", "fashion_mnist", "mnist", "cifar10"}
    for entry in entries.values():
        assert set(entry) >= {"name", "description", "offline", "input_shape"}
        assert isinstance(entry["offline"], bool) and entry["description"]
    assert entries["digits"]["offline"] and entries["mnist1d"]["offline"]
    assert entries["digits"]["input_shape"] == [8, 8, 1] and entries["mnist1d"]["input_shape"] == [40, 1]
    assert not entries["cifar10"]["offline"] and not entries["fashion_mnist"]["offline"]
    assert "dataset-fashion-mnist" in entries["fashion_mnist"]["source"]


def test_list_datasets_sees_debian_package(debian_fashion_mnist):
    entry = next(d for d in list_datasets() if d["name"] == "fashion_mnist")
    assert entry["offline"] and entry["source"] == str(DEBIAN)


def test_list_datasets_survives_a_bad_environment_variable(monkeypatch, tmp_path):
    monkeypatch.setenv(builtin_datasets.MNIST_ENV, str(tmp_path / "missing"))
    entry = next(d for d in list_datasets() if d["name"] == "mnist")
    assert not entry["offline"] and builtin_datasets.MNIST_ENV in entry["source"]


# ---------------------------------------------------------------- .npz


def _arrays(n_train=20, n_test=8, shape=(5, 5)):
    rng = np.random.default_rng(0)
    return {
        "x_train": rng.integers(0, 256, (n_train, *shape), dtype=np.uint8),
        "y_train": np.arange(n_train) % 3,
        "x_test": rng.integers(0, 256, (n_test, *shape), dtype=np.uint8),
        "y_test": np.arange(n_test) % 3,
    }


def _npz(tmp_path, **arrays) -> Path:
    p = tmp_path / "user.npz"
    np.savez(p, **arrays)
    return p


def test_npz_images_get_a_channel_and_are_scaled(tmp_path):
    ds = load_npz(_npz(tmp_path, **_arrays()))
    assert ds.name == "npz" and ds.kind == "image" and ds.input_shape == (5, 5, 1)
    assert ds.x_train.dtype == np.float32 and 0 <= ds.x_train.min() and ds.x_train.max() <= 1
    assert ds.class_names == ("0", "1", "2") and ds.y_train.dtype == np.int64


def test_npz_float_images_above_one_are_scaled_and_rgb_kept(tmp_path):
    a = _arrays(shape=(4, 4, 3))
    a["x_train"] = a["x_train"].astype(np.float64)
    a["x_test"] = a["x_test"].astype(np.float64)
    ds = load_npz(_npz(tmp_path, **a))
    assert ds.input_shape == (4, 4, 3) and ds.x_train.max() <= 1.0


def test_npz_sequences_keep_their_values(tmp_path):
    a = _arrays(shape=(7,))
    a["x_train"] = np.linspace(-3, 3, 140).reshape(20, 7)
    a["x_test"] = np.zeros((8, 7))
    a["y_train"] = a["y_train"].astype(np.float32).reshape(-1, 1)  # whole-number floats, column vector
    ds = load_dataset("npz", path=str(_npz(tmp_path, **a)))
    assert ds.kind == "sequence" and ds.input_shape == (7, 1) and ds.x_train.min() == -3.0
    assert ds.y_train.dtype == np.int64 and ds.num_classes == 3


def test_npz_without_path():
    with pytest.raises(CompressionError, match="needs a path"):
        load_dataset("npz")


def _bad(tmp_path, change):
    a = _arrays()
    change(a)
    return _npz(tmp_path, **a)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a: a.pop("y_test"), r"lacks the array\(s\) y_test"),
        (lambda a: [a.pop("x_test"), a.pop("y_train")], r"lacks the array\(s\) y_train, x_test"),
        (lambda a: a.update(y_train=a["y_train"][:-1]), "x_train has 20 samples but y_train has 19 labels"),
        (lambda a: a.update(x_train=np.where(np.arange(20)[:, None, None] == 3, np.nan, 0.5) * np.ones((20, 5, 5))),
         "'x_train' .* NaN or infinite"),
        (lambda a: a.update(x_test=np.full((8, 5, 5), np.inf)), "'x_test' .* NaN or infinite"),
        (lambda a: a.update(y_train=np.arange(20) % 3 + 0.5), "'y_train' .* non-integer values"),
        (lambda a: a.update(y_test=-(np.arange(8) % 3)), "'y_test' .* negative value"),
        (lambda a: a.update(x_test=np.zeros((8, 4, 5), np.uint8)), r"x_test samples have shape \(4, 5\)"),
        (lambda a: a.update(y_train=np.zeros(20, int)), "single class"),
        (lambda a: a.update(x_test=np.zeros((0, 5, 5)), y_test=np.zeros(0, int)), "x_test .* holds no samples"),
        (lambda a: a.update(x_train=np.array(["a"] * 20)), "dtype <U1; it must be numeric"),
        (lambda a: a.update(y_train=np.eye(3)[np.arange(20) % 3]), "one-hot"),
        (lambda a: a.update(x_train=np.zeros((20, 2, 2, 2, 2))), r"expected \(N, L\), \(N, H, W\)"),
        (lambda a: a.update(y_train=np.arange(20) * 10**6), "at most 10000 classes"),
    ],
)
def test_npz_failures_name_the_problem(tmp_path, change, message):
    with pytest.raises(CompressionError, match=message):
        load_npz(_bad(tmp_path, change))


def test_npz_pickled_object_array(tmp_path):
    a = _arrays()
    a["x_train"] = np.array([{"a": 1}] * 20, dtype=object)
    with pytest.raises(CompressionError, match=r"'x_train' .* Python objects \(a pickled object array\)"):
        load_npz(_npz(tmp_path, **a))


def test_npz_too_big(tmp_path):
    with pytest.raises(CompressionError, match="over the 0 MB limit"):
        load_npz(_npz(tmp_path, **_arrays()), max_bytes=100)


def test_npz_compressed_bomb(tmp_path):
    a = _arrays()
    a["x_train"] = np.zeros((20, 400, 400), np.uint8)
    p = tmp_path / "bomb.npz"
    np.savez_compressed(p, **a)
    with pytest.raises(CompressionError, match="expands to"):
        load_npz(p, max_bytes=p.stat().st_size + 10)


def test_npz_not_an_archive(tmp_path):
    p = tmp_path / "x.npz"
    p.write_bytes(np.random.default_rng(0).bytes(512))
    with pytest.raises(CompressionError, match="not an .npz archive"):
        load_npz(p)


def test_npz_missing_file(tmp_path):
    with pytest.raises(CompressionError, match="does not exist"):
        load_npz(tmp_path / "nope.npz")


def test_import_does_not_load_tensorflow():
    code = "import sys, compression.inputs.data; sys.exit('tensorflow' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


def test_dataset_class_is_public():
    assert Dataset.__dataclass_params__.frozen
