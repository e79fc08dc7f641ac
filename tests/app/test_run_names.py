"""Runs can be named; an edited table is marked and a repeated title numbered, so History tells runs apart."""

from __future__ import annotations

from apptest_support import app_test, assert_clean

from ui import builder


def preset_rows():
    return builder.rows_from_recipe(builder.preset_recipe("experiment_e"))


def test_the_users_name_wins_and_repeats_are_numbered():
    rows = preset_rows()
    assert builder.run_title("  Class demo  ", "Experiment E", rows, rows) == "Class demo"
    assert builder.run_title("Class demo", "E", rows, rows, taken=["Class demo"]) == "Class demo #2"
    assert builder.run_title("Class demo", "E", rows, rows, taken=["Class demo", "Class demo #2"]) == "Class demo #3"


def test_an_unchanged_preset_keeps_its_title_and_an_edited_table_says_so():
    rows = preset_rows()
    assert builder.run_title("", "Experiment E", rows, rows) == "Experiment E"
    edited = [dict(r) for r in rows]
    edited[1]["include"] = False
    assert builder.run_title(None, "Experiment E", edited, rows) == "Experiment E (edited: 5 variants)"
    renamed = [dict(r) for r in rows]
    renamed[0]["name"] = "reference"
    assert builder.run_title("", "Experiment E", renamed, rows) == "Experiment E (edited: 6 variants)"
    assert builder.run_title("", "Experiment E", rows, rows, taken=["Experiment E"]) == "Experiment E #2"


def test_the_compress_page_has_a_run_name_field(lab):
    at = app_test("pages/2_compress.py")
    at.run()
    assert_clean(at)
    assert at.text_input(key="run_name").value == ""
