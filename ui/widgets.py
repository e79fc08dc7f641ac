"""Widgets more than one page draws: page links, run pickers, the live run monitor, the results table."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st
from streamlit.errors import StreamlitAPIException

from compression.errors import CompressionError
from compression.progress import Progress
from compression.results import FINAL_STATUSES, RunResults
from compression.tflite import export
from compression.views import charts, training_charts
from compression.views.tables import FLAGGED, flag_lines, format_duration, format_when, variant_status_rows

from . import builder, state

STATUS_ICON = {
    "queued": ":material/schedule:",
    "running": ":material/directions_run:",
    "ok": ":material/check_circle:",
    "failed": ":material/error:",
    "cancelled": ":material/cancel:",
    "interrupted": ":material/warning:",
}


def page_link(page: str, label: str, icon: str | None = None) -> None:
    """A link to another page (plain text when the page is run on its own, as in tests)."""
    try:
        st.page_link(state.PAGES[page], label=label, icon=icon)
    except StreamlitAPIException:
        st.caption(f"→ {label}")


def switch_page(page: str) -> None:
    """Go to another page; when run on its own (tests), say where to go instead."""
    try:
        st.switch_page(state.PAGES[page])
    except StreamlitAPIException:
        st.info(f"Open the {page.title()} page to continue.")


def explain(title: str, what: str, expect: str) -> None:
    """The teaching expander every technique has."""
    with st.expander(f"{title}: what this does / what to expect", icon=":material/school:"):
        st.markdown(f"**What this does.** {what}\n\n**What to expect.** {expect}")


when = format_when
duration = format_duration


def run_label(run: dict) -> str:
    title = run.get("title") or "untitled"
    return f"{when(run['created'])} · {title} · {run['dataset']} / {run['model']} · {run['status']} · #{run['id'][-6:]}"


def pick_run(key: str, runs: list[dict], default: str | None = None, label: str = "Run") -> str | None:
    """A select box of runs (newest first) that starts on ``default``; returns the chosen run id."""
    if not runs:
        return None
    ids = [r["id"] for r in runs]
    labels = {r["id"]: run_label(r) for r in runs}
    if st.session_state.get(key) not in ids:
        st.session_state[key] = default if default in ids else ids[0]
    return st.selectbox(label, ids, format_func=lambda i: labels.get(i, i), key=key)


def my_runs() -> list[dict]:
    """This session's runs, newest first, without the baseline-only "train now" runs."""
    return state.store().list_runs(session=state.session_id(), kind=state.RESULT_KINDS)


def results_of(run_id: str) -> RunResults | None:
    try:
        return state.store().results(run_id)
    except CompressionError as exc:
        st.error(str(exc))
        return None


# ---------------------------------------------------------------- results table


