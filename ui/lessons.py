"""Lessons in the app: the sidebar buttons that start one, and the presentation mode for projectors.

A lesson button (one click from any page) builds the lesson's one-variant recipe on the current data
and model (``compression.explore.lessons``), reuses a run of the same recipe when the store has one, else
submits it, and switches to the Lessons page, which shows the weights of the converted file.
"""

from __future__ import annotations

import streamlit as st
from streamlit.errors import StreamlitAPIException

from compression.errors import CompressionError
from compression.explore.lessons import LESSONS, find_reusable_run, lesson_recipe

from . import state

LESSON_PAGE = "pages/6_lessons.py"
ICON = ":material/school:"

# Presentation mode: bigger type everywhere (Streamlit sizes in rem), the sidebar's prose and the
# widgets' help icons hidden, wider charts text.
PRESENTATION_CSS = """
<style>
html { font-size: 22px; }
[data-testid="stSidebarUserContent"] [data-testid="stCaptionContainer"] { display: none; }
[data-testid="stTooltipIcon"] { display: none; }
.stMainBlockContainer { max-width: 100%; padding-left: 2rem; padding-right: 2rem; }
</style>
"""


def start(key: str) -> None:
    """Start (or reuse) lesson ``key`` on the current data and model and remember it for the Lessons page."""
    ss = st.session_state
    ss["lesson"], ss["lesson_error"], ss["lesson_run_id"] = key, None, None
    parts = state.recipe_parts()
    if not (parts["model"].get("name") or parts["model"].get("path")):
        ss["lesson_error"] = parts.get("note") or "Pick a model on the Data & model page first."
        return
    try:
        recipe = lesson_recipe(key, parts["dataset"], parts["model"], parts["baseline"])
        run_id = find_reusable_run(state.store(), recipe)
        ss["lesson_reused"] = run_id is not None
        if run_id is None:
            run_id = state.runner().submit(recipe, session=state.session_id())
    except CompressionError as exc:
        ss["lesson_error"] = str(exc)
        return
    ss["lesson_run_id"] = run_id
    ss["run_id"] = run_id  # Compare and Inspect show it too, also when it was another session's run (reused)
    ss["lesson_label"] = parts["label"]


def sidebar() -> None:
    """The lesson buttons and the presentation-mode toggle (drawn by app.py on every page)."""
    ss = st.session_state
    st.markdown(f"**{ICON} Lessons** — one click, on the current data and model")
    for key, lesson in LESSONS.items():
        if st.button(lesson.button, key=f"lesson_{key}", width="stretch", help=lesson.title):
            start(key)
            try:
                st.switch_page(LESSON_PAGE)
            except StreamlitAPIException:  # the page is not registered (a page run on its own in tests)
                st.info("Open the Lessons page to see it.")
    st.toggle("Presentation mode", key="presentation", help="Larger type and fewer controls, for a projector.")
    if ss.get("presentation"):
        st.markdown(PRESENTATION_CSS, unsafe_allow_html=True)
