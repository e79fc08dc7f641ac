"""The one place that decides whether an uploaded zip may be read.

Model uploads (``.keras``, zipped SavedModel), ``.npz`` datasets and History
imports are all zip archives from a user, so all go through the same rules
before anything reads a member: no encrypted members, no name twice, no
links or special files, no absolute, drive-letter or ``..`` paths, a bounded
number of members, a bounded size per member and in total (as the archive
*declares* them: ``zipfile`` stops reading a member at its declared size and
checks its CRC, so a lying header cannot inflate further), and no member
whose compression ratio only a zip bomb reaches. Each refusal is one
:class:`~compression.errors.CompressionError` sentence naming the member.

Usage::

    with open_archive(path, subject=repr(label), not_a_zip=f"{label!r} is not a zip.",
                      max_total_bytes=4 * limit) as zf:
        config = read_member(zf, "config.json", repr(label), max_bytes=32 * 2**20)
"""

from __future__ import annotations

import io
import re
import shutil
import stat
import zipfile
import zlib
from pathlib import Path
from typing import BinaryIO

from ..errors import CompressionError

MAX_MEMBERS = 10_000
# A member that inflates more than this many times is a bomb, once it is big enough to matter
# (a few KB of zeros legitimately compress a thousandfold; real weights and data stay under ~20x).
MAX_RATIO = 200
RATIO_CHECK_BYTES = 2**20

_DAMAGED = (zipfile.BadZipFile, OSError, EOFError, zlib.error, ValueError)
_ALLOWED_TYPES = (0, stat.S_IFREG, stat.S_IFDIR)  # 0: written by a tool that stores no Unix mode


def _sentence(subject: str, rest: str) -> str:
    return f"{subject[:1].upper()}{subject[1:]} {rest}"


def size_text(n: int) -> str:
    """A byte count for a message: "2.5 MB", "40 MB", "300 KB"."""
    if n >= 10 * 2**20:
        return f"{n / 2**20:.0f} MB"
    if n >= 2**20:
        return f"{n / 2**20:.1f} MB"
    return f"{max(n, 0) / 2**10:.0f} KB"


def unsafe_name(name: str) -> bool:
    """True for a member name that could write outside the folder it is extracted to."""
    parts = re.split(r"[\\/]", name)
    return (
        not name
        or name.startswith(("/", "\\"))
        or re.match(r"^[A-Za-z]:", name) is not None
        or ".." in parts
        or "\0" in name
    )


def check_members(
    zf: zipfile.ZipFile,
    subject: str,
    *,
    max_total_bytes: int,
    max_member_bytes: int | None = None,
    max_members: int = MAX_MEMBERS,
    max_ratio: float = MAX_RATIO,
) -> dict[str, zipfile.ZipInfo]:
    """Refuse an archive that breaks a rule; return its file members by name (directories left out).

    Args:
        zf: the open archive.
        subject: how a sentence names the archive, e.g. ``"'model.keras'"`` or ``"the export"``.
        max_total_bytes: the most all members may unpack to together.
        max_member_bytes: the most one member may unpack to (default: the total).
        max_members: the most entries (files and folders) the archive may hold.
        max_ratio: the most a member of 1 MB or more may inflate, as a multiple of its packed size.

    Raises:
        CompressionError: the first rule broken, in one sentence naming the member.
    """
    infos = zf.infolist()
    if len(infos) > max_members:
        raise CompressionError(_sentence(subject, f"holds {len(infos)} files, more than the {max_members} allowed."))
    total = sum(info.file_size for info in infos)
    if total > max_total_bytes:
        raise CompressionError(
            _sentence(subject, f"expands to {size_text(total)}, over the {size_text(max_total_bytes)} limit.")
        )
    per_member = max_total_bytes if max_member_bytes is None else max_member_bytes
    members: dict[str, zipfile.ZipInfo] = {}
    seen: set[str] = set()
    for info in infos:
        name = info.filename
        if unsafe_name(name):
            raise CompressionError(
                _sentence(subject, f"holds a file with an unsafe name {name!r} (an absolute or '..' path is an "
                          "unsafe path); refused.")
            )
        if name in seen:
            raise CompressionError(_sentence(subject, f"holds {name!r} twice; refused."))
        seen.add(name)
        kind = stat.S_IFMT(info.external_attr >> 16)
        if kind == stat.S_IFLNK:
            raise CompressionError(_sentence(subject, f"holds a symbolic link {name!r}; links are refused."))
        if kind not in _ALLOWED_TYPES:
            raise CompressionError(
                _sentence(subject, f"holds {name!r}, which is not a plain file (a link or device); refused.")
            )
        if info.flag_bits & 0x1:
            raise CompressionError(_sentence(subject, f"holds an encrypted file {name!r}; refused."))
        if info.file_size > per_member:
            raise CompressionError(
                _sentence(subject, f"holds {name!r} of {size_text(info.file_size)}, over the "
                          f"{size_text(per_member)} limit for one file.")
            )
        if info.file_size >= RATIO_CHECK_BYTES and info.file_size > max_ratio * max(info.compress_size, 1):
            ratio = info.file_size / max(info.compress_size, 1)
            raise CompressionError(
                _sentence(subject, f"holds {name!r}, which expands {ratio:.0f} times (more than the {max_ratio:g} "
                          "a real file reaches): a zip bomb; refused.")
            )
        if not info.is_dir():
            members[name] = info
    return members


