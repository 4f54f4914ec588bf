"""Worker processes end when their parent is killed (SIGKILL: no clean-up of the parent runs, and
`daemon=True` does not apply), whatever they were waiting for: the start signal, the next task."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from videogen import make_video

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="processes are read from /proc")

ROOT = Path(__file__).resolve().parents[1]

# The parent: starts one worker waiting as asked, prints its pid once it waits there, sleeps.
PARENT = """
import multiprocessing as mp
import sys
import time

if __name__ == "__main__":
    mode, video = sys.argv[1], sys.argv[2]
    ctx = mp.get_context("spawn")
    tasks, done, start = ctx.Queue(), ctx.Queue(), ctx.Event()
    if mode.startswith("layout"):
        import numpy as np

        from c2f.video.layout import _raw_decoder

        worker = ctx.Process(target=_raw_decoder, args=(tasks, done, start, 32, 24, 1, 8), daemon=True)
        worker.start()
        if mode == "layout: waiting for a task":  # one task done: it now waits for the next
            start.set()
            tasks.put((video, np.arange(4)))
            done.get(timeout=60)
    else:  # a decoding worker of c2f.features.parallel, waiting for its first task
        from c2f.features import get_preset
        from c2f.features.parallel import _decode_worker
        from c2f.features.shared_slots import SlotSet

        args = (tasks, done, get_preset("tiny-clip-only"), 4, 4, SlotSet.new(1, 2), 0, ctx.Queue(), 1)
        worker = ctx.Process(target=_decode_worker, args=args, daemon=True)
        worker.start()
    print(worker.pid, flush=True)
    time.sleep(600)
"""


def running(pid: int) -> bool:
    """Whether `pid` still runs (a zombie, exited but not yet reaped by its new parent, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"


@pytest.mark.parametrize(
    "mode", ["layout: waiting for the start", "layout: waiting for a task", "extraction: waiting for a task"]
)
def test_a_worker_ends_when_its_parent_is_killed(tmp_path, mode):
    video = make_video(tmp_path / "a.mp4", seconds=1.0, size=(64, 48))
    script = tmp_path / "parent.py"
    script.write_text(PARENT)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    parent = subprocess.Popen(
        [sys.executable, str(script), mode, str(video)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        worker = int(parent.stdout.readline())
        assert running(worker)
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        parent.stdout.close()
    deadline = time.monotonic() + 30  # it checks every second; before, it waited for ever
    while running(worker) and time.monotonic() < deadline:
        time.sleep(0.1)
    if running(worker):
        os.kill(worker, signal.SIGKILL)
        pytest.fail(f"the worker ({mode}) outlived its killed parent by 30 s")
