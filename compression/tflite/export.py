"""Downloads of a run: its `.tflite` files (and C++ pairs) as a zip, a C++ header/source pair, results, a script.

Pure functions of bytes, dicts and run folders: no Streamlit, no TensorFlow.

Usage::

    pair = c_source(Path(run_dir, "int8.tflite").read_bytes(), "int8_tflite")   # pair.header, pair.source
    script = reproduce_script(results.recipe, "pqat-int8")
"""

from __future__ import annotations

import io
import json
import keyword
import pprint
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ..config import Recipe
from ..errors import CompressionError
from ..results import RunResults, results_table
from ..run_folder import RunFolder

__all__ = [
    "C_KEYWORDS",
    "CSource",
    "c_identifier",
    "c_source",
    "recipe_json",
    "reproduce_script",
    "results_csv",
    "results_json",
    "tflite_zip",
]

C_KEYWORDS = frozenset(
    """auto break case char const continue default do double else enum extern float for goto if inline int long
    register restrict return short signed sizeof static struct switch typedef union unsigned void volatile while
    _Alignas _Alignof _Atomic _Bool _Complex _Generic _Imaginary _Noreturn _Static_assert _Thread_local
    alignas alignof bool class constexpr delete explicit false friend mutable namespace new nullptr operator private
    protected public template this throw true try typename using virtual""".split()
)


# ---------------------------------------------------------------- zip of .tflite files


