"""The public demo's cached example results across restarts, in real processes (tiny mode,
--multi-user, example caching on): a restart on the same showcase serves the kept results; a
restart with another showcase never serves the old ones, and their folder goes; nothing is ever
written under the working folder (Gradio's default, `.gradio/cached_examples`, would be)."""

from __future__ import annotations

import json
import secrets
import urllib.request
from pathlib import Path

import pytest
from app_server import running_app

from c2f.library import Library

pytestmark = pytest.mark.slow


def example_result(url: str, row: int) -> str:
    """The results block a browser gets when it clicks example `row`: the Examples' own event,
    through Gradio's queue as the page calls it (the event is private to the page's API)."""
    config = json.load(urllib.request.urlopen(f"{url}/config", timeout=10))
    event = next(d for d in config["dependencies"] if d["api_name"] == "load_example")
    session = secrets.token_hex(8)
    join = {"data": [row], "fn_index": event["id"], "trigger_id": event["inputs"][0], "session_hash": session}
    request = urllib.request.Request(
        f"{url}/gradio_api/queue/join", json.dumps(join).encode(), {"Content-Type": "application/json"}
    )
    urllib.request.urlopen(request, timeout=10).close()
    with urllib.request.urlopen(f"{url}/gradio_api/queue/data?session_hash={session}", timeout=60) as stream:
        for line in stream:
            message = json.loads(line[len(b"data: ") :]) if line.startswith(b"data: ") else {}
            if message.get("msg") == "process_completed":
                assert message["success"], message
                return message["output"]["data"][0]
    raise AssertionError("the queue closed without a result")


def test_a_restart_with_another_showcase_never_serves_the_old_example_results(tmp_path):
    library, tmp, work = tmp_path / "library", tmp_path / "tmp", tmp_path / "work"
    tmp.mkdir()
    work.mkdir()
    app = dict(extra=["--multi-user"], env={"TMPDIR": str(tmp), "C2F_CACHE_EXAMPLES": "1"}, cwd=work)

    def kept() -> list[Path]:  # Gradio's result files, wherever they are
        return sorted(tmp_path.rglob("log.csv"))

    with running_app(library, **app) as url:
        first = example_result(url, 0)
    assert all(name in first for name in ("bigbuckbunny.mp4", "bikes.mp4", "carphone_pristine.mp4"))
    [log] = kept()
    # the kept result is marked: served after a restart, it was read from there, not searched again
    log.write_text(log.read_text().replace("3 video(s)", "3 video(s) KEPT", 1))
    with running_app(library, **app) as url:
        assert "KEPT" in example_result(url, 0)
    assert kept() == [log]

    [showcase] = (library / "showcase").iterdir()  # the showcase of the mode's preset
    Library(showcase).remove(
        next(r.video_id for r in Library(showcase).list() if r.name == "carphone_pristine.mp4")
    )
    with running_app(library, **app) as url:
        third = example_result(url, 0)
    assert "KEPT" not in third and "carphone_pristine.mp4" not in third and "bikes.mp4" in third
    [new_log] = kept()  # the old results went with their folder
    assert new_log.parents[1].parent == log.parents[1].parent != work  # the app's own folder...
    assert new_log.parents[1] != log.parents[1]  # ...keyed anew
    assert list(work.iterdir()) == []  # no .gradio in the working folder
