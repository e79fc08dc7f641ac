"""Real sizes: the baseline is saved without optimizer state, post-training variants refer to its kernels."""

from __future__ import annotations

import zipfile

import h5py
import numpy as np

from compression.config import Recipe
from compression.run.recipe import run_recipe
from compression.run_folder import RunFolder


def test_baseline_without_optimizer_and_no_copy_of_its_kernels(tmp_path):
    recipe = Recipe.from_dict({
        "dataset": {"name": "digits", "max_train": 300, "max_test": 100},
        "model": {"name": "seed_cnn"}, "baseline": {"epochs": 1},
        "variants": [{"name": "float32"}, {"name": "dynamic", "quantization": "dynamic"},
                     {"name": "pruned", "pruning": {"final_sparsity": 0.5}, "fine_tune_epochs": 1}],
        "evaluation": {"latency_runs": 3},
    })
    run_recipe(recipe, tmp_path)
    folder = RunFolder(tmp_path)
    with zipfile.ZipFile(tmp_path / "baseline.keras") as zf, zf.open("model.weights.h5") as raw, \
            h5py.File(raw, "r") as weights:
        groups = list(weights.keys())
    assert "optimizer" not in groups and groups, groups  # a compiled, trained model would carry its Adam state
    assert not (tmp_path / "weights" / "float32.npz").exists()
    assert not (tmp_path / "weights" / "dynamic.npz").exists()
    assert folder.kernels("dynamic") == folder.weights("baseline")
    assert (tmp_path / "weights" / "pruned.npz").is_file() and folder.kernels("pruned").name == "pruned.npz"
    base = np.load(folder.kernels("baseline"))
    assert all(np.array_equal(base[k], np.load(folder.kernels("float32"))[k]) for k in base.files)
    print(f"\nrun folder: {folder.size_bytes():,} B")
