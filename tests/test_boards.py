"""Board budgets and the fit check, on hand-made numbers."""

from __future__ import annotations

import pytest

from compression.errors import CompressionError
from compression.measure.boards import BOARDS, CUSTOM, Board, FitStatus, check_fit, fit_of, format_bytes, get_board

KB = 1024


def test_the_table_has_the_issue_boards_with_their_datasheet_budgets():
    expected = {  # (RAM KB, flash KB) from the datasheets cited in boards.py
        "nano33": (256, 1024),
        "pico": (264, 2048),
        "esp32": (520, 4096),
        "stm32f411": (128, 512),
        "stm32h743": (1024, 2048),
    }
    assert {k: (b.ram_bytes // KB, b.flash_bytes // KB) for k, b in BOARDS.items()} == expected
    assert all(b.key == k and b.name for k, b in BOARDS.items())


def test_get_board_and_custom():
    assert get_board("Nano33") is BOARDS["nano33"]
    custom = get_board(CUSTOM, ram_kb=192, flash_kb=768.5)
    assert (custom.key, custom.ram_bytes, custom.flash_bytes) == (CUSTOM, 192 * KB, 768 * KB + 512)
    with pytest.raises(CompressionError, match="Unknown board 'uno'.*nano33"):
        get_board("uno")
    with pytest.raises(CompressionError, match="needs both"):
        get_board(CUSTOM, ram_kb=10)
    for bad in (0, -5, "lots", float("nan"), 1e12):
        with pytest.raises(CompressionError, match="RAM"):
            Board.custom(bad, 100)


def test_fits_with_margins():
    board = Board("b", "B", ram_bytes=10 * KB, flash_bytes=100 * KB)
    fit = check_fit(board, runnable=True, arena_bytes=4 * KB, flash_bytes=99 * KB)
    assert fit.status is FitStatus.FITS and fit.fits
    assert (fit.ram_margin_bytes, fit.flash_margin_bytes) == (6 * KB, 1 * KB)
    assert fit.label() == "fits (RAM +6.0 KB, flash +1.0 KB)"
    exact = check_fit(board, runnable=True, arena_bytes=10 * KB, flash_bytes=100 * KB)
    assert exact.fits and exact.ram_margin_bytes == 0 == exact.flash_margin_bytes


def test_does_not_fit_names_what_is_over_and_by_how_much():
    board = Board("b", "B", ram_bytes=10 * KB, flash_bytes=100 * KB)
    ram = check_fit(board, runnable=True, arena_bytes=10 * KB + 1, flash_bytes=10)
    assert ram.status is FitStatus.DOES_NOT_FIT and ram.ram_margin_bytes == -1
    assert "RAM 1 B over" in ram.reason and "flash" not in ram.reason
    both = check_fit(board, runnable=True, arena_bytes=12 * KB, flash_bytes=150 * KB)
    assert both.flash_margin_bytes == -50 * KB
    assert "RAM 2.0 KB over" in both.reason and "flash 50.0 KB over" in both.reason
    assert both.label().startswith("does not fit: RAM")


def test_cannot_run_and_unmeasured_keep_the_reason():
    board = BOARDS["nano33"]
    refused = check_fit(board, runnable=False, arena_bytes=None, flash_bytes=3912,
                        reason="TFLite Micro does not run hybrid kernels.")
    assert refused.status is FitStatus.CANNOT_RUN and not refused.fits
    assert refused.flash_margin_bytes == board.flash_bytes - 3912 and refused.ram_margin_bytes is None
    assert refused.label() == "cannot run under TFLM: TFLite Micro does not run hybrid kernels."
    failed = check_fit(board, runnable=None, arena_bytes=None, flash_bytes=100, reason="crashed (SIGSEGV)")
    assert failed.status is FitStatus.UNMEASURED and "SIGSEGV" in failed.label()
    assert fit_of(None, board).status is FitStatus.UNMEASURED
    as_dict = fit_of({"runnable": True, "arena_bytes": 300 * KB, "flash_bytes": 5}, board)
    assert as_dict.status is FitStatus.DOES_NOT_FIT and as_dict.ram_margin_bytes == -44 * KB


def test_format_bytes():
    assert [format_bytes(v) for v in (None, 0, 1023, 2416, 3 * 1024 * 1024, -2048)] == [
        "–", "0 B", "1023 B", "2.4 KB", "3.00 MB", "-2.0 KB"
    ]


def _results():
    def variant(name, tflm, status="ok"):
        return {"name": name, "status": status, "quantization": name, "tflm": tflm}

    return {
        "variants": [
            variant("int8", {"runnable": True, "arena_bytes": 2416, "flash_bytes": 4192, "accuracy": 0.97,
                             "agreement": 1.0, "samples": 360}),
            variant("float32", {"runnable": True, "arena_bytes": 300 * KB, "flash_bytes": 6968}),
            variant("dynamic", {"runnable": False, "reason": "TFLite Micro has no hybrid kernels.",
                                "flash_bytes": 3912}),
            variant("old", None),  # a results.json written before TFLM was measured
            variant("broken", None, status="failed"),
        ]
    }


def test_fit_table_one_row_per_finished_variant():
    from compression.measure.boards import FIT_COLUMNS, fit_table

    table = fit_table(_results(), BOARDS["nano33"])
    assert list(table.columns) == FIT_COLUMNS
    assert list(table["name"]) == ["int8", "float32", "dynamic", "old"]
    assert list(table["tflm"]) == ["runs", "runs", "refused", "not measured"]
    assert list(table["fit"]) == ["fits", "does not fit", "cannot run under TFLM", "not measured"]
    assert table.loc[0, "ram_margin_bytes"] == 256 * KB - 2416
    assert table.loc[1, "ram_margin_bytes"] == -44 * KB
    assert table.loc[2, "reason"] == "TFLite Micro has no hybrid kernels."
    assert table.loc[0, "tflm_accuracy"] == 0.97


def test_ram_vs_flash_draws_the_budget_box_and_the_points():
    from compression.measure.boards import fit_table
    from compression.views.board_charts import ram_vs_flash

    board = BOARDS["nano33"]
    fig = ram_vs_flash(fit_table(_results(), board), board)
    box = fig.data[0]
    assert box.fill == "toself" and board.name in box.name
    assert max(box.x) == board.flash_bytes and max(box.y) == board.ram_bytes
    points = {t.name: t for t in fig.data[1:]}
    assert set(points) == {"fits", "does not fit"}
    assert list(points["fits"].x) == [4192] and list(points["fits"].y) == [2416]
    assert list(points["does not fit"].y) == [300 * KB]
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"
    assert fig.layout.xaxis.dtick == 1 and fig.layout.yaxis.dtick == 1  # ticks at powers of ten, not "2 100k 5 2"
    assert any("dynamic" in a.text for a in fig.layout.annotations)  # refused: named, not plotted
    empty = ram_vs_flash(fit_table({"variants": []}, board), board)
    assert "No variant" in empty.layout.annotations[0].text


def test_the_evaluation_setting_turns_tflm_off_and_is_validated():
    from compression.config import EvaluationSpec, Recipe

    assert EvaluationSpec().tflm is True and EvaluationSpec().tflm_max_samples == 2000
    recipe = Recipe.from_dict({"variants": [{"name": "int8", "quantization": "int8"}],
                               "evaluation": {"tflm": False, "tflm_max_samples": 50}})
    assert recipe.evaluation.tflm is False and Recipe.from_json(recipe.to_json()) == recipe
    with pytest.raises(CompressionError, match="evaluation.tflm must be true or false"):
        EvaluationSpec(tflm="yes")
    with pytest.raises(CompressionError, match="tflm_max_samples"):
        EvaluationSpec(tflm_max_samples=0)


def test_the_board_fit_benchmark_rows_on_hand_made_results():
    from benchmarks.board_fit import headers, row_cells, variant_rows

    rows = variant_rows(_results())
    assert [r["name"] for r in rows] == ["int8", "float32", "dynamic", "old"]
    assert rows[0]["fit"] == {k: "fits" for k in BOARDS}
    assert rows[1]["fit"]["nano33"] == "does not fit" and rows[1]["fit"]["esp32"] == "fits"
    cells = [row_cells(r) for r in rows]
    assert all(len(c) == len(headers()) for c in cells)
    assert cells[2][1] == "refused" and cells[2][-1] == "✗ TFLM" and cells[3][1] == "not measured"
