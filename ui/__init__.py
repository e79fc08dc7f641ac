"""Small Streamlit helpers shared by the pages: session state, the store/runner handles, run widgets.

Pages stay thin scripts; anything two pages need lives here. Nothing here
computes results: it reads the store and calls the engine's public functions.
"""
