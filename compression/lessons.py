"""Classroom lessons: one small prepared variant per technique, on whatever data and model are chosen.

Each lesson is a one-variant recipe (seconds on the pretrained digits default) and three lines
telling the class what to look at in the weights the ``.tflite`` really holds. A finished (or
still running) run of the very same recipe is reused instead of computing it again.

Usage::

    recipe = lesson_recipe("pruning", dataset={"name": "digits"}, model={"name": "seed_cnn"})
    run_id = find_reusable_run(store, recipe) or runner.submit(recipe)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .config import ClusteringConfig, EvaluationSpec, PruningConfig, Recipe, VariantSpec
from .errors import CompressionError

__all__ = ["LESSONS", "LESSON_TITLE_PREFIX", "Lesson", "find_reusable_run", "lesson_recipe", "main_layer"]

LESSON_TITLE_PREFIX = "Lesson: "
# Lessons measure quickly: the class looks at weights, not at latency percentiles.
_EVALUATION = EvaluationSpec(threads=1, latency_runs=20, throughput_batch=64, tflm=False)


@dataclass(frozen=True)
class Lesson:
    """A prepared variant and what to say about it.

    Attributes:
        key: ``pruning`` | ``clustering`` | ``quantization`` | ``schedule``.
        button: the label that starts it.
        title: the lesson's heading.
        lines: the three-line explanation of what to look at.
        variant: the one variant the lesson runs.
        view: ``histogram`` (file values vs baseline), ``int8`` (integer grid) or ``schedule``.
    """

    key: str
    button: str
    title: str
    lines: tuple[str, str, str]
    variant: VariantSpec
    view: str

    @property
    def sparsity(self) -> float | None:
        return self.variant.pruning.final_sparsity if self.variant.pruning else None

    @property
    def clusters(self) -> int | None:
        return self.variant.clustering.clusters if self.variant.clustering else None


LESSONS: dict[str, Lesson] = {
    lesson.key: lesson
    for lesson in (
        Lesson(
            key="pruning",
            button="Show pruning",
            title="Pruning: 80 % of the weights set to exactly zero",
            lines=(
                "Grey: the trained weights, a smooth bell around zero. Orange: the same layer in the converted file.",
                "Magnitude pruning zeroed the 80 % smallest weights during one epoch of fine-tuning: "
                "the tall orange bar at 0.",
                "The survivors keep their values, so accuracy barely moves; the file only shrinks once "
                "compressed (gzip), because zeros still take 4 bytes each.",
            ),
            variant=VariantSpec(
                name="lesson-pruned-80",
                pruning=PruningConfig(schedule="constant", initial_sparsity=0.0, final_sparsity=0.8, frequency=1),
                fine_tune_epochs=1,
            ),
            view="histogram",
        ),
        Lesson(
            key="clustering",
            button="Show clustering",
            title="Clustering: every weight replaced by one of 8 shared values",
            lines=(
                "Grey: the trained weights. Orange: the converted file's weights of the same layer.",
                "k-means put the weights of each layer into 8 clusters and fine-tuned the 8 centroids: "
                "the file holds only 8 distinct values per layer (8 orange spikes).",
                "8 values need 3 bits each: that is why clustered files compress so well with gzip.",
            ),
            variant=VariantSpec(name="lesson-clustered-8", clustering=ClusteringConfig(clusters=8), fine_tune_epochs=1),
            view="histogram",
        ),
        Lesson(
            key="quantization",
            button="Show quantization",
            title="int8 quantization: 256 integer levels and one scale per channel",
            lines=(
                "Left: the file stores every weight as an integer code q between -128 and 127 (1 byte, not 4).",
                "Right: one output channel; each float weight was rounded to the nearest step of that "
                "channel's scale, and the runtime computes (q − zero point) × scale.",
                "Steps this fine cost almost no accuracy: the file is ~4× smaller with no fine-tuning at all.",
            ),
            variant=VariantSpec(name="lesson-int8", quantization="int8"),
            view="int8",
        ),
        Lesson(
            key="schedule",
            button="Show the pruning schedule",
            title="The pruning schedule: sparsity rising from 0 to 90 % while fine-tuning",
            lines=(
                "Left: the polynomial schedule: the target sparsity at each training step (steps: mask updates).",
                "Right: the weights of the largest layer at each mask update: drag the slider or press play "
                "to watch them go to zero step by step.",
                "Pruning gradually lets the remaining weights adapt, which is why accuracy survives high sparsity.",
            ),
            variant=VariantSpec(
                name="lesson-schedule-90",
                pruning=PruningConfig(schedule="polynomial", initial_sparsity=0.0, final_sparsity=0.9, frequency=4),
                fine_tune_epochs=2,
            ),
            view="schedule",
        ),
    )
}


def lesson_recipe(key: str, dataset: dict, model: dict, baseline: dict | None = None, seed: int = 0) -> Recipe:
    """The one-variant recipe of lesson ``key`` on the given dataset / model / baseline specs (dicts).

    Raises:
        CompressionError: an unknown lesson, or specs the recipe refuses.
    """
    if key not in LESSONS:
        raise CompressionError(f"Unknown lesson {key!r}. Available: {', '.join(LESSONS)}.")
    lesson = LESSONS[key]
    return Recipe.from_dict(
        {
            "title": LESSON_TITLE_PREFIX + lesson.title,
            "seed": seed,
            "dataset": dataset,
            "model": model,
            "baseline": baseline or {"pretrained": True},
            "variants": [lesson.variant.to_dict()],
            "evaluation": {
                "threads": _EVALUATION.threads,
                "latency_runs": _EVALUATION.latency_runs,
                "throughput_batch": _EVALUATION.throughput_batch,
                "tflm": _EVALUATION.tflm,
            },
        }
    )


def find_reusable_run(store, recipe: Recipe, statuses: Sequence[str] = ("ok", "running", "queued")) -> str | None:
    """The newest run in ``store`` of exactly this recipe whose status is one of ``statuses`` (ok first)."""
    wanted = recipe.to_dict()
    candidates = [r for r in store.list_runs() if r["title"] == recipe.title and r["status"] in statuses]
    for status in statuses:
        for run in candidates:
            if run["status"] != status:
                continue
            try:
                if store.recipe(run["id"]).to_dict() == wanted:
                    return run["id"]
            except (CompressionError, ValueError):
                continue  # an unreadable or older-format recipe is simply not reused
    return None


def main_layer(weights: dict) -> str | None:
    """The layer with the most weights (where a technique's effect shows best), from ``{layer: TfliteWeights}``."""
    if not weights:
        return None
    return max(weights, key=lambda name: weights[name].params)
