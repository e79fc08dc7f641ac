"""zipsafe: every rule refuses with one sentence naming the member; a normal archive passes."""

from __future__ import annotations

import io
import stat
import warnings
import zipfile

import numpy as np
import pytest

from compression.errors import CompressionError
from compression.inputs import zipsafe
from compression.inputs.safe_load import load_user_model
from compression.inputs.user_npz import load_npz

MB = 2**20


def _zip(members: dict[str, bytes] | list[tuple[str | zipfile.ZipInfo, bytes]], deflate: bool = False) -> bytes:
    buffer = io.BytesIO()
    items = members.items() if isinstance(members, dict) else members
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name we write on purpose
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED) as zf:
            for name, data in items:
                zf.writestr(name, data)
    return buffer.getvalue()


def _encrypt_flag(data: bytes) -> bytes:
    """Set the 'encrypted' bit in every local and central header (zipfile cannot write encrypted members)."""
    out = bytearray(data)
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = out.find(signature)
        while at >= 0:
            out[at + offset] |= 0x1
            at = out.find(signature, at + 4)
    return bytes(out)


def _with_mode(name: str, mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = mode << 16
    return info


def _refused(data: bytes, match: str, **limits) -> str:
    limits.setdefault("max_total_bytes", 10 * MB)
    with pytest.raises(CompressionError, match=match) as caught:
        zipsafe.open_archive(data, subject="'up.zip'", not_a_zip="'up.zip' is not a zip.", **limits)
    message = str(caught.value)
    assert "\n" not in message and message.startswith("'up.zip'")
    return message


def test_a_plain_archive_passes_and_lists_its_files():
    data = _zip({"a/config.json": b"{}", "a/": b"", "b.bin": b"\0" * 1000})
    with zipsafe.open_archive(data, subject="'up.zip'", not_a_zip="no", max_total_bytes=MB) as zf:
        members = zipsafe.check_members(zf, "'up.zip'", max_total_bytes=MB)
        assert sorted(members) == ["a/config.json", "b.bin"]
        assert zipsafe.read_member(zf, "a/config.json", "'up.zip'", max_bytes=10) == b"{}"


def test_not_a_zip_raises_the_callers_sentence():
    with pytest.raises(CompressionError, match=r"^'up.zip' is not a zip\.$"):
        zipsafe.open_archive(b"plain text", subject="'up.zip'", not_a_zip="'up.zip' is not a zip.",
                             max_total_bytes=MB)


@pytest.mark.parametrize("name", ["../escape.txt", "/abs/path.txt", "a/../../b.txt", "C:/win.txt", "a\\..\\b"])
def test_unsafe_paths(name):
    message = _refused(_zip({name: b"x"}), "unsafe path")
    assert repr(name) in message and "unsafe name" in message


def test_duplicate_names():
    _refused(_zip([("config.json", b"{}"), ("config.json", b"{}")]), "'config.json' twice")


def test_symlinks_and_special_files():
    _refused(_zip([(_with_mode("link", stat.S_IFLNK | 0o777), b"/etc/passwd")]), "symbolic link 'link'")
    _refused(_zip([(_with_mode("dev", stat.S_IFCHR | 0o644), b"")]), "'dev', which is not a plain file")
    _refused(_zip([(_with_mode("fifo", stat.S_IFIFO | 0o644), b"")]), "'fifo', which is not a plain file")


def test_encrypted_members():
    _refused(_encrypt_flag(_zip({"secret.bin": b"x" * 10})), "encrypted file 'secret.bin'")


def test_too_many_members():
    _refused(_zip({f"f{i}": b"" for i in range(6)}), "holds 6 files, more than the 5 allowed", max_members=5)


def test_total_and_per_member_sizes():
    data = _zip({"a": b"\1" * 600_000, "b": b"\1" * 600_000})
    _refused(data, "expands to 1.1 MB, over the 1.0 MB limit", max_total_bytes=MB)
    _refused(data, "'a' of 586 KB, over the 488 KB limit for one file", max_member_bytes=500_000)


def test_compression_ratio_bomb_under_the_size_limits():
    message = _refused(_zip({"zeros.bin": b"\0" * (4 * MB)}, deflate=True), "zip bomb")
    assert "'zeros.bin'" in message
    # the same bytes of real-looking data pass
    noise = np.random.default_rng(0).integers(0, 255, 4 * MB, dtype=np.uint8).tobytes()
    zipsafe.open_archive(_zip({"noise.bin": noise}, deflate=True), subject="s", not_a_zip="n",
                         max_total_bytes=10 * MB).close()


def test_read_member_bounds_and_damage():
    data = bytearray(_zip({"config.json": b"{" + b" " * 5000 + b"}"}, deflate=True))
    with zipsafe.open_archive(bytes(data), subject="'up.zip'", not_a_zip="n", max_total_bytes=MB) as zf:
        with pytest.raises(CompressionError, match="config.json in 'up.zip' is 5 KB, over the 1 KB limit"):
            zipsafe.read_member(zf, "config.json", "'up.zip'", max_bytes=1024)
    start = data.find(b"PK\x03\x04") + 30 + len("config.json")
    data[start + 2 : start + 8] = b"\xff" * 6  # corrupt the deflated stream
    with zipsafe.open_archive(bytes(data), subject="'up.zip'", not_a_zip="n", max_total_bytes=MB) as zf:
        with pytest.raises(CompressionError, match="config.json in 'up.zip' is damaged"):
            zipsafe.read_member(zf, "config.json", "'up.zip'")


def test_extract_all_stays_inside(tmp_path):
    with zipsafe.open_archive(_zip({"m/saved_model.pb": b"pb", "m/variables/": b""}), subject="s",
                              not_a_zip="n", max_total_bytes=MB) as zf:
        zipsafe.extract_all(zf, tmp_path, "s")
    assert (tmp_path / "m" / "saved_model.pb").read_bytes() == b"pb"
    assert (tmp_path / "m" / "variables").is_dir()


# ---------------------------------------------------------------- the rules reach every upload


def test_model_upload_refuses_a_duplicate_config(tmp_path):
    p = tmp_path / "twice.keras"
    p.write_bytes(_zip([("config.json", b"{}"), ("config.json", b"{}")]))
    with pytest.raises(CompressionError, match=r"^'twice.keras' holds 'config.json' twice; refused\.$"):
        load_user_model(p)


def test_model_upload_refuses_an_encrypted_member(tmp_path):
    p = tmp_path / "locked.zip"
    p.write_bytes(_encrypt_flag(_zip({"saved_model.pb": b"", "keras_metadata.pb": b""})))
    with pytest.raises(CompressionError, match="encrypted file"):
        load_user_model(p)


def test_npz_upload_refuses_a_symlink(tmp_path):
    buffer = io.BytesIO()
    np.save(buffer, np.zeros(3))
    p = tmp_path / "linked.npz"
    p.write_bytes(_zip([("x_train.npy", buffer.getvalue()), (_with_mode("y_train.npy", stat.S_IFLNK | 0o777), b"/")]))
    with pytest.raises(CompressionError, match=r"'linked.npz' holds a symbolic link 'y_train.npy'"):
        load_npz(p)