def tflite_zip(run_dir: str | Path | RunFolder, results: RunResults | dict | None = None, c_pairs: bool = True
               ) -> bytes:
    """A zip of the run's `.tflite` files (the finished variants' when ``results`` is given).

    With ``c_pairs``, each model also comes as the C++ pair TFLite Micro builds compile
    (``c/<stem>_tflite.h`` + ``c/<stem>_tflite.cc``, see :func:`c_source`).

    Raises:
        CompressionError: the run has no `.tflite` file yet.

    Usage::

        st.download_button("All .tflite (zip)", tflite_zip(run["dir"], results), "run.zip")
    """
    folder = run_dir if isinstance(run_dir, RunFolder) else RunFolder(run_dir)
    if results is not None:
        if not isinstance(results, RunResults):
            results = RunResults.from_dict(results)
        names = [v.tflite for v in results.ok_variants if v.tflite and "/" not in v.tflite and "\\" not in v.tflite]
        files = [path for path in map(folder.tflite, names) if path.is_file()]
    else:
        files = folder.tflite_files()
    if not files:
        raise CompressionError("This run has no .tflite file yet.")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            data = path.read_bytes()
            entries = [(path.name, data)]
            if c_pairs:
                pair = c_source(data, path.name)
                entries += [(f"c/{pair.header_file}", pair.header.encode()), (f"c/{pair.source_file}",
                                                                              pair.source.encode())]
            for entry, content in entries:
                info = zipfile.ZipInfo(entry, date_time=(2020, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                archive.writestr(info, content)
    return buffer.getvalue()


# ---------------------------------------------------------------- C source pair


def c_identifier(name: str) -> str:
    """A valid C (and C++) identifier made from a file or variant name.

    Letters, digits and underscores are kept, everything else becomes ``_``; a
    leading digit or an empty result gets a ``model_`` prefix; keywords get a
    ``_model`` suffix.

    Usage::

        c_identifier("pqat-int8.tflite")   # "pqat_int8_tflite"
    """
    ident = re.sub(r"[^A-Za-z0-9_]", "_", str(name))
    ident = re.sub(r"_+", "_", ident).strip("_")
    if not ident or ident[0].isdigit():
        ident = f"model_{ident}".rstrip("_")
    if ident in C_KEYWORDS or keyword.iskeyword(ident):
        ident = f"{ident}_model"
    return ident


@dataclass(frozen=True)
class CSource:
    """A model as the C++ pair TFLite Micro projects compile: ``<name>.h`` declares, ``<name>.cc`` defines.

    Attributes:
        name: the C identifier of the array (``<name>_len`` is its length).
        header: ``extern const unsigned char <name>[]; extern const unsigned int <name>_len;``.
        source: the array, ``alignas(16) const``, so it is linked into flash (read-only data),
            not copied into RAM, and defined once however many files include the header.
    """

    name: str
    header: str
    source: str

    @property
    def header_file(self) -> str:
        return f"{self.name}.h"

    @property
    def source_file(self) -> str:
        return f"{self.name}.cc"


def c_source(data: bytes, name: str, line_bytes: int = 12) -> CSource:
    """The bytes as a header + ``.cc`` pair, the shape of TensorFlow's ``convert_bytes_to_c_source``.

    The header only declares (``extern``), so any number of translation units may
    include it; the ``.cc`` includes the header (which gives the ``const`` array
    external linkage in C++) and defines the 16-byte-aligned array: TFLite Micro
    reads the model's tensors in place.

    Args:
        data: the `.tflite` bytes.
        name: any name; it is made a C identifier with :func:`c_identifier`.
        line_bytes: bytes per source line.

    Usage::

        pair = c_source(tflite_bytes, "int8.tflite")
        Path(pair.header_file).write_text(pair.header); Path(pair.source_file).write_text(pair.source)
    """
    ident = c_identifier(name)
    guard = f"{ident.upper()}_H_"
    lines = []
    for start in range(0, len(data), line_bytes):
        chunk = data[start : start + line_bytes]
        lines.append("    " + ", ".join(f"0x{b:02x}" for b in chunk) + ",")
    body = "\n".join(lines)
    generated = f"// {ident}: a {len(data)}-byte TFLite model for TensorFlow Lite Micro (made by Compression Lab).\n"
    header = (
        generated
        + f"// Compile {ident}.cc into the firmware; include this header wherever the model is used.\n"
        f"#ifndef {guard}\n"
        f"#define {guard}\n"
        "\n"
        f"extern const unsigned char {ident}[];\n"
        f"extern const unsigned int {ident}_len;\n"
        "\n"
        f"#endif  // {guard}\n"
    )
    source = (
        generated
        + f'#include "{ident}.h"\n'
        "\n"
        "// const: linked into flash (read-only data), not RAM. alignas(16): TFLite Micro reads tensors in place.\n"
        f"alignas(16) const unsigned char {ident}[] = {{\n{body}\n}};\n"
        f"const unsigned int {ident}_len = {len(data)};\n"
    )
    return CSource(ident, header, source)


# ---------------------------------------------------------------- results


def results_csv(results: RunResults | dict) -> bytes:
    """The results table (one row per variant, the reference-experiment columns) as CSV."""
    return results_table(results).to_csv(index=False).encode("utf-8")


def results_json(results: RunResults | dict) -> bytes:
    """The whole results.json, pretty-printed."""
    if isinstance(results, RunResults):
        results = results.to_dict()
    return json.dumps(results, indent=2, default=str).encode("utf-8")


def recipe_json(recipe: Recipe | dict) -> bytes:
    """The recipe as JSON that ``Recipe.from_json`` (and the CLI) read back."""
    if not isinstance(recipe, Recipe):
        recipe = Recipe.from_dict(recipe)
    return recipe.to_json().encode("utf-8")


# ---------------------------------------------------------------- reproduce script


def reproduce_script(recipe: Recipe | dict, variant: str, run_id: str = "") -> str:
    """A standalone Python script that rebuilds one variant with tfmot and ``tf.lite.TFLiteConverter``.

    The script is the module :mod:`compression.tflite.templates.reproduce` (real code that
    ruff checks and the tests import) with its "recipe data" block replaced by this
    variant's settings as Python literals. It loads the run's float baseline
    (``baseline.keras``, downloadable next to it), loads the same data split,
    applies the variant's techniques in the engine's order (distill → prune →
    cluster → QAT, each stage seeded from the recipe seed), converts, writes the
    `.tflite` (the engine's bytes, with the same library versions) and prints its
    accuracy measured with the LiteRT interpreter. It needs only TensorFlow,
    tf-keras, tfmot, ai-edge-litert and NumPy (plus scikit-learn for digits); a
    distillation variant also needs this project's ``compression.inputs.models`` for
    the student architecture.

    Args:
        recipe: the run's recipe.
        variant: the variant's name.
        run_id: named in the script's title.

    Raises:
        CompressionError: the recipe has no such variant.
    """
    if not isinstance(recipe, Recipe):
        recipe = Recipe.from_dict(recipe)
    spec = next((v for v in recipe.variants if v.name == variant), None)
    if spec is None:
        raise CompressionError(
            f"The recipe has no variant {variant!r}; it has {', '.join(v.name for v in recipe.variants)}."
        )
    from ..results import file_stem

    data = {
        "TITLE": f"variant {spec.name!r} of {run_id or 'a Compression Lab run'} ({' + '.join(spec.techniques)})",
        "OUT": f"{file_stem(spec.name)}.tflite",
        "SEED": recipe.seed,
        "DATASET": recipe.to_dict()["dataset"],
        "BASELINE_LEARNING_RATE": recipe.baseline.learning_rate,
        "VARIANT": spec.to_dict(),
        # Derived by the engine, never re-derived in the script: PCQAT/PQAT/CQAT, clustering that keeps the zeros.
        "PRESERVE": spec.expected_preserve.value,
    }
    block = "".join(f"{name} = {pprint.pformat(value, sort_dicts=False, width=100)}\n" for name, value in data.items())
    head, rest = reproduce_template().split(REPRODUCE_DATA_BEGIN, 1)
    _, tail = rest.split(REPRODUCE_DATA_END, 1)
    return f"{head}{REPRODUCE_DATA_BEGIN}\n{block}{REPRODUCE_DATA_END}{tail}"


REPRODUCE_DATA_BEGIN = "# ----- recipe data (filled in by Compression Lab) -----"
REPRODUCE_DATA_END = "# ----- end of recipe data -----"


def reproduce_template() -> str:
    """The source of :mod:`compression.tflite.templates.reproduce`, the code every reproduce script shares."""
    from importlib import resources

    source = resources.files("compression.tflite.templates").joinpath("reproduce.py").read_text("utf-8")
    if source.count(REPRODUCE_DATA_BEGIN + "\n") != 1 or source.count(REPRODUCE_DATA_END) != 1:
        raise RuntimeError("compression/tflite/templates/reproduce.py must hold each recipe-data marker line once.")
    return source
