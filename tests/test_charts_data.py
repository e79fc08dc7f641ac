"""Dataset previews by kind: sequences as lines (a panel per channel, a colour per class), tokens as id rows."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from compression.views import data_preview

NAMES = [str(c) for c in range(10)]


def test_a_three_channel_sequence_is_drawn_as_lines_one_panel_per_channel_one_colour_per_class():
    x = np.random.default_rng(0).normal(size=(50, 40, 3)).astype(np.float32)
    y = np.arange(50) % 10
    fig = data_preview.sequence_preview(x, y, NAMES, per_class=2)
    assert all(isinstance(t, go.Scatter) and t.mode == "lines" for t in fig.data)
    assert len(fig.data) == 10 * 2 * 3  # classes × samples × channels
    # Each trace is one sample's channel, step by step, in the panel of that channel.
    first = np.flatnonzero(y == 4)[:2]
    traces = [t for t in fig.data if t.legendgroup == "4"]
    for k, i in enumerate(first):
        for ch in range(3):
            t = traces[k * 3 + ch]
            np.testing.assert_array_equal(t.y, x[i, :, ch])
            assert list(t.x) == list(range(40))
            assert t.yaxis == ("y" if ch == 0 else f"y{ch + 1}")
    # One legend entry and one colour per class, the same colour in every panel.
    assert [t.name for t in fig.data if t.showlegend] == NAMES
    assert len({t.line.color for t in fig.data}) == 10
    assert {t.line.color for t in traces} == {traces[0].line.color}
    assert [a.text for a in fig.layout.annotations] == ["channel 0", "channel 1", "channel 2"]
    assert fig.layout.legend.orientation == "h"


def test_a_two_dimensional_sequence_is_one_panel_and_many_channels_are_capped_and_said():
    y = np.arange(20) % 2
    flat = data_preview.sequence_preview(np.random.default_rng(1).normal(size=(20, 40)), y, ["a", "b"], per_class=3)
    assert len(flat.data) == 2 * 3 and not flat.layout.annotations
    assert {len(t.y) for t in flat.data} == {40}
    wide = data_preview.sequence_preview(np.zeros((20, 10, 9)), y, ["a", "b"], per_class=1)
    assert len(wide.data) == 2 * data_preview.MAX_CHANNELS
    assert "first 4 of 9 channels" in wide.layout.title.text


def test_token_ids_are_a_table_of_id_rows_not_a_line_plot():
    rng = np.random.default_rng(0)
    x = rng.integers(1, 500, size=(30, 50)).astype(np.int32)
    x[:, 40:] = 0  # padding
    y = np.arange(30) % 3
    fig = data_preview.token_preview(x, y, ["neg", "neu", "pos"], per_class=2, max_ids=8)
    (table,) = fig.data
    assert isinstance(table, go.Table)
    samples, classes, nonzero, ids = table.cells.values
    assert list(samples) == [0, 3, 1, 4, 2, 5]
    assert list(classes) == ["neg", "neg", "neu", "neu", "pos", "pos"]
    assert list(nonzero) == [40] * 6
    assert ids[1] == " ".join(str(v) for v in x[3, :8]) + " …"
    assert "first 8 of 50" in table.header.values[3]


def test_dataset_preview_picks_by_kind():
    y = np.arange(20) % 10
    image = data_preview.dataset_preview("image", np.random.default_rng(0).random((20, 8, 8, 1)), y, NAMES)
    assert {type(t).__name__ for t in image.data} == {"Heatmap"}
    sequence = data_preview.dataset_preview("sequence", np.zeros((20, 40, 1)), y, NAMES)
    assert {type(t).__name__ for t in sequence.data} == {"Scatter"}
    tokens = data_preview.dataset_preview("tokens", np.ones((20, 12), np.int32), y, NAMES)
    assert {type(t).__name__ for t in tokens.data} == {"Table"}
