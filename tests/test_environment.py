"""Numbers from environment variables: one parser (c2f.environment), one clear line naming the
variable and what it accepts, for the demo's settings as for the CLI's (tests/test_cli_errors.py), and
`python app.py` ends on a bad one as the CLI does."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from c2f import cli
from c2f.environment import EnvironmentSettingError, env_choice, env_flag, env_float, env_int
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



def test_switches_are_0_or_1_and_choices_name_what_they_accept():
    env = {"ON": "1", "OFF": " 0 ", "BLANK": "", "WORD": "Off"}
    assert env_flag("ON", None, env=env) is True and env_flag("OFF", None, env=env) is False
    assert env_flag("BLANK", None, env=env) is None and env_flag("NONE", True, env=env) is True
    assert env_choice("WORD", True, {"on": True, "off": False}, env=env) is False  # any case
    for call, line in [
        (lambda: env_flag("X", None, env={"X": "yes"}), "X='yes': give 0 or 1"),
        (lambda: env_flag("X", None, env={"X": "2"}), "X='2': give 0 or 1"),
        (lambda: env_choice("X", 1, {"a": 1, "b": 2, "c": 3}, env={"X": "d"}), "X='d': give one of a, b, c"),
    ]:
        with pytest.raises(EnvironmentSettingError) as caught:
            call()
        assert str(caught.value) == line


@pytest.mark.parametrize(
    ("name", "value", "accepted"),
    [
        ("C2F_CPU_BF16", "yes", "0 or 1"),  # before: taken as unset, the dtype measured
        ("C2F_CPU_BF16", "2", "0 or 1"),
        ("C2F_TUNING", "of", "one of on, off, 1, 0, true, false"),  # before: measured
        ("C2F_OFFLINE", "true", "0 or 1"),  # before: online
        ("C2F_DEBUG", "yes", "0 or 1"),  # before: no traceback
    ],
)
def test_a_bad_switch_is_the_runs_one_line_before_any_work(monkeypatch, capsys, tmp_path, name, value, accepted):
    monkeypatch.setenv(name, value)
    out = tmp_path / "features"
    status = cli.main(["extract", str(tmp_path / "v.mp4"), "--out", str(out), "--preset", "tiny"])
    assert (status, capsys.readouterr().err) == (2, f"error: {name}={value!r}: give {accepted}\n")
    assert not out.exists()  # before: each video failed with it (C2F_CPU_BF16) or it was ignored


def test_the_bf16_switch_read_by_the_encoders(monkeypatch):
    from c2f.device import forced_cpu_bf16

    for value, forced in [("0", False), ("1", True), ("", None)]:
        monkeypatch.setenv("C2F_CPU_BF16", value)
        assert forced_cpu_bf16() is forced
    monkeypatch.setenv("C2F_CPU_BF16", "yes")
    with pytest.raises(EnvironmentSettingError, match=r"^C2F_CPU_BF16='yes': give 0 or 1$"):
        forced_cpu_bf16()  # before: None, as if unset
    for env in ({"C2F_MULTI_USER": "yes"}, {"C2F_CACHE_EXAMPLES": "on"}):
        with pytest.raises(EnvironmentSettingError, match=r"give 0 or 1$"):
            parse_args([], env)  # before: off, silently
    assert parse_args([], {"SPACE_ID": "a/b", "C2F_CACHE_EXAMPLES": "0"}).cache_examples is False

def test_python_app_py_with_a_bad_setting_is_one_line_and_exit_status_2(tmp_path):
    """As the CLI: `error: <message>` on stderr, exit 2, no traceback, nothing made."""
    cases = [  # (extra environment, flags, the line)
        ({"GRADIO_SERVER_PORT": "abc"}, [], "error: GRADIO_SERVER_PORT='abc': give a whole number from 1 to 65535"),
        ({"C2F_MAX_UPLOAD_MB": "-3"}, [], "error: C2F_MAX_UPLOAD_MB='-3': give a whole number >= 0"),
        ({"C2F_INDEX_SLOTS": "0"}, [], "error: C2F_INDEX_SLOTS='0': give a whole number >= 1"),
        ({}, ["--mode", "bogus"], "error: unknown mode 'bogus': choose one of zero-shot, tiny"),
        ({"C2F_CPU_BF16": "yes"}, [], "error: C2F_CPU_BF16='yes': give 0 or 1"),
        ({"C2F_MULTI_USER": "true"}, [], "error: C2F_MULTI_USER='true': give 0 or 1"),
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
