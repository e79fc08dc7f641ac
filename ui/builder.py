"""The Compress page's variant builder: presets → controls, controls → VariantSpecs, the editable table.

Plain functions of dicts (the builder's session-state values) so they are
tested without a browser. The page draws the widgets; this module turns
their values into engine objects. Validation is the engine's: a bad value
raises :class:`compression.CompressionError` with its sentence.

Usage::

    rows = rows_from_recipe(preset_recipe("experiment_e", dataset="digits", model="seed_cnn"))
    specs = specs_from_rows(rows)
"""

from __future__ import annotations

import inspect
from typing import Any

import pandas as pd

from compression.config import (
    PRESETS,
    ClusteringConfig,
    DistillationConfig,
    EvaluationSpec,
    Limits,
    Preserve,
    PruningConfig,
    QATConfig,
    QuantizationMode,
    Recipe,
    VariantSpec,
    default_fine_tune_epochs,
)
from compression.errors import CompressionError
from compression.validation import Bounds

PRESET_TITLES = {
    "experiment_e": "Experiment E: pruning vs QAT vs both (seed CNN, its small conv left dense)",
    "experiment_e_writeup": "Experiment E as written: every layer pruned (the conv too)",
    "experiment_c": "Experiment C: quantization-aware training (Conv 64/32/16 CNN)",
    "experiment_d": "Experiment D: pruning 50→90 %, 5× smaller",
    "smallest": "Smallest file: pruning + clustering + PCQAT",
    "fastest": "Fastest: the modes XNNPACK runs best",
    "custom": "Custom: start from the float32 reference row only",
}
MODES = [m.value for m in QuantizationMode]
MODE_HELP = {
    "float32": "no quantization: the reference size and accuracy",
    "dynamic": "int8 weights, float activations: ~4× smaller, no calibration data",
    "float16": "float16 weights: ~2× smaller, computed in float32 on CPU",
    "int8": "full integer (int8 weights and activations, int8 input/output): ~4× smaller, fastest with XNNPACK",
    "int16x8": "int16 activations, int8 weights: closer to float than int8, but NOT delegated to XNNPACK "
    "(20–40× slower than int8 on CPU)",
}

# Builder controls and their defaults (session-state keys; the page's widgets use the same keys). Technique
# settings start at the configs' own defaults; only the fine-tune epochs differ (10: the small offline sets
# have ~25 steps an epoch).
_PRUNE, _CLUSTER, _DISTILL = PruningConfig(), ClusteringConfig(), DistillationConfig()
_VARIANT, _EVAL = VariantSpec(name="defaults"), EvaluationSpec()
CONTROL_DEFAULTS: dict[str, Any] = {
    "preset": "experiment_e",
    "b_use_prune": False,
    "b_prune_schedule": _PRUNE.schedule.value,
    "b_prune_initial": _PRUNE.initial_sparsity,
    "b_prune_final": _PRUNE.final_sparsity,
    "b_prune_begin": _PRUNE.begin_step,
    "b_prune_end": 0,  # 0 = the end of fine-tuning
    "b_prune_freq": _PRUNE.frequency,
    "b_prune_24": False,
    "b_prune_some": False,
    "b_prune_layer_mode": "include",
    "b_prune_layers": [],
    "b_use_cluster": False,
    "b_clusters": _CLUSTER.clusters,
    "b_cluster_init": _CLUSTER.init.value,
    "b_cluster_some": False,
    "b_cluster_layers": [],
    "b_use_qat": False,
    "b_qat_some": False,
    "b_qat_layers": [],
    "b_use_distill": False,
    "b_student": None,  # the Compress page picks the smallest zoo model smaller than the baseline
    "b_temperature": _DISTILL.temperature,
    "b_alpha": _DISTILL.alpha,
    "b_distill_epochs": _DISTILL.epochs,
    "b_modes": ["int8"],
    "b_sparse": False,
    "b_epochs": 10,
    "b_lr": _VARIANT.learning_rate,
    "b_batch": _VARIANT.batch_size,
    "b_rep_samples": _VARIANT.representative_samples,
    "e_threads": _EVAL.threads,
    "e_latency_runs": _EVAL.latency_runs,
    "e_throughput_batch": _EVAL.throughput_batch,
    "e_recompute": _EVAL.recompute,
    "e_seed": Recipe.__dataclass_fields__["seed"].default,
}


def _range(bounds: Bounds, low: float | None = None, high: float | None = None) -> tuple[Any, Any]:
    """A widget's (min, max): the config's own limit, narrowed only where a widget needs it."""
    lo = bounds.low if low is None else low
    hi = bounds.high if high is None else high
    if (
        (bounds.low_open and lo <= bounds.low)
        or (bounds.high_open and hi >= bounds.high)
        or lo < bounds.low
        or hi > bounds.high
    ):
        raise ValueError(f"widget range ({lo}, {hi}) is outside the config's {bounds}")
    return (int(lo), int(hi)) if bounds.integer else (float(lo), float(hi))


