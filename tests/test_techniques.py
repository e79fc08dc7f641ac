"""Pruning, clustering, QAT (and the collaborative schemes) and distillation on digits, seconds each."""

import numpy as np
import pytest

from compression import CompressionError
from compression.config import ClusteringConfig, DistillationConfig, Preserve, PruningConfig, QATConfig
from compression.inputs.models import build_model
from compression.measure.weight_stats import layer_kernels, layer_weight_stats, overall_sparsity
from compression.techniques.clustering import cluster
from compression.techniques.distill import distill, soft_targets
from compression.techniques.pruning import applied_schedule, prune, sparsity_curve
from compression.techniques.qat import quantize_aware
from compression.techniques.train import evaluate_accuracy


def kernel_sparsity(model, name):
    k = layer_kernels(model)[name]
    return float(np.mean(k == 0))


def test_polynomial_pruning_reaches_80_percent_and_leaves_the_baseline_alone(seed_cnn, small_train, digits):
    before = [w.copy() for w in seed_cnn.get_weights()]
    pruned, info = prune(seed_cnn, PruningConfig(initial_sparsity=0.5, final_sparsity=0.8), *small_train, epochs=2)
    for name in ("conv", "logits"):
        assert kernel_sparsity(pruned, name) == pytest.approx(0.8, abs=0.01)
    assert all(np.array_equal(a, b) for a, b in zip(before, seed_cnn.get_weights(), strict=True))
    assert not any("prune_low_magnitude" in layer.name for layer in pruned.layers)  # stripped
    assert info["schedule"]["end_step"] <= info["schedule"]["total_steps"] - 1
    assert evaluate_accuracy(pruned, digits.x_test, digits.y_test) > 0.3


def test_constant_schedule_and_layer_choice(seed_cnn, small_train):
    pruned, info = prune(seed_cnn, PruningConfig(schedule="constant", final_sparsity=0.6, layers=("logits",)),
                         *small_train, epochs=1)
    assert info["layers"] == ["logits"]
    assert kernel_sparsity(pruned, "logits") == pytest.approx(0.6, abs=0.01)
    assert kernel_sparsity(pruned, "conv") == 0.0


def test_structured_2_by_4_sparsity(seed_cnn, small_train):
    pruned, _ = prune(seed_cnn, PruningConfig(schedule="constant", final_sparsity=0.5, structured="2:4",
                                              layers=("logits",)), *small_train, epochs=1)
    k = layer_kernels(pruned)["logits"]  # (in, out): groups of 4 along the input axis hold at most 2 non-zeros
    groups = np.abs(k.T.reshape(k.shape[1], -1, 4)) > 0
    assert groups.sum(axis=-1).max() <= 2
    assert np.mean(k == 0) == pytest.approx(0.5, abs=0.01)


def test_pruning_refuses_unknown_layers(seed_cnn, small_train):
    with pytest.raises(CompressionError, match="does not have: nope"):
        prune(seed_cnn, PruningConfig(layers=("nope",)), *small_train, epochs=1)


@pytest.mark.parametrize(
    ("run", "what"),
    [
        (lambda m, xy: prune(m, PruningConfig(layer_sparsity={"nope": 0.5}), *xy, epochs=1), "pruning.layer_sparsity"),
        (lambda m, xy: cluster(m, ClusteringConfig(layers=("nope",)), *xy, epochs=1), "clustering.layers"),
        (lambda m, xy: quantize_aware(m, QATConfig(layers=("nope",)), *xy, epochs=1), "qat.layers"),
    ],
)
def test_every_technique_refuses_unknown_layers_the_same_way(seed_cnn, small_train, run, what):
    with pytest.raises(CompressionError, match=rf"^{what} names layer\(s\) the model does not have: nope\.$"):
        run(seed_cnn, small_train)


def test_schedule_preview_matches_the_applied_schedule():
    config = PruningConfig(initial_sparsity=0.5, final_sparsity=0.9, frequency=100)
    s = applied_schedule(config, total_steps=46)
    assert s["frequency"] < 100 and s["notes"]
    steps, target = sparsity_curve(config, 46)
    assert target[0] == pytest.approx(0.5)
    assert target[s["end_step"]] == pytest.approx(0.9)
    assert np.all(np.diff(target) >= 0)
    long = applied_schedule(config, total_steps=2000)
    assert long["frequency"] == 100 and long["notes"] == []


@pytest.mark.parametrize("init", ["kmeans++", "linear", "density", "random"])
def test_clustering_collapses_kernels_to_k_values(seed_cnn, small_train, init):
    clustered, info = cluster(seed_cnn, ClusteringConfig(clusters=8, init=init), *small_train, epochs=1)
    stats = {s["name"]: s for s in layer_weight_stats(clustered)}
    assert stats["logits"]["unique_values"] <= 8
    assert stats["conv"]["unique_values"] <= 8
    assert set(info["layers"]) == {"conv", "logits"}


def test_clustering_skips_layers_with_too_few_weights(seed_cnn, small_train):
    clustered, info = cluster(seed_cnn, ClusteringConfig(clusters=200), *small_train, epochs=1)
    assert info["layers"] == ["logits"]
    assert "'conv' left unclustered: 108 weights for 200 clusters" in info["notes"][0]
    assert layer_weight_stats(clustered)[0]["unique_values"] > 8