# Widths in pixels: the compact view (COMPACT_ORDER) fits the main column of a 1280-px-wide window beside the
# sidebar (~810 px); "All columns" adds the rarely read ones and scrolls sideways with the variant pinned.
TABLE_CONFIG = {
    "name": st.column_config.TextColumn("variant", pinned=True, width=120),
    "techniques": st.column_config.TextColumn("techniques", width=160, help="What was applied, in order."),
    "accuracy": st.column_config.NumberColumn(
        "accuracy", format="percent", width=70,
        help="Top-1 accuracy of the .tflite on the test set (LiteRT interpreter).",
    ),
    "delta_accuracy": st.column_config.NumberColumn(
        "Δ points", format="%+.2f", width=64, help="Accuracy minus the float baseline's, in points."
    ),
    "latency_median_ms": st.column_config.NumberColumn(
        "latency ms",
        format="%.4f",
        width=78,
        help="Host latency: median of timed batch-1 invokes after a warm-up, on this machine's CPU, "
        "not a microcontroller's.",
    ),
    "arena_bytes": st.column_config.NumberColumn(
        "TFLM arena B", format="%d", help="RAM: the TensorFlow Lite Micro tensor arena (empty: TFLM cannot run it)."
    ),
    "throughput_sps": st.column_config.NumberColumn(
        "samples/s", format="%.0f", help="Samples per second in large batches."
    ),
    "size_bytes": st.column_config.NumberColumn("raw B", format="%d", help="The .tflite file's bytes."),
    "gzip_bytes": st.column_config.NumberColumn(
        "gzip B", format="%d", width=62, help="Size after gzip -9: where pruning's zeros pay off."
    ),
    "ratio": st.column_config.NumberColumn(
        "raw ×", format="%.2f×", help="float32 .tflite size / this variant's (raw bytes)."
    ),
    "gzip_ratio": st.column_config.NumberColumn(
        "gzip ×", format="%.2f×", width=58, help="float32 .tflite gzip size / this variant's gzip size."
    ),
    "sparsity": st.column_config.NumberColumn(
        "sparsity", format="percent", width=66, help="Fraction of zero kernel weights."
    ),
    "delegate": st.column_config.TextColumn(
        "delegate", width=74,
        help="XNNPACK, or none when the model runs on the builtin kernels (int16x8, sparse dynamic-range).",
    ),
    "input_dtype": st.column_config.TextColumn("input", width=58, help="The input tensor's type."),
    "status": st.column_config.TextColumn("status", width=80, help="'ok, flagged': it converted and ran, but its "
                                          "figures mislead alone (the warnings below the table say why)."),
    "flags": st.column_config.TextColumn(
        "flags", help="near chance / one class / agreement meaningless: the warnings below the table say why."
    ),
    "error": st.column_config.TextColumn("error", width="large"),
}
# The compact view: what a reader compares. status only when some variant is not ok (techniques narrows for it);
# a flagged row's status says "ok, flagged" and the warnings under the table say why (flags: "All columns").
COMPACT_ORDER = [
    "name",
    "status",
    "techniques",
    "accuracy",
    "delta_accuracy",
    "latency_median_ms",
    "gzip_bytes",
    "gzip_ratio",
    "sparsity",
    "delegate",
    "input_dtype",
]
# "All columns": the compact ones, then the rarely read ones.
TABLE_ORDER = [*COMPACT_ORDER, "flags", "size_bytes", "ratio", "throughput_sps", "arena_bytes", "error"]


def results_table(df: pd.DataFrame, key: str) -> None:
    """The reference-experiment table, one row per variant: a compact view that fits the page, or every column.

    A toggle (``<key>_all``) switches to every column; the variant column stays pinned while it scrolls.
    """
    everything = st.toggle("All columns", key=f"{key}_all",
                           help="Also flags, raw bytes and ratio, samples/s, the TFLM arena and errors (scrolls "
                           "sideways).")
    shown = TABLE_ORDER if everything else COMPACT_ORDER
    if "flags" in df and "status" in df:  # a flagged row must not read "ok": say so in its status and flags
        flags = df["flags"].fillna("").astype(str)
        df = df.assign(flags=flags.str.replace("_", " ").str.replace(";", ","),
                       status=df["status"].where((df["status"] != "ok") | (flags == ""), FLAGGED))
    optional = {
        "error": df["error"].notna().any() if "error" in df else False,
        "status": (df["status"] != "ok").any() if "status" in df else False,
        "flags": (df["flags"] != "").any() if "flags" in df else False,
    }
    order = [c for c in shown if c in df.columns and optional.get(c, True)]
    config = dict(TABLE_CONFIG)
    if "status" in order and not everything:
        config["techniques"] = st.column_config.TextColumn("techniques", width=80,
                                                           help=TABLE_CONFIG["techniques"].get("help"))
    if "latency_median_ms" in df:
        factor, unit = charts.latency_unit(df["latency_median_ms"])
        df = df.assign(latency_median_ms=pd.to_numeric(df["latency_median_ms"], errors="coerce") * factor)
        config["latency_median_ms"] = st.column_config.NumberColumn(
            f"latency {unit}", format="%.1f" if unit == "µs" else "%.3f", width=78,
            help=TABLE_CONFIG["latency_median_ms"].get("help"))
    st.dataframe(df, column_order=order, column_config=config, hide_index=True, key=key, width="stretch",
                 placeholder="—")


