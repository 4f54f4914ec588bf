"""A public deployment (--multi-user, tiny mode) used by several strangers at once, through
gradio_client: private libraries, the showcase searched at once, nothing but media served, and a
bounded load test (8 visitors x 10 searches while another visitor indexes) with 0 errors."""

from __future__ import annotations

import http.client
import json
import re
import threading
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote, urlsplit

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
    """(media path, URL) of the video the results' player opens: c2f-media/<folder>/<preset>/<file>."""
    src = re.search(r'<video [^>]*src="(c2f-media/[^"#]+)', html).group(1)
    return src, f"{url}/{src}"


def raw_get(url: str, path: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    """GET `path` exactly as written (no client-side normalisation of '..' or escapes)."""
    host, port = urlsplit(url).hostname, urlsplit(url).port
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


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
    # the served media: playable videos and thumbnails only, and never by their server path
    media = [f for f in (library / "media").rglob("*") if f.is_file()]
    assert {f.suffix for f in media} <= {".mp4", ".webm", ".m4v", ".jpg"}, media
    for f in media:
        assert status_of(f"{url}/gradio_api/file={f}") >= 400, f


def test_media_by_opaque_names_with_ranges_and_no_server_path(public_app, tmp_path):
    url, library = public_app
    a = Client(url, verbose=False, download_files=False)
    video = make_video(tmp_path / "mine.mp4", segments=[("blue", 3), ("yellow", 3)])
    a.predict([handle_file(str(video))], "tiny", api_name="/index")
    outputs = [
        a.predict("a blue sky", 3, 2, "tiny", source, api_name="/search") for source in ("my videos", "examples")
    ]
    # no server path in the page or the API's outputs: not the library, the media folder, the
    # temporary folder or the home folder
    media_root = (library / "media").resolve()
    for html, raw in outputs:
        text = html + json.dumps(raw)
        for secret in ("/tmp", str(library), str(library.resolve()), str(media_root), str(Path.home())):
            assert secret not in text, secret
        assert "c2f-media/" in html and "gradio_api/file" not in html

    src, player_url = player_file(url, outputs[0][0])
    on_disk = media_root.joinpath(*src.split("/")[1:])
    data = on_disk.read_bytes()
    assert len(data) > 1000
    # the player seeks with Range requests: 206 and exactly the asked bytes
    path = urlsplit(player_url).path
    status, headers, body = raw_get(url, path, {"Range": "bytes=100-599"})
    assert status == 206 and body == data[100:600], status
    assert headers["content-range"] == f"bytes 100-599/{len(data)}"
    assert headers["content-type"] == "video/mp4"
    status, _, body = raw_get(url, path, {"Range": f"bytes={len(data) - 10}-"})
    assert status == 206 and body == data[-10:]
    status, _, body = raw_get(url, path)
    assert status == 200 and body == data
    thumb = re.search(r'<img src="(c2f-media/[^"]+\.jpg)"', outputs[0][0]).group(1)
    status, headers, body = raw_get(url, "/" + thumb)
    assert status == 200 and headers["content-type"] == "image/jpeg"
    assert body == media_root.joinpath(*thumb.split("/")[1:]).read_bytes()

    # anything but a media file's opaque name is a 404: climbing out (raw, escaped, absolute),
    # another name pattern, or a valid name under another (or a made-up) visitor's folder
    _, folder, preset, name = src.split("/")
    catalog = next(library.rglob("catalog.sqlite"))
    climbs = [
        f"/c2f-media/{folder}/{preset}/../../../{catalog.relative_to(library).as_posix()}",
        f"/c2f-media/{folder}/{preset}/..%2F..%2F..%2F{quote(catalog.relative_to(library).as_posix(), safe='')}",
        f"/c2f-media/%2e%2e/%2e%2e/{catalog.name}",
        f"/c2f-media/{folder}/%2e%2e/{name}",
        f"/c2f-media/{folder}/{preset}/%2e%2e",
        f"/c2f-media/{quote(str(on_disk), safe='')}",
        f"/c2f-media/{folder}/{preset}/{quote(str(on_disk), safe='')}",
        f"/c2f-media/{folder}/{preset}/{name[:-4]}.sqlite",
        f"/c2f-media/{folder}/{preset}/.{name}",
        f"/c2f-media/{'0' * 32}/{preset}/{name}",
        f"/c2f-media/showcase/{preset}/{name}",
        f"/c2f-media/{folder}/{preset}/nothere.mp4",
    ]
    for bad in climbs:
        assert raw_get(url, bad)[0] == 404, bad


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


def test_media_names_resolve_inside_the_media_folder_only(tmp_path):
    from c2f.ui.media_route import media_file, media_url

    root = tmp_path / "media"
    (root / "abc" / "tiny").mkdir(parents=True)
    video = root / "abc" / "tiny" / "v1.mp4"
    video.write_bytes(b"x")
    outside = tmp_path / "catalog.mp4"
    outside.write_bytes(b"secret")
    (root / "abc" / "tiny" / "link.mp4").symlink_to(outside)  # a link leading out of the folder
    assert media_url(video) == "c2f-media/abc/tiny/v1.mp4"
    assert media_file(root, "abc", "tiny", "v1.mp4") == video.resolve()
    for folder, preset, name in [
        ("abc", "tiny", "link.mp4"),
        ("..", "abc", "tiny"),
        ("abc", "..", "tiny"),
        ("abc", "tiny", "../tiny/v1.mp4"),
        ("abc", "tiny", "v1.mp4.part"),
        ("abc", "tiny", "v1.MP4"),
        ("abd", "tiny", "v1.mp4"),
        (str(root), "tiny", "v1.mp4"),
    ]:
        assert media_file(root, folder, preset, name) is None, (folder, preset, name)
