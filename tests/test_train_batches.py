"""The fine-tune's input pipeline: every sample once per epoch, reshuffled, autotuning off (see train.batches)."""

from __future__ import annotations

import numpy as np

from compression.techniques import train


def _epoch(dataset):
    xs, ys = zip(*[(bx.numpy(), by.numpy()) for bx, by in dataset], strict=True)
    return np.concatenate(xs), np.concatenate(ys), [len(b) for b in ys]


def test_batches_cover_each_sample_once_per_epoch_reshuffled_with_autotune_off():
    x = np.arange(50, dtype=np.float32).reshape(50, 1) * 2.0
    y = np.arange(50, dtype=np.int64)
    dataset = train.batches(x, y, 16, stop=45, shuffle=True)
    assert dataset.options().autotune.enabled is False
    first_x, first_y, sizes = _epoch(dataset)
    second_x, second_y, _ = _epoch(dataset)
    assert sizes == [16, 16, 13]
    assert sorted(first_y.tolist()) == list(range(45)) == sorted(second_y.tolist())
    np.testing.assert_array_equal(first_x[:, 0], first_y * 2.0)  # x and y stay paired through the shuffle
    assert first_y.tolist() != second_y.tolist()  # a new order every epoch
    assert first_y.tolist() != list(range(45))


def test_validation_batches_are_the_tail_in_order_and_arrays_convert_once():
    x = np.arange(20, dtype=np.float32)[:, None]
    y = np.arange(20, dtype=np.int64)
    _, tail, sizes = _epoch(train.batches(x, y, 4, start=14))
    assert tail.tolist() == list(range(14, 20)) and sizes == [4, 2]
    assert train._tensor(x) is train._tensor(x)
    assert train._tensor(x.copy()) is not train._tensor(x)


def test_fit_holds_out_the_last_tenth_like_keras_validation_split():
    keras = train._tf.keras()
    model = keras.Sequential([keras.layers.Input((1,)), keras.layers.Dense(3)])
    train.compile_for_training(model)
    x = np.random.default_rng(0).normal(size=(40, 1)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    history = train.fit(model, x, y, epochs=2, batch_size=8, validation_split=0.25)
    assert len(history["loss"]) == 2 and len(history["val_loss"]) == 2
    # the validation loss is the model's loss on the last 10 samples, as Keras's validation_split measures it
    assert np.isclose(history["val_loss"][-1], model.evaluate(x[30:], y[30:], verbose=0)[0], rtol=1e-4)
