"""The one exception type for errors a user can cause."""

from __future__ import annotations


class CompressionError(ValueError):
    """An error the user can fix: a bad file, a bad value, an unsupported layer.

    Its message is one human sentence, shown as is by the UI and the CLI.
    Bugs are other exceptions and keep their tracebacks.
    """
