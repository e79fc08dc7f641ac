"""What a search may try: its settings (:class:`SearchSpec`), the space of a trial's parameters, the sensitivity
prior's first points, the moves tried right after a new best, and a trial's settings in words.

A trial's parameters are a flat dict (``sparsity/<layer>``, ``clusters``, ``qat``, ``mode``, ``epochs``) that
:func:`variant_of` turns into an ordinary recipe variant. The search loop itself is
:mod:`compression.explore.search`; what a finished search holds is :mod:`compression.explore.search_results`.

Usage::

    spec = SearchSpec(budget=1.0, trials=20)
    describe_params({"sparsity/logits": 0.8, "clusters": 16, "qat": True, "epochs": 3})
    # 'prune logits 80%, 16 clusters, QAT int8, 3 epochs'
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from ..config import MAX_EPOCHS, ClusteringConfig, PruningConfig, QATConfig, QuantizationMode, VariantSpec
from ..errors import CompressionError

__all__ = [
    "CLUSTER_CHOICES",
    "MAX_SPARSITY",
    "SearchSpec",
    "SizeObjective",
    "describe_params",
    "variant_of",
]

CLUSTER_CHOICES = (0, 4, 8, 16, 32, 64)  # 0 = no clustering
PRIOR_MIN_CLUSTERS = 8  # the bolder prior's count; 4 is reached by a follow-up of a best that holds with 8
SPARSITY_STEP = 0.05  # the prior's and the follow-ups' step below FINE_FROM
FINE_FROM, FINE_STEP = 0.8, 0.02  # from 80 % on a step removes a large share of the nonzeros left: smaller steps
SUGGEST_STEP = 0.01  # the sampler's grid
MAX_SPARSITY = 0.95


class SizeObjective(StrEnum):
    """Which size the search minimises."""

    GZIP = "gzip"  # download / storage size
    RAW = "raw"  # the .tflite bytes a board's flash holds


def _positive(value, what: str, *, integer: bool = False, allow_none: bool = True):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise CompressionError(f"{what} must be a positive number. Received: {value!r}")
    if integer and not float(value).is_integer():
        raise CompressionError(f"{what} must be a whole number. Received: {value!r}")
    return int(value) if integer else float(value)


@dataclass(frozen=True)
class SearchSpec:
    """What the search may spend and must respect.

    Attributes:
        budget: accuracy the chosen variant may lose: points (1.0 = one point), or
            percent of the baseline's accuracy when ``relative``.
        relative: read ``budget`` as a percentage of the baseline accuracy.
        minutes: wall-time budget for the trials (the baseline and the sensitivity
            prior come first and are not counted); None = no time limit.
        trials: most trials; None = no trial limit. One of minutes/trials is needed.
        board: a board key of :mod:`compression.measure.boards` (RAM/flash budgets), or None;
            "custom" with ``board_ram_kb`` and ``board_flash_kb``.
        objective: minimise gzip or raw bytes.
        seed: sampler seed; None uses the recipe's seed.
        max_epochs: longest fine-tune a trial may choose; None = twice the dataset's default.
        modes: conversion modes the search may pick when QAT is off (float16/float32 are never the
            smallest, so they are left out unless asked for).
        prior: start from the sensitivity prior (plain int8, then the prior point).
        hopeless_points: stop a trial when its fine-tune accuracy is this many points
            beyond the budget below the baseline (after its first epoch).
        enqueue: extra first trials as parameter dicts (as in ``TrialRecord.params``).
        strip_strings: every trial's file without tensor names and signature (same outputs, ~1 KB less:
            :func:`compression.tflite.convert.strip_strings`); sizes are measured on the stripped file.
    """

    budget: float = 1.0
    relative: bool = False
    minutes: float | None = 20.0
    trials: int | None = None
    board: str | None = None
    board_ram_kb: float | None = None
    board_flash_kb: float | None = None
    objective: SizeObjective = SizeObjective.GZIP
    seed: int | None = None
    max_epochs: int | None = None
    modes: tuple[str, ...] = ("int8", "dynamic")
    prior: bool = True
    hopeless_points: float = 10.0
    enqueue: tuple[dict, ...] = ()
    strip_strings: bool = False

    def __post_init__(self):
        s = object.__setattr__
        if isinstance(self.budget, bool) or not isinstance(self.budget, (int, float)) or not (
                0 <= self.budget <= 100):
            raise CompressionError(f"The accuracy budget must be between 0 and 100 points. Received: {self.budget!r}")
        s(self, "budget", float(self.budget))
        s(self, "minutes", _positive(self.minutes, "The time budget (minutes)"))
        s(self, "trials", _positive(self.trials, "The trial budget", integer=True))
        if self.minutes is None and self.trials is None:
            raise CompressionError("Give the search a time budget (minutes) or a trial budget, or both.")
        try:
            s(self, "objective", SizeObjective(self.objective))
        except ValueError:
            raise CompressionError(f"objective must be 'gzip' or 'raw'. Received: {self.objective!r}") from None
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0):
            raise CompressionError(f"The search seed must be a whole number ≥ 0. Received: {self.seed!r}")
        if self.max_epochs is not None:
            s(self, "max_epochs", _positive(self.max_epochs, "max_epochs", integer=True))
            if self.max_epochs > MAX_EPOCHS:
                raise CompressionError(f"max_epochs must be at most {MAX_EPOCHS}. Received: {self.max_epochs}")
        modes = tuple(self.modes)
        for m in modes:
            if m not in {q.value for q in QuantizationMode}:
                raise CompressionError(f"Unknown conversion mode {m!r} for the search.")
        if not modes:
            raise CompressionError("The search needs at least one conversion mode.")
        s(self, "modes", modes)
        s(self, "hopeless_points", float(_positive(self.hopeless_points, "hopeless_points")))
        s(self, "enqueue", tuple(dict(p) for p in self.enqueue))
        if not isinstance(self.strip_strings, bool):
            raise CompressionError(f"strip_strings must be true or false. Received: {self.strip_strings!r}")
        if self.board is not None:
            _board_budget(self.board, self.board_ram_kb, self.board_flash_kb)  # refuse a bad board now

    def budget_points(self, baseline_accuracy: float) -> float:
        """The budget in accuracy points."""
        return self.budget * baseline_accuracy if self.relative else self.budget

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["objective"] = self.objective.value
        out["modes"] = list(self.modes)
        out["enqueue"] = list(self.enqueue)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> SearchSpec:
        if isinstance(data, cls):
            return data
        if not isinstance(data, dict):
            raise CompressionError("The search settings must be a JSON object.")
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(data) - known)
        if unknown:
            raise CompressionError(f"Unknown search setting(s) {', '.join(unknown)}; expected some of "
                                   f"{', '.join(sorted(known))}.")
        return cls(**data)


def _board_budget(name: str, ram_kb: float | None = None, flash_kb: float | None = None) -> tuple[int, int]:
    """(RAM bytes, flash bytes) of a board of :mod:`compression.measure.boards` ("custom" takes ram_kb/flash_kb)."""
    from ..measure.boards import get_board

    board = get_board(name, ram_kb=ram_kb, flash_kb=flash_kb)
    return int(board.ram_bytes), int(board.flash_bytes)


# ---------------------------------------------------------------- the search space


@dataclass(frozen=True)
class _Space:
    layers: tuple[str, ...]  # prunable layers the search prunes
    upper: dict[str, float]  # highest sparsity per layer
    cluster_layers: tuple[str, ...] | None  # None = every clusterable layer
    max_epochs: int
    default_epochs: int
    modes: tuple[str, ...]
    strip_strings: bool = False  # SearchSpec.strip_strings

    def variant(self, params: dict[str, Any], name: str) -> VariantSpec:
        """The recipe variant of a trial's parameters in this space (what runs, and what a failed row says)."""
        return variant_of(params, name, self.layers, self.default_epochs, self.cluster_layers, self.strip_strings)


