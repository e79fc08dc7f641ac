"""Editing the variant table: duplicate names are refused at once; a new preset keeps the technique switches."""

from __future__ import annotations

from apptest_support import app_test, assert_clean

from ui import builder


def test_a_rename_to_a_taken_or_empty_name_is_refused_with_a_sentence():
    rows = builder.rows_from_recipe(builder.preset_recipe("experiment_e"))
    refused: list[str] = []
    out = builder.apply_edits(rows, {1: {"name": "float32"}, 2: {"name": "  "}, 3: {"name": "mine"}}, refused)
    assert [r["name"] for r in out][:4] == ["float32", "int8", "pruned", "mine"]
    assert refused == [
        "Variant names must be unique and non-empty: 'float32' is already used, so row 2 keeps the name 'int8'.",
        "A variant needs a name: row 3 keeps the name 'pruned'.",
    ]


def test_changing_the_preset_keeps_the_builders_switches(lab):
    at = app_test("pages/2_compress.py")
    at.run()
    at.toggle(key="b_use_prune").set_value(True).run()
    at.selectbox(key="preset").set_value("experiment_d").run()
    assert_clean(at)
    assert at.toggle(key="b_use_prune").value
    assert at.session_state["b_prune_final"] == 0.9  # the preset's settings did arrive
    assert builder.PRESET_TITLES["custom"] == "Custom: start from the float32 reference row only"
