"""Post files in the feed directory: which names count, reading them, where they go after.

- A candidate is a regular file directly in the feed directory whose name does not
  start with ``.`` and does not end in ``.tmp``/``.part`` (those are still being written).
- A file is read whole (at most ``max_file_bytes``); its key is ``sha256:<hex>`` of its
  bytes, and a post without an id gets ``<first 16 hex digits>:<line number>``: stable
  across restarts, so a file re-read after a crash yields the same ids.
- Bad lines become BadLine entries (the rest of the file still goes through); a file
  that cannot be used at all (binary, unreadable, a symlink out of the feed directory,
  too large) becomes a rejected WorkItem.  A file that vanished raises FileVanished.
- After the ledger commit: ``move_to_processed`` and ``write_quarantine`` (bad lines:
  ``quarantine/<name>.<hash12>.reason.json`` + ``.lines``; whole files are moved into
  ``quarantine/`` with ``<name>.reason.json`` beside them).  Both are idempotent.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import NamedTuple

from monitor.posts import PostError, detect_format, parse_line
from monitor.sources.base import BadLine, WorkItem

IGNORED_SUFFIXES = (".tmp", ".part")
PROCESSED = "processed"
QUARANTINE = "quarantine"
BINARY_SNIFF = 8192
MAX_KEPT_LINE = 64 * 1024  # bad lines are copied to quarantine up to this many bytes


class FeedHandle(NamedTuple):
    """WorkItem.handle of a feed file: its path and the (inode, device) that was read."""

    path: Path
    identity: tuple[int, int] | None


class FileVanished(Exception):
    """The file disappeared between being seen and being read."""


def is_candidate_name(name: str) -> bool:
    """Whether a file name in the feed directory is a post file ready to be read."""
    return bool(name) and not name.startswith(".") and not name.endswith(IGNORED_SUFFIXES)


def list_candidates(feed_dir: Path) -> list[Path]:
    """Every candidate entry (files and symlinks) directly in ``feed_dir``."""
    found = []
    try:
        entries = list(os.scandir(feed_dir))
    except FileNotFoundError:
        return []
    for entry in entries:
        try:
            if is_candidate_name(entry.name) and (entry.is_symlink() or entry.is_file()):
                found.append(Path(entry.path))
        except OSError:
            continue
    return found


def read_feed_file(
    path: Path,
    feed_dir: Path,
    text_field: str = "text",
    id_field: str = "id",
    max_file_bytes: int = 256 * 1024 * 1024,
) -> WorkItem:
    """A complete file → a WorkItem (posts + bad lines), or a rejected one with a reason."""
    identity = _identity(path)
    handle = FeedHandle(path, identity)
    try:
        data = _read_bytes(path, feed_dir, max_file_bytes)
    except _Rejected as rejection:
        return WorkItem(key=_rejection_key(path), posts=[], name=path.name,
                        rejected=str(rejection), handle=handle)
    key = "sha256:" + hashlib.sha256(data).hexdigest()
    if b"\x00" in data[:BINARY_SNIFF]:
        return WorkItem(key=key, posts=[], name=path.name,
                        rejected="binary file (NUL bytes)", handle=handle)
    posts, errors = parse_lines(data, path.name, key[7:23], text_field, id_field)
    return WorkItem(key=key, posts=posts, errors=errors, name=path.name, handle=handle)


def _identity(path: Path) -> tuple[int, int] | None:
    """(inode, device) of the directory entry itself (a symlink is not followed)."""
    try:
        info = os.lstat(path)
    except OSError:
        return None
    return info.st_ino, info.st_dev


def parse_lines(data: bytes, name: str, id_prefix: str, text_field: str, id_field: str):
    """File bytes → (posts, bad lines); ids default to ``<id_prefix>:<line>``."""
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    first = next((line for line in lines if line.strip()), b"")
    fmt = detect_format(name, first)
    posts, errors = [], []
    for number, raw in enumerate(lines, start=1):
        try:
            post = parse_line(raw, fmt, f"{id_prefix}:{number}", text_field, id_field)
        except PostError as error:
            errors.append(BadLine(number, str(error), raw[:MAX_KEPT_LINE]))
            continue
        if post is not None:
            posts.append(post)
    return posts, errors


class _Rejected(Exception):
    """The whole file is unusable; ``str()`` is the reason."""


def _read_bytes(path: Path, feed_dir: Path, max_file_bytes: int) -> bytes:
    target = _checked_target(path, feed_dir)
    try:
        fd = os.open(target, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        raise FileVanished(path.name) from None
    except PermissionError:
        raise _Rejected("permission denied") from None
    except OSError as error:
        raise _Rejected(f"cannot open: {error.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _Rejected("not a regular file")
        if info.st_size > max_file_bytes:
            raise _Rejected(f"file is {info.st_size} bytes, over the {max_file_bytes} limit")
        return _read_all(fd, max_file_bytes)
    finally:
        os.close(fd)


def _read_all(fd: int, limit: int) -> bytes:
    chunks, total = [], 0
    while True:
        try:
            chunk = os.read(fd, 1 << 20)
        except OSError as error:
            if error.errno in (errno.ENOENT, errno.ESTALE):
                raise FileVanished(str(fd)) from None
            raise _Rejected(f"read failed: {error.strerror}") from None
        if not chunk:
            return b"".join(chunks)
        total += len(chunk)
        if total > limit:
            raise _Rejected(f"file grew over the {limit} byte limit while being read")
        chunks.append(chunk)


def _checked_target(path: Path, feed_dir: Path) -> Path:
    """The file to open: ``path`` itself, or a symlink's target if inside the feed dir."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        raise FileVanished(path.name) from None
    if not stat.S_ISLNK(info.st_mode):
        return path
    real = Path(os.path.realpath(path))
    root = Path(os.path.realpath(feed_dir))
    if root not in real.parents:
        raise _Rejected("symlink points outside the feed directory")
    return real


