"""Find smallest: an automatic search for the smallest variant within an accuracy (and board) budget."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from compression.config import Recipe
from compression.errors import CompressionError
from compression.explore.search_results import chosen_recipe, read_search
from compression.explore.search_space import SearchSpec
from compression.explore.sensitivity import read_sensitivity
from compression.measure.boards import BOARDS, format_bytes
from compression.progress import Progress
from compression.results import RunResults
from compression.store import FINAL_STATUSES
from compression.views import search_charts
from compression.views.tables import format_points
from ui import state, widgets

DEFAULTS = {"fs_budget": 1.0, "fs_relative": False, "fs_board": "none", "fs_minutes": 10, "fs_trials": 0,
            "fs_objective": "gzip", "fs_max_epochs": 0, "fs_seed": 0, "fs_strip": False, "search_run_id": None}
state.init(DEFAULTS)
ss = st.session_state
parts = state.recipe_parts()

st.title(f"{state.ICONS['find_smallest']} Find smallest")
st.markdown(f"**Data · model · baseline:** {parts['label']}")
widgets.page_link("data", "Change data, model or baseline", icon=state.ICONS["data"])
if parts["note"]:
    st.info(parts["note"])
st.caption("An Optuna search tries per-layer sparsity, cluster count, QAT (PQAT/CQAT/PCQAT), the conversion mode and "
           "the fine-tune length, starting from a per-layer sensitivity analysis; every trial is a normal variant, "
           "converted and measured like any other, and the smallest one within your budget is chosen.")

# ---------------------------------------------------------------- the budget

left, mid, right = st.columns(3)
left.slider("Accuracy budget (points)", 0.0, 5.0, step=0.1, key="fs_budget",
            help="How much test accuracy the chosen variant may lose against the float baseline.")
left.caption("How much test accuracy the chosen variant may lose against the float baseline.")
left.checkbox("Budget in % of the baseline accuracy", key="fs_relative",
              help="Read the budget as a percentage of the baseline's accuracy instead of absolute points.")
boards = ["none", *BOARDS]


def board_label(key: str) -> str:
    if key == "none":
        return "no board"
    b = BOARDS[key]
    return f"{b.name} ({format_bytes(b.ram_bytes)} RAM, {format_bytes(b.flash_bytes)} flash)"


mid.selectbox("Board", boards, key="fs_board", format_func=board_label,
              help="Also require the model to fit this board's RAM (tensor arena under TFLite Micro) and flash.")
mid.caption("Optional: the chosen model must also fit this board's RAM and flash (measured under TFLite Micro).")
mid.radio("Minimise", ["gzip", "raw"], key="fs_objective", horizontal=True,
          format_func={"gzip": "gzip bytes (download)", "raw": "raw bytes (flash)"}.get,
          help="gzip bytes is what a download costs; raw bytes is what a board's flash holds.")
mid.caption("gzip is the download size; raw is what a board's flash holds.")
right.number_input("Time budget (minutes)", 1, 240, key="fs_minutes",
                   help="The search stops starting trials after this long (the baseline is not counted).")
right.caption("The search stops after this long; finished trials are kept.")
right.number_input("Most trials (0 = no limit)", 0, 500, key="fs_trials",
                   help="Stop after this many trials; with a seed, the same trial budget gives the same trials.")
right.caption("With the same seed, the same trial budget gives the same trials.")
with st.expander("More settings"):
    a, b = st.columns(2)
    a.number_input("Longest fine-tune per trial (epochs, 0 = twice the dataset's default)", 0, 100,
                   key="fs_max_epochs", help="The search picks each trial's fine-tune length up to this.")
    a.caption("Each trial picks its fine-tune length up to this many epochs.")
    b.number_input("Seed", 0, 2**31 - 1, key="fs_seed", help="Seeds the sampler and every trial's training.")
    b.caption("Seeds the sampler and the trials: same seed, same trials.")
    a.checkbox("Strip names from the files", key="fs_strip",
               help="Drops tensor names and the signature from each trial's .tflite (TFLite's strip_strings): "
                    "the same outputs in about 1 KB less; inspectors then show op numbers instead of layer names.")
    a.caption("Same outputs, fewer bytes: the files lose their tensor names and signature.")


def submit(job: str, title: str, files: dict | None = None) -> str:
    recipe = Recipe.from_dict({**{k: parts[k] for k in ("dataset", "model", "baseline")},
                               "title": title, "seed": int(ss["fs_seed"]), "variants": [{"name": "float32"}]})
    return state.runner().submit(recipe, job=job, session=state.session_id(), files=files)


start_col, sens_col = st.columns(2)
ready = bool(parts["model"].get("name") or parts["model"].get("path"))
if start_col.button("Start search", type="primary", icon=":material/play_arrow:", key="fs_start", width="stretch",
                    disabled=not ready, help="Runs in a background worker: you can leave the page meanwhile."):
    try:
        board = None if ss["fs_board"] == "none" else ss["fs_board"]
        spec = SearchSpec(budget=float(ss["fs_budget"]), relative=bool(ss["fs_relative"]),
                          minutes=float(ss["fs_minutes"]), trials=int(ss["fs_trials"]) or None, board=board,
                          objective=ss["fs_objective"], seed=int(ss["fs_seed"]),
                          max_epochs=int(ss["fs_max_epochs"]) or None, strip_strings=bool(ss["fs_strip"]))
        unit = "%" if spec.relative else (" point" if spec.budget == 1 else " points")
        ss["search_run_id"] = ss["run_id"] = submit(
            "compression.explore.search:run_search", f"Find smallest within {spec.budget:g}{unit}"
            + (f" on {board}" if board else ""), {"search.json": json.dumps(spec.to_dict())})
    except CompressionError as exc:
        st.error(str(exc))
start_col.caption("Starts the search in a background worker; trials appear below as they finish.")
if sens_col.button("Sensitivity only", icon=":material/troubleshoot:", key="fs_sensitivity", width="stretch",
                   disabled=not ready, help="Only the per-layer sensitivity analysis (seconds): no search."):
    try:
        ss["search_run_id"] = submit("compression.explore.sensitivity:run_sensitivity", "Sensitivity")
    except CompressionError as exc:
        st.error(str(exc))
sens_col.caption("How much each layer alone loses when pruned, clustered or quantized, without fine-tuning.")

# ---------------------------------------------------------------- live trials


def draw(run_id: str) -> None:
    try:
        run = state.store().get_run(run_id)
    except CompressionError as exc:
        st.warning(str(exc))
        return
    results = widgets.results_of(run_id)
    status = run["status"]
    progress = Progress.from_dict(run.get("progress"))
    st.markdown(f"{widgets.STATUS_ICON.get(status, '')} **{run['title']}** — {status}"
                + (f" · {widgets.duration(run['duration'])}" if run.get("duration") else ""))
    if status not in FINAL_STATUSES:
        st.progress(progress.bounded_fraction, text=progress.message or "starting")
        if run.get("cancel_requested"):
            st.caption("Stopping… the trial running now is stopped; finished trials are kept.")
        elif st.button("Stop", key=f"fs_stop_{run_id}", icon=":material/stop:",
                       help="Stop the search: every finished trial and the best so far are kept."):
            state.runner().cancel(run_id)
    elif run.get("error") and status != "ok":
        (st.error if status == "failed" else st.warning)(run["error"])
    result = read_search(results)
    if result is not None:
        draw_search(run_id, result, results)
    sensitivity = read_sensitivity(results)
    if sensitivity is not None:
        with st.expander("Per-layer sensitivity (the search's prior)", expanded=result is None):
            st.caption(f"Measured in Keras on {sensitivity.n_test} test samples, no fine-tune; int8 cells: "
                       f"{sensitivity.int8_measures}.")
            st.plotly_chart(search_charts.sensitivity_heatmap(sensitivity.frame()), width="stretch",
                            key=f"fs_heat_{run_id}")
            st.plotly_chart(search_charts.sensitivity_ranking(pd.DataFrame(sensitivity.ranking())),
                            width="stretch", key=f"fs_rank_{run_id}")
            for note in sensitivity.notes:
                st.caption(note)
            widgets.download(st, "sensitivity.csv", sensitivity.to_csv(), "sensitivity.csv", "text/csv",
                             f"fs_dl_sens_{run_id}")


def draw_search(run_id: str, result, results: RunResults) -> None:
    chosen = result.chosen_trial
    if chosen is not None:
        ratio = f" — {result.reference_bytes / chosen.value:.1f}× smaller than float32" if result.reference_bytes \
            else ""
        st.success(f"Best so far: **{chosen.name}**, {chosen.value:,.0f} B {result.spec.objective.value}{ratio}, "
                   f"accuracy {chosen.accuracy:.2%} ({format_points(-chosen.drop_points)}, budget "
                   f"{result.budget_points:.2f}).", icon=":material/star:")
    elif result.trials:
        st.warning(f"None found yet: {result.why_none}.")
    for note in result.notes:
        st.caption(note)
    frame = result.frame()
    if len(frame):
        cols = [c for c in ("chosen", "name", "state", "source", "settings", "accuracy", "drop_points", "gzip_bytes",
                            "size_bytes", "arena_bytes", "within_budget", "reasons", "error") if c in frame]
        shown = frame[cols].copy().dropna(axis=1, how="all")
        shown["chosen"] = shown["chosen"].map({True: "★", False: ""})
        st.dataframe(shown, hide_index=True, width="stretch", key=f"fs_trials_{run_id}", column_config={
            "chosen": st.column_config.TextColumn("", help="The smallest trial within the budget so far."),
            "source": st.column_config.TextColumn("source", help=(
                "Why it ran: the int8 anchor, the sensitivity prior, a move from the best (one step past: more "
                "zeros; fewer clusters) or sampled by Optuna's TPE.")),
            "settings": st.column_config.TextColumn("settings", help=(
                "What the trial tried: per-layer sparsity, cluster count, QAT (the scheme follows from the "
                "techniques) or the conversion mode, fine-tune epochs.")),
            "accuracy": st.column_config.NumberColumn("accuracy", format="percent"),
            "drop_points": st.column_config.NumberColumn("drop (points)", format="%.2f"),
            "gzip_bytes": st.column_config.NumberColumn("gzip bytes", format="%d"),
            "size_bytes": st.column_config.NumberColumn("raw bytes", format="%d"),
            "arena_bytes": st.column_config.NumberColumn("arena bytes", format="%d"),
        })
        size = "gzip_bytes" if result.spec.objective.value == "gzip" else "size_bytes"
        widgets.flag_warnings(results)
        st.plotly_chart(search_charts.trials_front(frame, size=size, budget_accuracy=result.budget_accuracy,
                                                   chosen=result.chosen), width="stretch", key=f"fs_front_{run_id}")
        st.plotly_chart(search_charts.search_history(result.history(), result.reference_bytes), width="stretch",
                        key=f"fs_history_{run_id}")
    if chosen is None:
        return
    folder = state.store().folder(run_id)
    row = results.variant(chosen.name)
    c1, c2, c3 = st.columns(3)
    if row and row.tflite and folder.tflite(row).is_file():
        path = folder.tflite(row)
        widgets.download(c1, f"{chosen.name}.tflite", path.read_bytes(), path.name, "application/octet-stream",
                         "fs_dl_chosen", help="The chosen model, ready for LiteRT / TFLite Micro.")
    picked = chosen_recipe(state.store().recipe(run_id), result, results)
    if picked is not None:
        widgets.download(c2, "chosen recipe (JSON)", picked.to_json(), f"{chosen.name}.recipe.json",
                         "application/json", "fs_dl_recipe",
                         help="Rerun or tweak the chosen variant as a normal recipe.")
    widgets.download(c3, "trials.csv", frame.to_csv(index=False), "trials.csv", "text/csv", "fs_dl_trials",
                     help="Every trial: parameters, sizes, accuracy, budget verdict.")


run_id = ss.get("search_run_id")
if run_id:
    try:
        live = state.store().get_run(run_id)["status"] not in FINAL_STATUSES
    except CompressionError:
        live = False

    @st.fragment(run_every=1.0 if live else None)
    def monitor() -> None:
        if live and state.store().get_run(run_id)["status"] in FINAL_STATUSES:
            st.rerun()  # hand over to one full run that draws the final state once (no doubled buttons)
        draw(run_id)

    monitor()
    widgets.page_link("compare", "Compare the trials like any run (charts, table, every download)",
                      icon=state.ICONS["compare"])
else:
    st.info("Set the budget and press **Start search**; trials appear here as they finish.")
