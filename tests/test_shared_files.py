"""The one atomic-write helper: a reader sees the old file or the new one, a failed write keeps the
old file and leaves no temporary file; the exclusive lock excludes another holder."""

from __future__ import annotations

import pytest

from c2f.shared_files import atomic_path, atomic_write_bytes, atomic_write_text, exclusive_lock


def test_a_failed_write_keeps_the_old_file_and_leaves_nothing(tmp_path):
    target = tmp_path / "sub" / "data.json"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp.suffix == ".json" and tmp.name.startswith(".tmp-")
        tmp.write_text("half of the new")
        assert target.read_text() == "old"  # not replaced before the block ends
        raise RuntimeError("disk full")
    assert target.read_text() == "old" and [p.name for p in target.parent.iterdir()] == ["data.json"]
    assert atomic_write_bytes(target, b"new") == target and target.read_bytes() == b"new"
    assert [p.name for p in target.parent.iterdir()] == ["data.json"]


def test_exclusive_lock_refuses_a_second_holder_until_released(tmp_path):
    lock = tmp_path / "x.lock"
    with exclusive_lock(lock) as held:
        assert held
        with exclusive_lock(lock, wait=False) as second:  # another descriptor: another holder
            assert second is False
    with exclusive_lock(lock, wait=False) as again:
        assert again