# ---------------------------------------------------------------- the live run monitor


def _variant_rows(run: dict, results: RunResults | None) -> pd.DataFrame:
    """One line per variant of the recipe (:func:`compression.views.tables.variant_status_rows`)."""
    try:
        names = [v.name for v in state.store().recipe(run["id"]).variants]
    except CompressionError:
        names = []
    return variant_status_rows(names, run, results)


def eta_seconds(fraction: float | None, elapsed: float | None) -> float | None:
    """Remaining time if progress keeps its average pace so far."""
    if not fraction or not elapsed or fraction < 0.02 or fraction >= 1:
        return None
    return elapsed * (1 - fraction) / fraction


def _events_frame(run_id: str) -> pd.DataFrame:
    events = state.store().events(run_id)
    return pd.DataFrame(events) if events else pd.DataFrame()


def run_monitor(run_id: str, *, curve: bool = False, key: str = "monitor") -> None:
    """Live status of a run: progress, ETA, cancel, per-variant lines as they finish (and a training curve).

    Polls the store once a second while the run is queued or running (an
    ``st.fragment``: only this block reruns); the run itself lives in a worker
    process, so leaving the page or touching a widget does not stop it.
    """
    try:
        first = state.store().get_run(run_id)
    except CompressionError as exc:
        st.warning(str(exc))
        return
    live = first["status"] not in FINAL_STATUSES

    @st.fragment(run_every=1.0 if live else None)
    def body() -> None:
        try:
            run = state.store().get_run(run_id)
        except CompressionError as exc:
            st.warning(str(exc))
            return
        results = results_of(run_id)
        progress = Progress.from_dict(run.get("progress"))
        fraction = progress.fraction
        status = run["status"]
        icon = STATUS_ICON.get(status, "")
        head = f"{icon} **{run['title'] or 'Run'}** — {status}"
        if status in ("queued", "running"):
            eta = eta_seconds(fraction, run.get("duration"))
            bits = [progress.message or ("waiting for a free worker" if status == "queued" else "starting")]
            if run.get("duration"):
                bits.append(f"elapsed {duration(run['duration'])}")
            if eta is not None:
                bits.append(f"about {duration(eta)} left")
            st.markdown(head)
            st.progress(progress.bounded_fraction, text=" · ".join(bits))
            if run.get("cancel_requested"):
                st.caption("Cancelling… the worker stops at its next check.")
            elif st.button(
                "Cancel run", key=f"{key}_cancel_{run_id}", help="Stop this run; finished variants are kept."
            ):
                state.runner().cancel(run_id)
                st.caption("Cancelling… the worker stops at its next check.")
        else:
            st.markdown(head + (f" in {duration(run['duration'])}" if run.get("duration") else ""))
            if run.get("error") and status != "ok":
                (st.error if status == "failed" else st.warning)(run["error"])
        if curve:
            events = _events_frame(run_id)
            st.plotly_chart(
                training_charts.training_curves(events, title="Live training loss and accuracy"),
                width="stretch",
                key=f"{key}_curve_{run_id}",
            )
        rows = _variant_rows(run, results)
        if len(rows):
            if rows["error"].isna().all():
                rows = rows.drop(columns="error")
            if not rows["flags"].fillna("").astype(bool).any():
                rows = rows.drop(columns="flags")
            factor, unit = charts.latency_unit(rows["latency_ms"])
            rows = rows.assign(latency_ms=pd.to_numeric(rows["latency_ms"], errors="coerce") * factor)
            st.dataframe(
                rows,
                hide_index=True,
                width="stretch",
                column_config={
                    "accuracy": TABLE_CONFIG["accuracy"],
                    "delta_accuracy": TABLE_CONFIG["delta_accuracy"],
                    "gzip_bytes": TABLE_CONFIG["gzip_bytes"],
                    "ratio": st.column_config.NumberColumn("gzip ratio", format="%.2f×"),
                    "latency_ms": st.column_config.NumberColumn(
                        f"host latency {unit}", format="%.1f" if unit == "µs" else "%.3f"),
                    "seconds": st.column_config.NumberColumn("seconds", format="%.1f"),
                },
                key=f"{key}_rows_{run_id}",
                placeholder="—",
            )
        flag_warnings(results)
        if live and status in FINAL_STATUSES:
            st.rerun()  # redraw the whole page once: downloads and links appear, polling stops

    body()


