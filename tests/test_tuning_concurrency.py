"""Tuning shared between threads and processes: a key being measured holds up only the threads that
asked for that key (measured once for all of them), never another key or `c2f doctor`; two real
processes filling the cache at once lose no entry; a failed cache write leaves no temporary file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from c2f import tuning
from c2f.cli import main

ROOT = Path(__file__).resolve().parents[1]
CANDIDATES = [{"dtype": "float32"}, {"dtype": "bfloat16"}]
HANG = 120  # seconds before a thread that should have finished counts as blocked (never reached when right)


def run_in_thread(fn) -> tuple[threading.Thread, dict]:
    out: dict = {}

    def target() -> None:
        out["value"] = fn()

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, out


def test_a_key_being_measured_blocks_only_that_key(fresh_cache, capsys):
    started, release = threading.Event(), threading.Event()
    calls: list[str] = []

    def slow(setting):  # the first measurement of "slow" holds until released
        calls.append(setting["dtype"])
        started.set()
        assert release.wait(HANG)
        return {"float32": 2.0, "bfloat16": 1.0}[setting["dtype"]]

    first, first_out = run_in_thread(lambda: tuning.choose("slow", "s", CANDIDATES, slow))
    assert started.wait(HANG)
    try:
        # while "slow" is measured: another key is measured and `c2f doctor` answers, no waiting
        other, other_out = run_in_thread(lambda: tuning.choose("other", "s", CANDIDATES, lambda s: 1.0))
        other.join(HANG)
        assert not other.is_alive(), "another key waited for a measurement in progress"
        assert other_out["value"].source == "measured"
        doctor, doctor_out = run_in_thread(lambda: main(["doctor", "--json"]))
        doctor.join(HANG)
        assert not doctor.is_alive() and doctor_out["value"] == 0, "c2f doctor waited for a measurement"
        report = json.loads(capsys.readouterr().out)["tuning"]
        assert [c["task"] for c in report["in_this_process"]] == ["other"]
        # a second thread asking for "slow" waits for the first one's result
        second, second_out = run_in_thread(lambda: tuning.choose("slow", "s", CANDIDATES, slow))
    finally:
        release.set()
    first.join(HANG)
    second.join(HANG)
    assert not first.is_alive() and not second.is_alive()
    assert calls == ["float32", "bfloat16"]  # measured once, for both threads
    assert first_out["value"] is second_out["value"] and first_out["value"].setting == {"dtype": "bfloat16"}
    cached = json.loads(fresh_cache.read_text())
    assert sorted(v["task"] for v in cached.values()) == ["other", "slow"]


class Interrupted(BaseException):
    """Not a candidate's failure (those are caught): the whole measurement stops."""


def test_an_interrupted_measurement_lets_the_next_caller_measure(fresh_cache):
    started, release = threading.Event(), threading.Event()

    def interrupted(setting):
        started.set()
        assert release.wait(HANG)
        raise Interrupted

    def first_call():
        try:
            tuning.choose("t", "s", CANDIDATES, interrupted)
        except Interrupted:
            return "interrupted"

    first, first_out = run_in_thread(first_call)
    assert started.wait(HANG)
    second, second_out = run_in_thread(lambda: tuning.choose("t", "s", CANDIDATES, lambda s: 1.0))
    release.set()
    first.join(HANG)
    second.join(HANG)
    assert first_out["value"] == "interrupted"
    assert not second.is_alive() and second_out["value"].source == "measured"


WRITER = """
import sys, time
from pathlib import Path
from c2f import tuning
name, n, folder = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
tuning.machine_key()  # imports torch: the slow part, done before the start signal
(folder / f"ready-{name}").touch()
while not (folder / "go").exists():
    time.sleep(0.01)
for i in range(n):
    tuning.choose(f"{name}-{i}", "s", [{"dtype": "float32"}], lambda s: 1.0)
"""


def test_two_processes_filling_the_cache_at_once_lose_no_entry(fresh_cache, tmp_path):
    signals, n = tmp_path / "signals", 150
    signals.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("C2F_TUNE")}
    env["C2F_TUNING_CACHE"] = str(fresh_cache)
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, name, str(n), str(signals)], cwd=ROOT, env=env, stderr=subprocess.PIPE)
        for name in ("a", "b")
    ]
    while len(list(signals.glob("ready-*"))) < 2 and all(p.poll() is None for p in procs):
        time.sleep(0.01)
    (signals / "go").touch()  # both write from the same moment on
    for p in procs:
        assert p.wait(300) == 0, p.stderr.read().decode()[-2000:]
    tasks = sorted(v["task"] for v in json.loads(fresh_cache.read_text()).values())
    assert tasks == sorted(f"{name}-{i}" for name in ("a", "b") for i in range(n))
    assert sorted(p.name for p in fresh_cache.parent.iterdir()) == ["signals", "tuning.json", "tuning.json.lock"]


def test_a_failed_cache_write_leaves_no_temporary_file(fresh_cache):
    tuning.choose("kept", "s", CANDIDATES, lambda s: 1.0)
    before = fresh_cache.read_text()
    with pytest.raises(TypeError):  # a setting that is not JSON cannot be cached
        tuning.choose("bad", "s", [{"dtype": object()}], lambda s: 1.0)
    assert fresh_cache.read_text() == before
    assert sorted(p.name for p in fresh_cache.parent.iterdir()) == ["tuning.json", "tuning.json.lock"]
