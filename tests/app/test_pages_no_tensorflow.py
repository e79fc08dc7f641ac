"""The server never imports TensorFlow to draw a page: model summaries come from cards or a child process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from apptest_support import ROOT

PAGES = ["app.py", "pages/1_data_model.py", "pages/2_compress.py", "pages/3_compare.py", "pages/4_inspect.py",
         "pages/5_history.py", "pages/6_find_smallest.py", "pages/6_lessons.py"]

SCRIPT = """
import json, sys
from streamlit.testing.v1 import AppTest
seen = []
for page in PAGES:
    at = AppTest.from_file(page, default_timeout=240)
    at.session_state["sid"] = SESSION
    at.run()
    seen.append({"page": page, "tensorflow": "tensorflow" in sys.modules,
                 "exceptions": [e.value for e in at.exception], "errors": [e.value for e in at.error]})
print(json.dumps(seen))
"""


def test_no_page_imports_tensorflow_in_the_server_process(with_run):
    run_id, session = with_run
    code = f"PAGES = {PAGES!r}; SESSION = {session!r}\n" + SCRIPT
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=900, cwd=ROOT,
                         env={**os.environ, "COMPRESSION_LAB_WARM_WORKER": "0"})
    assert out.returncode == 0, out.stderr[-3000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert [s["page"] for s in seen] == PAGES
    for s in seen:
        assert not s["exceptions"] and not s["errors"], s
        assert not s["tensorflow"], f"{s['page']} imported TensorFlow"


def test_the_precomputed_summaries_match_the_models():
    from compression.inputs.model_cards import _cards, _summarize, card_key

    cards = _cards()
    assert card_key("zoo", "seed_cnn", (8, 8, 1)) in cards and card_key("pretrained", "seed_cnn", dataset="digits") \
        in cards
    for key in (card_key("zoo", "seed_cnn", (8, 8, 1)), card_key("zoo", "mlp", (28, 28, 1)),
                card_key("pretrained", "seed_cnn", dataset="digits")):
        kind, *rest = key.split("|")
        if kind == "zoo":
            fresh = _summarize("zoo", rest[0], None, tuple(int(d) for d in rest[1].split("x")), int(rest[2]), "")
        else:
            fresh = _summarize("pretrained", rest[1], None, (), 0, rest[0])
        assert json.loads(json.dumps(fresh)) == cards[key], f"{key}: run python -m compression.inputs.model_cards"
