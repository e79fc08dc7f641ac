"""Loading untrusted model files: code they carry must never run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from compression import _tf
from compression.errors import CompressionError
from compression.inputs.safe_load import check_model_config, load_user_model

ROOT = Path(__file__).resolve().parents[1]
X = np.random.default_rng(0).random((5, 8, 8, 1), dtype=np.float32)


@pytest.fixture(scope="module")
def keras():
    return _tf.keras()


def _zip_dir(folder: Path, dest: Path, prefix: str = "") -> Path:
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(folder.rglob("*")):
            zf.write(f, prefix + str(f.relative_to(folder)))
    return dest


@pytest.fixture(scope="module")
def plain(keras, tmp_path_factory):
    """A tiny functional model (with a TFOpLambda and a nested Sequential) saved in all three formats."""
    d = tmp_path_factory.mktemp("plain")
    inp = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(2, 3, activation="relu")(inp)
    x = x * 2.0  # a TFOpLambda: a tf op, not user Python
    x = keras.layers.Flatten()(x)
    x = keras.Sequential([keras.layers.Dense(4, activation="gelu")], name="inner")(x)
    out = keras.layers.Dense(3, activation="softmax")(x)
    model = keras.Model(inp, out)
    model.save(d / "m.keras")
    model.save(d / "m.h5")
    model.save(d / "sm", save_format="tf")
    _zip_dir(d / "sm", d / "sm.zip")
    _zip_dir(d / "sm", d / "sm_nested.zip", prefix="exported/")
    model.save_weights(d / "weights.h5")
    return d, model.predict(X, verbose=0)


@pytest.mark.parametrize("name", ["m.keras", "m.h5", "sm.zip", "sm_nested.zip"])
def test_plain_model_round_trips_with_identical_predictions(plain, keras, name):
    folder, expected = plain
    model = load_user_model(folder / name)
    assert isinstance(model, keras.Model)
    np.testing.assert_array_equal(model.predict(X, verbose=0), expected)


@pytest.fixture(scope="module")
def lambda_files(keras, tmp_path_factory):
    """A model whose Lambda writes a marker file when it runs, saved as .h5, .keras and a SavedModel zip."""
    d = tmp_path_factory.mktemp("lambda")
    marker = str(d / "marker")
    model = keras.Sequential([
        keras.Input((4,)),
        keras.layers.Lambda(lambda x: (open(marker, "w").write("ran"), x)[1], name="my_lambda"),
        keras.layers.Dense(2),
    ])
    model.save(d / "evil.h5")
    model.save(d / "evil.keras")
    model.save(d / "sm", save_format="tf")
    _zip_dir(d / "sm", d / "evil.zip")
    os.remove(marker)  # building and saving ran the Lambda; start clean
    return d, Path(marker)


def test_lambda_h5_really_runs_code_when_loaded_naively(lambda_files, keras):
    """The control: the fixture is dangerous, so refusing it means something."""
    d, marker = lambda_files
    keras.models.load_model(d / "evil.h5", compile=False)
    assert marker.exists()
    marker.unlink()


@pytest.mark.parametrize("name", ["evil.h5", "evil.keras", "evil.zip"])
def test_lambda_is_refused_before_any_code_runs(lambda_files, name):
    d, marker = lambda_files
    with pytest.raises(CompressionError, match=r"Lambda layer \('my_lambda'\).*refused"):
        load_user_model(d / name)
    assert not marker.exists()


def test_lambda_nested_inside_a_submodel_is_found(keras):
    inner = keras.Sequential([keras.Input((3,)), keras.layers.Lambda(lambda x: x + 1, name="deep_lambda")],
                             name="inner")
    inp = keras.Input((3,))
    model = keras.Model(inp, keras.layers.Dense(2)(inner(inp)))
    with pytest.raises(CompressionError, match="deep_lambda"):
        check_model_config(json.loads(model.to_json()))


@pytest.fixture(scope="module")
def custom_files(keras, tmp_path_factory):
    class Scale(keras.layers.Layer):
        def call(self, x):
            return x * 3.0

    d = tmp_path_factory.mktemp("custom")
    model = keras.Sequential([keras.Input((4,)), Scale(name="scale"), keras.layers.Dense(2)])
    model.save(d / "custom.keras")
    model.save(d / "custom.h5")
    return d


@pytest.mark.parametrize("name", ["custom.keras", "custom.h5"])
def test_unknown_custom_layer_is_refused(custom_files, name):
    with pytest.raises(CompressionError, match=r"layer class 'Scale' \('scale'\).*not a built-in"):
        load_user_model(custom_files / name)


def _config(*layers) -> dict:
    return {"class_name": "Sequential", "config": {"name": "s", "layers": list(layers)}}


def _dense(**extra) -> dict:
    return {"class_name": "Dense", "config": {"name": "d", "trainable": True, "units": 2, **extra}}


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (_config({"class_name": "TimeDistributed",
                  "config": {"name": "td", "trainable": True, "layer": {"class_name": "Evil",
                                                                       "config": {"name": "e", "trainable": True}}}}),
         "layer class 'Evil'"),
        (_config(_dense(kernel_initializer={"class_name": "MyInit", "config": {}})), "'MyInit' .*in layer 'd'"),
        (_config({**_dense(), "module": "os"}), "module 'os'"),
        (_config({**_dense(), "registered_name": "Custom>Dense"}), "registered custom object"),
        (_config(_dense(activation={"class_name": "function", "config": "my_act", "module": None})),
         "custom function 'my_act'"),
        (_config(_dense(activation={"class_name": "__lambda__", "config": {"value": "xx"}})), "lambda function"),
        (_config({"class_name": "TFOpLambda", "config": {"name": "w", "trainable": True,
                                                         "function": "io.write_file"}}), r"tf\.io\.write_file"),
        (_config({"class_name": "TFOpLambda", "config": {"name": "r", "trainable": True,
                                                         "function": "raw_ops.ReadFile"}}), "raw_ops"),
        (_config({"class_name": "StringLookup", "config": {"name": "v", "trainable": True,
                                                           "vocabulary": "/etc/passwd"}}), "file path"),
        ({"class_name": "MyModel", "config": {"name": "m"}}, "subclassed"),
        ({"layers": []}, "not a Keras model"),
    ],
)
def test_config_checks_name_the_problem(config, message):
    with pytest.raises(CompressionError, match=message):
        check_model_config(config)


def test_builtin_tf_ops_and_initializers_pass():
    check_model_config(_config(
        _dense(kernel_initializer={"module": "keras.initializers", "class_name": "GlorotUniform",
                                   "config": {"seed": None}, "registered_name": None},
               activation={"module": "builtins", "class_name": "function", "config": "relu",
                           "registered_name": "function"}),
        {"class_name": "TFOpLambda", "config": {"name": "a", "trainable": True, "function": "math.add"}},
        {"class_name": "SlicingOpLambda",
         "config": {"name": "g", "trainable": True, "function": "__operators__.getitem"}},
    ))


# ---------------------------------------------------------------- broken and hostile files


def test_random_bytes_named_keras(tmp_path):
    p = tmp_path / "model.keras"
    p.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(CompressionError, match="not a valid .keras file"):
        load_user_model(p)


def test_truncated_keras(plain, tmp_path):
    data = (plain[0] / "m.keras").read_bytes()
    p = tmp_path / "cut.keras"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(CompressionError, match="truncated"):
        load_user_model(p)


def test_random_bytes_named_h5(tmp_path):
    p = tmp_path / "model.h5"
    p.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(CompressionError, match="not a valid HDF5"):
        load_user_model(p)


def test_weights_only_h5(plain):
    with pytest.raises(CompressionError, match="no model configuration"):
        load_user_model(plain[0] / "weights.h5")


def test_empty_file(tmp_path):
    p = tmp_path / "empty.keras"
    p.touch()
    with pytest.raises(CompressionError, match="is empty"):
        load_user_model(p)


def test_oversize_file(plain):
    with pytest.raises(CompressionError, match="over the 0 MB limit"):
        load_user_model(plain[0] / "m.keras", max_bytes=1000)


def test_wrong_extension(tmp_path):
    p = tmp_path / "model.pt"
    p.write_bytes(b"x")
    with pytest.raises(CompressionError, match="unsupported extension"):
        load_user_model(p)


def test_missing_file(tmp_path):
    with pytest.raises(CompressionError, match="does not exist"):
        load_user_model(tmp_path / "nope.keras")


def _zip_refused(path: Path, members: dict, match: str) -> None:
    """A zip of ``members`` (name → bytes or text) at ``path`` is refused with a sentence matching ``match``."""
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    with pytest.raises(CompressionError, match=match):
        load_user_model(path)


def test_keras_zip_without_config(tmp_path):
    _zip_refused(tmp_path / "noconfig.keras", {"metadata.json": "{}"}, "no config.json")


def test_keras3_archive_is_explained(tmp_path):
    members = {"metadata.json": json.dumps({"keras_version": "3.5.0"}), "config.json": json.dumps(_config(_dense()))}
    _zip_refused(tmp_path / "k3.keras", members, "saved by Keras 3.5.0")


@pytest.mark.parametrize("member", ["../escape.txt", "/abs/path.txt", "a/../../b.txt"])
def test_zip_with_unsafe_member_is_refused(tmp_path, member):
    _zip_refused(tmp_path / "bad.zip", {"saved_model.pb": b"", member: b"x"}, "unsafe path")
    assert not (tmp_path.parent / "escape.txt").exists()


def test_zip_bomb_is_refused(tmp_path):
    p = tmp_path / "bomb.zip"
    with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("saved_model.pb", b"\0" * (2 * 2**20))
    with pytest.raises(CompressionError, match="expands to"):
        load_user_model(p, max_bytes=100_000)


def test_savedmodel_zip_without_keras_metadata(plain, tmp_path):
    saved_model = (plain[0] / "sm" / "saved_model.pb").read_bytes()
    _zip_refused(tmp_path / "nometa.zip", {"saved_model.pb": saved_model}, "without keras_metadata.pb")


def test_zip_without_savedmodel(tmp_path):
    _zip_refused(tmp_path / "other.zip", {"readme.txt": "hi"}, "no saved_model.pb")


def test_import_does_not_load_tensorflow():
    code = "import sys, compression.inputs.safe_load; sys.exit('tensorflow' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0
