"""Views: pure builders of what the pages and the CLI draw — plotly figures from frames, one module per thing
drawn (``results_charts``, ``board_charts``, ``weights_charts``, ``training_charts``, ``search_charts``,
``data_preview``) built on what they share (``charts``), and pandas tables (``tables``). No TensorFlow, no store,
no Streamlit.

May import: core.
"""
