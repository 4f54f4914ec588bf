"""A public deployment (--multi-user, tiny mode) used by several strangers at once, through
gradio_client: private libraries, the showcase searched at once, nothing but media served, and a
bounded load test (8 visitors x 10 searches while another visitor indexes) with 0 errors."""

from __future__ import annotations

import re
import threading
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import unquote

import pytest
from app_server import running_app
from gradio_client import Client, handle_file
from videogen import make_video


@pytest.fixture(scope="module")
def public_app(tmp_path_factory):
    root = tmp_path_factory.mktemp("public")
    with running_app(root / "library", extra=["--multi-user"]) as url:
        yield url, root / "library"


def rows(table):
    return table["data"] if isinstance(table, dict) else table


def moment_names(raw) -> set[str]:
    """Video names of a search's moments (its raw JSON result)."""
    return {m["name"] for m in raw["moments"]}


def player_file(url: str, html: str) -> tuple[str, str]:
    """(server path, URL) of the video the results' player opens."""
    src = re.search(r'<video [^>]*src="(gradio_api/file=[^"#]+)', html).group(1)
    return unquote(src.split("=", 1)[1]), f"{url}/{src}"


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_visitors_are_private_and_only_media_is_served(public_app, tmp_path):
    url, library = public_app
    a = Client(url, verbose=False, download_files=False)
    b = Client(url, verbose=False, download_files=False)
    # a first visit searches the showcase at once (indexed at start-up)
    *_, raw = b.predict("a cyclist rides past a van", 3, 2, "tiny", api_name="/search")
    assert moment_names(raw) <= {"bigbuckbunny.mp4", "bikes.mp4", "carphone_pristine.mp4"}

    secret = make_video(tmp_path / "a_private.mp4", segments=[("red", 3), ("green", 3)])
    status, table, _ = a.predict([handle_file(str(secret))], "tiny", api_name="/index")
    assert status.startswith("1 video(s) added")
    (a_id,) = [r[0] for r in rows(table) if r[1] == "a_private.mp4"]
    a_html, *_ = a.predict("a red wall", 3, 2, "tiny", api_name="/search")
    a_player_path, a_player_url = player_file(url, a_html)
    assert a_player_path.endswith(f"{a_id}.mp4") and status_of(a_player_url) == 200

    # B sees nothing of A: not in its collection, not in its searches, cannot remove it
    b_texts = [str(b.predict("a red wall", 5, 3, "tiny", api_name="/search"))]
    with pytest.raises(Exception, match="the library is empty"):  # B's own library: empty
        b.predict("a red wall", 5, 3, "tiny", "my videos", api_name="/search")
    assert all("a_private" not in t and a_id not in t for t in b_texts)
    with pytest.raises(Exception, match=a_id):  # the message names the id, not A's file
        b.predict(a_id, "tiny", api_name="/remove")
    *_, a_raw = a.predict("a red wall", 3, 2, "tiny", "my videos", api_name="/search")
    assert moment_names(a_raw) == {"a_private.mp4"}
    # A's download of an evaluation of the examples is served from Gradio's cache, as a copy
    from c2f.ui.examples import example_annotations

    *_, a_export = a.predict(
        handle_file(str(example_annotations())), 5, "tiny", "examples", api_name="/evaluate"
    )[:3]
    assert "c2f-exports" not in a_export["path"] and status_of(a_export["url"]) == 200
    a_folder = Path(a_player_path).parent.parent.name  # A's secret media folder
    assert all(a_folder not in t for t in b_texts)

    # no catalog, index, feature or stored video file of anyone is served, through any route
    private = [f for f in library.rglob("*") if f.is_file() and "media" not in f.relative_to(library).parts]
    assert any(f.name == "catalog.sqlite" for f in private) and any(f.suffix == ".mp4" for f in private)
    for f in private:
        for route in ("/gradio_api/file=", "/file=", "/gradio_api/file/", "/static/"):
            assert status_of(f"{url}{route}{f}") >= 400, (route, f)
    # the served media: playable videos and thumbnails only
    served = {f.suffix for f in (library / "media").rglob("*") if f.is_file()}
    assert served <= {".mp4", ".webm", ".m4v", ".jpg"}, served


def test_eight_visitors_search_while_another_indexes(public_app, tmp_path):
    url, _ = public_app
    video = make_video(tmp_path / "late.mp4", seconds=6.0)
    errors: list[str] = []
    answered = []
    lock = threading.Lock()
    queries = ["a taxi in busy city traffic", "a big grey rabbit", "a man talks in a car"]

    def visitor(k: int) -> None:
        c = Client(url, verbose=False, download_files=False)
        for i in range(10):
            try:
                *_, raw = c.predict(queries[(k + i) % 3], 5, 3, "tiny", api_name="/search")
                with lock:
                    answered.append(len(raw["moments"]))
            except Exception as exc:
                with lock:
                    errors.append(str(exc)[:200])

    def indexer() -> None:
        try:
            status, *_ = Client(url, verbose=False, download_files=False).predict(
                [handle_file(str(video))], "tiny", api_name="/index"
            )
            assert status.startswith("1 video(s) added"), status
        except Exception as exc:
            with lock:
                errors.append(f"indexer: {exc}")

    threads = [threading.Thread(target=visitor, args=(k,)) for k in range(8)]
    threads.append(threading.Thread(target=indexer))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=240)
    assert not errors, errors[:3]
    assert len(answered) == 80 and min(answered) > 0