# Widget (min, max) per session-state key, from config.Limits. Narrower where a widget cannot reach an
# open end (sparsity < 1, learning rate > 0) or a slider would be too coarse to aim (clusters, temperature);
# a recipe's JSON still accepts the config's whole range.
WIDGET_RANGES: dict[str, tuple[Any, Any]] = {
    "b_prune_initial": _range(Limits.sparsity, high=0.95),
    "b_prune_final": _range(Limits.sparsity, high=0.98),
    "b_prune_begin": _range(Limits.step),
    "b_prune_end": (0, Limits.end_step.high),  # 0 = the end of fine-tuning
    "b_prune_freq": _range(Limits.frequency),
    "b_clusters": _range(Limits.clusters, high=64),
    "b_temperature": _range(Limits.temperature, low=1.0, high=20.0),
    "b_alpha": _range(Limits.alpha),
    "b_distill_epochs": _range(Limits.epochs),
    "b_epochs": _range(Limits.epochs),
    "b_lr": _range(Limits.learning_rate, low=1e-6),
    "b_batch": _range(Limits.batch_size),
    "b_rep_samples": _range(Limits.representative_samples),
    "e_threads": _range(Limits.threads),
    "e_latency_runs": _range(Limits.latency_runs),
    "e_throughput_batch": _range(Limits.throughput_batch),
    "e_seed": _range(Limits.seed),
    "fine_tune_epochs": _range(Limits.fine_tune_epochs),  # the variant table's column
    "baseline_epochs": _range(Limits.epochs),
    "baseline_batch": _range(Limits.batch_size),
    "baseline_lr": _range(Limits.learning_rate, low=1e-6),
    "max_train": (0, Limits.dataset_samples.high),  # 0 = all samples
}


# ---------------------------------------------------------------- presets


def preset_recipe(name: str, dataset: str = "digits", model: str = "seed_cnn", pretrained: bool = True) -> Recipe:
    """A preset's recipe, passing only the arguments its factory takes (experiment C fixes its model)."""
    if name == "custom":
        return Recipe(title="Custom", variants=(VariantSpec(name="float32"),))
    if name not in PRESETS:
        raise CompressionError(f"Unknown preset {name!r}. Available: {', '.join(PRESETS)}.")
    factory = PRESETS[name]
    accepted = inspect.signature(factory).parameters
    kwargs = {k: v for k, v in {"dataset": dataset, "model": model, "pretrained": pretrained}.items() if k in accepted}
    return factory(**kwargs)


def preset_model(name: str) -> str | None:
    """The zoo model a preset is written for, when it fixes one (experiment C: qat_cnn)."""
    if name == "custom" or name not in PRESETS:
        return None
    if "model" in inspect.signature(PRESETS[name]).parameters:
        return None
    return preset_recipe(name).model.name


def controls_from_recipe(recipe: Recipe, dataset: str = "digits") -> dict[str, Any]:
    """Builder control values that echo a preset: its first pruning / clustering settings, epochs, modes.

    Technique switches are left off, so the builder adds nothing until the user asks.
    """
    out = {k: v for k, v in CONTROL_DEFAULTS.items() if k.startswith("b_")}
    out["b_modes"] = ["int8"]
    out["b_epochs"] = default_fine_tune_epochs(dataset)
    p = next((v.pruning for v in recipe.variants if v.pruning), None)
    if p is not None:
        out.update(
            b_prune_schedule=p.schedule.value,
            b_prune_initial=float(p.initial_sparsity),
            b_prune_final=float(p.final_sparsity),
            b_prune_begin=int(p.begin_step),
            b_prune_end=int(p.end_step or 0),
            b_prune_freq=int(p.frequency),
            b_prune_24=p.structured == "2:4",
        )
    c = next((v.clustering for v in recipe.variants if v.clustering), None)
    if c is not None:
        out.update(b_clusters=int(c.clusters), b_cluster_init=c.init.value)
    d = next((v.distillation for v in recipe.variants if v.distillation), None)
    if d is not None:
        out.update(b_student=d.student, b_temperature=d.temperature, b_alpha=d.alpha, b_distill_epochs=d.epochs)
    trained = next((v for v in recipe.variants if v.pruning or v.clustering or v.qat), None)
    if trained is not None:
        out.update(
            b_epochs=int(trained.fine_tune_epochs), b_lr=float(trained.learning_rate), b_batch=int(trained.batch_size)
        )
    return out


# ---------------------------------------------------------------- controls → configs


