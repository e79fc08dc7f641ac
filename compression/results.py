"""Typed results: what a run produced (the results.json schema).

``results.json`` is the contract between the engine (one writer:
:func:`compression.run.recipe.run_recipe` / ``run_variant``) and every reader
(store, charts, export, pages, benchmarks). Readers go through these types,
never through ``(row.get("latency_ms") or {}).get(...)`` chains.

* :class:`VariantResult` — one variant's row; :class:`RunResults` — the whole file.
* ``from_dict`` is tolerant: it reads every results.json written so far (missing
  keys become None/empty, unknown keys are kept in ``extra`` and written back).
* ``to_dict`` produces the documented schema (docs/architecture.md).
* Where a run's files live is :class:`compression.run_folder.RunFolder`.

Usage::

    results = RunFolder(run_dir).read_results()        # RunResults | None
    for v in results.ok_variants:
        print(v.name, v.accuracy, v.latency.median, v.gzip_ratio(results.reference))
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from pathlib import Path
from typing import Any

__all__ = [
    "ACCURACY_TOLERANCE",
    "FINAL_STATUSES",
    "BaselineInfo",
    "DatasetInfo",
    "Flag",
    "Latency",
    "LayerStat",
    "Reference",
    "RunKind",
    "RunResults",
    "RunStatus",
    "TABLE_COLUMNS",
    "Timings",
    "TflmResult",
    "VariantResult",
    "best_ratio",
    "file_stem",
    "results_table",
]

ACCURACY_TOLERANCE = 0.01  # "at most one point of accuracy lost" for best_ratio


class RunStatus(StrEnum):
    """Status of a run (and of a variant: running / ok / failed / cancelled)."""

    QUEUED = "queued"
    RUNNING = "running"
    OK = "ok"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"

    @property
    def final(self) -> bool:
        return self in FINAL_STATUSES


FINAL_STATUSES = frozenset({RunStatus.OK, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.INTERRUPTED})


class RunKind(StrEnum):
    """What a run is for: a compression recipe, or a baseline trained for later runs ("train now")."""

    RECIPE = "recipe"
    BASELINE = "baseline"
    SENSITIVITY = "sensitivity"
    SEARCH = "search"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _num(value: Any) -> float | None:
    return float(value) if _is_number(value) else None


def _int(value: Any) -> int | None:
    return int(value) if _is_number(value) else None


def _status(value: Any, default: RunStatus = RunStatus.RUNNING) -> RunStatus:
    try:
        return RunStatus(value)
    except ValueError:
        return default


def file_stem(name: str, fallback: str = "variant") -> str:
    """A name made safe as a file name (the one sanitiser: variant files, downloads, uploads)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)).strip("._") or fallback


class _Record:
    """from_dict / to_dict for flat frozen dataclasses; unknown keys survive in ``extra``."""

    _renames: dict[str, str] = {}  # json key -> field name

    @classmethod
    def _fields(cls) -> dict[str, dataclasses.Field]:
        return {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]

    @classmethod
    def _convert(cls, name: str, value: Any) -> Any:
        return value

    @classmethod
    def from_dict(cls, data: dict | None):
        if isinstance(data, cls):
            return data
        if not isinstance(data, dict):
            data = {}
        fields = cls._fields()
        kwargs: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, value in data.items():
            name = cls._renames.get(key, key)
            if name in fields and name != "extra":
                kwargs[name] = cls._convert(name, value)
            else:
                extra[key] = value
        if "extra" in fields:
            kwargs["extra"] = extra
        for name, f in fields.items():
            if name not in kwargs and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                kwargs[name] = cls._convert(name, None)
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        back = {v: k for k, v in self._renames.items()}
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            if f.name == "extra":
                continue
            out[back.get(f.name, f.name)] = _plain(getattr(self, f.name))
        out.update(getattr(self, "extra", {}) or {})
        return out


def _plain(value: Any) -> Any:
    if isinstance(value, _Record):
        return value.to_dict()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class Latency(_Record):
    """Host latency of one invoke (batch 1), in milliseconds. Host CPU, not a device."""

    median: float | None = None
    p90: float | None = None
    mean: float | None = None
    std: float | None = None
    runs: int | None = None
    threads: int | None = None
    extra: dict = field(default_factory=dict)

    @classmethod
    def _convert(cls, name, value):
        return _int(value) if name in ("runs", "threads") else _num(value)


@dataclass(frozen=True)
class Timings(_Record):
    """Seconds spent per stage of one variant."""

    fine_tune: float | None = None
    convert: float | None = None
    measure: float | None = None
    extra: dict = field(default_factory=dict)

    @classmethod
    def _convert(cls, name, value):
        return _num(value)


