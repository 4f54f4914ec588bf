"""Numbers from environment variables: one parser (c2f.environment), one clear line naming the
variable and what it accepts, for the demo's settings as for the CLI's (tests/test_cli_errors.py), and
`python app.py` ends on a bad one as the CLI does."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from c2f.environment import EnvironmentSettingError, env_float, env_int
from c2f.errors import C2FError
from c2f.ui.config import AppConfig
from c2f.ui.launch import parse_args

ROOT = Path(__file__).resolve().parents[1]


def test_numbers_and_their_bounds():
    env = {"N": " 12 ", "BLANK": " ", "F": "2.5"}
    assert env_int("N", 3, env=env) == 12 and env_int("BLANK", 3, env=env) == 3 and env_int("NONE", None, env=env) is None
    assert env_float("F", 1.0, minimum=0, env=env) == 2.5 and env_float("N", 1.0, env=env) == 12.0
    for name, value, call, line in [
        ("N", "twelve", lambda e: env_int("N", 3, env=e), "N='twelve': give a whole number"),
        ("N", "2.0", lambda e: env_int("N", 3, minimum=1, env=e), "N='2.0': give a whole number >= 1"),
        ("N", "0", lambda e: env_int("N", 3, minimum=1, maximum=9, env=e), "N='0': give a whole number from 1 to 9"),
        ("F", "nan", lambda e: env_float("F", 1.0, env=e), "F='nan': give a number"),
        ("F", "-1e-3", lambda e: env_float("F", 1.0, minimum=0, env=e), "F='-1e-3': give a number >= 0"),
    ]:
        with pytest.raises(EnvironmentSettingError) as caught:
            call({name: value})
        assert str(caught.value) == line and isinstance(caught.value, C2FError)


@pytest.mark.parametrize(
    ("name", "value", "line"),
    [
        ("C2F_MAX_VIDEOS", "lots", "C2F_MAX_VIDEOS='lots': give a whole number >= 0"),
        ("C2F_VISITOR_MAX_MINUTES", "20min", "C2F_VISITOR_MAX_MINUTES='20min': give a number >= 0"),
        ("C2F_INDEX_SLOTS", "0", "C2F_INDEX_SLOTS='0': give a whole number >= 1"),
    ],
)
def test_the_demo_settings_name_the_bad_variable(monkeypatch, name, value, line):
    monkeypatch.setenv(name, value)
    with pytest.raises(EnvironmentSettingError) as caught:  # before: ValueError: invalid literal for int()
        AppConfig()
    assert str(caught.value) == line


def test_the_demo_port_and_limits_from_the_environment():
    assert parse_args([], {"C2F_PORT": "9000"}).port == 9000
    assert parse_args([], {"GRADIO_SERVER_PORT": "7861", "C2F_PORT": "9000"}).port == 7861
    for env, line in [
        ({"GRADIO_SERVER_PORT": "http"}, "GRADIO_SERVER_PORT='http': give a whole number from 1 to 65535"),
        ({"C2F_PORT": "70000"}, "C2F_PORT='70000': give a whole number from 1 to 65535"),
        ({"C2F_MAX_UPLOAD_MB": "1GB"}, "C2F_MAX_UPLOAD_MB='1GB': give a whole number >= 0"),
        ({"C2F_MAX_VIDEO_SECONDS": "1h"}, "C2F_MAX_VIDEO_SECONDS='1h': give a number >= 0"),
    ]:
        with pytest.raises(EnvironmentSettingError) as caught:
            parse_args([], env)
        assert str(caught.value) == line


def test_python_app_py_with_a_bad_setting_is_one_line_and_exit_status_2(tmp_path):
    """As the CLI: `error: <message>` on stderr, exit 2, no traceback, nothing made."""
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