def _step_above(sparsities, safe: float) -> float:
    above = [s for s in sorted(sparsities) if s > safe + 1e-9]
    return above[0] if above else safe


def _prior_points(space: _Space, sensitivity, budget_points: float) -> list[tuple[str, dict]]:
    """The first trials: plain int8 (cheap, nearly always within budget), then the sensitivity prior."""
    points: list[tuple[str, dict]] = [("int8 anchor", {**{f"sparsity/{n}": 0.0 for n in space.layers},
                                                       "clusters": 0, "qat": False, "mode": "int8"})]
    if sensitivity is None:
        return points
    k = sensitivity.min_safe_clusters(budget_points)
    for source, steps, clusters, epochs in (("prior", 1, k if k in CLUSTER_CHOICES else 16, space.default_epochs),
                                            ("prior, bolder", 2, PRIOR_MIN_CLUSTERS,
                                             space.max_epochs)):
        params: dict[str, Any] = {}
        for name in space.layers:
            # fine-tuning recovers about one tested step (the bolder point: two) beyond what the layer survives
            # untouched; the longer fine-tune of the bolder point pays for it
            s = sensitivity.max_safe_sparsity(name, budget_points)
            for _ in range(steps):
                s = _step_above(sensitivity.sparsities, s)
            params[f"sparsity/{name}"] = round(min(space.upper[name], round(s / SPARSITY_STEP) * SPARSITY_STEP), 2)
        params.update(clusters=clusters, qat=True, epochs=epochs)
        if all(other != params for _, other in points):
            points.append((source, params))
    return points


