"""Review history: an append-only SQLite log whose records are chained by sha256.

Each record stores its sequence number, the previous record's hash and its own hash over
(seq, kind, name, created, previous hash, body). ``verify`` recomputes the chain: an edited
record breaks its own hash, a deleted one breaks the link or the sequence. Deleting only the
newest record cannot be seen from inside the file, so every report also prints the record's
hash for keeping elsewhere (a CI artifact, a ticket).

Retention: ``prune(keep_days)`` deletes old run records and appends a ``prune`` record that
names the last deleted record and its hash (the anchor); ``verify`` accepts a chain that
starts right after such an anchor. Writers take SQLite's write lock (``BEGIN IMMEDIATE``)
for read-last-then-insert, so concurrent reviews cannot fork the chain.
Records hold aggregates only (group counts, rates, disparities, verdicts), never a data row.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

from fairscan.errors import FairscanError

__all__ = ["GENESIS", "History", "canonical"]

GENESIS = "0" * 64
_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    created TEXT NOT NULL,
    body TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS records_name ON records(name, seq);
"""


def _digest(seq: int, kind: str, name: str, created: str, prev: str, body: str) -> str:
    return hashlib.sha256("\x1f".join([str(seq), kind, name, created, prev, body]).encode()).hexdigest()


def canonical(obj: Any) -> str:
    """The JSON text that is hashed: sorted keys, no NaN."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False, default=str)


class History:
    """The history file. Cheap to open; each call uses its own short connection."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with closing(self._connect()) as con:
                con.executescript(_SCHEMA)
        except sqlite3.DatabaseError as e:
            raise FairscanError(f"history '{self.path}' is not a fairscan SQLite history ({e})") from None
        except OSError as e:
            raise FairscanError(f"cannot open history '{self.path}': {e.strerror}") from None

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA busy_timeout=60000")
        return con

    def append(self, kind: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """Append a record atomically; returns seq, created and hash."""
        text = canonical(body)
        created = dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")
        with closing(self._connect()) as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                last = con.execute("SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1").fetchone()
                seq = (last[0] + 1) if last else 1
                prev = last[1] if last else GENESIS
                h = _digest(seq, kind, name, created, prev, text)
                con.execute("INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?)",
                            (seq, kind, name, created, text, prev, h))
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        return {"seq": seq, "created": created, "hash": h}

    def records(self, name: str | None = None, kind: str | None = None) -> list[dict[str, Any]]:
        """Records in order, optionally of one review name and kind, with bodies parsed."""
        q, args = "SELECT seq, kind, name, created, body, prev_hash, hash FROM records", []
        where = []
        if name is not None:
            where.append("name = ?")
            args.append(name)
        if kind is not None:
            where.append("kind = ?")
            args.append(kind)
        if where:
            q += " WHERE " + " AND ".join(where)
        with closing(self._connect()) as con:
            rows = con.execute(q + " ORDER BY seq", args).fetchall()
        return [{"seq": r[0], "kind": r[1], "name": r[2], "created": r[3], "body": json.loads(r[4]),
                 "prev_hash": r[5], "hash": r[6]} for r in rows]

    def last_run(self, name: str) -> dict[str, Any] | None:
        runs = self.records(name, "run")
        return runs[-1] if runs else None

    def verify(self) -> tuple[bool, str]:
        """Check every hash and link; (ok, one-line explanation)."""
        with closing(self._connect()) as con:
            rows = con.execute("SELECT seq, kind, name, created, body, prev_hash, hash FROM records ORDER BY seq").fetchall()
        if not rows:
            return True, "empty history"
        anchors = {}
        for r in rows:
            if r[1] == "prune":
                try:
                    b = json.loads(r[4])
                    anchors[int(b["deleted_through_seq"])] = b["anchor_hash"]
                except (ValueError, KeyError, TypeError):
                    return False, f"record {r[0]}: a prune record is unreadable"
        first = rows[0]
        if first[0] == 1:
            expected_prev = GENESIS
        elif first[0] - 1 in anchors:
            expected_prev = anchors[first[0] - 1]
        else:
            return False, f"records 1 to {first[0] - 1} are missing and no prune record accounts for them"
        prev_seq = first[0] - 1
        for seq, kind, name, created, body, prev, h in rows:
            if seq != prev_seq + 1:
                return False, f"record {prev_seq + 1} is missing (deleted?)"
            if prev != expected_prev:
                return False, f"record {seq} does not link to record {seq - 1} (edited or deleted?)"
            if _digest(seq, kind, name, created, prev, body) != h:
                return False, f"record {seq} ({kind} '{name}', {created}) was modified"
            prev_seq, expected_prev = seq, h
        return True, f"{len(rows)} records, chain intact, head {expected_prev[:16]}"

    def prune(self, keep_days: int) -> int:
        """Delete run records older than ``keep_days`` days, leaving a verifiable chain."""
        if keep_days < 0:
            raise FairscanError("--keep-days must be >= 0")
        cutoff = (dt.datetime.now(dt.UTC) - dt.timedelta(days=keep_days)).isoformat(timespec="microseconds")
        with closing(self._connect()) as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                rows = con.execute("SELECT seq, hash, created FROM records ORDER BY seq").fetchall()
                old = [r for r in rows if r[2] < cutoff]
                # only a prefix can go: the chain must stay contiguous
                k = 0
                while k < len(old) and old[k][0] == rows[k][0]:
                    k += 1
                if k == 0:
                    con.execute("COMMIT")
                    return 0
                last_seq, last_hash = rows[k - 1][0], rows[k - 1][1]
                con.execute("DELETE FROM records WHERE seq <= ?", (last_seq,))
                tail = con.execute("SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1").fetchone()
                seq = (tail[0] + 1) if tail else last_seq + 1
                prev = tail[1] if tail else last_hash
                body = canonical({"deleted_through_seq": last_seq, "anchor_hash": last_hash,
                                  "keep_days": keep_days, "deleted": k})
                created = dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")
                con.execute("INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?)",
                            (seq, "prune", "-", created, body, prev, _digest(seq, "prune", "-", created, prev, body)))
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        return k
