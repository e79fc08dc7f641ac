"""The TensorFlow import shim: Keras 2 everywhere, and .keras saving that works in any thread."""

import threading
import zipfile


def test_keras_is_tf_keras():
    from compression import _tf

    assert _tf.keras().__name__ == "tf_keras"
    assert _tf.keras().__version__.startswith("2.21")


def test_keras_files_saved_twice_in_another_thread_are_real_keras_zips(tmp_path):
    """tf_keras' thread-local flag made the 2nd .keras save in a non-import thread a legacy file."""
    from compression import _tf
    from compression.inputs.models import build_model

    results = {}

    def work():
        _tf.keras()
        model = build_model("mlp", (8, 8, 1), 10)
        for i in range(2):
            path = tmp_path / f"m{i}.keras"
            model.save(path)
            results[i] = zipfile.is_zipfile(path)
        results["loaded"] = _tf.keras().models.load_model(tmp_path / "m1.keras", compile=False).name

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert results == {0: True, 1: True, "loaded": "mlp"}