def flag_warnings(results: RunResults | None, variant: str | None = None) -> None:
    """One warning per flag, naming the baseline or the variant and the reason (only ``variant``'s when given)."""
    for who, sentence in flag_lines(results):
        if variant is None or who in (None, variant):
            st.warning(f"{who or 'Baseline'}: {sentence}", icon=":material/warning:")


def training_inputs(prefix: str, epochs_label: str, helps: tuple[str, str, str]) -> None:
    """Epochs, batch size and learning rate side by side, bounded by the config's limits.

    The keys are ``<prefix>epochs``, ``<prefix>batch`` and ``<prefix>lr``; ``helps`` in that order.
    """
    a, b, c = st.columns(3)
    a.number_input(epochs_label, *builder.WIDGET_RANGES[f"{prefix}epochs"], key=f"{prefix}epochs", help=helps[0])
    b.number_input("Batch size", *builder.WIDGET_RANGES[f"{prefix}batch"], key=f"{prefix}batch", help=helps[1])
    c.number_input("Learning rate", *builder.WIDGET_RANGES[f"{prefix}lr"], key=f"{prefix}lr", format="%.5f",
                   step=1e-4, help=helps[2])


def download(where, label: str, data, file_name: str, mime: str, key: str, help: str | None = None) -> None:
    """A download button in ``where`` (``st`` or a column): the download icon, no rerun on click.

    ``data`` may be a callable, so the file is built only when the user clicks.
    """
    where.download_button(label, data=data, file_name=file_name, mime=mime, key=key, icon=":material/download:",
                          on_click="ignore", help=help)


def c_pair_buttons(columns, tflite_path: Path, key: str) -> None:
    """Download buttons for the model as the C++ pair TFLite Micro builds compile: ``<stem>_tflite.h`` + ``.cc``."""
    if not tflite_path.is_file():
        return
    ident = export.c_identifier(tflite_path.name)

    def pair():
        return export.c_source(tflite_path.read_bytes(), tflite_path.name)

    download(columns[0], f"{ident}.h (C++ header)", lambda: pair().header, f"{ident}.h", "text/x-c", f"{key}_h",
             help=f"Declares `extern const unsigned char {ident}[]` and `{ident}_len`: include it wherever the "
             "model is used.")
    download(columns[1], f"{ident}.cc (the array)", lambda: pair().source, f"{ident}.cc", "text/x-c", f"{key}_cc",
             help="Defines the `alignas(16) const` array (linked into flash, not RAM): compile it once into the "
             "firmware.")


def no_finished_variant(run: dict, results) -> None:
    """Why a run shows nothing: still on its way, or failed / cancelled, with its reason and each variant's."""
    from compression.results import RunResults

    if isinstance(results, dict):
        results = RunResults.from_dict(results)
    status = str(run["status"])
    if status not in FINAL_STATUSES:
        st.info("No variant has finished yet; this page fills in as they do.")
        return
    reason = run.get("error") or (results.error if results is not None else None)
    if status == "ok":
        head = "No variant of this run finished: every one failed (the reasons are below)."
    else:
        head = f"This run {status} before any variant finished" + (f": {reason}" if reason else ".")
    (st.error if status in ("failed", "ok") else st.warning)(head)
    for v in (results.variants if results is not None else ())[:12]:
        if v.error:
            st.caption(f"{v.name}: {v.status} — {v.error}")
