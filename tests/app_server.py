"""Launch the demo (tiny mode, temporary library, free port) in a subprocess for end-to-end tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SPACE_ENV = {"SPACE_ID": "c2f-tests/c2f", "GRADIO_SERVER_NAME": "0.0.0.0"}


@contextmanager
def running_app(
    library: Path,
    extra: list[str] | None = None,
    env: dict | None = None,
    root: Path = ROOT,
    port: int | None = None,
    space: bool = False,
    cwd: Path | None = None,
):
    """The demo of the source tree `root` (default: this one), serving `library` in tiny mode on
    `port` (default: a free one); yields its URL. `space`: started as a Hugging Face Space starts
    it, `python app.py` with no arguments and the platform's environment (SPACE_ID,
    GRADIO_SERVER_NAME=0.0.0.0, GRADIO_SERVER_PORT), the mode and library from Space variables.
    `cwd`: the working folder (default: `root`).
    The log (appended to across restarts) is `library.parent / "app.log"`."""
    port = port or free_port()
    args = ["--mode", "tiny", "--library", str(library), "--port", str(port)]
    env = {**os.environ, **(env or {})}
    if space:
        args = []
        env.update(SPACE_ENV, GRADIO_SERVER_PORT=str(port), C2F_MODE="tiny", C2F_LIBRARY=str(library))
    log_path = library.parent / "app.log"
    log = open(log_path, "a")  # noqa: SIM115 (closed below)
    started = log.tell()  # this start's lines follow
    proc = subprocess.Popen(
        [sys.executable, str(root / "app.py"), *args, *(extra or [])],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=cwd or root,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"the app exited: {log_path.read_text()[-2000:]}")
            # started: its last line printed (the server answers a moment before: its own routes
            # are added, and that line printed, after Gradio's launch returns)
            if b"c2f: serving on" in log_path.read_bytes()[started:]:
                urllib.request.urlopen(url, timeout=10).close()
                break
            time.sleep(0.5)
        else:
            raise RuntimeError("the app did not start within 120 s")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def launch_chromium(pw):  # pw: playwright's sync API object
    """Debian's Chromium, headless, with no traffic of its own (this machine's network is closed)."""
    import shutil

    return pw.chromium.launch(
        executable_path=shutil.which("chromium") or "/usr/bin/chromium",
        args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
    )
