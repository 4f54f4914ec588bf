"""The library catalog: one SQLite table of videos (WAL, so readers never block on a writer)."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from c2f.errors import LibraryError

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS videos (
    key INTEGER PRIMARY KEY,          -- int64 key used in the faiss ids
    video_id TEXT UNIQUE NOT NULL,    -- short content hash, names the files
    name TEXT NOT NULL,               -- original file name
    content_hash TEXT UNIQUE NOT NULL,
    duration REAL, fps REAL, width INTEGER, height INTEGER,
    num_clips INTEGER,
    settings_fingerprint TEXT,
    status TEXT NOT NULL,             -- pending | indexed | failed
    error TEXT,
    added_at REAL NOT NULL,
    stored_path TEXT NOT NULL,        -- the file we play (a copy inside the library, or the original)
    is_copy INTEGER NOT NULL,
    subtitles TEXT,                   -- JSON list of subtitle cues, or NULL
    note TEXT                         -- what an indexed video went without (e.g. unreadable subtitles)
);
-- The highest key ever handed out (meta 'last_key'): keys are never reused, since faiss ids,
-- cached index copies, saved index versions and vector-store rows are keyed by them. A trigger,
-- so that every insert keeps it, whichever code makes it.
CREATE TRIGGER IF NOT EXISTS videos_last_key AFTER INSERT ON videos BEGIN
    INSERT INTO meta(key, value) VALUES ('last_key', NEW.key)
    ON CONFLICT(key) DO UPDATE SET value = MAX(CAST(value AS INTEGER), NEW.key);
END;
"""
# Columns added after the first release: (name, declaration) added to older catalogs on open.
ADDED_COLUMNS = (("note", "TEXT"),)


@dataclass(frozen=True)
class VideoRecord:
    key: int
    video_id: str
    name: str
    content_hash: str
    duration: float | None
    fps: float | None
    width: int | None
    height: int | None
    num_clips: int | None
    settings_fingerprint: str | None
    status: str
    error: str | None
    added_at: float
    stored_path: str
    is_copy: bool
    has_subtitles: bool
    note: str | None = None  # e.g. "subtitles a.srt: line 6: ..." for a video indexed without them