@dataclass(frozen=True)
class TflmResult(_Record):
    """The variant measured under TensorFlow Lite Micro (:func:`compression.measure.tflm.measure_tflm`).

    ``runnable`` is True when TFLM allocates and invokes the model, False when it refuses it
    (``reason`` says why, in one sentence), None when the measurement itself failed or was
    skipped (``reason`` says why). ``arena_bytes`` is the smallest tensor arena that allocates
    and invokes (RAM); ``flash_bytes`` the `.tflite` length (flash, without the TFLM runtime);
    ``allocator_total`` what TFLM's RecordingMicroAllocator reports in use after an invoke.
    ``accuracy`` and ``agreement`` (with the LiteRT predictions) are over ``samples`` of the
    ``test_size`` test samples, in ``eval_seconds`` on the host's reference kernels;
    ``seconds`` is the whole measurement.
    """

    runnable: bool | None = None
    reason: str | None = None
    arena_bytes: int | None = None
    flash_bytes: int | None = None
    allocator_total: int | None = None
    accuracy: float | None = None
    agreement: float | None = None
    samples: int | None = None
    test_size: int | None = None
    eval_seconds: float | None = None
    seconds: float | None = None
    notes: tuple[str, ...] = ()
    extra: dict = field(default_factory=dict)

    @classmethod
    def _convert(cls, name, value):
        if name == "runnable":
            return value if isinstance(value, bool) else None
        if name == "reason":
            return None if value is None else str(value)
        if name == "notes":
            return tuple(str(x) for x in (value or ()))
        if name in ("accuracy", "agreement", "eval_seconds", "seconds"):
            return _num(value)
        return _int(value)

    @property
    def ms_per_sample(self) -> float | None:
        """Host milliseconds per invoke on TFLM's reference kernels (not a device's latency)."""
        if not self.samples or self.eval_seconds is None:
            return None
        return self.eval_seconds / self.samples * 1000


@dataclass(frozen=True)
class LayerStat(_Record):
    """Weight statistics of one layer (of the model that was converted)."""

    name: str = ""
    sparsity: float | None = None
    unique_values: int | None = None
    params: int | None = None
    extra: dict = field(default_factory=dict)

    @classmethod
    def _convert(cls, name, value):
        if name == "name":
            return str(value or "")
        return _num(value) if name == "sparsity" else _int(value)


@dataclass(frozen=True)
class Flag(_Record):
    """A warning a figure alone would hide (e.g. ``near_chance``, ``one_class``), with its sentence."""

    code: str = ""
    message: str = ""
    extra: dict = field(default_factory=dict)

    @classmethod
    def _convert(cls, name, value):
        return str(value or "")


def _flags(value: Any) -> tuple[Flag, ...]:
    return tuple(Flag.from_dict(x) for x in (value or ()) if isinstance(x, dict))


@dataclass(frozen=True)
class Reference(_Record):
    """The float32 `.tflite` of the baseline: what ratios are computed against."""

    size_bytes: int | None = None
    gzip_bytes: int | None = None
    accuracy: float | None = None
    extra: dict = field(default_factory=dict)

    @classmethod
    def _convert(cls, name, value):
        return _num(value) if name == "accuracy" else _int(value)


@dataclass(frozen=True)
class DatasetInfo(_Record):
    name: str | None = None
    input_shape: tuple = ()
    num_classes: int | None = None
    n_train: int | None = None
    n_test: int | None = None
    class_names: tuple = ()
    kind: str | None = None
    notes: tuple[str, ...] = ()  # what reading the data did (axes added, scaling, ids kept integer)
    extra: dict = field(default_factory=dict)

    @classmethod
    def _convert(cls, name, value):
        if name == "notes":
            return tuple(str(x) for x in (value or ()))
        if name in ("input_shape", "class_names"):
            return tuple(value or ())
        if name in ("num_classes", "n_train", "n_test"):
            return _int(value)
        return value


@dataclass(frozen=True)
class BaselineInfo(_Record):
    source: str | None = None
    accuracy: float | None = None
    params: int | None = None
    model_file: str | None = None
    history: dict = field(default_factory=dict)
    flags: tuple[Flag, ...] = ()
    reused_from: str | None = None  # the run that computed this baseline, when it came from the cache
    extra: dict = field(default_factory=dict)

    @classmethod
    def _convert(cls, name, value):
        if name == "flags":
            return _flags(value)
        if name == "accuracy":
            return _num(value)
        if name == "params":
            return _int(value)
        if name == "history":
            return dict(value or {})
        return value