def _layers(some: bool, chosen: list[str], mode: str = "include", all_layers: list[str] | None = None):
    if not some:
        return None
    chosen = list(chosen or [])
    if mode == "exclude":
        if all_layers is None:
            raise CompressionError("The model's layers are not known yet, so layers cannot be excluded.")
        chosen = [name for name in all_layers if name not in chosen]
    if not chosen:
        raise CompressionError("Choose at least one layer, or untick 'only some layers' to use them all.")
    return chosen


def pruning_config(c: dict[str, Any], all_layers: list[str] | None = None) -> PruningConfig:
    """The pruning settings of the builder controls (raises CompressionError on bad values)."""
    return PruningConfig(
        schedule=c["b_prune_schedule"],
        initial_sparsity=float(c["b_prune_initial"]),
        final_sparsity=float(c["b_prune_final"]),
        begin_step=int(c["b_prune_begin"]),
        end_step=int(c["b_prune_end"]) or None,
        frequency=int(c["b_prune_freq"]),
        layers=_layers(c["b_prune_some"], c["b_prune_layers"], c["b_prune_layer_mode"], all_layers),
        structured="2:4" if c["b_prune_24"] else None,
    )


def clustering_config(c: dict[str, Any]) -> ClusteringConfig:
    return ClusteringConfig(
        clusters=int(c["b_clusters"]),
        init=c["b_cluster_init"],
        layers=_layers(c["b_cluster_some"], c["b_cluster_layers"]),
    )


def qat_config(c: dict[str, Any]) -> QATConfig:
    return QATConfig(layers=_layers(c["b_qat_some"], c["b_qat_layers"]))


def distillation_config(c: dict[str, Any]) -> DistillationConfig:
    return DistillationConfig(
        student=c["b_student"],
        temperature=float(c["b_temperature"]),
        alpha=float(c["b_alpha"]),
        epochs=int(c["b_distill_epochs"]),
    )


def _base_name(spec_kwargs: dict[str, Any]) -> str:
    parts = []
    if spec_kwargs.get("distillation"):
        parts.append(f"distill-{spec_kwargs['distillation'].student}")
    p = spec_kwargs.get("pruning")
    if p:
        parts.append("prune2of4" if p.structured else f"prune{round(p.final_sparsity * 100)}")
    c = spec_kwargs.get("clustering")
    if c:
        parts.append(f"cluster{c.clusters}")
    if spec_kwargs.get("qat"):
        parts.append(Preserve.for_techniques(bool(p), bool(c)).scheme_name.lower())
    parts.append(spec_kwargs["quantization"] + ("-sparse" if spec_kwargs.get("sparse_encoding") else ""))
    return "-".join(parts)


