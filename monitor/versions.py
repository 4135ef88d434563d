"""Model versions in the state directory: every checkpoint, its metrics, rollback.

A version is a model file ``<state>/models/v000007.npz`` plus one row of the ledger
table ``model_versions``: the journal sequence number it covers (every labelled post
with ``seq <= journal_seq`` is in it, none after), why it was written (``initial``,
``checkpoint``, ``shutdown``, ``paused``, ``rollback``, ``new-base``), the version it
came from and the prequential metrics at that moment.  Versions only ever grow: a
rollback writes a *new* version holding the old weights and covering the whole journal
so far, so "the latest version + the journal after it" is always the live model.

The file is written (atomically) before its row is committed, inside the same ledger
transaction, so a crash leaves at worst an orphan file that the next checkpoint with
that number overwrites.  Retention keeps the newest ``keep`` versions' files plus the
pinned ones (``initial``, ``new-base``); pruned versions stay listed in the history.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from monitor.model import Model, ModelError

MODELS_DIR = "models"
PINNED = ("initial", "new-base")
_COLUMNS = (
    "version, file, journal_seq, created_at, reason, parent, updates, metrics, pruned"
)


class VersionError(Exception):
    """A version that does not exist or cannot be restored; ``str()`` is for the user."""


def create_schema(conn: sqlite3.Connection) -> None:
    """The version table and the learner's small key/value state (idempotent)."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS model_versions ("
        " version INTEGER PRIMARY KEY,"
        " file TEXT NOT NULL,"
        " journal_seq INTEGER NOT NULL,"
        " created_at TEXT NOT NULL,"
        " reason TEXT NOT NULL,"
        " parent INTEGER,"
        " updates INTEGER NOT NULL DEFAULT 0,"
        " metrics TEXT NOT NULL DEFAULT '{}',"
        " fingerprint TEXT,"
        " pruned INTEGER NOT NULL DEFAULT 0)"
    )
    conn.execute(
        "CREATE TABLE IF NOT EXISTS learn_state (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
    )


@dataclass(frozen=True)
class Version:
    """One row of ``model_versions``."""

    version: int
    file: str
    journal_seq: int
    created_at: str
    reason: str
    parent: int | None
    updates: int
    metrics: dict[str, Any]
    pruned: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "created_at": self.created_at,
            "reason": self.reason,
            "parent": self.parent,
            "journal_seq": self.journal_seq,
            "updates": self.updates,
            "metrics": self.metrics,
            "file": self.file,
            "available": not self.pruned,
        }


def _version(row: tuple) -> Version:
    version, file, seq, created, reason, parent, updates, metrics, pruned = row
    return Version(version, file, seq, created, reason, parent, updates,
                   json.loads(metrics), bool(pruned))


def latest_version(conn: sqlite3.Connection) -> Version | None:
    """The newest version row (the live model's base), or None before the first."""
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM model_versions ORDER BY version DESC LIMIT 1"
    ).fetchone()
    return _version(row) if row else None


