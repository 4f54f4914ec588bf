"""Benchmark provenance: a results JSON records the commit and a hash of the source it measured,
and benchmarks/stale_results.py lists the results an edit has outrun."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

from provenance import provenance, source_hash, write_results  # noqa: E402
from stale_results import check  # noqa: E402


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout.strip()


def make_repo(root: Path) -> None:
    (root / "c2f" / "model").mkdir(parents=True)
    (root / "c2f" / "train").mkdir(parents=True)
    (root / "c2f" / "model" / "net.py").write_text("W = 1\n")
    (root / "c2f" / "train" / "loop.py").write_text("STEPS = 10\n")
    (root / "c2f" / "other.py").write_text("X = 0\n")
    git(root, "init", "-q")
    git(root, "-c", "user.email=t@t", "-c", "user.name=t", "add", ".")
    git(root, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "first")


def test_results_turn_stale_when_the_measured_source_changes(tmp_path):
    make_repo(tmp_path)
    rec = provenance(root=tmp_path)
    assert rec["commit"] == git(tmp_path, "rev-parse", "--short=12", "HEAD")
    assert rec["uncommitted"] is False and rec["source"]["paths"] == ["c2f/model", "c2f/train"]
    results = tmp_path / "results_x.json"
    write_results(results, {"provenance": rec, "runs": [{"provenance": rec, "value": 1}]})
    assert check(results, tmp_path) == ("current", f"measured on {rec['commit']}")

    (tmp_path / "c2f" / "other.py").write_text("X = 1\n")  # outside the measured source: still current
    assert check(results, tmp_path)[0] == "current"

    (tmp_path / "c2f" / "train" / "loop.py").write_text("STEPS = 20\n")
    status, detail = check(results, tmp_path)
    assert status == "stale" and "2 of 2 records" in detail and detail.endswith("c2f/train/loop.py")
    assert provenance(root=tmp_path)["uncommitted"] is True

    (tmp_path / "c2f" / "train" / "loop.py").write_text("STEPS = 10\n")  # back as measured
    assert check(results, tmp_path)[0] == "current"
    (tmp_path / "c2f" / "model" / "new.py").write_text("")  # an added file counts
    assert check(results, tmp_path)[0] == "stale"


def test_hash_covers_paths_and_bytes_and_unrecorded_results_are_said(tmp_path):
    make_repo(tmp_path)
    before = source_hash(["c2f/model"], tmp_path)
    (tmp_path / "c2f" / "model" / "net.py").rename(tmp_path / "c2f" / "model" / "net2.py")  # same bytes
    assert source_hash(["c2f/model"], tmp_path) != before
    old = tmp_path / "results_old.json"
    old.write_text(json.dumps({"setup": {}}))
    assert check(old, tmp_path) == ("unrecorded", "no provenance")


def test_the_script_exits_1_on_a_stale_result(tmp_path):
    make_repo(tmp_path)
    stale = tmp_path / "results_stale.json"
    rec = provenance(root=tmp_path)
    rec["source"]["sha256"] = "0" * 64
    write_results(stale, {"provenance": rec})
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / "stale_results.py"), str(stale)], capture_output=True, text=True
    )
    assert proc.returncode == 1 and proc.stdout.startswith("stale"), proc.stdout + proc.stderr


def test_a_copy_without_git_names_the_commit_from_the_environment(tmp_path, monkeypatch):
    """The GPU machine's copy has no .git (and may have no git): the commit comes from $C2F_COMMIT,
    the hash from the files; extract_scale.py's results record it with no fallback of their own."""
    make_repo(tmp_path)
    expected = provenance(root=tmp_path)["source"]
    (tmp_path / ".git").rename(tmp_path / "no-git")
    monkeypatch.setenv("C2F_COMMIT", "abc123def456")
    assert provenance(root=tmp_path) == {"commit": "abc123def456", "uncommitted": None, "source": expected}
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no git program at all
    assert provenance(root=tmp_path)["commit"] == "abc123def456"
    from extract_scale import EXTRACT_SOURCE, measured_code

    assert measured_code()["commit"] == "abc123def456"
    assert measured_code()["source"]["paths"] == list(EXTRACT_SOURCE)
