"""Compare: the variants of a run on interactive charts, the reference-style table, and every download."""

from __future__ import annotations

import streamlit as st

from compression.errors import CompressionError
from compression.measure.boards import BOARDS, CUSTOM, fit_table, format_bytes, get_board
from compression.results import FINAL_STATUSES, BaselineInfo, Reference, file_stem
from compression.tflite import export
from compression.views import board_charts, results_charts
from ui import state, widgets

state.init({"compare_board": "nano33", "compare_ram_kb": 256.0, "compare_flash_kb": 1024.0})
ss = st.session_state
store = state.store()
st.title(f"{state.ICONS['compare']} Compare")

runs = widgets.my_runs()
if ss.get("run_id") and ss["run_id"] not in {r["id"] for r in runs}:
    try:
        runs.insert(0, store.get_run(ss["run_id"]))  # opened from History: someone else's, or an import
    except CompressionError:
        ss["run_id"] = None
if not runs:
    st.info("No runs yet in this session: build one on the Compress page (or open a past run from History).")
    widgets.page_link("compress", "Go to Compress", icon=state.ICONS["compress"])
    widgets.page_link("history", "Open a past run", icon=state.ICONS["history"])
    st.stop()

run_id = widgets.pick_run("compare_run", runs, default=ss.get("run_id"))
ss["run_id"] = run_id
run = store.get_run(run_id)
if run["status"] not in FINAL_STATUSES:
    widgets.run_monitor(run_id, key="compare")
results = widgets.results_of(run_id)
if not results or not results.ok_variants:
    widgets.no_finished_variant(run, results)
    st.stop()

df = results_charts.results_frame(results)
ok = df[df["status"] == "ok"]
baseline = results.baseline or BaselineInfo()
reference = results.reference or Reference()
base_acc = baseline.accuracy if baseline.accuracy is not None else float("nan")
m = st.columns(4)
m[0].metric("baseline accuracy", f"{base_acc:.2%}", help="Float Keras model on the test set.")
m[1].metric(
    "float32 .tflite",
    f"{reference.size_bytes or 0:,} B",
    help=f"gzip: {reference.gzip_bytes or 0:,} B. Ratios are against this file.",
)
ratio = results.best_ratio()
m[2].metric(
    "best gzip ratio, ≤1 point lost",
    f"{ratio:.2f}×" if ratio else "—",
    help="The smallest variant (gzip) whose accuracy is at most one point below the baseline's.",
)
m[3].metric("variants finished", f"{len(ok)} / {run['n_variants']}")
if results.dataset:
    d = results.dataset
    st.caption(
        f"{d.name}: {d.n_train:,} training / {d.n_test:,} test samples · model "
        f"{run['model']} · baseline {baseline.source or '?'} · host latency (this machine's CPU, not a "
        f"device) with {results.recipe['evaluation']['threads']} thread(s), batch 1."
    )

# ---------------------------------------------------------------- table

st.subheader("Results")
widgets.results_table(df, key="compare_table")
failed = df[df["status"] != "ok"]
for _, row in failed.iterrows():
    st.error(f"{row['name']}: {row['status']} — {row['error']}")
widgets.flag_warnings(results)
notes = [(v.name, n) for v in results.variants for n in v.notes]
if notes:
    with st.expander(f"Notes ({len(notes)})"):
        for name, note in notes:
            st.markdown(f"- **{name}**: {note}")

# ---------------------------------------------------------------- charts

st.subheader("Trade-offs")
st.radio(
    "Size axis",
    ["gzip_bytes", "size_bytes"],
    key="compare_size_axis",
    horizontal=True,
    format_func={"gzip_bytes": "gzip size", "size_bytes": "raw size"}.get,
    help="gzip shows what pruning and clustering save (zeros and repeated values compress); raw is the file.",
)
st.caption(
    "Outlined points are on the Pareto front: nothing else is both smaller (or faster) and more accurate. "
    "Hover a point for the variant's settings."
)
a, b = st.columns(2)
a.plotly_chart(results_charts.size_vs_accuracy(df, size=ss["compare_size_axis"]), width="stretch", key="chart_size")
b.plotly_chart(results_charts.latency_vs_accuracy(df), width="stretch", key="chart_latency")
a, b = st.columns(2)
a.plotly_chart(results_charts.tradeoff_bubble(df), width="stretch", key="chart_bubble")
b.plotly_chart(results_charts.ratio_bars(df), width="stretch", key="chart_ratio")
st.plotly_chart(results_charts.size_bars(df), width="stretch", key="chart_sizes")

# ---------------------------------------------------------------- board fit

st.subheader("Fits on my board")
choices = [*BOARDS, CUSTOM]
state.ensure_option("compare_board", choices, "nano33")
pick, ram_col, flash_col = st.columns([2, 1, 1])
pick.selectbox(
    "Board",
    choices,
    key="compare_board",
    format_func=lambda k: "custom (your numbers)" if k == CUSTOM else
    f"{BOARDS[k].name} — {format_bytes(BOARDS[k].ram_bytes)} RAM, {format_bytes(BOARDS[k].flash_bytes)} flash",
    help="RAM must hold the TFLite Micro tensor arena, flash the .tflite bytes.",
)
if ss["compare_board"] == CUSTOM:
    ram_col.number_input("RAM (KB)", min_value=1.0, max_value=1e7, step=16.0, key="compare_ram_kb")
    flash_col.number_input("flash (KB)", min_value=1.0, max_value=1e7, step=64.0, key="compare_flash_kb")
