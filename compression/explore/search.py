"""Find the smallest variant that keeps accuracy (and fits a board): an Optuna search over recipe variants.

The search explores, per trial, one ordinary :class:`~compression.config.VariantSpec`:

* per-layer sparsity (``pruning.layer_sparsity``, 0 leaves a layer dense),
* a cluster count (or none),
* quantization-aware training on or off — the scheme follows from the rest
  (QAT / PQAT / CQAT / PCQAT, the collaborative schemes of tfmot),
* the conversion mode (int8, dynamic, float16, float32; int8 when QAT),
* the fine-tune length in epochs.

Every trial is built, converted and measured by :func:`compression.run.recipe.run_variant`
(the same code as any recipe), its `.tflite` written in the run folder and its row
stored in ``results.json`` as it finishes. Optuna 5 drives it in ask-and-tell form:
a seeded :class:`optuna.samplers.TPESampler` with constraints (``Trial.set_constraint``; Optuna 5
deprecated ``constraints_func``) minimises the
size (gzip or raw bytes) under the constraints "accuracy drop ≤ budget" and, with a
board, "flash ≤ board flash" and "arena ≤ board RAM" (single objective under
constraints: ``trial.report`` — the pruner — does not work in multi-objective
studies, optuna #4578). A :class:`optuna.pruners.ThresholdPruner` stops a trial
whose fine-tune accuracy, reported per epoch, has fallen hopelessly below the
baseline. The first trials come from the sensitivity prior (see
:func:`compression.explore.sensitivity.analyze`): plain int8, then per-layer sparsities
one and two tested steps above what each layer survives without a fine-tune.

Stopping keeps what is done: a cancelled search keeps every finished trial and
the best so far; a trial that crashes is recorded failed and the search goes on;
the same seed and trial budget give the same trials.

This module is the loop (:func:`search`) and the runner's job (:func:`run_search`). What a search may
try — :class:`~compression.explore.search_space.SearchSpec`, the parameter space, the prior and the
follow-up moves — is :mod:`compression.explore.search_space`; what it produced —
:class:`~compression.explore.search_results.SearchResult`, :func:`~compression.explore.search_results.read_search`
— is :mod:`compression.explore.search_results`.

Usage::

    result = search(Recipe.experiment_e(), "out/", SearchSpec(budget=1.0, trials=20))
    result.chosen          # the smallest trial within budget, or None (result.why_none says why)
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from ..config import Recipe, default_fine_tune_epochs
from ..errors import CompressionError
from ..progress import Cancelled, Progress, ProgressFn, emit
from ..results import RunResults, TflmResult, VariantResult
from ..run_folder import RunFolder
from ..views.tables import format_points
from .search_results import SearchResult, TrialRecord, TrialState
from .search_space import (
    MAX_SPARSITY,
    SearchSpec,
    SizeObjective,
    _board_budget,
    _FollowUps,
    _prior_points,
    _settings_key,
    _Space,
    _suggest,
    describe_params,
)

__all__ = [
    "SEARCH_FILE",
    "TRIALS_FILE",
    "run_search",
    "search",
]

log = logging.getLogger("compression.explore.search")

SEARCH_FILE = "search.json"  # the SearchSpec of a stored search run, next to recipe.json
TRIALS_FILE = "trials.csv"
PRIOR_TEST_SAMPLES = 2000  # the prior only ranks layers: a seeded 2 000-sample test subset is enough
MAX_REPEATS = 200  # proposals in a row of settings already tried: the space is exhausted, the search stops
STARTUP_TRIALS = 4  # random trials before TPE models the results (after the prior's enqueued points)


# ---------------------------------------------------------------- one trial


class _Hopeless(Exception):
    """Raised from the progress callback when the pruner stops a trial."""


def _until_done(progress: ProgressFn | None) -> ProgressFn | None:
    """``progress`` without a sub-step's own "done" event (the prior's analysis is not the end of the search)."""
    if progress is None:
        return None
    return lambda event: None if event.phase == "done" else progress(event)


def _trial_progress(trial, progress: ProgressFn | None, baseline_accuracy: float, name: str):
    """Forward events; on each fine-tune epoch end report the accuracy deficit and let the pruner decide."""
    step = [0]

    def on_event(event: Progress) -> None:
        emit(progress, event)
        if event.phase == "fine_tune" and event.data.get("epoch_end") and event.accuracy is not None:
            deficit = (baseline_accuracy - event.accuracy) * 100
            trial.report(deficit, step[0])
            step[0] += 1
            if trial.should_prune():
                raise _Hopeless(f"stopped after {step[0]} fine-tune epochs: training accuracy {event.accuracy:.1%}, "
                                f"{deficit:.1f} points below the baseline")

    return on_event


def _judge(row: dict, budget_points: float, baseline_accuracy: float, objective: SizeObjective,
           board: tuple[int, int] | None) -> tuple[float, list[float], list[str], int | None]:
    """(objective value, constraint values ≤ 0 when satisfied, reasons when over budget, arena bytes)."""
    tflm = VariantResult.from_dict(row).tflm
    drop = (baseline_accuracy - row["accuracy"]) * 100
    constraints = [drop - budget_points]
    reasons = [] if drop <= budget_points + 1e-9 else [f"loses {drop:.2f} points (budget {budget_points:.2f})"]
    arena = _arena_of(tflm)
    if board is not None:
        ram, flash = board
        constraints.append((row["size_bytes"] - flash) / flash)
        if row["size_bytes"] > flash:
            reasons.append(f"{row['size_bytes']:,} B do not fit the board's {flash:,} B of flash")
        if arena is None:
            constraints.append(1.0)
            why = tflm.reason if tflm is not None else None
            reasons.append("cannot run under TensorFlow Lite Micro" + (f": {why}" if why else ""))
        else:
            constraints.append((arena - ram) / ram)
            if arena > ram:
                reasons.append(f"needs a {arena:,} B arena, the board has {ram:,} B of RAM")
    value = float(row["gzip_bytes"] if objective is SizeObjective.GZIP else row["size_bytes"])
    return value, constraints, reasons, arena


def _arena_of(tflm: TflmResult | None) -> int | None:
    """The TFLM tensor arena of a trial's ``tflm`` measurement, when it runs under TFLM."""
    if tflm is not None and tflm.runnable and tflm.arena_bytes is not None:
        return tflm.arena_bytes
    return None


