"""parse_line's orjson path gives exactly what its json path gives (issue 7).

A line as bytes takes the orjson path when it can; the same line as str always takes
the standard library's json path.  Both must give the same Post, or the same reason.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.posts import Post, PostError, parse_line


def outcome(raw: bytes | str) -> Post | str | None:
    try:
        return parse_line(raw, "jsonl", "d")
    except PostError as error:
        return f"PostError: {error}"


def assert_same(raw: bytes) -> None:
    fast = outcome(raw)
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError:
        assert isinstance(fast, str) and "invalid UTF-8" in fast
        return
    assert fast == outcome(line)
    if isinstance(fast, Post):
        assert type(fast.id) is str and fast.meta == outcome(line).meta


EDGES = [
    b'{"id": "a", "text": "banana"}\n',
    b'{"id": 7, "text": "cookie", "label": "cookie", "lang": "en"}\r\n',
    b'{"id": 123456789012345678901234567890, "text": "big id"}\n',  # orjson: a float
    b'{"id": 18446744073709551615, "text": "u64"}\n',
    b'{"id": -9223372036854775809, "text": "below i64"}\n',
    b'{"text": "x", "score": 1e400}\n',  # json: inf; orjson refuses
    b'{"text": "x", "score": NaN}\n',
    b'{"text": "x", "score": 0.1, "tags": ["a", {"b": null}]}\n',
    b'{"text": "\\ud800 lone"}\n',
    b'{"text": "\\ud83c\\udf4c pair"}\n',
    b'{"text": "nul \\u0000 escaped"}\n',
    b'{"text": "raw \x00 nul"}\n',
    b'\xef\xbb\xbf{"text": "bom"}\n',
    b'{"text": "a", "text": "dup"}\n',
    b'{"id": true, "text": "bool id"}\n',
    b'{"id": null, "text": "null id"}\n',
    b'{"text": 5}\n',
    b'{"label": 3, "text": "x"}\n',
    b'{"id": "x"}\n',
    b'[1, 2]\n',
    b'"text"\n',
    b'{"text": "x"} trailing\n',
    b'   \n',
    b'\n',
    b'{"text": "bad utf8 \xff"}\n',
    b"[" * 980 + b"]" * 980 + b"\n",
    b'{"text": "deep", "x": ' + b"[" * 1010 + b"]" * 1010 + b"}\n",
]


@pytest.mark.parametrize("raw", EDGES)
def test_fast_path_equals_json_path(raw):
    assert_same(raw)


def test_fast_path_keeps_meta_and_ids():
    post = parse_line(b'{"id": 7, "text": "hi", "label": "banana", "lang": "en"}\n', "jsonl", "d")
    assert post == Post("7", "hi", "banana", {"lang": "en"})
    assert parse_line(b'{"text": "no id"}', "jsonl", "12").id == "12"


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)
OBJECTS = st.dictionaries(
    st.sampled_from(["id", "text", "label", "lang", "x"]) | st.text(max_size=5), JSON_VALUES,
    max_size=5,
)


@settings(max_examples=300, deadline=None)
@given(OBJECTS, st.booleans())
def test_fast_path_equals_json_path_on_any_object(obj, ascii_only):
    assert_same(json.dumps(obj, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass") + b"\n")
