"""A video's catalog key is never handed out again: the faiss ids, cached index copies, saved
index versions and vector-store rows are all keyed by it, so a reused key let a long-lived reader
show one video's name over another's vectors."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest
import torch
from videogen import make_video

from c2f.features import get_preset
from c2f.library import Library
from c2f.library.catalog import Catalog
from c2f.model import C2FModel, get_config, save_checkpoint
from c2f.search import load_backend
from c2f.shared_files import exclusive_lock

TINY = get_preset("tiny-clip-only")


@pytest.fixture(scope="module")
def learned(tmp_path_factory):
    """A search backend whose index the writer never builds: readers make it from feature files."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "tiny-c2f"
    cfg = get_config("tiny", video_dim=64, token_dim=64, max_clips=8)
    text = {"kind": "clip", "arch": TINY.clip_model, "weights": TINY.clip_weights}
    save_checkpoint(path, C2FModel(cfg), TINY, text, {"note": "untrained, for tests"})
    return load_backend("learned", checkpoint=path)


def test_a_reader_never_sees_a_removed_video_under_a_new_one(tmp_path, video_dir, learned):
    a = make_video(video_dir / "a.mp4", segments=[("red", 3.0), ("blue", 1.5)])
    b = make_video(video_dir / "b.mp4", segments=[("green", 6.0)])
    c = make_video(video_dir / "c.mp4", segments=[("yellow", 1.5), ("white", 1.5)])
    writer = Library(tmp_path / "lib", settings=TINY)
    writer.add([a, b])
    reader = Library(tmp_path / "lib")  # a long-lived reader: the demo, a search server
    with exclusive_lock(writer.files.lock_path):  # a writer is busy: the reader keeps its copy to itself
        assert {v.name for v in reader.search("a green field", learned).videos} == {"a.mp4", "b.mp4"}
    removed = writer.remove(writer.list()[-1].video_id)
    added = writer.add(c).added[0]
    assert removed.name == "b.mp4" and added.key != removed.key  # before: c took b's key, 2
    q = learned.encode_query("a green field").vector
    with reader.snapshot(learned.fingerprint, learned.clip_vectors) as (index, records):
        assert sorted(r.name for r in records.values()) == ["a.mp4", "c.mp4"]
        for key, rec in records.items():
            # before: under c.mp4's record, b.mp4's 4 clip vectors (c.mp4 has 2)
            own = learned.clip_vectors(reader.load_features(rec.video_id)) @ q
            np.testing.assert_allclose(index.clip_scores(q, key), own, atol=1e-5, err_msg=rec.name)
    assert {v.name for v in reader.search("a green field", learned).videos} == {"a.mp4", "c.mp4"}


OLD_SCHEMA = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE videos (key INTEGER PRIMARY KEY, video_id TEXT UNIQUE NOT NULL, name TEXT NOT NULL,"
    " content_hash TEXT UNIQUE NOT NULL, duration REAL, fps REAL, width INTEGER, height INTEGER,"
    " num_clips INTEGER, settings_fingerprint TEXT, status TEXT NOT NULL, error TEXT,"
    " added_at REAL NOT NULL, stored_path TEXT NOT NULL, is_copy INTEGER NOT NULL, subtitles TEXT, note TEXT);"
)


def test_keys_are_never_reused_in_new_and_existing_catalogs(tmp_path):
    catalog = Catalog(tmp_path / "new.sqlite")
    keys = [catalog.insert_pending(f"v{i}", f"{i}.mp4", f"h{i}", f"/x/{i}.mp4", is_copy=False) for i in range(3)]
    assert keys == [1, 2, 3]
    catalog.delete(3)
    catalog.delete(2)
    assert catalog.insert_pending("v9", "9.mp4", "h9", "/x/9.mp4", is_copy=False) == 4  # before: 2
    assert Catalog(tmp_path / "new.sqlite").insert_pending("v8", "8.mp4", "h8", "/x/8.mp4", is_copy=False) == 5

    path = tmp_path / "old.sqlite"  # a catalog an older C2F wrote: no high-water mark yet
    with sqlite3.connect(path) as db:
        db.executescript(OLD_SCHEMA)
        for key in (1, 7):
            db.execute(
                "INSERT INTO videos(key, video_id, name, content_hash, status, added_at, stored_path, is_copy) "
                "VALUES (?, ?, ?, ?, 'indexed', 0, '/x', 0)",
                (key, f"old{key}", f"{key}.mp4", f"h-old{key}"),
            )
    old = Catalog(path)  # migrated on open: the mark is its highest key
    old.delete(7)
    assert old.insert_pending("new", "n.mp4", "h-new", "/x/n.mp4", is_copy=False) == 8
    with sqlite3.connect(path) as db:  # the table itself is unchanged (no rebuild, no AUTOINCREMENT)
        (sql,) = db.execute("SELECT sql FROM sqlite_master WHERE name='videos'").fetchone()
    assert "AUTOINCREMENT" not in sql.upper() and sql.startswith("CREATE TABLE videos (key INTEGER PRIMARY KEY,")
    assert np.array_equal([r.key for r in old.all()], [1, 8])