def open_archive(
    source: str | Path | bytes | BinaryIO,
    *,
    subject: str,
    not_a_zip: str,
    max_total_bytes: int,
    max_member_bytes: int | None = None,
    max_members: int = MAX_MEMBERS,
    max_ratio: float = MAX_RATIO,
) -> zipfile.ZipFile:
    """Open a zip from a path, bytes or a file object, refusing it (closed) if it breaks a rule.

    Args:
        source: the archive.
        subject: how a sentence names it (see :func:`check_members`).
        not_a_zip: the sentence to raise when it is no readable zip at all.
        max_total_bytes, max_member_bytes, max_members, max_ratio: see :func:`check_members`.

    Returns:
        The open archive; use it as a context manager.

    Raises:
        CompressionError: not a zip (``not_a_zip``) or a broken rule.
    """
    if isinstance(source, (bytes, bytearray)):
        source = io.BytesIO(source)
    try:
        zf = zipfile.ZipFile(source)
    except _DAMAGED:
        raise CompressionError(not_a_zip) from None
    try:
        check_members(zf, subject, max_total_bytes=max_total_bytes, max_member_bytes=max_member_bytes,
                      max_members=max_members, max_ratio=max_ratio)
    except CompressionError:
        zf.close()
        raise
    return zf


def read_member(
    zf: zipfile.ZipFile, member: str | zipfile.ZipInfo, subject: str, *, max_bytes: int | None = None
) -> bytes:
    """One member's bytes, refusing one over ``max_bytes`` and reporting a damaged one in a sentence.

    Raises:
        CompressionError: too large, or damaged (bad CRC, truncated, bad compressed data).
    """
    info = member if isinstance(member, zipfile.ZipInfo) else zf.getinfo(member)
    if max_bytes is not None and info.file_size > max_bytes:
        raise CompressionError(
            f"{info.filename} in {subject} is {size_text(info.file_size)}, over the {size_text(max_bytes)} "
            "limit for it."
        )
    try:
        return zf.read(info)
    except _DAMAGED as exc:
        raise CompressionError(f"{info.filename} in {subject} is damaged ({exc}).") from None


def extract_all(zf: zipfile.ZipFile, dest: str | Path, subject: str) -> None:
    """Extract every member under ``dest`` of an archive :func:`check_members` passed.

    Raises:
        CompressionError: a member would land outside ``dest``, or is damaged.
    """
    root = Path(dest).resolve()
    for info in zf.infolist():
        target = (root / info.filename).resolve()
        if not target.is_relative_to(root) or unsafe_name(info.filename):
            raise CompressionError(
                _sentence(subject, f"holds a file with an unsafe name {info.filename!r} (an absolute or '..' "
                          "path is an unsafe path); refused.")
            )
        if info.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            with zf.open(info) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out, 2**20)
        except _DAMAGED as exc:
            raise CompressionError(f"{info.filename} in {subject} is damaged ({exc}).") from None

