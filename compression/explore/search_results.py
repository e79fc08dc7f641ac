"""What a finished (or running) search holds: each trial's record, the chosen trial, the front, the history
of the best size; read back from a run's results.json, and the chosen trial as a recipe to rerun.

Usage::

    result = read_search(RunFolder(run_dir).read_results())    # SearchResult | None
    result.frame()                                              # one row per trial
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from ..config import Recipe, VariantSpec
from ..errors import CompressionError
from ..results import RunResults
from .search_space import SearchSpec, describe_params

__all__ = [
    "SearchResult",
    "TrialRecord",
    "TrialState",
    "chosen_recipe",
    "read_search",
]


class TrialState(StrEnum):
    OK = "ok"
    FAILED = "failed"
    PRUNED = "pruned"  # stopped early on its fine-tune curve
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class TrialRecord:
    """One trial: its parameters, the variant it became, what it measured and whether it fits the budget."""

    number: int
    name: str
    state: TrialState
    params: dict = field(default_factory=dict)
    accuracy: float | None = None
    drop_points: float | None = None
    size_bytes: int | None = None
    gzip_bytes: int | None = None
    arena_bytes: int | None = None
    value: float | None = None  # the objective (bytes)
    within_budget: bool = False
    reasons: tuple[str, ...] = ()  # why it is over budget, one sentence each
    error: str | None = None
    source: str = "sampled"  # sampled | prior | int8 anchor | enqueued
    started_s: float = 0.0  # seconds since the search started
    finished_s: float = 0.0


@dataclass(frozen=True)
class SearchResult:
    """Everything a search produced; stored under ``"search"`` in results.json."""

    spec: SearchSpec
    baseline_accuracy: float
    budget_points: float
    reference_bytes: int | None
    trials: tuple[TrialRecord, ...] = ()
    chosen: str | None = None
    why_none: str | None = None
    front: tuple[str, ...] = ()
    stopped: str = "running"  # running | trials | minutes | cancelled | space (only tried settings proposed)
    seconds: float = 0.0
    board: dict | None = None
    notes: tuple[str, ...] = ()

    @property
    def budget_accuracy(self) -> float:
        """The lowest accepted accuracy."""
        return self.baseline_accuracy - self.budget_points / 100

    def trial(self, name: str) -> TrialRecord | None:
        return next((t for t in self.trials if t.name == name), None)

    @property
    def chosen_trial(self) -> TrialRecord | None:
        return self.trial(self.chosen) if self.chosen else None

    def frame(self):
        """One row per trial (number, name, state, source, settings in words, accuracy, drop_points, sizes,
        within_budget, reasons, params...)."""
        import pandas as pd

        rows = []
        for t in self.trials:
            row = {k: v for k, v in asdict(t).items() if k not in ("params", "reasons")}
            row["state"] = t.state.value
            row["settings"] = describe_params(t.params)
            row["reasons"] = "; ".join(t.reasons)
            row["on_front"] = t.name in self.front
            row["chosen"] = t.name == self.chosen
            row.update({f"p:{k}": v for k, v in t.params.items()})
            rows.append(row)
        return pd.DataFrame(rows)

    def history(self):
        """Best size within budget so far, per finished trial in completion order (seconds, size, best_size)."""
        import pandas as pd

        best = None
        rows = []
        for t in sorted((t for t in self.trials if t.state is TrialState.OK), key=lambda t: t.finished_s):
            if t.within_budget and t.value is not None:
                best = t.value if best is None else min(best, t.value)
            rows.append({"seconds": t.finished_s, "name": t.name, "size": t.value, "within_budget": t.within_budget,
                         "best_size": best,
                         "best_ratio": self.reference_bytes / best if best and self.reference_bytes else None})
        return pd.DataFrame(rows, columns=["seconds", "name", "size", "within_budget", "best_size", "best_ratio"])

    def time_to_ratio(self, ratio: float) -> float | None:
        """Seconds until a trial within budget reached ``ratio`` × smaller than the reference, or None."""
        h = self.history()
        hit = h[h["best_ratio"].fillna(0) >= ratio]
        return float(hit["seconds"].iloc[0]) if len(hit) else None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["spec"] = self.spec.to_dict()
        for t in out["trials"]:
            t["state"] = TrialState(t["state"]).value
        out["budget_accuracy"] = self.budget_accuracy
        return out

    @classmethod
    def from_dict(cls, data: dict | None) -> SearchResult | None:
        """Tolerant: None when ``data`` is not a search result."""
        if not isinstance(data, dict) or "spec" not in data:
            return None
        fields = TrialRecord.__dataclass_fields__
        trials = []
        for t in data.get("trials") or ():
            if not isinstance(t, dict):
                continue
            kw = {k: v for k, v in t.items() if k in fields}
            kw["state"] = TrialState(kw.get("state", "failed"))
            kw["reasons"] = tuple(kw.get("reasons") or ())
            trials.append(TrialRecord(**kw))
        spec = {k: v for k, v in dict(data["spec"]).items() if k in SearchSpec.__dataclass_fields__}
        board = spec.pop("board", None)
        try:
            spec_obj = SearchSpec.from_dict(spec)
        except CompressionError:
            spec_obj = SearchSpec()
        object.__setattr__(spec_obj, "board", board)  # validated when written; the board table may be absent now
        return cls(spec=spec_obj, baseline_accuracy=float(data.get("baseline_accuracy") or 0.0),
                   budget_points=float(data.get("budget_points") or 0.0),
                   reference_bytes=data.get("reference_bytes"), trials=tuple(trials), chosen=data.get("chosen"),
                   why_none=data.get("why_none"), front=tuple(data.get("front") or ()),
                   stopped=str(data.get("stopped") or "running"), seconds=float(data.get("seconds") or 0.0),
                   board=data.get("board"), notes=tuple(str(n) for n in data.get("notes") or ()))


def read_search(results: dict | Any) -> SearchResult | None:
    """The search result of a run's results (dict or RunResults), or None."""
    data = results.get("search") if isinstance(results, dict) else (getattr(results, "extra", None) or {}).get(
        "search")
    return SearchResult.from_dict(data)


def chosen_recipe(recipe: Recipe, result: SearchResult, results: RunResults | dict) -> Recipe | None:
    """A recipe with the chosen trial as its one variant (to rerun or tweak it as a normal recipe)."""
    if result.chosen is None:
        return None
    row = RunResults.from_dict(results).variant(result.chosen) if results is not None else None
    if row is None:
        return None
    return recipe.with_variants([VariantSpec(**{**row.settings, "name": result.chosen})])