def _measure_board(row: dict, out: Path) -> None:
    """Add the TFLM arena/flash measurement to a trial's row unless the engine already did."""
    if isinstance(row.get("tflm"), dict) or not row.get("tflite"):
        return
    from ..measure.tflm import measure_tflm
    from ..run_folder import RunFolder

    data = RunFolder(out).tflite(row["tflite"]).read_bytes()
    row["tflm"] = measure_tflm(data).to_dict()  # arena and flash only: the accuracy is LiteRT's


# ---------------------------------------------------------------- the search


def _front(trials: list[TrialRecord], board: bool) -> tuple[str, ...]:
    import pandas as pd

    from ..views.charts import pareto_front

    ok = [t for t in trials if t.state is TrialState.OK and t.value is not None]
    if not ok:
        return ()
    df = pd.DataFrame([{"name": t.name, "value": t.value, "accuracy": t.accuracy, "size": t.size_bytes,
                        "arena": t.arena_bytes if t.arena_bytes is not None else float("nan")} for t in ok])
    minimize = ["value", "size", "arena"] if board and df["arena"].notna().any() else ["value"]
    front = pareto_front(df.fillna({"arena": float("inf")}), minimize=minimize, maximize=["accuracy"])
    return tuple(df.loc[front, "name"])


def _choose(trials: list[TrialRecord], budget_points: float) -> tuple[str | None, str | None]:
    inside = [t for t in trials if t.state is TrialState.OK and t.within_budget]
    if inside:
        best = min(inside, key=lambda t: (t.value, -t.accuracy, t.number))
        return best.name, None
    ok = [t for t in trials if t.state is TrialState.OK]
    if not ok:
        failed = [t for t in trials if t.state is not TrialState.OK]
        if not failed:
            return None, "no trial finished"
        return None, f"no trial finished: {len(failed)} stopped or failed (first: {failed[0].error})"
    closest = min(ok, key=lambda t: (t.drop_points, t.value))
    return None, (f"none of {len(ok)} finished trials is within the budget of {budget_points:.2f} points; the "
                  f"closest, {closest.name}, {'; '.join(closest.reasons) or 'is over budget'}")