def _rejection_key(path: Path) -> str:
    """A key for a file whose bytes cannot be read: its name, inode and change time."""
    try:
        info = os.lstat(path)
        identity = f"{path.name}:{info.st_ino}:{info.st_ctime_ns}"
    except OSError:
        identity = f"{path.name}:gone"
    return "rejected:" + hashlib.sha256(identity.encode("utf-8", "surrogateescape")).hexdigest()


# ------------------------------------------------------------------ after the commit


def move_to_processed(feed_dir: Path, path: Path, key: str,
                      identity: tuple[int, int] | None = None) -> Path | None:
    """Move a done file into ``processed/`` (a clashing name gets the hash appended).

    With ``identity`` (what was read), a file replaced under the same name since then is
    left alone (None is returned): it is new work.
    """
    if identity is not None and _identity(path) not in (identity, None):
        return None
    return _move_into(feed_dir / PROCESSED, path, key)


def quarantine_file(feed_dir: Path, path: Path, key: str, reason: str,
                    identity: tuple[int, int] | None = None) -> Path | None:
    """Move an unusable file (or the symlink itself) into ``quarantine/`` with its reason."""
    if identity is not None and _identity(path) not in (identity, None):
        return None  # replaced since it was looked at: new work
    moved = _move_into(feed_dir / QUARANTINE, path, key)
    name = moved.name if moved is not None else path.name
    _write_json(feed_dir / QUARANTINE / f"{name}.reason.json",
                {"file": path.name, "line": None, "error": reason, "key": key})
    return moved


def write_quarantine(feed_dir: Path, item: WorkItem) -> Path | None:
    """Record an item's bad lines: ``<name>.<hash12>.reason.json`` and ``.lines`` (raw)."""
    if not item.errors:
        return None
    directory = feed_dir / QUARANTINE
    stem = f"{item.name}.{item.key.split(':')[-1][:12]}"
    reason = {
        "file": item.name,
        "key": item.key,
        "errors": [{"file": item.name, **bad.to_dict()} for bad in item.errors],
    }
    _write_bytes(directory / f"{stem}.lines", b"".join(bad.raw + b"\n" for bad in item.errors))
    return _write_json(directory / f"{stem}.reason.json", reason)


def _move_into(directory: Path, path: Path, key: str) -> Path | None:
    """Hard-link into ``directory`` then unlink: the watched directory sees a delete, not
    an unpaired move-out (which stalls watchdog's event queue for 0.5 s).  A crash
    between the two steps is finished on the next ack.  Falls back to rename."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / path.name
    if _same_file(path, target):
        path.unlink(missing_ok=True)
        return target
    if target.exists() or target.is_symlink():
        suffix = "".join(path.suffixes[-1:])
        stem = path.name[: len(path.name) - len(suffix)]
        target = directory / f"{stem}.{key.split(':')[-1][:12]}{suffix}"
    try:
        os.link(path, target, follow_symlinks=False)
    except FileNotFoundError:
        return None
    except FileExistsError:
        if not _same_file(path, target):
            os.replace(path, target)
            return target
    except OSError:  # no hard links here (some network file systems)
        try:
            os.replace(path, target)
        except FileNotFoundError:
            return None
        return target
    path.unlink(missing_ok=True)
    return target


def _same_file(a: Path, b: Path) -> bool:
    try:
        first, second = os.lstat(a), os.lstat(b)
    except OSError:
        return False
    return (first.st_ino, first.st_dev) == (second.st_ino, second.st_dev)


def _write_json(path: Path, value) -> Path:
    return _write_bytes(path, (json.dumps(value, ensure_ascii=False) + "\n").encode())


def _write_bytes(path: Path, data: bytes) -> Path:
    """Atomically (temp file + rename) so a crash never leaves half a reason file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:80]}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
