"""How the demo is started: its settings from the command line and the environment, as the platform
that runs it sets them, and the server's launch.

On a Hugging Face Space the platform sets `SPACE_ID`, `GRADIO_SERVER_NAME=0.0.0.0` and
`GRADIO_SERVER_PORT`, and runs `python app.py` with no arguments: the platform's address and port
win over C2F's own defaults (`C2F_HOST`, `C2F_PORT`), and an explicit `--host` / `--port` wins
over both. A Space with persistent storage mounts it at `/data`: the libraries live there, so a
restart of the Space keeps every visitor's videos.
"""

from __future__ import annotations

import argparse
import inspect
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from c2f.cli import check_switches, exit_status
from c2f.environment import env_flag, env_float, env_int

PERSISTENT_STORAGE = Path("/data")  # a Space's persistent storage, when it has some


@dataclass(frozen=True)
class LaunchSettings:
    host: str
    port: int
    library: Path
    mode: str
    max_upload_mb: int
    max_video_seconds: float
    device: str | None
    multi_user: bool
    cache_examples: bool


def default_library(env: Mapping[str, str], persistent: Path = PERSISTENT_STORAGE) -> Path:
    """C2F_LIBRARY, else the Space's persistent storage (when it is there and writable), else
    ./c2f_library."""
    if env.get("C2F_LIBRARY"):
        return Path(env["C2F_LIBRARY"])
    if env.get("SPACE_ID") and persistent.is_dir() and os.access(persistent, os.W_OK):
        return persistent / "c2f_library"
    return Path("c2f_library")


def parse_args(argv: list[str] | None = None, env: Mapping[str, str] | None = None) -> LaunchSettings:
    env = os.environ if env is None else env
    get = env.get
    on_space = bool(get("SPACE_ID"))
    p = argparse.ArgumentParser(description="C2F demo")
    p.add_argument(
        "--host",
        default=get("GRADIO_SERVER_NAME") or get("C2F_HOST") or "127.0.0.1",
        help="address to listen on (default: GRADIO_SERVER_NAME, as a Space sets it, else C2F_HOST, "
        "else 127.0.0.1)",
    )
    p.add_argument(
        "--port",
        type=int,
        default=env_int("GRADIO_SERVER_PORT", None, minimum=1, maximum=65535, env=env)
        or env_int("C2F_PORT", 7860, minimum=1, maximum=65535, env=env),
        help="port (default: GRADIO_SERVER_PORT, else C2F_PORT, else 7860)",
    )
    p.add_argument(
        "--library",
        type=Path,
        default=default_library(env),
        help="library root folder (default: C2F_LIBRARY, else /data/c2f_library on a Space with "
        "persistent storage, else ./c2f_library)",
    )
    p.add_argument(
        "--mode", default=get("C2F_MODE", "zero-shot"), help="zero-shot, tiny or learned:<checkpoint>"
    )
    p.add_argument("--max-upload-mb", type=int, default=env_int("C2F_MAX_UPLOAD_MB", 500, minimum=0, env=env))
    p.add_argument(
        "--max-video-seconds", type=float, default=env_float("C2F_MAX_VIDEO_SECONDS", 3600.0, minimum=0, env=env)
    )
    p.add_argument("--device", default=get("C2F_DEVICE"))
    p.add_argument(
        "--multi-user",
        action=argparse.BooleanOptionalAction,
        default=env_flag("C2F_MULTI_USER", on_space, env=env),
        help="a private library per visitor and a shared read-only showcase (default on a Space)",
    )
    p.add_argument(
        "--cache-examples",
        action=argparse.BooleanOptionalAction,
        default=env_flag("C2F_CACHE_EXAMPLES", on_space, env=env),
        help="cache the example queries' results over the showcase on first use (--multi-user only; "
        "default on a Space)",
    )
    a = p.parse_args(argv)
    return LaunchSettings(
        host=a.host,
        port=a.port,
        library=a.library,
        mode=a.mode,
        max_upload_mb=a.max_upload_mb,
        max_video_seconds=a.max_video_seconds,
        device=a.device,
        multi_user=a.multi_user,
        # a local library changes with each upload: its results are never kept (c2f.ui.example_cache)
        cache_examples=a.cache_examples and a.multi_user,
    )


def main(build_demo: Callable, argv: list[str] | None = None) -> int:
    """`python app.py`: `serve`, a bad setting (a variable, a flag, an unknown mode) told in one
    line on stderr, `error: <message>`, exit status 2, as the CLI does. `build_demo` imports
    Gradio itself: Gradio reads GRADIO_SERVER_PORT with int() when it is imported, and raises a
    bare ValueError on a value this parser names in one line."""
    return exit_status(lambda: serve(build_demo, argv))


def serve(build_demo: Callable, argv: list[str] | None = None) -> None:
    """Start the service, build the page with `build_demo(service, cache_examples)` and serve it
    until the process ends."""
    settings = parse_args(argv)
    from c2f.ui.zerogpu import import_spaces_first

    import_spaces_first()  # before anything can touch CUDA (ZeroGPU refuses it afterwards)
    from c2f.ui.backends import check_mode
    from c2f.ui.media_route import add_media_route
    from c2f.ui.service import AppConfig, AppService

    check_mode(settings.mode)
    check_switches()
    config = AppConfig(
        library_root=settings.library,
        mode=settings.mode,
        max_upload_mb=settings.max_upload_mb,
        max_video_seconds=settings.max_video_seconds,
        device=settings.device,
        multi_user=settings.multi_user,
    )
    if not os.environ.get("GRADIO_TEMP_DIR"):
        # Gradio's cache (uploads, copies of downloads) is this app's alone: what earlier runs left
        # there is emptied (Gradio would serve it, and never delete it)
        from c2f.ui.sweep import remove_folder

        remove_folder(config.gradio_cache)
        os.environ["GRADIO_TEMP_DIR"] = str(config.gradio_cache)
    service = AppService(config)
    service.start(settings.mode)
    if settings.cache_examples:  # a folder of these results alone, read by Gradio as the page is built
        from c2f.ui.example_cache import examples_cache_folder

        page = inspect.getsourcefile(build_demo)
        folder = examples_cache_folder(service, settings.mode, Path(page) if page else None)
        os.environ["GRADIO_EXAMPLES_CACHE"] = str(folder)
    demo = build_demo(service, cache_examples=settings.cache_examples)
    demo.queue(default_concurrency_limit=2, max_size=64)
    demo.launch(
        server_name=settings.host,
        server_port=settings.port,
        # Gradio refuses a whole batch over its limit: twice ours, so the service refuses a big file alone.
        max_file_size=f"{2 * settings.max_upload_mb}mb",
        show_error=False,
        prevent_thread_lock=True,
    )
    # Served to browsers: the media folder only (playable copies and thumbnails, under names that
    # are secret per visitor), by our own route, never the libraries' catalogs, indexes or features.
    add_media_route(demo.app, service.media_root)
    print(f"c2f: serving on {settings.host}:{settings.port}, library {settings.library}", flush=True)
    demo.block_thread()


__all__ = ["LaunchSettings", "default_library", "main", "parse_args", "serve"]
