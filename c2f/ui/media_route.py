"""The demo's own route for media: GET /c2f-media/<folder>/<preset>/<file>, keyed by opaque names.

A visitor's browser sees no server path: the URL names a media subfolder (a visitor's secret HMAC
name, "showcase" or "local"), a feature preset and a file, each checked against a strict pattern
and looked up inside the media folder only. Anything else, or a file that is not there, is a 404
(the same answer, so a probe learns nothing). Starlette's FileResponse answers Range requests
(206), so the browser's player can seek without downloading the whole video.
"""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, Response
from starlette.routing import Route

MEDIA_ROUTE = "c2f-media"
# A folder or preset name, and a file name of the media folder (what c2f.ui.media writes).
_NAME = re.compile(r"[A-Za-z0-9_-]+")
_FILE = re.compile(r"[A-Za-z0-9_-]+\.(mp4|m4v|webm|jpg)")
MEDIA_TYPES = {".mp4": "video/mp4", ".m4v": "video/mp4", ".webm": "video/webm", ".jpg": "image/jpeg"}


def media_url(path: Path) -> str:
    """The URL of a file of the media folder, laid out as <media root>/<folder>/<preset>/<file>
    (relative: works under a proxy's prefix)."""
    folder, preset, name = path.parts[-3:]
    return f"{MEDIA_ROUTE}/{folder}/{preset}/{name}"


def media_file(media_root: Path, folder: str, preset: str, name: str) -> Path | None:
    """The file a media URL names, inside `media_root` only; None for any other name or a missing file."""
    if not (_NAME.fullmatch(folder) and _NAME.fullmatch(preset) and _FILE.fullmatch(name)):
        return None
    path = media_root / folder / preset / name
    try:
        resolved = path.resolve(strict=True)
    except OSError:
        return None
    # (the names cannot climb, but a link inside the media folder must not lead out of it either)
    if not resolved.is_file() or not resolved.is_relative_to(media_root.resolve()):
        return None
    return resolved


def add_media_route(app: FastAPI, media_root: Path) -> None:
    """Serve the media folder's files at /c2f-media/... on `app` (Gradio's FastAPI app), ahead of
    Gradio's own routes."""

    async def serve(request) -> Response:
        p = request.path_params
        path = media_file(media_root, p["folder"], p["preset"], p["name"])
        if path is None:
            return Response("not found", status_code=404, media_type="text/plain")
        # private: a visitor's media are theirs; cached by their browser only
        headers = {"Cache-Control": "private, max-age=3600"}
        return FileResponse(path, media_type=MEDIA_TYPES[path.suffix], headers=headers)

    route = Route(f"/{MEDIA_ROUTE}/{{folder}}/{{preset}}/{{name}}", serve, methods=["GET", "HEAD"])
    app.router.routes.insert(0, route)


__all__ = ["MEDIA_ROUTE", "add_media_route", "media_file", "media_url"]
