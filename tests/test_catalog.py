"""The library catalog: a row change and its generation bump commit together; unreadable
catalogs give one LibraryError naming the file."""

from __future__ import annotations

import os
import sqlite3

import pytest

from c2f.errors import LibraryError
from c2f.library.catalog import Catalog


def _catalog_with_one_video(tmp_path):
    catalog = Catalog(tmp_path / "catalog.sqlite")
    key = catalog.insert_pending("abc", "a.mp4", "hash-a", str(tmp_path / "a.mp4"), is_copy=False)
    return catalog, key


def _state(path, key):
    """(status of the video, generation) as a separate reader sees them."""
    db = sqlite3.connect(path)
    try:
        status = db.execute("SELECT status FROM videos WHERE key=?", (key,)).fetchone()[0]
        generation = db.execute("SELECT value FROM meta WHERE key='generation'").fetchone()[0]
        return status, str(generation)
    finally:
        db.close()


def test_failed_generation_bump_leaves_the_row_unchanged(tmp_path):
    catalog, key = _catalog_with_one_video(tmp_path)
    before = _state(catalog.path, key)
    with sqlite3.connect(catalog.path) as db:  # the bump that follows the row update fails
        db.execute(
            "CREATE TRIGGER no_bump BEFORE UPDATE ON meta WHEN NEW.key = 'generation' "
            "BEGIN SELECT RAISE(ABORT, 'bump refused'); END"
        )
    with pytest.raises(LibraryError, match="bump refused"):
        catalog.mark_failed(key, "boom")
    assert _state(catalog.path, key) == before == ("pending", "1")
    assert catalog.by_key(key).error is None


def test_a_reader_sees_the_row_change_and_the_bump_together(tmp_path, monkeypatch):
    catalog, key = _catalog_with_one_video(tmp_path)
    seen: list[tuple[str, str]] = []
    # While the writer bumps the generation (after its row update), another connection reads.
    with sqlite3.connect(catalog.path) as db:
        db.execute(
            "CREATE TRIGGER look BEFORE UPDATE ON meta WHEN NEW.key = 'generation' BEGIN SELECT look(); END"
        )
    connect = sqlite3.connect

    def connect_with_look(*args, **kwargs):
        db = connect(*args, **kwargs)
        db.create_function("look", 0, lambda: seen.append(_state(catalog.path, key)))
        return db

    monkeypatch.setattr(sqlite3, "connect", connect_with_look)
    catalog.mark_failed(key, "boom")
    monkeypatch.undo()
    assert seen == [("pending", "1")]  # mid-transaction: neither change is visible
    assert _state(catalog.path, key) == ("failed", "2")  # after it: both
    assert catalog.generation() == "2"


def test_garbage_catalog_is_one_library_error_naming_the_file(tmp_path):
    path = tmp_path / "catalog.sqlite"
    path.write_bytes(os.urandom(4096))
    with pytest.raises(LibraryError) as info:
        Catalog(path)
    message = str(info.value)
    assert str(path) in message and "not a C2F library catalog" in message
    assert "\n" not in message


def test_catalog_in_a_missing_folder_is_a_library_error(tmp_path):
    path = tmp_path / "missing" / "catalog.sqlite"
    with pytest.raises(LibraryError, match="cannot open the library catalog"):
        Catalog(path)


def test_note_of_an_indexed_video_and_older_catalogs_gain_the_column(tmp_path):
    path = tmp_path / "catalog.sqlite"
    with sqlite3.connect(path) as db:  # a catalog written before the note column existed
        db.executescript(
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
            "CREATE TABLE videos (key INTEGER PRIMARY KEY, video_id TEXT UNIQUE NOT NULL, name TEXT NOT NULL,"
            " content_hash TEXT UNIQUE NOT NULL, duration REAL, fps REAL, width INTEGER, height INTEGER,"
            " num_clips INTEGER, settings_fingerprint TEXT, status TEXT NOT NULL, error TEXT,"
            " added_at REAL NOT NULL, stored_path TEXT NOT NULL, is_copy INTEGER NOT NULL, subtitles TEXT);"
            "INSERT INTO videos VALUES (1, 'old', 'o.mp4', 'h-old', 2.0, 25.0, 64, 48, 2, 'fp', 'indexed',"
            " NULL, 0.0, '/x/o.mp4', 0, NULL);"
        )
    catalog = Catalog(path)
    assert catalog.by_key(1).note is None and catalog.by_key(1).status == "indexed"
    key = catalog.insert_pending("abc", "a.mp4", "hash-a", "/x/a.mp4", is_copy=False)
    note = "/x/a.srt: no subtitle cue found; indexed without subtitles"
    fields = dict(duration=3.0, fps=25.0, width=64, height=48, num_clips=2, settings_fingerprint="fp")
    catalog.mark_indexed(key, **fields, subtitles=[], note=note)
    assert catalog.by_key(key).note == note and catalog.by_key(key).error is None
    catalog.reset_pending(key, "a.mp4", "/x/a.mp4", is_copy=False)
    assert catalog.by_key(key).note is None
