"""Feed files: names, reading, stable ids, bad lines, whole-file rejections, moves.

Also the property tests (hypothesis) of the line parser, monitor.posts.parse_line.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor import feed
from monitor.posts import MAX_LINE_BYTES, Post, PostError, parse_line


@pytest.fixture
def feed_dir(tmp_path) -> Path:
    path = tmp_path / "feed"
    path.mkdir()
    return path


@pytest.mark.parametrize("name, ok", [
    ("posts.jsonl", True), ("posts.txt", True), ("export", True),
    (".hidden.jsonl", False), ("posts.jsonl.tmp", False), ("posts.part", False), ("", False),
])
def test_candidate_names(name, ok):
    assert feed.is_candidate_name(name) is ok


def test_read_file_key_ids_and_bad_lines(feed_dir):
    data = (b'{"id": "x1", "text": "banana", "lang": "en"}\n'
            b'{"text": "cookie", "label": "cookie"}\n'
            b"\n"
            b'{"text": 7}\n'
            b'{"text": "no newline at end"}')
    path = feed_dir / "a.jsonl"
    path.write_bytes(data)
    item = feed.read_feed_file(path, feed_dir)
    digest = hashlib.sha256(data).hexdigest()
    assert item.key == f"sha256:{digest}" and item.rejected is None
    assert [(p.id, p.text, p.label) for p in item.posts] == [
        ("x1", "banana", None), (f"{digest[:16]}:2", "cookie", "cookie"),
        (f"{digest[:16]}:5", "no newline at end", None)]
    assert item.posts[0].meta == {"lang": "en"}
    assert [(bad.line, bad.error, bad.raw) for bad in item.errors] == [
        (4, "'text' must be a string, got int", b'{"text": 7}')]
    # the same bytes under another name: the same key and ids (stable across restarts)
    other = feed_dir / "b.jsonl"
    other.write_bytes(data)
    again = feed.read_feed_file(other, feed_dir)
    assert again.key == item.key and [p.id for p in again.posts] == [p.id for p in item.posts]


def test_plain_text_and_custom_fields(feed_dir):
    (feed_dir / "t.txt").write_bytes(b"banana bread\r\n\ncookie time\n")
    item = feed.read_feed_file(feed_dir / "t.txt", feed_dir)
    assert [p.text for p in item.posts] == ["banana bread", "cookie time"]
    (feed_dir / "x.jsonl").write_bytes(b'{"id_str": "9", "full_text": "banana"}\n')
    item = feed.read_feed_file(feed_dir / "x.jsonl", feed_dir, "full_text", "id_str")
    assert [(p.id, p.text) for p in item.posts] == [("9", "banana")]


def test_binary_file_is_rejected(feed_dir):
    (feed_dir / "img.jsonl").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00")
    item = feed.read_feed_file(feed_dir / "img.jsonl", feed_dir)
    assert item.rejected == "binary file (NUL bytes)" and item.posts == []


def test_symlinks_inside_are_read_outside_are_rejected(feed_dir, tmp_path):
    (feed_dir / "real.jsonl").write_bytes(b'{"text": "banana"}\n')
    (feed_dir / "inside.jsonl").symlink_to(feed_dir / "real.jsonl")
    item = feed.read_feed_file(feed_dir / "inside.jsonl", feed_dir)
    assert item.rejected is None and [p.text for p in item.posts] == ["banana"]
    (tmp_path / "secret").write_bytes(b'{"text": "secret"}\n')
    (feed_dir / "out.jsonl").symlink_to(tmp_path / "secret")
    item = feed.read_feed_file(feed_dir / "out.jsonl", feed_dir)
    assert item.rejected == "symlink points outside the feed directory" and item.posts == []
    (feed_dir / "dotdot.jsonl").symlink_to("../secret")
    assert feed.read_feed_file(feed_dir / "dotdot.jsonl", feed_dir).rejected is not None


def test_unreadable_file_is_rejected(feed_dir, monkeypatch):
    """chmod 000 does not stop root, so the permission error is injected at open()."""
    path = feed_dir / "locked.jsonl"
    path.write_bytes(b'{"text": "banana"}\n')
    real_open = os.open

    def deny(target, flags, *args, **kwargs):
        if Path(target).name == "locked.jsonl":
            raise PermissionError(13, "Permission denied")
        return real_open(target, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", deny)
    item = feed.read_feed_file(path, feed_dir)
    assert item.rejected == "permission denied" and item.key.startswith("rejected:")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads mode-000 files")
def test_mode_000_file_is_rejected(feed_dir):
    path = feed_dir / "locked.jsonl"
    path.write_bytes(b'{"text": "banana"}\n')
    path.chmod(0)
    assert feed.read_feed_file(path, feed_dir).rejected == "permission denied"


def test_vanished_file_raises(feed_dir):
    with pytest.raises(feed.FileVanished):
        feed.read_feed_file(feed_dir / "gone.jsonl", feed_dir)


def test_too_large_and_fifo_are_rejected(feed_dir):
    (feed_dir / "big.txt").write_bytes(b"banana\n" * 100)
    item = feed.read_feed_file(feed_dir / "big.txt", feed_dir, max_file_bytes=100)
    assert "over the 100 limit" in item.rejected
    os.mkfifo(feed_dir / "pipe.jsonl")
    assert feed.read_feed_file(feed_dir / "pipe.jsonl", feed_dir).rejected == "not a regular file"


def test_list_candidates_skips_dirs_and_ignored(feed_dir):
    for name in ["a.jsonl", ".b.jsonl", "c.part", "d.txt"]:
        (feed_dir / name).write_text("x\n")
    (feed_dir / "processed").mkdir()
    assert sorted(p.name for p in feed.list_candidates(feed_dir)) == ["a.jsonl", "d.txt"]


def test_quarantine_and_processed_moves_are_idempotent(feed_dir):
    path = feed_dir / "a.jsonl"
    path.write_bytes(b'{"text": "banana"}\nnot json\n')
    item = feed.read_feed_file(path, feed_dir)
    first = feed.write_quarantine(feed_dir, item)
    second = feed.write_quarantine(feed_dir, item)
    assert first == second
    record = json.loads(first.read_text())
    assert record["errors"] == [{"file": "a.jsonl", "line": 2,
                                 "error": "invalid JSON: Expecting value (column 1)"}]
    assert first.with_name(first.name.replace(".reason.json", ".lines")).read_bytes() == \
        b"not json\n"
    assert feed.move_to_processed(feed_dir, path, item.key) == feed_dir / "processed/a.jsonl"
    assert feed.move_to_processed(feed_dir, path, item.key) is None  # already moved
    # a new file with a used name keeps both
    path.write_bytes(b'{"text": "cookie"}\n')
    other = feed.read_feed_file(path, feed_dir)
    moved = feed.move_to_processed(feed_dir, path, other.key)
    assert moved.name == f"a.{other.key[7:19]}.jsonl"
    assert (feed_dir / "processed/a.jsonl").read_bytes().startswith(b'{"text": "banana"}')


def test_quarantine_file_moves_link_not_target(feed_dir, tmp_path):
    (tmp_path / "target").write_text("x")
    (feed_dir / "l.jsonl").symlink_to(tmp_path / "target")
    feed.quarantine_file(feed_dir, feed_dir / "l.jsonl", "rejected:1", "symlink points outside")
    assert (feed_dir / "quarantine/l.jsonl").is_symlink() and (tmp_path / "target").exists()
    record = json.loads((feed_dir / "quarantine/l.jsonl.reason.json").read_text())
    assert record == {"file": "l.jsonl", "line": None, "error": "symlink points outside",
                      "key": "rejected:1"}


# ------------------------------------------------------------------ parse_line properties

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20),
                         st.floats(allow_nan=False, allow_infinity=False))
post_objects = st.fixed_dictionaries(
    {"text": st.text(max_size=200)},
    optional={"id": st.one_of(st.text(max_size=30), st.integers()),
              "label": st.sampled_from(["banana", "cookie", "other"]),
              "lang": json_scalars, "user": st.dictionaries(st.text(max_size=5), json_scalars)},
)


@settings(max_examples=300, deadline=None)
@given(obj=post_objects, ascii_only=st.booleans())
def test_property_json_round_trip(obj, ascii_only):
    raw = json.dumps(obj, ensure_ascii=ascii_only).encode("utf-8")
    post = parse_line(raw, "jsonl", "default")
    assert post.text == obj["text"]
    assert post.id == (str(obj["id"]) if "id" in obj else "default")
    assert post.label == obj.get("label")
    assert post.meta == {k: v for k, v in obj.items() if k not in ("text", "id", "label")}


@settings(max_examples=500, deadline=None)
@given(raw=st.binary(max_size=300), fmt=st.sampled_from(["jsonl", "text"]))
def test_property_any_bytes_give_a_post_none_or_post_error(raw, fmt):
    try:
        post = parse_line(raw, fmt, "d")
    except PostError as error:
        assert str(error)
        return
    if post is None:
        assert not raw.decode("utf-8").strip()
    else:
        assert isinstance(post, Post) and isinstance(post.text, str)
        post.text.encode("utf-8")  # always storable


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=300).filter(
    lambda t: t.strip() and "\n" not in t and "\r" not in t and "\x00" not in t
    and t.rstrip("\r\n").strip()))
def test_property_plain_text_line_is_the_post(text):
    post = parse_line(text.encode("utf-8") + b"\n", "text", "7")
    assert post == Post(id="7", text=text)


@settings(max_examples=200, deadline=None)
@given(obj=post_objects, cut=st.integers(min_value=1, max_value=50))
def test_property_truncated_json_is_rejected(obj, cut):
    raw = json.dumps(obj).encode()
    truncated = raw[: max(1, len(raw) - cut)]
    try:
        post = parse_line(truncated, "jsonl", "d")
    except PostError:
        return
    assert post is None or truncated == raw  # a shorter prefix of an object never parses


@pytest.mark.parametrize("raw, reason", [
    (b'{"text": "\\ud800"}', "lone surrogate"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    (b'{"text": "a"}' + b" " * MAX_LINE_BYTES, "byte limit"),
    (b'"just a string"', "expected a JSON object"),
    (b'{"text": "a", "id": true}', "must be a string or an integer"),
    (b'{"text": "a", "label": 3}', "'label' must be a string"),
    (b'{"text": "caf\xe9"}', "invalid UTF-8"),
])
def test_parse_line_reasons(raw, reason):
    with pytest.raises(PostError, match=reason):
        parse_line(raw, "jsonl", "d")


def test_move_after_a_crash_between_link_and_unlink(feed_dir):
    """The move is link + unlink; a crash in between leaves both names: the next ack
    finishes it without a second copy."""
    path = feed_dir / "a.jsonl"
    path.write_bytes(b'{"text": "banana"}\n')
    (feed_dir / "processed").mkdir()
    os.link(path, feed_dir / "processed/a.jsonl")  # the crash happened here
    assert feed.move_to_processed(feed_dir, path, "sha256:abc") == feed_dir / "processed/a.jsonl"
    assert not path.exists() and os.listdir(feed_dir / "processed") == ["a.jsonl"]


@settings(max_examples=300, deadline=None)
@given(parts=st.lists(st.sampled_from(["a", " ", "\\ud83c", "\\udf4c", "\\uD800", "\\u00e9",
                                       "\\n", "banana"]), max_size=12))
def test_property_unicode_escapes_give_storable_text_or_post_error(parts):
    raw = ('{"text": "' + "".join(parts) + '"}').encode()
    try:
        post = parse_line(raw, "jsonl", "d")
    except PostError as error:
        assert "lone surrogate" in str(error)
        return
    post.text.encode("utf-8")  # the ledger, the outbox and the jsonl file can store it


def test_vanishing_mid_read(feed_dir, monkeypatch):
    """Unlinked after open: Linux still reads the data (it is processed); on NFS the read
    fails with ESTALE: FileVanished, and the source skips the file with a logged reason."""
    import errno

    path = feed_dir / "v.jsonl"
    path.write_bytes(b'{"text": "banana"}\n')
    real_read = os.read

    def unlink_then_read(fd, size):
        path.unlink(missing_ok=True)
        return real_read(fd, size)

    monkeypatch.setattr(os, "read", unlink_then_read)
    assert [p.text for p in feed.read_feed_file(path, feed_dir).posts] == ["banana"]
    path.write_bytes(b'{"text": "banana"}\n')

    def stale(fd, size):
        raise OSError(errno.ESTALE, "Stale file handle")

    monkeypatch.setattr(os, "read", stale)
    with pytest.raises(feed.FileVanished):
        feed.read_feed_file(path, feed_dir)