def _same_settings(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return {k: v for k, v in a.items() if k != "name"} == {k: v for k, v in b.items() if k != "name"}


def builder_variants(
    c: dict[str, Any], existing: list[dict] | None = None, all_layers: list[str] | None = None
) -> list[VariantSpec]:
    """One variant per selected post-training mode, each with every switched-on technique stacked.

    Variants whose settings already appear in ``existing`` (table rows) are
    skipped; a name already taken gets a numeric suffix.

    Raises:
        CompressionError: a control holds an invalid value (the engine's sentence).
    """
    existing = existing or []
    techniques: dict[str, Any] = {}
    if c["b_use_distill"]:
        techniques["distillation"] = distillation_config(c)
    if c["b_use_prune"]:
        techniques["pruning"] = pruning_config(c, all_layers)
    if c["b_use_cluster"]:
        techniques["clustering"] = clustering_config(c)
    if c["b_use_qat"]:
        techniques["qat"] = qat_config(c)
    trains = any(k in techniques for k in ("pruning", "clustering", "qat"))
    taken = {r["name"] for r in existing}
    existing_settings = [{k: v for k, v in r.items() if k != "include"} for r in existing]
    out = []
    for mode in c["b_modes"] or []:
        kwargs = {
            **techniques,
            "quantization": mode,
            "sparse_encoding": bool(c["b_sparse"]) and "pruning" in techniques,
            "fine_tune_epochs": int(c["b_epochs"]) if trains else 0,
            "learning_rate": float(c["b_lr"]),
            "batch_size": int(c["b_batch"]),
            "representative_samples": int(c["b_rep_samples"]),
        }
        if not trains:
            kwargs["fine_tune_epochs"] = VariantSpec.__dataclass_fields__["fine_tune_epochs"].default
        base = _base_name(kwargs)
        name, i = base, 2
        while name in taken:
            name, i = f"{base}-{i}", i + 1
        spec = VariantSpec(name=name, **kwargs)
        d = spec.to_dict()
        if any(_same_settings(d, e) for e in existing_settings):
            continue
        taken.add(name)
        existing_settings.append(d)
        out.append(spec)
    return out


# ---------------------------------------------------------------- the table


def rows_from_recipe(recipe: Recipe) -> list[dict]:
    """Table rows (VariantSpec dicts plus ``include``) for a recipe's variants."""
    return [{**v.to_dict(), "include": True} for v in recipe.variants]


def add_rows(rows: list[dict], specs: list[VariantSpec]) -> list[dict]:
    return [*rows, *({**s.to_dict(), "include": True} for s in specs)]


EDITABLE = ["include", "name", "quantization", "sparse_encoding", "strip_strings", "fine_tune_epochs"]


def table_frame(rows: list[dict]) -> pd.DataFrame:
    """The editable view of the rows: a few editable columns and a read-only technique summary."""
    records = []
    for r in rows:
        try:
            techniques = " + ".join(VariantSpec(**{k: v for k, v in r.items() if k != "include"}).techniques)
        except CompressionError:
            techniques = "(invalid)"
        records.append(
            {
                "include": bool(r.get("include", True)),
                "name": r["name"],
                "techniques": techniques,
                "quantization": r["quantization"],
                "sparse_encoding": bool(r["sparse_encoding"]),
                "strip_strings": bool(r.get("strip_strings", False)),
                # Blank where nothing is fine-tuned (plain conversion, distillation alone): the value is unused.
                "fine_tune_epochs": int(r["fine_tune_epochs"]) if _trains(r) else None,
            }
        )
    return pd.DataFrame(
        records, columns=["include", "name", "techniques", "quantization", "sparse_encoding", "strip_strings",
                          "fine_tune_epochs"]
    )


def _trains(row: dict) -> bool:
    return any(row.get(k) is not None for k in ("pruning", "clustering", "qat"))


def apply_edits(rows: list[dict], edited_rows: dict, refused: list[str] | None = None) -> list[dict]:
    """Apply ``st.data_editor``'s ``edited_rows`` ({row index: {column: value}}) to the rows.

    A rename to an empty name or to a name another row has is not applied; its sentence is appended to
    ``refused`` (names must be unique: they are the ``.tflite`` file names).
    """
    out = [dict(r) for r in rows]
    for index, changes in (edited_rows or {}).items():
        i = int(index)
        if not 0 <= i < len(out):
            continue
        for column, value in changes.items():
            if column not in EDITABLE:
                continue
            if column == "name":
                value = str(value or "").strip()
                others = {r["name"] for j, r in enumerate(out) if j != i}
                if not value or value in others:
                    if refused is not None:
                        refused.append(
                            f"Variant names must be unique and non-empty: {value!r} is already used, so row "
                            f"{i + 1} keeps the name {out[i]['name']!r}." if value else
                            f"A variant needs a name: row {i + 1} keeps the name {out[i]['name']!r}."
                        )
                    continue
            if column == "fine_tune_epochs":
                if value is None:
                    continue
                try:
                    value = int(value)
                except (TypeError, ValueError):
                    pass
            out[i][column] = value
    return out


def specs_from_rows(rows: list[dict]) -> list[VariantSpec]:
    """The included rows as validated VariantSpecs.

    Raises:
        CompressionError: a row is invalid, or no row is included.
    """
    specs = [VariantSpec(**{k: v for k, v in r.items() if k != "include"}) for r in rows if r.get("include", True)]
    if not specs:
        raise CompressionError("Tick at least one variant in the table to run.")
    return specs


def build_recipe(parts: dict, rows: list[dict], c: dict[str, Any], title: str) -> Recipe:
    """The Recipe the Run button submits: the chosen data/model/baseline, the table, the evaluation controls."""
    return Recipe(
        title=title,
        dataset=parts["dataset"],
        model=parts["model"],
        baseline=parts["baseline"],
        variants=tuple(specs_from_rows(rows)),
        evaluation={
            "threads": int(c["e_threads"]),
            "latency_runs": int(c["e_latency_runs"]),
            "throughput_batch": int(c["e_throughput_batch"]),
            "recompute": bool(c.get("e_recompute", False)),
        },
        seed=int(c["e_seed"]),
    )


def run_title(name: str | None, base: str, rows: list[dict], preset_rows: list[dict] | None,
              taken: list[str] | tuple[str, ...] = ()) -> str:
    """The title a run is stored under: the user's name, else the preset's title marked when the table changed.

    A title already ``taken`` (by this session's earlier runs) gets " #2", " #3", ... so History and the
    cross-run charts can tell the runs apart.
    """
    title = (name or "").strip()[:120]
    if not title:
        same = preset_rows is not None and [
            {k: v for k, v in r.items() if k != "include"} for r in rows if r.get("include", True)
        ] == [{k: v for k, v in r.items() if k != "include"} for r in preset_rows]
        n = sum(1 for r in rows if r.get("include", True))
        title = base if same else f"{base} (edited: {n} variant{'s' if n != 1 else ''})"
    unique, k = title, 2
    while unique in taken:
        unique, k = f"{title} #{k}", k + 1
    return unique
