"""The one exception type for errors a user can cause."""

from __future__ import annotations


class CompressionError(ValueError):
    """An error the user can fix: a bad file, a bad value, an unsupported layer.

    Its message is one human sentence, shown as is by the UI and the CLI.
    Bugs are other exceptions and keep their tracebacks.
    """


def one_line(exc: BaseException | str, *, with_type: bool = True, first_line: bool = True, limit: int = 400) -> str:
    """An exception (or its text) as one readable line, for a result table or a log line.

    Args:
        exc: the exception, or its message text.
        with_type: start with the exception's class name ("ValueError: …"); not for plain text.
        first_line: keep only the first non-empty line; otherwise fold every line into one.
        limit: cut the line to at most this many characters (ending in "…" when cut).

    Returns:
        The line; the class name alone when the message is empty.

    Usage::

        row["error"] = one_line(exc)
    """
    text = str(exc)
    if first_line:
        text = next((line for line in text.splitlines() if line.strip()), "")
    text = " ".join(text.split())
    name = type(exc).__name__ if isinstance(exc, BaseException) else ""
    if with_type and name:
        text = f"{name}: {text}" if text else name
    text = text or name
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