def _suggest(trial, space: _Space) -> dict[str, Any]:
    """Ask the trial for every variable (define-by-run: mode only without QAT, epochs only when training)."""
    for name in space.layers:
        trial.suggest_float(f"sparsity/{name}", 0.0, space.upper[name], step=SUGGEST_STEP)
    trial.suggest_categorical("clusters", CLUSTER_CHOICES)
    qat = trial.suggest_categorical("qat", (False, True))
    if not qat:
        trial.suggest_categorical("mode", space.modes)
    p = trial.params
    if qat or p["clusters"] or any(p[f"sparsity/{n}"] > 0 for n in space.layers):
        trial.suggest_int("epochs", 1, space.max_epochs)
    return dict(trial.params)


def variant_of(params: dict[str, Any], name: str, layers: tuple[str, ...], default_epochs: int = 2,
               cluster_layers: tuple[str, ...] | None = None, strip_strings: bool = False) -> VariantSpec:
    """The recipe variant a trial's parameters describe (``cluster_layers``: None clusters every layer)."""
    sparsity = {n: round(float(params.get(f"sparsity/{n}", 0.0)), 4) for n in layers}
    pruned = {n: s for n, s in sparsity.items() if s > 0}
    pruning = None
    if pruned:
        top = max(pruned.values())
        # only the searched layers: a layer outside ``layers`` (a tiny one) would take final_sparsity
        pruning = PruningConfig(schedule="polynomial", initial_sparsity=min(0.5, top), final_sparsity=top,
                                layers=tuple(pruned), layer_sparsity=sparsity)
    clusters = int(params.get("clusters") or 0)
    qat = bool(params.get("qat"))
    mode = "int8" if qat else str(params.get("mode", "int8"))
    trains = bool(pruning or clusters or qat)
    clustering = ClusteringConfig(clusters=clusters, layers=cluster_layers) if clusters else None
    return VariantSpec(name=name, pruning=pruning, clustering=clustering,
                       qat=QATConfig() if qat else None, quantization=mode, strip_strings=strip_strings,
                       fine_tune_epochs=int(params.get("epochs", default_epochs)) if trains else 0)