def test_qat_whole_model(seed_cnn, small_train, digits):
    q, info = quantize_aware(seed_cnn, QATConfig(), *small_train, epochs=1)
    assert info["scheme"] == "QAT" and info["float_layers"] == []
    assert any(type(layer).__name__.startswith("QuantizeWrapper") for layer in q.layers)
    assert evaluate_accuracy(q, digits.x_test, digits.y_test) > 0.8


def test_qat_leaves_unsupported_layers_float_and_says_why(digits, small_train):
    model = build_model("conv1d", digits.input_shape, 10)
    q, info = quantize_aware(model, QATConfig(), *small_train, epochs=1)
    floats = {f["name"]: f["reason"] for f in info["float_layers"]}
    assert "conv1" in floats and "Conv1D" in floats["conv1"]
    assert "dense" in info["layers"]
    lstm = build_model("lstm", digits.input_shape, 10)
    _, info = quantize_aware(lstm, QATConfig(), *small_train, epochs=1)
    assert [f["name"] for f in info["float_layers"]] == ["lstm"]


def test_qat_selected_layers_only(seed_cnn, small_train):
    _, info = quantize_aware(seed_cnn, QATConfig(layers=("logits",)), *small_train, epochs=1)
    assert info["layers"] == ["logits"]
    assert {"name": "conv", "reason": "not selected for QAT"} in info["float_layers"]


def test_qat_on_mobilenet_folds_batchnorm(digits, small_train):
    model = build_model("mobilenet_mini", digits.input_shape, 10)
    _, info = quantize_aware(model, QATConfig(), *small_train, epochs=1)
    assert info["float_layers"] == []


def test_pqat_keeps_sparsity_where_plain_qat_would_not(seed_cnn, small_train):
    pruned, _ = prune(seed_cnn, PruningConfig(schedule="constant", final_sparsity=0.8), *small_train, epochs=1)
    pqat, info = quantize_aware(pruned, QATConfig(), *small_train, epochs=1, preserve=Preserve.SPARSITY)
    assert info["scheme"] == "PQAT"
    assert overall_sparsity(layer_weight_stats(pqat)) == pytest.approx(0.8, abs=0.01)


def test_cqat_keeps_clusters(seed_cnn, small_train):
    clustered, _ = cluster(seed_cnn, ClusteringConfig(clusters=8), *small_train, epochs=1)
    cqat, info = quantize_aware(clustered, QATConfig(), *small_train, epochs=1, preserve=Preserve.CLUSTERS)
    assert info["scheme"] == "CQAT"
    assert max(s["unique_values"] for s in layer_weight_stats(cqat)) <= 8


def test_pcqat_keeps_both(seed_cnn, small_train):
    pruned, _ = prune(seed_cnn, PruningConfig(schedule="constant", final_sparsity=0.7), *small_train, epochs=1)
    pc, _ = cluster(pruned, ClusteringConfig(clusters=8), *small_train, epochs=1, preserve_sparsity=True)
    pcqat, info = quantize_aware(pc, QATConfig(), *small_train, epochs=1, preserve=Preserve.BOTH)
    stats = layer_weight_stats(pcqat)
    assert info["scheme"] == "PCQAT"
    assert overall_sparsity(stats) == pytest.approx(0.7, abs=0.02)
    assert max(s["unique_values"] for s in stats) <= 9  # 8 centroids plus the preserved zero


def test_distillation_trains_a_smaller_student(digits):
    from compression.inputs.pretrained import load_pretrained

    teacher = load_pretrained("digits", "mlp")
    soft = soft_targets(teacher, digits.x_test[:5], temperature=4.0)
    assert np.allclose(soft.sum(axis=1), 1.0) and soft.max() < 1.0
    student, info = distill(teacher, DistillationConfig(student="seed_cnn", temperature=4.0, epochs=8),
                            digits.x_train, digits.y_train, digits.input_shape, digits.num_classes)
    assert info["params"] < info["teacher_params"] / 10
    assert evaluate_accuracy(student, digits.x_test, digits.y_test) > 0.75


def test_pcqat_keeps_a_pruned_conv_sparse_after_a_dense_conv(digits, small_train):
    """A dense first conv (left unpruned, as the search leaves a tiny one) must not switch PCQAT's sparsity
    preservation off for the pruned conv after it: tfmot shares one quantizer between all Conv2D layers."""
    from compression import _tf

    keras = _tf.keras()
    _tf.set_seed(0)
    inputs = keras.Input(digits.input_shape)
    h = keras.layers.Conv2D(8, 3, activation="relu", name="dense_conv")(inputs)
    h = keras.layers.Conv2D(16, 3, activation="relu", name="pruned_conv")(h)
    model = keras.Model(inputs, keras.layers.Dense(10, name="logits")(keras.layers.Flatten()(h)))
    pruned, _ = prune(model, PruningConfig(schedule="constant", final_sparsity=0.8, layers=("pruned_conv",)),
                      *small_train, epochs=1)
    pc, _ = cluster(pruned, ClusteringConfig(clusters=8, layers=("pruned_conv",)), *small_train, epochs=1,
                    preserve_sparsity=True)
    assert kernel_sparsity(pc, "pruned_conv") == pytest.approx(0.8, abs=0.01)
    pcqat, info = quantize_aware(pc, QATConfig(), *small_train, epochs=1, preserve=Preserve.BOTH)
    stats = {s["name"]: s for s in layer_weight_stats(pcqat)}
    assert info["scheme"] == "PCQAT"
    assert stats["dense_conv"]["sparsity"] == 0
    assert stats["pruned_conv"]["sparsity"] == pytest.approx(0.8, abs=0.01)
    assert stats["pruned_conv"]["unique_values"] <= 9
