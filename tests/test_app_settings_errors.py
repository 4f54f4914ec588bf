"""`python app.py` with a bad setting (an environment variable, a flag, a mode) ends as the CLI
does: one line `error: <message>` on stderr, exit status 2, no traceback, nothing made."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_a_bad_setting_is_one_line_and_exit_status_2(tmp_path):
    cases = [  # (extra environment, flags, the line)
        ({"GRADIO_SERVER_PORT": "abc"}, [], "error: GRADIO_SERVER_PORT='abc': give a whole number from 1 to 65535"),
        ({"C2F_MAX_UPLOAD_MB": "-3"}, [], "error: C2F_MAX_UPLOAD_MB='-3': give a whole number >= 0"),
        ({"C2F_INDEX_SLOTS": "0"}, [], "error: C2F_INDEX_SLOTS='0': give a whole number >= 1"),
        ({}, ["--mode", "bogus"], "error: unknown mode 'bogus': choose one of zero-shot, tiny"),
    ]
    runs = []
    for i, (env, flags, line) in enumerate(cases):
        library = tmp_path / f"library{i}"
        env = {**os.environ, "C2F_LIBRARY": str(library), "C2F_MODE": "tiny", **env}
        env.pop("GRADIO_TEMP_DIR", None)
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "app.py"), *flags],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=tmp_path,
        )
        runs.append((proc, line, library))
    try:
        for proc, line, library in runs:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 2, (out, err)
            lines = err.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith(line), err  # before: a traceback ending in it
            assert not library.exists() and not (tmp_path / ".gradio").exists()
    finally:  # before, the unknown mode was served (a warning, then a page whose every search failed)
        for proc, _, _ in runs:
            proc.kill()
            proc.wait()
