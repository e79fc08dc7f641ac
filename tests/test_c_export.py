"""The C++ pair TFLite Micro projects include: compiled, linked from two translation units, run."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import zipfile

import pytest

from compression.tflite.export import c_identifier, c_source, tflite_zip


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("pqat-int8.tflite", "pqat_int8_tflite"),
        ("8bit model", "model_8bit_model"),
        ("int", "int_model"),
        ("class", "class_model"),
        ("", "model"),
        ("--", "model"),
        ("ünï côdé", "n_c_d"),
        ("a__b", "a_b"),
    ],
)
def test_c_identifier(name, expected):
    ident = c_identifier(name)
    assert ident == expected
    assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", ident)


def test_header_declares_and_source_defines_the_bytes():
    data = bytes(range(256)) + b"TFL3" * 7
    pair = c_source(data, "int8.tflite")
    assert (pair.name, pair.header_file, pair.source_file) == ("int8_tflite", "int8_tflite.h", "int8_tflite.cc")
    assert "extern const unsigned char int8_tflite[];" in pair.header
    assert "extern const unsigned int int8_tflite_len;" in pair.header
    assert "0x" not in pair.header and "{" not in pair.header  # declarations only
    assert pair.header.count("#ifndef INT8_TFLITE_H_") == 1
    assert '#include "int8_tflite.h"' in pair.source
    assert "alignas(16) const unsigned char int8_tflite[] = {" in pair.source
    assert f"const unsigned int int8_tflite_len = {len(data)};" in pair.source
    body = pair.source[pair.source.index("= {") + 3 : pair.source.index("};")]
    assert bytes(int(h, 16) for h in re.findall(r"0x([0-9a-f]{2})", body)) == data


def test_the_pair_compiles_links_from_two_translation_units_and_stays_in_flash(tmp_path):
    if shutil.which("g++") is None:
        pytest.fail("No C++ compiler: `make compiler` (apt-get install -y g++) installs one.")
    data = b"\x1c\x00\x00\x00TFL3" + bytes(range(200)) + bytes(range(255, -1, -3))
    pair = c_source(data, "8-bit model.tflite")
    name = pair.name
    (tmp_path / pair.header_file).write_text(pair.header)
    (tmp_path / pair.source_file).write_text(pair.source)
    # Two translation units include the header (the old header-with-array broke this link).
    (tmp_path / "sum.cc").write_text(
        f'#include "{pair.header_file}"\n'
        f"unsigned long model_sum() {{ unsigned long s = 0; for (unsigned int i = 0; i < {name}_len; i++) "
        f"s += {name}[i]; return s; }}\n"
    )
    (tmp_path / "main.cc").write_text(
        f'#include <cstdio>\n#include "{pair.header_file}"\n'
        "unsigned long model_sum();\n"
        f'int main() {{ std::printf("%u %lu %d\\n", {name}_len, model_sum(), '
        f"(int)(reinterpret_cast<unsigned long>({name}) % 16)); return 0; }}\n"
    )
    flags = ["g++", "-std=c++17", "-Wall", "-Wextra", "-Werror", "-c"]
    for unit in (pair.source_file, "sum.cc", "main.cc"):
        subprocess.run([*flags, unit], cwd=tmp_path, check=True, capture_output=True, timeout=120)
    objects = [f"{pair.name}.o", "sum.o", "main.o"]
    subprocess.run(["g++", *objects, "-o", "m"], cwd=tmp_path, check=True, capture_output=True, timeout=120)
    out = subprocess.run([str(tmp_path / "m")], check=True, capture_output=True, text=True, timeout=30).stdout.split()
    assert out == [str(len(data)), str(sum(data)), "0"]
    if shutil.which("nm"):
        symbols = subprocess.run(["nm", f"{pair.name}.o"], cwd=tmp_path, check=True, capture_output=True,
                                 text=True).stdout
        kinds = {line.split()[-1]: line.split()[-2] for line in symbols.splitlines() if len(line.split()) == 3}
        assert kinds[name] == "R" and kinds[f"{name}_len"] == "R"  # read-only data: flash, global


def test_zip_carries_the_pair_of_every_model(tmp_path):
    (tmp_path / "int8.tflite").write_bytes(b"TFL3" + bytes(20))
    with zipfile.ZipFile(io.BytesIO(tflite_zip(tmp_path))) as archive:
        assert archive.namelist() == ["int8.tflite", "c/int8_tflite.h", "c/int8_tflite.cc"]
        pair = c_source(b"TFL3" + bytes(20), "int8.tflite")
        assert archive.read("c/int8_tflite.cc").decode() == pair.source
        assert archive.read("c/int8_tflite.h").decode() == pair.header