class VersionStore:
    """The versions of one state directory; every method takes the ledger connection."""

    def __init__(self, state_dir: str | Path):
        self.directory = Path(state_dir) / MODELS_DIR

    def path_of(self, version: int) -> Path:
        return self.directory / f"v{version:06d}.npz"

    # -------------------------------------------------------------- reading

    def latest(self, conn: sqlite3.Connection) -> Version | None:
        return latest_version(conn)

    def get(self, conn: sqlite3.Connection, version: int) -> Version | None:
        row = conn.execute(
            f"SELECT {_COLUMNS} FROM model_versions WHERE version = ?", (version,)
        ).fetchone()
        return _version(row) if row else None

    def history(self, conn: sqlite3.Connection) -> list[Version]:
        rows = conn.execute(f"SELECT {_COLUMNS} FROM model_versions ORDER BY version")
        return [_version(row) for row in rows]

    def fingerprint(self, conn: sqlite3.Connection, version: int) -> str | None:
        row = conn.execute(
            "SELECT fingerprint FROM model_versions WHERE version = ?", (version,)
        ).fetchone()
        return row[0] if row else None

    def load(self, version: Version) -> Model:
        """The model file of a version; a pruned or unreadable one raises VersionError."""
        if version.pruned:
            raise VersionError(f"version {version.version} was pruned (retention)")
        try:
            return Model.load(self.directory / version.file)
        except ModelError as error:
            raise VersionError(f"version {version.version}: {error}") from None

    # -------------------------------------------------------------- writing

    def remove_partial_files(self) -> list[str]:
        """Delete temp files a kill -9 left mid-save (``.vNNNNNN.npz.*.tmp``)."""
        removed = []
        for path in self.directory.glob(".v*.npz.*.tmp"):
            path.unlink(missing_ok=True)
            removed.append(path.name)
        return removed

    def save(
        self,
        conn: sqlite3.Connection,
        model: Model,
        *,
        journal_seq: int,
        reason: str,
        parent: int | None,
        updates: int,
        metrics: dict[str, Any],
        fingerprint: str | None = None,
        version: int | None = None,
    ) -> Version:
        """Write ``model`` as the next version (file first, then its row, same txn).

        Sets ``model.meta["version"]`` to the new number, so alerts scored by the live
        model carry it.
        """
        latest = self.latest(conn)
        if version is None:
            version = latest.version + 1 if latest else max(model.version, 1)
        elif latest and version <= latest.version:
            raise VersionError(f"version {version} is not after {latest.version}")
        model.meta["version"] = version
        model.meta["checkpoint"] = {"journal_seq": journal_seq, "reason": reason,
                                    "parent": parent}
        path = model.save(self.path_of(version))
        created = datetime.now(timezone.utc).isoformat(timespec="seconds")
        conn.execute(
            "INSERT INTO model_versions (version, file, journal_seq, created_at, reason,"
            " parent, updates, metrics, fingerprint) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (version, path.name, journal_seq, created, reason, parent, updates,
             json.dumps(metrics), fingerprint),
        )
        return Version(version, path.name, journal_seq, created, reason, parent, updates,
                       metrics, False)

    def prune(self, conn: sqlite3.Connection, keep: int) -> list[int]:
        """Delete the files of all but the newest ``keep`` versions (pinned ones stay)."""
        keep = max(int(keep), 1)
        rows = conn.execute(
            "SELECT version, file, reason FROM model_versions WHERE pruned = 0"
            " ORDER BY version DESC"
        ).fetchall()
        pruned = []
        for version, file, reason in rows[keep:]:
            if reason in PINNED:
                continue
            conn.execute("UPDATE model_versions SET pruned = 1 WHERE version = ?", (version,))
            (self.directory / file).unlink(missing_ok=True)
            pruned.append(version)
        return pruned

    def restore(
        self,
        conn: sqlite3.Connection,
        version: int | None,
        journal_seq: int,
        updates: int,
    ) -> Version:
        """Roll back: a new version with the weights of ``version`` (default: the one
        before the latest), covering the journal up to ``journal_seq``."""
        latest = self.latest(conn)
        if latest is None:
            raise VersionError("no model versions yet (has the daemon run with learning?)")
        target = self._target(conn, latest, version)
        model = self.load(target)
        model.meta["restored_from"] = target.version
        metrics = dict(target.metrics, restored_from=target.version)
        return self.save(
            conn, model, journal_seq=journal_seq, reason="rollback", parent=target.version,
            updates=updates, metrics=metrics,
            fingerprint=self.fingerprint(conn, target.version),
        )

    def _target(self, conn, latest: Version, version: int | None) -> Version:
        if version is None:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM model_versions WHERE version < ? AND pruned = 0"
                " ORDER BY version DESC LIMIT 1",
                (latest.version,),
            ).fetchone()
            if row is None:
                raise VersionError(f"no version before {latest.version} to roll back to")
            return _version(row)
        target = self.get(conn, version)
        if target is None:
            known = [v.version for v in self.history(conn)]
            raise VersionError(f"no version {version}; known versions: {known}")
        return target


# ---------------------------------------------------------------- key/value state


def get_state(conn: sqlite3.Connection, key: str) -> Any:
    row = conn.execute("SELECT value FROM learn_state WHERE key = ?", (key,)).fetchone()
    return json.loads(row[0]) if row else None


def set_state(conn: sqlite3.Connection, key: str, value: Any) -> None:
    if value is None:
        conn.execute("DELETE FROM learn_state WHERE key = ?", (key,))
    else:
        conn.execute(
            "INSERT INTO learn_state (key, value) VALUES (?, ?)"
            " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, json.dumps(value)),
        )
