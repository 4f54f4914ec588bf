"""Restart hygiene of the public demo (--multi-user, tiny mode), in real processes: visitors index,
search and download, the app restarts, more visitors come, the app restarts again (with another
key, as when C2F_SECRET changes). Each start-up removes the visitors who went idle while it was
down and every media or download folder of no live visitor: the disk returns to what it was after
the first start, and every old /c2f-media URL answers 404."""

from __future__ import annotations

import re
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from app_server import running_app
from gradio_client import Client, handle_file
from videogen import make_video

from c2f.ui.examples import example_annotations

pytestmark = pytest.mark.slow


def snapshot(*roots: Path) -> dict[str, int]:
    """Every file under `roots` and its size."""
    return {str(p): p.stat().st_size for root in roots for p in sorted(root.rglob("*")) if p.is_file()}


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code


def path_of(url: str) -> str:
    return url.split("/", 3)[3]


def visit(url: str, video: Path) -> list[str]:
    """A visitor indexes a video, searches it and downloads an evaluation; returns every URL the
    app gave them (media and the download), each checked to answer 200 now."""
    c = Client(url, verbose=False, download_files=False)
    status, *_ = c.predict([handle_file(str(video))], "tiny", api_name="/index")
    assert status == "1 video(s) added"
    html, _ = c.predict("a red wall", 3, 2, "tiny", "my videos", api_name="/search")
    urls = [f"{url}/{src}" for src in re.findall(r'(?:src|data-src)="(c2f-media/[^"#]+)', html)]
    export = c.predict(handle_file(str(example_annotations())), 5, "tiny", "examples", api_name="/evaluate")[
        2
    ]
    urls.append(export["url"])
    assert urls and all(status_of(u) == 200 for u in urls)
    return sorted(set(urls))


def wait_until_idle(library: Path, idle_seconds: float) -> None:
    """Sleep until every visitor's last activity (their folder's time) is `idle_seconds` old: a
    restart that comes sooner finds them active, and keeps them (as it should)."""
    homes = list((library / "visitors").iterdir())
    last = max((h.stat().st_mtime for h in homes), default=0.0)
    time.sleep(max(0.0, last + idle_seconds + 0.5 - time.time()))


IDLE_SECONDS = 3.0


def test_two_restarts_leave_the_disk_at_its_baseline_and_old_urls_answer_404(tmp_path):
    library, tmp = tmp_path / "library", tmp_path / "tmp"  # tmp: the app's temporary folder
    tmp.mkdir()
    # visitors count as idle 3 s after their last activity; the background sweep is left out, so
    # only the start-ups remove anything
    env = {
        "TMPDIR": str(tmp),
        "C2F_IDLE_MINUTES": str(IDLE_SECONDS / 60),
        "C2F_SWEEP_SECONDS": "3600",
    }
    videos = [
        make_video(tmp_path / f"{name}.mp4", segments=[("red", 2), (c, 2)])
        for name, c in (("alice", "blue"), ("bob", "green"), ("carol", "white"))
    ]
    roots = (library, tmp)
    old_urls: list[str] = []
    with running_app(library, extra=["--multi-user"], env=env) as url:
        baseline = snapshot(*roots)
        old_urls += visit(url, videos[0]) + visit(url, videos[1])
    assert len(list((library / "visitors").iterdir())) == 2
    wait_until_idle(library, IDLE_SECONDS)
    with running_app(library, extra=["--multi-user"], env=env) as url:
        assert all(status_of(f"{url}/{path_of(u)}") == 404 for u in old_urls if "/c2f-media/" in u)
        old_urls += visit(url, videos[2])
    wait_until_idle(library, IDLE_SECONDS)
    with running_app(library, extra=["--multi-user"], env={**env, "C2F_SECRET": "a new key"}) as url:
        after = snapshot(*roots)
        for u in old_urls:  # media: 404; a download: Gradio's cache was emptied at start-up
            assert status_of(f"{url}/{path_of(u)}") in (403, 404), u
    log = (tmp_path / "app.log").read_text()
    assert log.count("removed 2 idle visitor(s)") == 1 and log.count("removed 1 idle visitor(s)") == 1
    assert "media/export folder(s) of no live visitor" in log  # the old key's folders of Carol
    assert after == baseline, sorted(set(after.items()) ^ set(baseline.items()))
    print(
        f"\ndisk after the first start: {sum(baseline.values())} bytes in {len(baseline)} files; "
        f"after two restarts with visitors between: {sum(after.values())} bytes in {len(after)} files"
    )
