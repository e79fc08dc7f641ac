"""Views: pure builders of what the pages and the CLI draw — plotly figures from frames (``charts``,
``search_charts``, ``data_preview``) and pandas tables (``tables``). No TensorFlow, no store, no Streamlit.

May import: core.
"""
