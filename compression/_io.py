"""Crash-safe file writes: a temporary name in the same folder, fsync, then rename."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` so that ``path`` is either the old file or the whole new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; results are ordinary files
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, data: Any) -> Path:
    return atomic_write_text(path, json.dumps(data, indent=2, default=json_default))


def json_default(value: Any):
    """The one ``default=`` for json.dumps in the engine: numpy, paths, enums, typed records."""
    import enum

    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if hasattr(value, "to_dict"):
        return value.to_dict()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def save_step_arrays(path: str | Path, step, arrays: dict, prefix: str) -> Path:
    """Write a recording (``step`` plus one array per layer, named ``<prefix><layer>``) to an ``.npz``, atomically."""
    import io

    import numpy as np

    buffer = io.BytesIO()
    np.savez_compressed(buffer, step=step, **{prefix + name: a for name, a in arrays.items()})
    return atomic_write_bytes(path, buffer.getvalue())


def load_step_arrays(path: str | Path, prefix: str) -> tuple[Any, dict] | None:
    """``(step, {layer: array})`` saved by :func:`save_step_arrays` (never unpickles), or None without a file."""
    import numpy as np

    if not Path(path).is_file():
        return None
    with np.load(path, allow_pickle=False) as data:
        return data["step"], {k[len(prefix):]: data[k] for k in data.files if k.startswith(prefix)}