def _bolder(params: dict[str, Any], space: _Space) -> dict[str, Any] | None:
    """The same trial with every pruned layer one sparsity step further: 5 points, 2 from 80 % on (None when
    nothing can go further)."""
    out = dict(params)
    moved = False
    for name in space.layers:
        key = f"sparsity/{name}"
        s = float(params.get(key, 0.0))
        step = FINE_STEP if s >= FINE_FROM - 1e-9 else SPARSITY_STEP
        if s > 0 and s + step <= space.upper[name] + 1e-9:
            out[key] = round(s + step, 2)
            moved = True
    return out if moved else None


def _fewer_clusters(params: dict[str, Any]) -> dict[str, Any] | None:
    """The same trial with the next smaller cluster count (None when unclustered or at the fewest)."""
    k = int(params.get("clusters") or 0)
    fewer = [c for c in CLUSTER_CHOICES if 0 < c < k]
    return {**params, "clusters": fewer[-1]} if fewer else None


def _follow_ups(params: dict[str, Any], space: _Space, name: str) -> list[tuple[dict[str, Any], str]]:
    """What to try right after a new best: one sparsity step further, and fewer clusters.

    Few trials fit a time budget and TPE alone spends most of them exploring; the two moves that shrink a best
    file most are more zeros and fewer distinct values (at 88 % zeros, 4 clusters instead of 8 take the
    weights' entropy from about 0.87 to 0.72 bits each: H(0.12) + 0.12·log2(k-1)).
    """
    moves = ((_bolder(params, space), f"one step past {name}"),
             (_fewer_clusters(params), f"fewer clusters than {name}"))
    return [(p, why) for p, why in moves if p is not None]


def _settings_key(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True)


class _FollowUps:
    """The current best's follow-ups, handed out one at a time; a newer best replaces those not yet asked.

    Optuna's own queue (``enqueue_trial``) is first in, first out and cannot drop a waiting trial, so follow-ups
    queued there for a best that a later trial superseded ran before the newer best's (two of 22 trials in a
    20-minute seed_cnn search). They are kept here instead and enqueued only when Optuna's queue (the prior, the
    user's enqueued points) is empty.
    """

    def __init__(self) -> None:
        self.pending: list[tuple[dict[str, Any], str]] = []

    def new_best(self, params: dict[str, Any], space: _Space, name: str) -> None:
        self.pending = _follow_ups(params, space, name)

    def walk_on(self, params: dict[str, Any], space: _Space, name: str) -> None:
        """A sparsity step that stayed within budget without being a new best: take the next step first.

        Gzip size is not monotone in sparsity over one step (with 4 clusters, 82 % gave 3 714 B where 80 % gave
        3 684 B), so stopping the walk at the first step that is not a new best left 84-88 % untried.
        """
        bolder = _bolder(params, space)
        if bolder is not None:
            self.pending.insert(0, (bolder, f"one step past {name}"))

    def next(self, tried: set[str]) -> tuple[dict[str, Any], str] | None:
        """The next follow-up whose settings were not tried yet (None when none is left)."""
        while self.pending:
            params, why = self.pending.pop(0)
            if _settings_key(params) not in tried:
                return params, why
        return None


def describe_params(params: dict) -> str:
    """A trial's settings in words, e.g. ``prune logits 80%, 16 clusters, QAT int8, 3 epochs``."""
    sp = [f"{k.split('/', 1)[1]} {v:.0%}" for k, v in params.items() if k.startswith("sparsity/") and v > 0]
    parts = ["prune " + ", ".join(sp)] if sp else []
    if params.get("clusters"):
        parts.append(f"{params['clusters']} clusters")
    parts.append("QAT int8" if params.get("qat") else str(params.get("mode", "int8")))
    if "epochs" in params:
        parts.append(f"{params['epochs']} epochs")
    return ", ".join(parts)