def search(recipe: Recipe | dict, out_dir: str | Path, spec: SearchSpec | dict | None = None,
           progress: ProgressFn | None = None, cancel: Callable[[], bool] | None = None,
           executor=None) -> SearchResult:
    """Search the smallest variant within the accuracy (and board) budget; write a stored-run folder.

    Args:
        recipe: gives dataset, model, baseline, evaluation and seed (its variants are not run).
        out_dir: the run folder: results.json (kind "search", every trial a variant row), the trials'
            `.tflite` files, trials.csv.
        spec: budgets and options (:class:`SearchSpec`).
        progress: receives the engine's events plus ``trial_done`` (``data["trial"]``) per trial.
        cancel: polled between batches; True stops the search, keeping every finished trial.
        executor: where trials run (:mod:`compression.run.executors`); None takes ``COMPRESSION_LAB_RAY_ADDRESS``
            (unset: one after another in this process; Ray: as many trials at once as the cluster has slots).

    Returns:
        The :class:`SearchResult` (also in results.json under ``"search"``).

    Raises:
        CompressionError: bad settings, or the data/model cannot be loaded.
        Cancelled: cancel() returned True — after results.json holds every finished trial.
    """
    if executor is None:
        from ..run.executors import executor_from_environment

        with executor_from_environment() as chosen:
            return search(recipe, out_dir, spec, progress, cancel, chosen)
    import optuna

    from .._io import atomic_write_text
    from ..errors import one_line
    from ..results import RunKind
    from ..run.baseline import load_recipe_dataset, prepare_baseline
    from ..run.stages import _StageCache
    from ..run.variant import run_variant, write_outcome_files
    from ..run.writers import JobResults
    from .sensitivity import analyze

    if not isinstance(recipe, Recipe):
        recipe = Recipe.from_dict(recipe)
    spec = SearchSpec.from_dict(spec or {}) if not isinstance(spec, SearchSpec) else spec
    job = JobResults(recipe, out_dir, RunKind.SEARCH)
    folder, results, save = job.folder, job.results, job.save
    out = folder.path
    atomic_write_text(folder.file(SEARCH_FILE), json.dumps(spec.to_dict(), indent=2))
    board = _board_budget(spec.board, spec.board_ram_kb, spec.board_flash_kb) if spec.board else None
    save()
    with job.recording():
        ds = load_recipe_dataset(recipe, results, progress)
        baseline, reference_predictions, _ = prepare_baseline(
            recipe, ds, out, results, progress, cancel, fraction_span=(0.0, 0.05),
            refuse_at_chance="every trial would be within the accuracy budget of it, so a search would choose a "
                             "model that learned nothing")
        save()
        base_acc = float(RunResults.from_dict(results).baseline.accuracy)
        budget_points = spec.budget_points(base_acc)
        sensitivity = None
        if spec.prior:
            emit(progress, Progress(phase="sensitivity", fraction=0.05, message="per-layer sensitivity (the prior)"))
            sensitivity = analyze(baseline, ds, int8=False, max_test=PRIOR_TEST_SAMPLES, seed=recipe.seed,
                                  progress=_until_done(progress), cancel=cancel, fraction_span=(0.05, 0.1))
            results["sensitivity"] = sensitivity.to_dict()
            save()

    from ..techniques.pruning import _prunable
    from .sensitivity import TINY_SHARE, _kernel_variable

    # A layer under 1 % of the kernel weights (the seed CNN's 108-weight conv on Fashion-MNIST) is left dense and
    # unclustered: compressing it barely changes the file and can cost the whole budget.
    shares = {x.name: x.share for x in sensitivity.layers} if sensitivity else {}
    tiny = tuple(n for n, share in shares.items() if share < TINY_SHARE)
    # tfmot's prune registry also "supports" BatchNormalization, which has nothing to prune: only kernels count
    prunable = tuple(layer.name for layer in baseline.layers
                     if _prunable(layer) and _kernel_variable(layer) is not None)
    layers = tuple(n for n in prunable if n not in tiny) or prunable
    cluster_layers = None
    if sensitivity is not None and tiny:
        cluster_layers = tuple(x.name for x in sensitivity.layers if x.clusterable and x.name not in tiny) or None
    notes = ["tiny layer(s) left dense and unclustered by the search: " + ", ".join(
        f"{x.name} ({x.params:,} weights, {x.share:.1%})" for x in sensitivity.layers if x.name in tiny)] \
        if tiny and sensitivity is not None else []
    default_epochs = default_fine_tune_epochs(recipe.dataset.name)
    space = _Space(layers=layers, upper={n: MAX_SPARSITY for n in layers}, cluster_layers=cluster_layers,
                   max_epochs=spec.max_epochs or 2 * default_epochs, default_epochs=min(default_epochs,
                                                                                        spec.max_epochs or 10**6),
                   modes=spec.modes, strip_strings=spec.strip_strings)
    ref = RunResults.from_dict(results).reference
    reference_bytes = ref.gzip_bytes if spec.objective is SizeObjective.GZIP else ref.size_bytes
    seed = recipe.seed if spec.seed is None else spec.seed
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=STARTUP_TRIALS)
    pruner = optuna.pruners.ThresholdPruner(upper=budget_points + spec.hopeless_points, n_warmup_steps=1)
    study = optuna.create_study(direction="minimize", sampler=sampler, pruner=pruner)
    for params in spec.enqueue:
        study.enqueue_trial(params, user_attrs={"source": "enqueued"})
    if spec.prior:
        for source, params in _prior_points(space, sensitivity, budget_points):
            study.enqueue_trial(params, user_attrs={"source": source})
    tried: set[str] = set()
    follow_ups = _FollowUps()
    answers: dict[str, tuple] = {}  # settings tried → (value, constraints, Optuna state or None) told for them
    repeats = [0, 0]  # proposals of settings already tried: in a row, in all

    trials: list[TrialRecord] = []
    board_info = None
    if spec.board:
        board_info = {"name": spec.board, "ram_bytes": board[0], "flash_bytes": board[1]}
    t_search = time.perf_counter()
    deadline = t_search + spec.minutes * 60 if spec.minutes else None
    stopped = "running"
    user_cancelled = False

    def out_of_time() -> bool:
        return deadline is not None and time.perf_counter() >= deadline

    def trial_cancel() -> bool:
        nonlocal user_cancelled
        if cancel is not None and cancel():
            user_cancelled = True
        return user_cancelled or out_of_time()

    def snapshot():
        chosen, why = _choose(trials, budget_points)
        return SearchResult(spec=spec, baseline_accuracy=base_acc, budget_points=budget_points,
                            reference_bytes=reference_bytes, trials=tuple(trials), chosen=chosen, why_none=why,
                            front=_front(trials, board is not None), stopped=stopped,
                            seconds=round(time.perf_counter() - t_search, 3), board=board_info,
                            notes=(*notes, *([f"{repeats[1]} proposal(s) repeated settings already tried: answered "
                                              "with their result, not run again"] if repeats[1] else [])))

    def publish():
        result = snapshot()
        results["search"] = result.to_dict()
        save()
        atomic_write_text(folder.file(TRIALS_FILE), result.frame().to_csv(index=False))
        return result

    publish()

    def start_trial():
        """Ask Optuna for the next trial and announce it; None when it was recorded failed at once."""
        if not study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,)):
            follow_up = follow_ups.next(tried)
            if follow_up is not None:
                study.enqueue_trial(follow_up[0], user_attrs={"source": follow_up[1]})
        trial = study.ask()
        number = trial.number
        source = str(trial.user_attrs.get("source", "sampled"))
        name = f"trial-{number:03d}"
        try:
            params = _suggest(trial, space)
        except ValueError as exc:  # an enqueued point outside the search space
            params = dict(trial.params)
            bad = one_line(exc)
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            trials.append(TrialRecord(number=number, name=name, state=TrialState.FAILED, params=params,
                                      error=f"outside the search space: {bad}", source=source))
            results["variants"].append({"name": name, "status": "failed", "settings": {"name": name},
                                        "error": f"outside the search space: {bad}"})
            publish()
            return None  # recorded failed; ask again
        key = _settings_key(params)
        if key in answers:
            # The sampler proposed settings already tried (TPE does on a discrete space: 9 of 56 trials in a
            # 20-minute benchmark were repeats): tell it the same answer instead of spending minutes again.
            value, constraints, state = answers[key]
            for name_, bound in constraints:
                trial.set_constraint(name_, bound)
            if state is None:
                study.tell(trial, value)
            else:
                study.tell(trial, state=state)
            repeats[0] += 1
            repeats[1] += 1
            return None  # nothing run; ask again
        repeats[0] = 0
        t0 = time.perf_counter() - t_search
        done = len(trials) + len(in_flight)
        fraction = 0.1 + 0.9 * (done / spec.trials if spec.trials else min(1.0, t0 / (spec.minutes * 60)))
        emit(progress, Progress(phase="trial_start", variant=name, fraction=min(fraction, 0.99),
                                message=f"{name} ({source}): {describe_params(params)}"))
        record: dict[str, Any] = {"number": number, "name": name, "params": params, "source": source,
                                  "started_s": round(t0, 3)}
        return trial, record, fraction

    def finish_trial(trial, record, fraction, run_trial) -> None:
        """Run (or collect) one trial with ``run_trial() -> row``, tell Optuna, record and publish it."""
        name, params, t0 = record["name"], record["params"], record["started_s"]
        key = _settings_key(params)
        row: dict[str, Any]
        try:
            row = run_trial()
            if board is not None:
                _measure_board(row, out)
            value, constraints, reasons, arena = _judge(row, budget_points, base_acc, spec.objective, board)
            named = tuple(zip(("accuracy", "flash", "ram"), constraints, strict=False))
            for constraint, bound in named:
                trial.set_constraint(constraint, bound)  # feasible when ≤ 0
            study.tell(trial, value)
            answers[key] = (value, named, None)
            record.update(state=TrialState.OK, accuracy=row["accuracy"],
                          drop_points=(base_acc - row["accuracy"]) * 100, size_bytes=row["size_bytes"],
                          gzip_bytes=row["gzip_bytes"], arena_bytes=arena, value=value, within_budget=not reasons,
                          reasons=tuple(reasons))
        except _Hopeless as exc:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            answers[key] = (None, (), optuna.trial.TrialState.PRUNED)
            record.update(state=TrialState.PRUNED, error=f"hopeless: {exc}")
            row = _failed_row(name, params, space, "failed", record["error"])
        except Cancelled:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            why = "cancelled" if user_cancelled else "stopped by the time budget"
            record.update(state=TrialState.CANCELLED, error=why)
            row = _failed_row(name, params, space, "cancelled", why)
        except CompressionError as exc:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            answers[key] = (None, (), optuna.trial.TrialState.FAIL)
            record.update(state=TrialState.FAILED, error=str(exc))
            row = _failed_row(name, params, space, "failed", str(exc))
        except Exception as exc:  # noqa: BLE001 - one trial's crash must not end the search
            log.exception("trial %s failed", name)
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            record.update(state=TrialState.FAILED, error=one_line(exc))
            row = _failed_row(name, params, space, "failed", one_line(exc))
        record["finished_s"] = round(time.perf_counter() - t_search, 3)
        row["seconds"] = round(record["finished_s"] - t0, 3)
        row["trial"] = {"number": record["number"], "source": record["source"], "params": params}
        results["variants"].append(row)
        trials.append(TrialRecord(**record))
        tried.add(key)
        result = publish()
        if result.chosen == name:
            follow_ups.new_best(params, space, name)
        elif record.get("within_budget") and record["source"].startswith("one step past"):
            follow_ups.walk_on(params, space, name)
        emit(progress, Progress(phase="trial_done", variant=name, fraction=min(0.99, fraction),
                                message=f"{name}: {_trial_line(trials[-1])}; best {_best_line(result)}",
                                data={"trial": asdict(trials[-1]) | {"state": trials[-1].state.value},
                                      "row": row}))

    in_flight: dict[str, tuple] = {}  # trials running as Ray tasks, by variant name
    pool = None if executor.in_process else executor.open_pool(recipe, folder.baseline_model, ds,
                                                                 reference_predictions)
    slots = 1 if pool is None else executor.slots(recipe)
    while True:
        if spec.trials is not None and len(trials) + len(in_flight) >= spec.trials:
            stopped = "trials"
        elif out_of_time():
            stopped = "minutes"
        elif trial_cancel():
            stopped = "cancelled"
        elif repeats[0] >= MAX_REPEATS:
            stopped = "space"
        if pool is None:
            if stopped != "running":
                break
            started_trial = start_trial()
            if started_trial is None:
                continue
            trial, record, fraction = started_trial

            def run_here(trial=trial, record=record, fraction=fraction):
                variant = space.variant(record["params"], record["name"])
                return run_variant(variant, baseline, ds, recipe, out, reference_predictions, _StageCache(),
                                   _trial_progress(trial, progress, base_acc, record["name"]), trial_cancel,
                                   fraction_span=(fraction, fraction)).to_dict()

            finish_trial(trial, record, fraction, run_here)
            if record["state"] is TrialState.CANCELLED:
                stopped = "cancelled" if user_cancelled else "minutes"
                break
            continue
        # On Ray: keep every slot busy, collect trials as they end (no pruning mid-trial: a task runs to the end).
        while stopped == "running" and len(in_flight) < slots:
            if spec.trials is not None and len(trials) + len(in_flight) >= spec.trials:
                break
            started_trial = start_trial()
            if started_trial is None:
                if repeats[0] >= MAX_REPEATS:
                    stopped = "space"
                    break
                continue
            trial, record, fraction = started_trial
            try:
                pool.submit(space.variant(record["params"], record["name"]))
            except CompressionError as exc:
                finish_trial(trial, record, fraction, lambda exc=exc: _raise(exc))
                continue
            in_flight[record["name"]] = (trial, record, fraction)
        if not in_flight:
            break
        try:
            outcome = pool.next_done(trial_cancel)
        except Cancelled:
            pool.cancel_all()
            for trial, record, fraction in in_flight.values():
                finish_trial(trial, record, fraction, lambda: _raise(Cancelled("cancelled")))
            in_flight.clear()
            stopped = "cancelled" if user_cancelled else "minutes"
            break
        except CompressionError:
            pool.cancel_all()
            raise
        if outcome is not None:
            write_outcome_files(folder, outcome)
            finish_trial(*in_flight.pop(outcome.spec.name), lambda outcome=outcome: _remote_row(outcome))
    result = publish()
    result = replace(result, stopped=stopped)
    results["search"] = result.to_dict()
    results["status"] = "cancelled" if stopped == "cancelled" else (
        "ok" if any(t.state is TrialState.OK for t in trials) else "failed")
    if results["status"] == "failed":
        results["error"] = result.why_none or "no trial finished"
    save()
    emit(progress, Progress(phase="done", fraction=1.0, message=f"{len(trials)} trials; {_best_line(result)}"))
    if stopped == "cancelled":
        raise Cancelled("search cancelled")
    return result


