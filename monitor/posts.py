"""Posts and the two line formats they arrive in: JSON Lines and plain text.

A JSON line is an object with a string ``text`` (the field name is configurable, e.g.
``full_text`` for common exports) and optionally ``id``, ``label`` and any metadata.
A plain-text line is one post.  Parsing one line is a pure function that either returns
a Post or raises PostError with a reason; callers decide whether that is fatal (``score``)
or a quarantine entry (the daemon).

JSON is parsed with orjson when it can give exactly what the standard library's json
would (an object whose values are strings, integers, booleans or null: the common
case); anything else (floats, nested values, bad lines) goes through ``json``, which
also words the reasons.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import orjson

MAX_LINE_BYTES = 1 << 20  # a post longer than 1 MiB is not a post


class PostError(ValueError):
    """A line that is not a valid post; ``str()`` is the reason."""


@dataclass
class Post:
    """One post: its id, text, optional training label and the rest of its fields."""

    id: str
    text: str
    label: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def detect_format(name: str, first_line: bytes | str = b"") -> str:
    """``jsonl`` or ``text``: by file suffix, else by whether the first line is an object."""
    lowered = name.lower()
    if lowered.endswith((".jsonl", ".json", ".ndjson")):
        return "jsonl"
    if lowered.endswith(".txt"):
        return "text"
    stripped = first_line.lstrip()
    return "jsonl" if stripped[:1] in (b"{", "{") else "text"


def parse_line(
    raw: bytes | str,
    fmt: str,
    default_id: str,
    text_field: str = "text",
    id_field: str = "id",
) -> Post | None:
    """One line → a Post, None for a blank line, or PostError with the reason."""
    if fmt == "jsonl" and isinstance(raw, bytes) and len(raw) <= MAX_LINE_BYTES:
        obj = _fast_object(raw)
        if obj is not None:
            return _post_of(obj, default_id, text_field, id_field)
    if isinstance(raw, bytes):
        if len(raw) > MAX_LINE_BYTES:
            raise PostError(f"line is {len(raw)} bytes, over the {MAX_LINE_BYTES} byte limit")
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise PostError(f"invalid UTF-8 at byte {error.start}") from None
    else:
        line = raw
        if len(line) > MAX_LINE_BYTES:
            raise PostError(f"line is over the {MAX_LINE_BYTES} byte limit")
    line = line.rstrip("\r\n")
    if "\x00" in line:
        raise PostError("line contains NUL bytes (binary data?)")
    if not line.strip():
        return None
    if fmt == "text":
        return Post(id=default_id, text=line)
    return _parse_json(line, default_id, text_field, id_field)


_FLAT = frozenset({str, int, bool, type(None)})


def _fast_object(raw: bytes) -> dict | None:
    """orjson's parse of a line when it equals json.loads's, else None (take the slow path).

    orjson accepts only valid UTF-8 without lone surrogates, so a line it parses has no
    NUL byte and decodes; it is stricter than json (no NaN, no 1e400), never looser, but
    reads integers past 64 bits as floats and nests deeper: a flat object of strings,
    integers, booleans and nulls is the same in both.
    """
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if type(obj) is not dict or not _FLAT.issuperset(map(type, obj.values())):
        return None
    return obj


def _parse_json(line: str, default_id: str, text_field: str, id_field: str) -> Post:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as error:
        raise PostError(f"invalid JSON: {error.msg} (column {error.colno})") from None
    except RecursionError:
        raise PostError("invalid JSON: nested too deeply") from None
    if not isinstance(obj, dict):
        raise PostError(f"expected a JSON object, got {type(obj).__name__}")
    if "\\ud" in line or "\\uD" in line:  # only \\uD800-\\uDFFF escapes can be lone surrogates
        _check_encodable(obj)
    return _post_of(obj, default_id, text_field, id_field)


def _post_of(obj: dict, default_id: str, text_field: str, id_field: str) -> Post:
    """A parsed JSON object → its Post (the object becomes the meta), or PostError."""
    if text_field not in obj:
        raise PostError(f"missing {text_field!r} field")
    text = obj.pop(text_field)
    if not isinstance(text, str):
        raise PostError(f"{text_field!r} must be a string, got {type(text).__name__}")
    post_id = obj.pop(id_field, None)
    if post_id is None:
        post_id = default_id
    elif not isinstance(post_id, (str, int)) or isinstance(post_id, bool):
        raise PostError(f"{id_field!r} must be a string or an integer")
    label = obj.pop("label", None)
    if label is not None and not isinstance(label, str):
        raise PostError(f"'label' must be a string, got {type(label).__name__}")
    return Post(post_id if type(post_id) is str else str(post_id), text, label, obj)


def _check_encodable(obj: dict) -> None:
    """A ``\\ud800``-style escape decodes to a lone surrogate, which no UTF-8 file or
    database can store: reject the line instead of failing later."""
    try:
        json.dumps(obj, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise PostError("invalid Unicode escape (lone surrogate)") from None
    except RecursionError:
        raise PostError("invalid JSON: nested too deeply") from None


class InputError(Exception):
    """A user-supplied input file problem, with file name and line number in the message."""


def read_posts(
    stream: IO[bytes],
    name: str,
    fmt: str | None = None,
    text_field: str = "text",
    id_field: str = "id",
) -> Iterator[Post]:
    """Every post in a stream; the first bad line raises InputError ``name:line: reason``.

    Posts without an id get their line number as id.
    """
    for number, raw in enumerate(stream, start=1):
        if fmt is None:
            if not raw.strip():
                continue
            fmt = detect_format(name, raw)
        try:
            post = parse_line(raw, fmt, str(number), text_field, id_field)
        except PostError as error:
            raise InputError(f"{name}:{number}: {error}") from None
        if post is not None:
            yield post
