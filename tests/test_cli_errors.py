"""Every CLI failure is one line on stderr, `error: ...`, naming the file when there is one; never a
traceback. The README's command lines are accepted by the parser."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from c2f import cli
from c2f.data.tvr import load_annotations
from c2f.library import Library

ROOT = Path(__file__).resolve().parents[1]


def run_cli(capsys, *argv: str) -> tuple[int, list[str]]:
    """(exit status, stderr lines) of `python -m c2f argv...` run in this process."""
    code = cli.main(list(argv))
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err.splitlines()


def assert_one_error(capsys, argv, *names: str, code: int = 2) -> str:
    status, lines = run_cli(capsys, *argv)
    assert status == code, lines
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    for name in names:
        assert str(name) in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def fake_video(tmp_path) -> Path:
    # Never decoded: each failure below happens before the video is opened.
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"not decoded")
    return path


@pytest.fixture
def garbage_library(tmp_path) -> Path:
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "catalog.sqlite").write_bytes(os.urandom(8192))
    return lib


# --- --library -------------------------------------------------------------------------------------
def test_library_pointing_at_a_file(capsys, tmp_path, fake_video):
    taken = tmp_path / "notes.txt"
    taken.write_text("x")
    for argv in (
        ["index", str(fake_video), "--library", str(taken)],
        ["search", "a dog", "--library", str(taken)],
        ["library", "list", "--library", str(taken)],
    ):
        line = assert_one_error(capsys, argv, taken)
        assert "is a file, not a library folder" in line


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_library_under_proc(capsys, fake_video):
    line = assert_one_error(capsys, ["index", str(fake_video), "--library", "/proc/c2f-no-such-library"])
    assert "/proc/c2f-no-such-library" in line and "cannot create the library" in line
    line = assert_one_error(capsys, ["index", str(fake_video), "--library", "/proc/self"])
    assert "/proc/self" in line
    assert_one_error(capsys, ["search", "a dog", "--library", "/proc/self"], "no library at /proc/self")


def test_garbage_catalog(capsys, garbage_library, fake_video):
    catalog = garbage_library / "catalog.sqlite"
    for argv in (
        ["index", str(fake_video), "--library", str(garbage_library)],
        ["search", "a dog", "--library", str(garbage_library), "--mode", "tiny"],
        ["library", "list", "--library", str(garbage_library)],
    ):
        line = assert_one_error(capsys, argv, catalog)
        assert "not a C2F library catalog" in line


# --- extract / index inputs ------------------------------------------------------------------------
def test_extract_out_pointing_at_a_file(capsys, tmp_path, fake_video):
    taken = tmp_path / "feats"
    taken.write_text("x")
    line = assert_one_error(capsys, ["extract", str(fake_video), "--out", str(taken), "--preset", "tiny"], taken)
    assert "is a file, not a folder" in line


@pytest.mark.parametrize("command", ["index", "extract"])
def test_no_videos_in_an_empty_folder_or_a_folder_named_like_a_video(capsys, tmp_path, command):
    for folder in (tmp_path / "empty", tmp_path / "x.mp4"):
        folder.mkdir()
        extra = ["--out", str(tmp_path / "out")] if command == "extract" else ["--library", str(tmp_path / "L")]
        assert_one_error(capsys, [command, str(folder), *extra], f"no videos found in {folder}")
    assert not (tmp_path / "L").exists() and not (tmp_path / "out").exists()  # nothing created


@pytest.mark.parametrize("command", ["index", "extract", "search"])
def test_bogus_device_is_refused_once_up_front(capsys, tmp_path, fake_video, command):
    argv = {
        "index": ["index", str(fake_video), "--library", str(tmp_path / "L")],
        "extract": ["extract", str(fake_video), "--out", str(tmp_path / "out")],
        "search": ["search", "a dog", "--library", str(tmp_path / "L")],
    }[command]
    line = assert_one_error(capsys, [*argv, "--device", "bogus"])
    assert line == "error: --device 'bogus' is not a device: use cpu, cuda or cuda:N"
    assert not (tmp_path / "L").exists() and not (tmp_path / "out").exists()


def test_bogus_device_from_the_environment(capsys, tmp_path, fake_video, monkeypatch):
    monkeypatch.setenv("C2F_DEVICE", "gpu0")
    line = assert_one_error(capsys, ["index", str(fake_video), "--library", str(tmp_path / "L")])
    assert line.startswith("error: C2F_DEVICE 'gpu0' is not a device")


# --- annotations -----------------------------------------------------------------------------------
ROW = {"vid_name": "v1", "duration": 30.0, "ts": [1.0, 4.5], "desc": "Café à l'ombre", "desc_id": 7}


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-8-sig"])
def test_utf16_and_bom_annotations_are_read(tmp_path, encoding):
    path = tmp_path / "ann.jsonl"
    path.write_bytes((json.dumps(ROW, ensure_ascii=False) + "\n").encode(encoding))
    (query,) = load_annotations(path)
    assert (query.desc, query.desc_id, query.ts) == ("Café à l'ombre", 7, (1.0, 4.5))


def test_annotations_through_the_cli(capsys, tmp_path):
    utf16 = tmp_path / "utf16.jsonl"
    utf16.write_bytes((json.dumps(ROW, ensure_ascii=False) + "\n").encode("utf-16"))
    missing = tmp_path / "missing.json"
    # the annotations are read first; the error is then about the missing prediction file
    assert_one_error(capsys, ["evaluate", "--annotations", str(utf16), "--predictions", str(missing)], missing)
    latin1 = tmp_path / "latin1.jsonl"
    latin1.write_bytes(b"\n" + json.dumps(ROW, ensure_ascii=False).encode("latin-1") + b"\n")
    line = assert_one_error(capsys, ["evaluate", "--annotations", str(latin1), "--predictions", str(missing)])
    assert line == f"error: {latin1}: line 2: byte 0xe9 is not valid utf-8: save the file as UTF-8"


# --- queries ---------------------------------------------------------------------------------------
@pytest.fixture
def empty_tiny_library(tmp_path) -> Path:
    Library(tmp_path / "lib", settings="tiny-clip-only")
    return tmp_path / "lib"


def test_query_with_a_lone_surrogate(capsys, empty_tiny_library):
    line = assert_one_error(capsys, ["search", "a dog \udcff", "--library", str(empty_tiny_library), "--mode", "tiny"])
    assert "the query is not valid text: character 7 (U+DCFF)" in line


def test_query_bytes_that_are_not_utf8_in_argv(empty_tiny_library):
    # Python turns undecodable argv bytes into lone surrogates: the real path of such a query.
    proc = subprocess.run(
        [sys.executable, "-m", "c2f", "search", b"caf\xe9", "--library", str(empty_tiny_library), "--mode", "tiny"],
        capture_output=True,
        cwd=ROOT,
        env={**os.environ, "LC_ALL": "C.UTF-8", "PYTHONUTF8": "1"},
    )
    err = proc.stderr.decode("utf-8", "replace").splitlines()
    assert proc.returncode == 2 and len(err) == 1, err
    assert err[0].startswith("error: the query is not valid text: character 4 (U+DCE9)")


# --- the last resort -------------------------------------------------------------------------------
def test_unexpected_error_is_one_line_with_the_debug_hint(capsys, monkeypatch, tmp_path):
    import c2f.commands.library as library_command

    def broken(args):
        raise ValueError("something\nunforeseen")

    monkeypatch.setattr(library_command, "run", broken)
    line = assert_one_error(capsys, ["library", "list", "--library", str(tmp_path)], code=1)
    assert line == "error: ValueError: something unforeseen (run with C2F_DEBUG=1 for the traceback)"
    monkeypatch.setenv("C2F_DEBUG", "1")
    with pytest.raises(ValueError, match="unforeseen"):
        cli.main(["library", "list", "--library", str(tmp_path)])


# --- README and CLI agree --------------------------------------------------------------------------
def _readme_command_lines() -> list[list[str]]:
    text = (ROOT / "README.md").read_text()
    block = text.split("## Command line", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    return [line.split("#")[0].split()[3:] for line in block.strip().splitlines()]


def _options(parser) -> set[str]:
    found = set(parser._option_string_actions)
    for action in parser._actions:
        if hasattr(action, "choices") and isinstance(action.choices, dict):
            for sub in action.choices.values():
                found |= _options(sub)
    return found


def test_readme_command_lines_use_only_options_the_cli_has():
    parser = cli.build_parser()
    commands = next(a for a in parser._actions if isinstance(a.choices, dict)).choices
    lines = _readme_command_lines()
    assert len(lines) >= 8
    for words in lines:
        command = commands[words[0]]
        for flag in re.findall(r"--[a-z][a-z0-9-]*", " ".join(words[1:])):
            assert flag in _options(command), f"README: `c2f {words[0]} {flag}` is not a CLI option"


def test_index_mode_tiny_makes_a_tiny_library(capsys, tmp_path):
    from videogen import make_video

    video = make_video(tmp_path / "v.mp4", seconds=2.0, size=(64, 48))
    lib = tmp_path / "lib"
    assert cli.main(["index", str(video), "--library", str(lib), "--mode", "tiny", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "1 added" in out and "(preset tiny-clip-only)" in out
    # an existing library must fit the mode asked for
    line = assert_one_error(capsys, ["index", str(video), "--library", str(lib), "--preset", "default"])
    assert f"the library {lib} was created with feature preset 'tiny-clip-only'" in line


@pytest.mark.parametrize("command", ["index", "extract"])
def test_an_argument_without_videos_next_to_good_files_gets_one_line(capsys, tmp_path, command):
    from videogen import make_video

    video = make_video(tmp_path / "v.mp4", seconds=2.0, size=(64, 48))
    named_like_a_video, empty = tmp_path / "dir.mp4", tmp_path / "empty"
    named_like_a_video.mkdir()
    empty.mkdir()
    (empty / "notes.txt").write_text("no video here")
    where = {"extract": ["--out", str(tmp_path / "feats"), "--preset", "tiny"]}
    where["index"] = ["--library", str(tmp_path / "lib"), "--mode", "tiny"]
    argv = [command, str(named_like_a_video), str(video), str(empty), *where[command], "--device", "cpu"]
    status = cli.main(argv)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    for folder in (named_like_a_video, empty):  # one line each, naming it
        lines = [line for line in captured.err.splitlines() if str(folder) in line]
        assert len(lines) == 1 and lines[0].startswith(f"skipped {folder}: a folder with no video file"), lines
    assert status == 1  # something asked for was not done
    # the good video is still processed
    assert ("1 added" in captured.out) if command == "index" else ("1 of 1 videos extracted" in captured.out)


@pytest.mark.parametrize("command", ["extract", "index"])
def test_a_refused_file_is_one_line_naming_it_once(capsys, tmp_path, command):
    from videogen import make_text_file_as_video

    folder = tmp_path / "in"
    folder.mkdir()
    refused = {
        make_text_file_as_video(folder / "notes.mp4"): "not a video file ffmpeg can read (Invalid data found",
        folder / "empty.mp4": "the file is empty (0 bytes)",
    }
    (folder / "empty.mp4").write_bytes(b"")
    where = {"extract": ["--out", str(tmp_path / "feats"), "--preset", "tiny-clip-only"]}
    where["index"] = ["--library", str(tmp_path / "lib"), "--preset", "tiny-clip-only"]
    assert cli.main([command, str(folder), *where[command], "--device", "cpu"]) == 1
    captured = capsys.readouterr()
    lines = [line for line in (captured.out + captured.err).splitlines() if "%|" not in line]  # no bars
    for path, reason in refused.items():
        # before: "skipped DIR/notes.mp4: DIR/notes.mp4: not a video file ffmpeg can read (DIR/notes.mp4:
        # Invalid data ...)", and again at the end as "  failed: ..." (index: "failed: notes.mp4: DIR/...")
        naming = [line for line in lines if path.name in line]
        named = str(path) if command == "extract" else path.name
        assert len(naming) == 1 and naming[0].count(path.name) == 1, naming
        assert naming[0].strip().startswith(f"{'skipped' if command == 'extract' else 'failed:'} {named}: {reason}")


# --- numbers in the environment --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "value", "line", "workers"),
    [
        # before: decord's reader failed on int('four'), every video fell back to ffmpeg, exit 0
        ("C2F_DECODE_THREADS", "four", "C2F_DECODE_THREADS='four': give a whole number >= 1", "0"),
        # before: the layout measurement swallowed the ValueError, exit 0
        ("C2F_DECODE_THREADS", "0.5", "C2F_DECODE_THREADS='0.5': give a whole number >= 1", "2"),
        # before: decord got threads="many" in every worker, each video failed on its own
        (
            "C2F_TUNE_DECODE_LAYOUT",
            '{"workers": 2, "threads": "many"}',
            'C2F_TUNE_DECODE_LAYOUT=\'{"workers": 2, "threads": "many"}\': give a JSON object '
            '{"workers": W, "threads": T} of whole numbers >= 1',
            "2",
        ),
        ("C2F_DECODE_WORKERS", "-1", "C2F_DECODE_WORKERS='-1': give a whole number >= 0", None),
    ],
)
def test_a_bad_number_in_the_environment_is_one_line_before_any_video(
    capsys, tmp_path, monkeypatch, name, value, line, workers
):
    from videogen import make_video

    videos = [str(make_video(tmp_path / f"{c}.mp4", segments=[(c, 1.0)], size=(64, 48))) for c in ("red", "blue")]
    monkeypatch.setenv("C2F_TUNING_CACHE", str(tmp_path / "tuning.json"))
    monkeypatch.setenv(name, value)
    more = ["--workers", workers] if workers else []
    out, lib = tmp_path / "out", tmp_path / "L"
    for argv in (
        ["extract", *videos, "--out", str(out), "--preset", "tiny-clip-only", *more],
        ["index", *videos, "--library", str(lib), "--preset", "tiny-clip-only", *more],
    ):
        assert assert_one_error(capsys, argv) == f"error: {line}"
    assert not list(out.glob("*.safetensors")) if out.exists() else True
    assert not (lib / "catalog.sqlite").exists() or Library(lib).list() == []