try:
    board = get_board(ss["compare_board"], ss["compare_ram_kb"], ss["compare_flash_kb"])
except CompressionError as exc:
    st.error(str(exc))
    board = BOARDS["nano33"]
if board.note:
    st.caption(f"{board.name}: {board.note}")
fits = fit_table(results, board)
fit_box = st.container(key="compare_fit")
counts = fits["fit"].value_counts()
fit_box.markdown(
    f"On **{board.name}**: {counts.get('fits', 0)} of {len(fits)} finished variants fit"
    + "".join(f"; {n} {status}" for status, n in counts.items() if status != "fits")
    + "."
)
fit_box.dataframe(
    fits,
    column_order=["name", "tflm", "arena_bytes", "flash_bytes", "fit_label", "tflm_accuracy", "tflm_agreement",
                  "reason"],
    column_config={  # widths: the whole table fits a 1280-px window beside the sidebar
        "name": st.column_config.TextColumn("variant", pinned=True, width=120),
        "tflm": st.column_config.TextColumn("TFLM", width=64,
                                            help="Runs under TensorFlow Lite Micro, refused, or not measured."),
        "arena_bytes": st.column_config.NumberColumn("RAM B", format="%d", width=70,
                                                     help="RAM: the smallest tensor arena that allocates and "
                                                     "invokes."),
        "flash_bytes": st.column_config.NumberColumn("flash B", format="%d", width=64,
                                                     help="The .tflite bytes as linked."),
        "fit_label": st.column_config.TextColumn("fits", width=200,
                                                 help="Against the board's whole RAM and flash: the margin "
                                                 "is what is left for the firmware and the TFLM runtime."),
        "tflm_accuracy": st.column_config.NumberColumn("TFLM acc.", format="percent", width=72,
                                                       help="TFLM reference kernels on the test set (or a sample)."),
        "tflm_agreement": st.column_config.NumberColumn("agrees", format="percent", width=64,
                                                        help="Share of test samples where TFLM and LiteRT predict "
                                                        "the same class."),
        "reason": st.column_config.TextColumn("why not", width=160),
    },
    hide_index=True,
    placeholder="—",
    key="compare_fit_table",
    width="stretch",
)
# A long reason is cut in its cell: each in full under the table.
for _, refused in fits[fits["reason"].fillna("").astype(str).str.strip() != ""].iterrows():
    fit_box.caption(f"**{refused['name']}**: {refused['reason']}")
st.plotly_chart(board_charts.ram_vs_flash(fits, board), width="stretch", key="chart_board")
st.caption(
    "Measured with TensorFlow Lite Micro's reference kernels on this 64-bit host: on a 32-bit board TFLM's own "
    "structs are smaller and optimized kernels may ask for other scratch memory, so the device's arena differs "
    "a little. Flash counts the model only, not TFLM's runtime code or the rest of the firmware."
)

# ---------------------------------------------------------------- downloads

st.subheader("Downloads")
folder = store.folder(run_id)
files = [(v.name, v.tflite) for v in results.ok_variants if v.tflite]
st.markdown("**Each variant's `.tflite`**")
cols = st.columns(4)
for i, (name, tflite) in enumerate(files):
    path = folder.tflite(tflite)
    if path.is_file():
        data = path.read_bytes()
        widgets.download(cols[i % 4], f"{tflite} ({len(data):,} B)", data, tflite, "application/octet-stream",
                         f"dl_{file_stem(name)}", help=f"The {name} model, ready for the LiteRT interpreter.")
st.markdown("**The whole run**")
cols = st.columns(5)
stem = file_stem(run["title"] or run_id)[:40]
widgets.download(cols[0], "all .tflite (zip)", lambda: export.tflite_zip(folder, results), f"{stem}-tflite.zip",
                 "application/zip", "dl_zip")
widgets.download(cols[1], "results.csv", export.results_csv(results), f"{stem}-results.csv", "text/csv", "dl_csv")
widgets.download(cols[2], "results.json", export.results_json(results), f"{stem}-results.json", "application/json",
                 "dl_json")
widgets.download(cols[3], "recipe.json", export.recipe_json(results.recipe), f"{stem}-recipe.json",
                 "application/json", "dl_recipe",
                 help="Run it again with the CLI: python -m compression run recipe.json")
if folder.baseline_model.is_file():
    widgets.download(cols[4], folder.BASELINE_MODEL, lambda: folder.baseline_model.read_bytes(),
                     folder.BASELINE_MODEL, "application/octet-stream", "dl_baseline",
                     help="The float baseline every variant started from (the reproduce script needs it).")

st.markdown("**One variant, for your own build**")
names = [n for n, _ in files]
if names:
    state.ensure_option("export_variant", names, "int8" if "int8" in names else None)
    chosen = st.selectbox("Variant", names, key="export_variant", help="The variant the two files below are made of.")
    tflite = dict(files)[chosen]
    c1, c2, c3 = st.columns(3)
    script = f"reproduce_{file_stem(chosen)}.py"
    widgets.download(c1, script, lambda: export.reproduce_script(results.recipe, chosen, run_id=run_id), script,
                     "text/x-python", "dl_script", help="A standalone script that rebuilds this variant from "
                     "baseline.keras with tfmot and the TFLite converter, then measures it.")
    widgets.c_pair_buttons((c2, c3), folder.tflite(tflite), key="dl_c")
widgets.page_link("inspect", "Inspect a variant: layers, weights, confusion matrix", icon=state.ICONS["inspect"])
