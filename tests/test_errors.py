"""errors.one_line: any exception as one readable line."""

from __future__ import annotations

from compression.errors import one_line


def test_first_non_empty_line_with_the_type():
    assert one_line(ValueError("\n  bad   value \nsecond line")) == "ValueError: bad value"


def test_empty_message_is_the_type_name():
    assert one_line(KeyError()) == "KeyError"
    assert one_line(RuntimeError(""), with_type=False) == "RuntimeError"


def test_without_type_and_folded_lines():
    exc = OSError("first\nsecond\n\nthird")
    assert one_line(exc, with_type=False) == "first"
    assert one_line(exc, with_type=False, first_line=False) == "first second third"


def test_plain_text_and_limit():
    assert one_line("a\nb", first_line=False) == "a b"
    assert one_line(ValueError("x" * 1000)) == "ValueError: " + "x" * 387 + "…"
    assert len(one_line(ValueError("x" * 1000), limit=50)) == 50
