"""The ledger: WAL SQLite in the state dir, one transaction per item."""

from __future__ import annotations

import sqlite3

import pytest

from monitor.ledger import Ledger


@pytest.fixture
def ledger(tmp_path):
    opened = Ledger(tmp_path / "state")
    yield opened
    opened.close()


def test_creates_wal_database(ledger, tmp_path):
    assert (tmp_path / "state/ledger.sqlite3").is_file()
    assert ledger.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_mark_done_commits_items_and_posts_together(ledger):
    with ledger.transaction() as conn:
        Ledger.mark_done(conn, "k1", "dir:/f", "a.jsonl", ["p1", "p2"], ["banana", "other"],
                         alerts=1, quarantined=2)
    assert ledger.is_done("k1") and not ledger.is_done("k2")
    assert ledger.conn.execute("SELECT post_id, item_key, label FROM posts ORDER BY 1").fetchall() \
        == [("p1", "k1", "banana"), ("p2", "k1", "other")]
    assert ledger.counts() == {"items": 1, "posts": 2, "post_lines": 2, "alerts": 1,
                               "quarantined_lines": 2, "quarantined_files": 0}


def test_rollback_leaves_nothing(ledger):
    with pytest.raises(RuntimeError):
        with ledger.transaction() as conn:
            Ledger.mark_done(conn, "k1", "s", "a", ["p1"], ["banana"], 0, 0)
            raise RuntimeError("crash inside the transaction")
    assert not ledger.is_done("k1")
    assert ledger.counts()["posts"] == 0


def test_rejected_items_and_repeated_post_ids(ledger):
    with ledger.transaction() as conn:
        Ledger.mark_done(conn, "k1", "s", "a", ["p1"], ["banana"], 1, 0)
        Ledger.mark_done(conn, "k2", "s", "b", ["p1"], ["banana"], 0, 0)  # same post id again
        Ledger.mark_done(conn, "r1", "s", "bin", [], [], 0, 0, status="rejected",
                         reason="binary file")
    counts = ledger.counts()
    assert counts["posts"] == 1 and counts["post_lines"] == 2 and counts["quarantined_files"] == 1


def test_register_schema_and_meta_survive_reopen(tmp_path):
    ledger = Ledger(tmp_path)
    ledger.register_schema(lambda conn: conn.execute(
        "CREATE TABLE IF NOT EXISTS extra (x INTEGER)"))
    with ledger.transaction() as conn:
        conn.execute("INSERT INTO extra VALUES (42)")
    ledger.set_meta(pid=123, model_version=4, stopped_at=None)
    ledger.close()
    again = Ledger(tmp_path, readonly=True)
    assert again.conn.execute("SELECT x FROM extra").fetchall() == [(42,)]
    assert again.meta() == {"pid": "123", "model_version": "4", "stopped_at": None}
    with pytest.raises(sqlite3.OperationalError):
        again.conn.execute("INSERT INTO extra VALUES (1)")
    again.close()
