"""The engine is a library: importing it is fast and pulls neither Streamlit nor TensorFlow."""

import subprocess
import sys


def test_compression_imports_without_streamlit_or_tensorflow():
    code = (
        "import sys, compression, compression.config, compression.run.recipe, compression.cli;"
        "bad = [m for m in ('streamlit', 'tensorflow', 'tf_keras') if m in sys.modules];"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_engine_source_never_imports_streamlit():
    from pathlib import Path

    import compression

    root = Path(compression.__file__).parent
    paths = sorted(root.rglob("*.py"))  # subpackages too (compression/store/, compression/tflite/templates/)
    assert root / "store" / "runs.py" in paths
    for path in paths:
        text = path.read_text()
        assert "import streamlit" not in text and "from streamlit" not in text, path
