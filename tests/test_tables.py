"""The pages' tables as pure functions: History rows and the live variant-status join."""

import math

import pandas as pd
import pytest

from compression.results import RunResults
from compression.views.tables import (
    FLAGGED,
    HISTORY_COLUMNS,
    VARIANT_STATUS_COLUMNS,
    flag_lines,
    format_duration,
    format_when,
    history_table,
    variant_status_rows,
)
from compression.views.training_charts import history_frame


def run_record(**changes):
    base = {"id": "20240101-000000-000-abcdef", "created": "2024-01-31T12:05:09+00:00", "title": "t",
            "dataset": "digits", "model": "seed_cnn", "n_variants": 3, "best_ratio": 2.5, "status": "ok",
            "duration": 75.4, "session": "tab-1", "progress": None}
    return {**base, **changes}


RESULTS = RunResults.from_dict({
    "reference": {"size_bytes": 1000, "gzip_bytes": 900, "accuracy": 0.9},
    "variants": [
        {"name": "float32", "status": "ok", "size_bytes": 1000, "gzip_bytes": 900, "accuracy": 0.9,
         "latency_ms": {"median": 0.5}, "seconds": 1.5},
        {"name": "int8", "status": "failed", "error": "no luck", "seconds": 0.2},
    ],
})


def test_history_table_one_row_per_run_with_mine_and_formatting():
    runs = [run_record(), run_record(id="x2", session="other", duration=None, best_ratio=None, status="failed")]
    table = history_table(runs, session="tab-1", sizes={runs[0]["id"]: 2_500_000})
    assert list(table.columns) == HISTORY_COLUMNS
    assert table.loc[0, "size (MB)"] == 2.5 and math.isnan(table.loc[1, "size (MB)"])
    assert list(table["mine"]) == [True, False]
    assert list(table["duration"]) == ["1 min 15 s", ""]
    assert table.loc[0, "date"] == "2024-01-31 12:05"
    assert table.loc[0, "best ratio (≤1 pt lost)"] == 2.5 and math.isnan(table.loc[1, "best ratio (≤1 pt lost)"])
    assert list(table["status"]) == ["ok", "failed"] and list(table["id"]) == [runs[0]["id"], "x2"]
    assert history_table([], session="tab-1").empty


def test_formatters():
    assert format_when(None) == "" and format_when("not a date") == "not a date"
    assert format_duration(42.4) == "42 s" and format_duration(float("nan")) == ""
    assert format_duration(125) == "2 min 05 s"


def test_variant_status_join_while_running():
    run = run_record(status="running", progress={"variant": "int16x8", "phase": "convert"})
    rows = variant_status_rows(["float32", "int8", "int16x8", "dynamic"], run, RESULTS).set_index("variant")
    assert list(rows.reset_index().columns) == VARIANT_STATUS_COLUMNS
    assert rows.loc["float32", "status"] == "ok"
    assert rows.loc["float32", "ratio"] == pytest.approx(1.0)
    assert rows.loc["float32", "latency_ms"] == 0.5 and rows.loc["float32", "seconds"] == 1.5
    assert rows.loc["int8", "status"] == "failed" and rows.loc["int8", "error"] == "no luck"
    assert rows.loc["int16x8", "status"] == "converting"
    assert rows.loc["dynamic", "status"] == "waiting"


def test_variant_status_join_after_the_run_and_before_results():
    rows = variant_status_rows(["float32", "dynamic"], run_record(status="cancelled"), RESULTS)
    assert list(rows["status"]) == ["ok", "not run"]
    queued = variant_status_rows(["a", "b"], run_record(status="queued"), None)
    assert list(queued["status"]) == ["waiting", "waiting"] and queued["accuracy"].isna().all()


def test_history_frame_pads_accuracy_and_skips_empty_stages():
    frame = history_frame({"prune": {"loss": [1.0, 0.5], "accuracy": [0.7]}, "qat": {"loss": []}}, "v")
    assert list(frame["phase"]) == ["prune", "prune"] and list(frame["epoch"]) == [1, 2]
    assert frame.loc[0, "accuracy"] == 0.7 and pd.isna(frame.loc[1, "accuracy"])
    assert history_frame({}).empty and list(history_frame(None).columns) == list(frame.columns)


def test_a_flagged_variant_does_not_read_ok_and_its_flags_are_sentences_naming_it():
    one_class = {"code": "one_class", "message": "predicts class 3 for 100% of the test set"}
    results = RunResults.from_dict({
        "baseline": {"flags": [{"code": "baseline_at_chance", "message": "The baseline is at chance."}]},
        "variants": [
            {"name": "float32", "status": "ok", "accuracy": 0.9},
            {"name": "int16x8", "status": "ok", "accuracy": 0.1, "flags": [
                {"code": "near_chance", "message": "accuracy 10.0% is near chance"}, one_class]},
        ],
    })
    rows = variant_status_rows(["float32", "int16x8"], run_record(), results).set_index("variant")
    assert rows.loc["float32", "status"] == "ok" and rows.loc["float32", "flags"] == ""
    assert rows.loc["int16x8", "status"] == FLAGGED and rows.loc["int16x8", "flags"] == "near chance, one class"
    assert flag_lines(results) == [(None, "The baseline is at chance."),
                                   ("int16x8", "accuracy 10.0% is near chance"), ("int16x8", one_class["message"])]
    assert flag_lines(None) == [] and flag_lines(RESULTS) == []


def test_points_are_signed_and_never_negative_zero():
    from compression.views.tables import format_points

    assert format_points(-0.0) == "+0.00 points"  # a trial exactly at the baseline's accuracy
    assert format_points(-0.004) == "+0.00 points"
    assert format_points(0.1) == "+0.10 points"
    assert format_points(-1.387) == "-1.39 points"
