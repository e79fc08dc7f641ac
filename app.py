"""Compression Lab: prune, cluster and quantize a Keras model, compare the .tflite files, download them.

Start it with ``make run`` (or ``python3 -m streamlit run app.py``). This file
only routes: every page is a short script in ``pages/``. The first page load
does not import TensorFlow; runs execute in worker processes (see
``compression/run/runner.py``), so a rerun or a page change never stops them.

The runner is started once the first page has drawn (not before: its warm spare worker imports
TensorFlow, which would compete with that page for the CPU), so the spare is ready by the time
the user presses Run instead of the first run paying TensorFlow's import.
"""

from __future__ import annotations

import streamlit as st

from ui import lessons, state

st.set_page_config(page_title="Compression Lab", page_icon=":material/compress:", layout="wide")
state.init(router=True)

pages = [
    st.Page(state.PAGES["data"], title="Data & model", icon=state.ICONS["data"]),
    st.Page(state.PAGES["compress"], title="Compress", icon=state.ICONS["compress"], default=True),
    st.Page(state.PAGES["compare"], title="Compare", icon=state.ICONS["compare"]),
    st.Page(state.PAGES["find_smallest"], title="Find smallest", icon=state.ICONS["find_smallest"]),
    st.Page(state.PAGES["inspect"], title="Inspect", icon=state.ICONS["inspect"]),
    st.Page(state.PAGES["history"], title="History", icon=state.ICONS["history"]),
    st.Page(lessons.LESSON_PAGE, title="Lessons", icon=lessons.ICON),
]
page = st.navigation(pages)
with st.sidebar:
    st.caption(
        "Pick data and a model, build variants (pruning, clustering, QAT, post-training quantization), "
        "run them in the background, compare size, latency and accuracy, and download the `.tflite`."
    )
    lessons.sidebar()
page.run()
state.start_runner()