@dataclass(frozen=True)
class VariantResult(_Record):
    """One variant's row of results.json (see docs/architecture.md for each field)."""

    name: str = ""
    status: RunStatus = RunStatus.RUNNING
    error: str | None = None
    settings: dict = field(default_factory=dict)
    techniques: tuple[str, ...] = ()
    quantization: str | None = None
    sparse_encoding: bool = False
    tflite: str | None = None
    size_bytes: int | None = None
    gzip_bytes: int | None = None
    accuracy: float | None = None
    agreement: float | None = None
    top_class_share: float | None = None
    flags: tuple[Flag, ...] = ()
    latency: Latency = field(default_factory=Latency)
    throughput_sps: float | None = None
    throughput_batch: int | None = None
    sparsity: float | None = None
    layers: tuple[LayerStat, ...] = ()
    input_dtype: str | None = None
    output_dtype: str | None = None
    delegate: str | None = None
    delegate_note: str | None = None
    ops: tuple[str, ...] = ()
    params: int | None = None
    float_layers: tuple[dict, ...] = ()
    notes: tuple[str, ...] = ()
    schedule: dict | None = None
    history: dict = field(default_factory=dict)
    distillation: dict | None = None
    scheme: str | None = None
    timings: Timings = field(default_factory=Timings)
    seconds: float | None = None
    tflm: TflmResult | None = None
    reused_from: str | None = None  # the run that computed this row, when it came from the cache
    # Measurements still running when the row was written (e.g. ("tflm",)): the row shows its accuracy and
    # size first, and is rewritten without them once they are filled in. Empty in a finished run.
    measuring: tuple[str, ...] = ()
    extra: dict = field(default_factory=dict)

    _renames = {"latency_ms": "latency"}

    @classmethod
    def _convert(cls, name, value):
        if name == "status":
            return _status(value)
        if name == "latency":
            return Latency.from_dict(value)
        if name == "timings":
            return Timings.from_dict(value)
        if name == "tflm":
            return TflmResult.from_dict(value) if isinstance(value, dict) else None
        if name == "layers":
            return tuple(LayerStat.from_dict(x) for x in (value or ()) if isinstance(x, dict))
        if name in ("techniques", "ops", "notes", "measuring"):
            return tuple(str(x) for x in (value or ()))
        if name == "float_layers":
            return tuple(dict(x) for x in (value or ()) if isinstance(x, dict))
        if name in ("settings", "history"):
            return dict(value or {})
        if name in ("size_bytes", "gzip_bytes", "throughput_batch", "params"):
            return _int(value)
        if name == "flags":
            return _flags(value)
        if name in ("accuracy", "agreement", "top_class_share", "throughput_sps", "sparsity", "seconds"):
            return _num(value)
        if name == "sparse_encoding":
            return bool(value)
        if name == "name":
            return str(value or "")
        return value

    @property
    def ok(self) -> bool:
        return self.status is RunStatus.OK

    @property
    def stem(self) -> str:
        """The file stem of this variant's files (weights, predictions)."""
        return Path(self.tflite).stem if self.tflite else file_stem(self.name)

    def ratio(self, reference: Reference | None) -> float | None:
        """Raw size ratio vs the float32 reference (bigger is smaller)."""
        if reference is None or not reference.size_bytes or not self.size_bytes:
            return None
        return reference.size_bytes / self.size_bytes

    def gzip_ratio(self, reference: Reference | None) -> float | None:
        """gzip size ratio vs the float32 reference."""
        if reference is None or not reference.gzip_bytes or not self.gzip_bytes:
            return None
        return reference.gzip_bytes / self.gzip_bytes

    def delta_accuracy(self, reference: Reference | None) -> float | None:
        """Accuracy change in points (×100) against the float baseline."""
        if reference is None or reference.accuracy is None or self.accuracy is None:
            return None
        return (self.accuracy - reference.accuracy) * 100

    def replace(self, **changes) -> VariantResult:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class RunResults(_Record):
    """A run's results.json."""

    recipe: dict = field(default_factory=dict)
    versions: dict = field(default_factory=dict)
    created: str | None = None
    status: RunStatus = RunStatus.RUNNING
    error: str | None = None
    dataset: DatasetInfo | None = None
    baseline: BaselineInfo | None = None
    reference: Reference | None = None
    variants: tuple[VariantResult, ...] = ()
    elapsed_seconds: float | None = None
    extra: dict = field(default_factory=dict)

    @classmethod
    def _convert(cls, name, value):
        if name == "status":
            return _status(value)
        if name == "dataset":
            return DatasetInfo.from_dict(value) if isinstance(value, dict) else None
        if name == "baseline":
            return BaselineInfo.from_dict(value) if isinstance(value, dict) else None
        if name == "reference":
            return Reference.from_dict(value) if isinstance(value, dict) else None
        if name == "variants":
            return tuple(VariantResult.from_dict(v) for v in (value or ()) if isinstance(v, dict))
        if name in ("recipe", "versions"):
            return dict(value or {})
        if name == "elapsed_seconds":
            return _num(value)
        return value

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        for key in ("dataset", "baseline", "reference"):  # keep None as null, not {}
            if getattr(self, key) is None:
                out[key] = None
        return out

    @classmethod
    def from_json(cls, text: str) -> RunResults:
        return cls.from_dict(json.loads(text))

    def to_json(self) -> str:
        from ._io import json_default

        return json.dumps(self.to_dict(), indent=2, default=json_default)

    @property
    def ok_variants(self) -> tuple[VariantResult, ...]:
        return tuple(v for v in self.variants if v.ok)

    @property
    def title(self) -> str:
        return str(self.recipe.get("title") or "")

    def variant(self, name: str) -> VariantResult | None:
        return next((v for v in self.variants if v.name == name), None)

    def replace(self, **changes) -> RunResults:
        return dataclasses.replace(self, **changes)

    def with_variant(self, row: VariantResult) -> RunResults:
        """These results with ``row`` added, or replacing the variant of the same name."""
        rows = [v for v in self.variants if v.name != row.name]
        index = next((i for i, v in enumerate(self.variants) if v.name == row.name), len(rows))
        rows.insert(index, row)
        return dataclasses.replace(self, variants=tuple(rows))

    def table(self):
        """:func:`results_table` of these results (a pandas DataFrame)."""
        return results_table(self)

    def best_ratio(self, tolerance: float = ACCURACY_TOLERANCE) -> float | None:
        """Best gzip ratio vs the float32 reference among ok variants losing at most ``tolerance`` accuracy."""
        ref = self.reference
        if ref is None or not ref.gzip_bytes or ref.gzip_bytes <= 0 or ref.accuracy is None:
            return None
        best = None
        for v in self.ok_variants:
            if not v.gzip_bytes or v.gzip_bytes <= 0 or v.accuracy is None:
                continue
            if v.accuracy >= ref.accuracy - tolerance - 1e-12:
                ratio = ref.gzip_bytes / v.gzip_bytes
                best = ratio if best is None else max(best, ratio)
        return best