def _raise(exc: BaseException):
    raise exc


def _remote_row(outcome) -> dict[str, Any]:
    """A Ray task's row, or its failure raised as the trial's error."""
    row = outcome.row
    if row.get("status") == "cancelled":
        raise Cancelled("cancelled")
    if row.get("status") != "ok":
        raise CompressionError(str(row.get("error") or "the trial failed"))
    return dict(row)


def _failed_row(name, params, space, status, error) -> dict[str, Any]:
    try:
        settings = space.variant(params, name).to_dict()
    except CompressionError:
        settings = {"name": name}
    return {"name": name, "status": status, "error": error, "settings": settings}


def _trial_line(t: TrialRecord) -> str:
    if t.state is not TrialState.OK:
        return f"{t.state.value} ({t.error})"
    return (f"{t.value:,.0f} B, accuracy {t.accuracy:.2%} ({format_points(-t.drop_points)})"
            + ("" if t.within_budget else " — over budget"))


def _best_line(result: SearchResult) -> str:
    t = result.chosen_trial
    if t is None:
        return "none within budget yet"
    ratio = f" ({result.reference_bytes / t.value:.1f}×)" if result.reference_bytes and t.value else ""
    return f"{t.name} {t.value:,.0f} B{ratio}"


def run_search(recipe, out_dir: str | Path, progress: ProgressFn | None = None,
               cancel: Callable[[], bool] | None = None) -> SearchResult:
    """The runner's job (``"compression.explore.search:run_search"``): the SearchSpec comes from the run's search.json.

    Raises:
        CompressionError: search.json is not a valid search spec (or the search's own errors).
    """
    path = RunFolder(out_dir).file(SEARCH_FILE)
    spec: dict = {}
    if path.is_file():
        try:
            spec = json.loads(path.read_text("utf-8"))
        except ValueError:
            raise CompressionError("The search settings (search.json) are not valid JSON.") from None
    spec = SearchSpec.from_dict(spec)
    return search(recipe, out_dir, spec, progress, cancel)
