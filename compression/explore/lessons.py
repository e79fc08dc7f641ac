"""Classroom lessons: one small prepared variant per technique, on whatever data and model are chosen.

Each lesson is one small variant (seconds on the pretrained digits default) and three lines telling
the class what to look at in the weights the ``.tflite`` really holds. The first lesson asked for
runs every lesson's variant in one run, its own first: the page shows it as soon as its row is
written, and the others are ready by the time the class asks for them (one worker start, one
baseline, TensorFlow imported once). A finished (or still running) run of the same lessons on the
same data, model and baseline is reused instead of computing them again, whichever came first.

Usage::

    recipe = lesson_recipe("pruning", dataset={"name": "digits"}, model={"name": "seed_cnn"})
    run_id = find_reusable_run(store, recipe) or runner.submit(recipe)
    row = store.results(run_id).variant(LESSONS["pruning"].variant.name)   # once it is written
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from ..config import PRUNE_ONLY, SMALL_DATASETS, ClusteringConfig, EvaluationSpec, PruningConfig, Recipe, VariantSpec
from ..errors import CompressionError

__all__ = ["LESSONS", "LESSONS_TITLE", "Lesson", "find_reusable_run", "lesson_recipe", "main_layer"]

LESSONS_TITLE = "Lessons: pruning, clustering, int8, the pruning schedule"
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
                "Magnitude pruning zeroed the 80 % smallest weights of the layer, then a short fine-tune let the "
                "others adapt: the tall orange bar at 0 (a layer too small to be worth pruning stays dense).",
                "The survivors keep their values, so accuracy barely moves; the file only shrinks once "
                "compressed (gzip), because zeros still take 4 bytes each.",
            ),
            variant=VariantSpec(
                name="lesson-pruned-80",
                pruning=PruningConfig(schedule="constant", initial_sparsity=0.0, final_sparsity=0.8, frequency=1),
                fine_tune_epochs=6,
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
                # Sparsity reaches 90 % at step 44 (12 mask updates to scrub through); the rest of the
                # fine-tune lets the surviving weights recover.
                pruning=PruningConfig(schedule="polynomial", initial_sparsity=0.0, final_sparsity=0.9, frequency=4,
                                      end_step=44),
                fine_tune_epochs=8,
            ),
            view="schedule",
        ),
    )
}


def lesson_recipe(key: str, dataset: dict, model: dict, baseline: dict | None = None, seed: int = 0) -> Recipe:
    """Every lesson's variant on the given dataset / model / baseline specs (dicts), lesson ``key``'s first.

    Raises:
        CompressionError: an unknown lesson, or specs the recipe refuses.
    """
    if key not in LESSONS:
        raise CompressionError(f"Unknown lesson {key!r}. Available: {', '.join(LESSONS)}.")
    order = [LESSONS[key], *(lesson for other, lesson in LESSONS.items() if other != key)]
    variants = [_fitted(lesson.variant, dataset.get("name"), model.get("name")) for lesson in order]
    return Recipe.from_dict(
        {
            "title": LESSONS_TITLE,
            "seed": seed,
            "dataset": dataset,
            "model": model,
            "baseline": baseline or {"pretrained": True},
            "variants": [v.to_dict() for v in variants],
            "evaluation": {
                "threads": _EVALUATION.threads,
                "latency_runs": _EVALUATION.latency_runs,
                "throughput_batch": _EVALUATION.throughput_batch,
                "tflm": _EVALUATION.tflm,
            },
        }
    )


def _fitted(variant: VariantSpec, dataset: str | None, model: str | None) -> VariantSpec:
    """The lesson's variant for this data and model: the TF guide's practice and a fine-tune of a few hundred steps.

    Zoo models with a layer too small or sensitive to prune (the seed CNN's 108-weight conv: pruned at
    80 % it costs ~40 points after a short fine-tune) keep it dense, as the default preset does (the
    variant's notes say so). On a large dataset one epoch is already hundreds of steps.
    """
    if variant.pruning is not None and variant.pruning.layers is None and model in PRUNE_ONLY:
        variant = replace(variant, pruning=replace(variant.pruning, layers=PRUNE_ONLY[model]))
    if dataset not in SMALL_DATASETS and (variant.pruning or variant.clustering):
        variant = replace(variant, fine_tune_epochs=1)
    return variant


def _unordered(recipe: Recipe) -> dict:
    """The recipe's dict with its variants in name order: lessons started from another lesson compare equal."""
    data = recipe.to_dict()
    return {**data, "variants": sorted(data["variants"], key=lambda v: v["name"])}


def find_reusable_run(store, recipe: Recipe, statuses: Sequence[str] = ("ok", "running", "queued")) -> str | None:
    """The newest run in ``store`` of these lessons (any order) whose status is one of ``statuses`` (ok first)."""
    wanted = _unordered(recipe)
    candidates = [r for r in store.list_runs() if r["title"] == recipe.title and r["status"] in statuses]
    for status in statuses:
        for run in candidates:
            if run["status"] != status:
                continue
            try:
                if _unordered(store.recipe(run["id"])) == wanted:
                    return run["id"]
            except (CompressionError, ValueError):
                continue  # an unreadable or older-format recipe is simply not reused
    return None


def main_layer(weights: dict) -> str | None:
    """The layer with the most weights (where a technique's effect shows best), from ``{layer: TfliteWeights}``."""
    if not weights:
        return None
    return max(weights, key=lambda name: weights[name].params)