MEASUREMENT_WORDS = {"tflm": "TFLite Micro"}  # VariantResult.measuring entries, as the tables say them

TABLE_COLUMNS = [
    "name", "status", "techniques", "quantization", "accuracy", "delta_accuracy", "agreement",
    "latency_median_ms", "latency_p90_ms", "throughput_sps", "size_bytes", "gzip_bytes", "ratio", "gzip_ratio",
    "sparsity", "delegate", "input_dtype", "tflite", "error", "flags", "tflm_runs", "arena_bytes", "flash_bytes",
    "measuring",
]


def results_table(results: RunResults | dict | None):
    """One row per variant, the reference-experiment columns, ratios against the float32 `.tflite`.

    ``delta_accuracy`` is in accuracy points (×100) against the float baseline.

    Usage::

        results_table(RunFolder(run_dir).read_results())     # a pandas DataFrame, TABLE_COLUMNS
    """
    import pandas as pd

    if not isinstance(results, RunResults):
        results = RunResults.from_dict(results)
    ref = results.reference
    rows = [
        {
            "name": v.name, "status": v.status.value, "techniques": " + ".join(v.techniques),
            "quantization": v.quantization, "accuracy": v.accuracy, "delta_accuracy": v.delta_accuracy(ref),
            "agreement": v.agreement, "latency_median_ms": v.latency.median, "latency_p90_ms": v.latency.p90,
            "throughput_sps": v.throughput_sps, "size_bytes": v.size_bytes, "gzip_bytes": v.gzip_bytes,
            "ratio": v.ratio(ref), "gzip_ratio": v.gzip_ratio(ref), "sparsity": v.sparsity, "delegate": v.delegate,
            "input_dtype": v.input_dtype, "tflite": v.tflite, "error": v.error,
            "flags": "; ".join(f.code for f in v.flags),
            "tflm_runs": v.tflm.runnable if v.tflm else None,
            "arena_bytes": v.tflm.arena_bytes if v.tflm else None,
            "flash_bytes": v.tflm.flash_bytes if v.tflm else None,
            "measuring": ", ".join(MEASUREMENT_WORDS.get(m, m) for m in v.measuring),
        }
        for v in results.variants
    ]
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def best_ratio(results: RunResults | dict | None, tolerance: float = ACCURACY_TOLERANCE) -> float | None:
    """:meth:`RunResults.best_ratio` of parsed or raw results (None for anything else)."""
    if isinstance(results, dict):
        results = RunResults.from_dict(results)
    if not isinstance(results, RunResults):
        return None
    return results.best_ratio(tolerance)
