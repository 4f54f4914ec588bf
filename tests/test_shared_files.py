"""The one atomic-write helper: a reader sees the old file or the new one, a failed write keeps the
old file and leaves no temporary file; the exclusive lock excludes another holder."""

from __future__ import annotations

import pytest

from c2f.shared_files import (
    TEMP_PREFIX,
    atomic_folder,
    atomic_path,
    atomic_paths,
    atomic_write_bytes,
    atomic_write_text,
    exclusive_lock,
    temporary_folder,
)


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


def test_several_files_are_renamed_in_order_and_a_failure_leaves_no_temporary(tmp_path):
    names = ["clips.faiss", "clips.pq0.faiss", "clips.json"]
    with atomic_paths([tmp_path / n for n in names]) as temps:
        assert [t.suffix for t in temps] == [".faiss", ".faiss", ".json"]
        for t, n in zip(temps, names, strict=True):
            t.write_text(n)
        assert all(p.name.startswith(TEMP_PREFIX) for p in tmp_path.iterdir())  # nothing renamed yet
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == {n: n for n in names}
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "f").write_text("a folder where the second file goes")
    with pytest.raises(OSError), atomic_paths([tmp_path / n for n in ("clips.faiss", "taken", "clips.json")]) as temps:
        for t in temps:
            t.write_text("new")
    # the first rename happened, the failing second stopped the last (a reader checks the last one)
    assert (tmp_path / "clips.faiss").read_text() == "new" and (tmp_path / "clips.json").read_text() == "clips.json"
    assert not list(tmp_path.rglob(f"{TEMP_PREFIX}*"))


def test_a_folder_appears_whole_or_not_at_all(tmp_path):
    with atomic_folder(tmp_path / "v000001") as tmp:
        (tmp / "a").write_text("a")
        assert not (tmp_path / "v000001").exists()
    assert [p.name for p in (tmp_path / "v000001").iterdir()] == ["a"]
    with pytest.raises(RuntimeError), atomic_folder(tmp_path / "v000002") as tmp:
        (tmp / "a").write_text("half")
        raise RuntimeError("disk full")
    with temporary_folder(tmp_path) as work:
        (work / "clip.mp4").write_text("x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v000001"]


# A write past RLIMIT_FSIZE fails with EFBIG, as on a full disk (SIGXFSZ ignored: no kill).
FULL_DISK = """
import resource, signal, sys
from pathlib import Path

import numpy as np

from c2f.index import ClipIndex
from c2f.library.indexes import IndexVersions
from c2f.library.storage import LibraryFiles
from c2f.speech.transcript import Segment, Transcript, save_transcript

root = Path(sys.argv[1])
big = ClipIndex(64)
big.add_many({k: np.random.default_rng(k).standard_normal((500, 64)).astype(np.float32) for k in (1, 2, 3)})
text = Transcript([Segment(0.0, 1.0, "word " * 100_000)], "tiny", "en", 1.0)
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))
writes = {
    "index": lambda: big.save(root / "index"),
    "version": lambda: IndexVersions(LibraryFiles(root / "lib")).save("fp", big),
    "transcript": lambda: save_transcript(text, root / "t.json"),
}
for name, write in writes.items():
    try:
        write()
        print(name, "written")
    except Exception as exc:
        print(name, "failed", type(exc).__name__)
"""


def test_a_full_disk_keeps_the_old_index_version_and_transcript_and_leaves_no_temporary(tmp_path):
    import subprocess
    import sys

    import numpy as np

    from c2f.index import ClipIndex
    from c2f.library.indexes import IndexVersions, load_saved_index
    from c2f.library.storage import LibraryFiles
    from c2f.speech.transcript import Segment, Transcript, load_transcript, save_transcript

    small = ClipIndex(64)
    small.add_many({7: np.ones((3, 64), np.float32)})
    small.save(tmp_path / "index")
    versions = IndexVersions(LibraryFiles(tmp_path / "lib"))
    assert versions.save("fp", small) == "v000001"
    save_transcript(Transcript([Segment(0.0, 1.0, "old")], "tiny", "en", 1.0), tmp_path / "t.json")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    run = subprocess.run([sys.executable, "-c", FULL_DISK, str(tmp_path)], capture_output=True, text=True)
    assert run.stdout.split("\n")[:3] == ["index failed RuntimeError", "version failed RuntimeError", "transcript failed OSError"], run
    # before: the index's temporary .faiss/.json files and the version's temporary folder stayed
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    assert ClipIndex.load(tmp_path / "index").video_keys() == [7]
    assert versions.current("fp") == "v000001"
    assert load_saved_index(tmp_path / "lib" / "indexes" / "fp" / "v000001").video_keys() == [7]
    assert load_transcript(tmp_path / "t.json").segments[0].text == "old"