class Catalog:
    def __init__(self, path: Path) -> None:
        self.path = path
        with self._connect() as db:
            db.executescript(SCHEMA)
            have = {row["name"] for row in db.execute("PRAGMA table_info(videos)")}
            for name, declaration in ADDED_COLUMNS:
                if name not in have:
                    try:
                        db.execute(f"ALTER TABLE videos ADD COLUMN {name} {declaration}")
                    except sqlite3.OperationalError as exc:  # another process added it first
                        if "duplicate column" not in str(exc):
                            raise
            if not db.execute("SELECT 1 FROM meta WHERE key='last_key'").fetchall():
                # a catalog from before the mark: its highest key is the best it knows
                db.execute(
                    "INSERT OR IGNORE INTO meta(key, value) SELECT 'last_key', COALESCE(MAX(key), 0) FROM videos"
                )

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A fresh connection in autocommit mode (transactions are explicit), closed on exit; any
        SQLite failure (not a database, damaged, unwritable folder) becomes one LibraryError."""
        try:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        except sqlite3.Error as exc:
            raise self._error(exc) from None
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA busy_timeout=30000")
            db.row_factory = sqlite3.Row
            yield db
        except sqlite3.Error as exc:
            raise self._error(exc) from None
        finally:
            db.close()

    def _error(self, exc: sqlite3.Error) -> LibraryError:
        if isinstance(exc, sqlite3.OperationalError) and "unable to open" in str(exc):
            return LibraryError(f"{self.path}: cannot open the library catalog ({exc})")
        if isinstance(exc, sqlite3.DatabaseError) and "not a database" in str(exc):
            return LibraryError(
                f"{self.path}: not a C2F library catalog (not an SQLite database); "
                "move it away or use another --library folder"
            )
        return LibraryError(f"{self.path}: the library catalog failed: {exc}")

    def _exec(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        with self._connect() as db:
            return db.execute(sql, args).fetchall()

    def _write(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        """A change of the videos table, and a bump of its generation, in one transaction: readers
        see both or neither (BEGIN IMMEDIATE takes the write lock before reading anything)."""
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                rows = db.execute(sql, args).fetchall()
                db.execute(
                    "INSERT INTO meta(key, value) VALUES ('generation', '1') ON CONFLICT(key) "
                    "DO UPDATE SET value = CAST(value AS INTEGER) + 1"
                )
            except BaseException:
                if db.in_transaction:  # some errors (disk full) already rolled it back
                    db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            return rows

    def indexed_snapshot(self) -> tuple[str, list[VideoRecord]]:
        """(generation, indexed videos) read in one transaction: equal generations, equal lists."""
        with self._connect() as db:
            db.execute("BEGIN")
            try:
                gen = db.execute("SELECT value FROM meta WHERE key='generation'").fetchall()
                rows = db.execute("SELECT * FROM videos WHERE status='indexed' ORDER BY key").fetchall()
            finally:
                db.execute("COMMIT")
        return (gen[0]["value"] if gen else "0"), [self._record(r) for r in rows]

    def generation(self) -> str:
        """Changes whenever a video row changes (cheap: one row)."""
        return self.get_meta("generation") or "0"

    # --- meta ------------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        rows = self._exec("SELECT value FROM meta WHERE key=?", (key,))
        return rows[0]["value"] if rows else None

    def set_meta(self, key: str, value: str) -> None:
        self._exec("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def init_meta(self, key: str, value: str) -> str:
        """Set `key` unless another process set it first; returns the value that won."""
        self._exec("INSERT OR IGNORE INTO meta(key, value) VALUES (?, ?)", (key, value))
        return self.get_meta(key) or value

    # --- videos ------------------------------------------------------------------------------------
    @staticmethod
    def _record(row: sqlite3.Row) -> VideoRecord:
        d = dict(row)
        d["is_copy"] = bool(d["is_copy"])
        d["has_subtitles"] = bool(d.pop("subtitles"))
        return VideoRecord(**d)

    def by_hash(self, content_hash: str) -> VideoRecord | None:
        rows = self._exec("SELECT * FROM videos WHERE content_hash=?", (content_hash,))
        return self._record(rows[0]) if rows else None

    def by_id(self, video_id: str) -> VideoRecord | None:
        rows = self._exec("SELECT * FROM videos WHERE video_id=?", (video_id,))
        return self._record(rows[0]) if rows else None

    def by_key(self, key: int) -> VideoRecord | None:
        rows = self._exec("SELECT * FROM videos WHERE key=?", (int(key),))
        return self._record(rows[0]) if rows else None

    def all(self, status: str | None = None) -> list[VideoRecord]:
        if status:
            rows = self._exec("SELECT * FROM videos WHERE status=? ORDER BY key", (status,))
        else:
            rows = self._exec("SELECT * FROM videos ORDER BY key")
        return [self._record(r) for r in rows]

    def count(self, status: str) -> int:
        return int(self._exec("SELECT COUNT(*) AS n FROM videos WHERE status=?", (status,))[0]["n"])

    def subtitles(self, key: int) -> list[dict]:
        rows = self._exec("SELECT subtitles FROM videos WHERE key=?", (int(key),))
        return json.loads(rows[0]["subtitles"]) if rows and rows[0]["subtitles"] else []

    def insert_pending(
        self, video_id: str, name: str, content_hash: str, stored_path: str, is_copy: bool
    ) -> int:
        """A new row, under a key never used before in this catalog (the row's number otherwise
        comes back after the highest row is deleted)."""
        rows = self._write(
            "INSERT INTO videos(key, video_id, name, content_hash, status, added_at, stored_path, is_copy) "
            "VALUES (1 + MAX(COALESCE((SELECT MAX(key) FROM videos), 0), "
            "COALESCE((SELECT CAST(value AS INTEGER) FROM meta WHERE key='last_key'), 0)), "
            "?, ?, ?, 'pending', ?, ?, ?) RETURNING key",
            (video_id, name, content_hash, time.time(), stored_path, int(is_copy)),
        )
        return int(rows[0]["key"])

    def reset_pending(self, key: int, name: str, stored_path: str, is_copy: bool) -> None:
        self._write(
            "UPDATE videos SET status='pending', error=NULL, note=NULL, name=?, stored_path=?, is_copy=? "
            "WHERE key=?",
            (name, stored_path, int(is_copy), key),
        )

    def mark_indexed(
        self,
        key: int,
        *,
        duration: float,
        fps: float,
        width: int,
        height: int,
        num_clips: int,
        settings_fingerprint: str,
        subtitles: list[dict],
        note: str | None = None,
    ) -> None:
        """`note`: what the video was indexed without, shown by `c2f library list` (None: nothing)."""
        self._write(
            "UPDATE videos SET status='indexed', error=NULL, duration=?, fps=?, width=?, height=?, num_clips=?, "
            "settings_fingerprint=?, subtitles=?, note=? WHERE key=?",
            (
                duration,
                fps,
                width,
                height,
                num_clips,
                settings_fingerprint,
                json.dumps(subtitles) if subtitles else None,
                note,
                key,
            ),
        )

    def mark_failed(self, key: int, error: str) -> None:
        self._write("UPDATE videos SET status='failed', error=? WHERE key=?", (error, key))

    def delete(self, key: int) -> None:
        self._write("DELETE FROM videos WHERE key=?", (key,))
