"""Latency of the demo as visitors feel it (tiny mode, 2 CPU cores): prints one JSON object.

- single-visitor server p50: one `/search` through gradio_client, request to answer;
- single-visitor browser p50: Chromium clicks Search until the status line, player and curves show;
- loaded p50/p95: N visitors search at once while another visitor indexes a video; errors counted.

Run: .venv/bin/python benchmarks/app_latency.py [--visitors 8] [--searches 10] [--no-browser]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from app_server import running_app  # noqa: E402
from gradio_client import Client, handle_file  # noqa: E402
from videogen import make_video  # noqa: E402

QUERIES = ["a red wall", "the sky is blue", "green grass", "a white room", "people walk", "a dark night"]
COLOURS = ["red", "blue", "green", "white", "yellow", "black"]


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return round(values[min(len(values) - 1, int(q * len(values)))] * 1000, 1) if values else float("nan")


def timed_search(client: Client, query: str) -> float:
    t0 = time.perf_counter()
    client.predict(query, 5, 3, "tiny", api_name="/search")  # (files are not downloaded)
    return time.perf_counter() - t0


def browser_p50(url: str, n: int) -> float:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    times = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=chromium,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 1400})
        page.goto(url)
        page.get_by_role("tab", name="Search").click()
        status = page.locator("#search-status")
        for i in range(n + 1):
            before = status.inner_text() if status.count() else ""
            page.locator("#query textarea").fill(f"{QUERIES[i % len(QUERIES)]} {i}")
            t0 = time.perf_counter()
            page.locator("#search-btn").click()
            page.wait_for_function(
                "old => { const s = document.querySelector('#search-status');"
                " return s && s.innerText.includes('moment(s)') && s.innerText !== old; }",
                arg=before,
                timeout=60_000,
            )
            page.locator("#player video").wait_for(state="visible", timeout=60_000)
            page.locator("#result-plot").wait_for(state="visible", timeout=60_000)
            if i:  # the first search warms the page up
                times.append(time.perf_counter() - t0)
        browser.close()
    return pct(times, 0.5)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--videos", type=int, default=4)
    p.add_argument("--visitors", type=int, default=8)
    p.add_argument("--searches", type=int, default=10)
    p.add_argument("--single", type=int, default=15)
    p.add_argument("--browser", type=int, default=8)
    p.add_argument("--no-browser", action="store_true")
    p.add_argument("--multi-user", action="store_true", help="run the app as on a public Space")
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="c2f-bench-"))
    videos = [
        make_video(work / f"v{i}.mp4", segments=[(COLOURS[i % 6], 3), (COLOURS[(i + 1) % 6], 3)])
        for i in range(args.videos)
    ]
    extra = make_video(work / "late.mp4", segments=[("yellow", 4), ("black", 4)])
    out: dict = {"videos": args.videos, "visitors": args.visitors, "searches_each": args.searches}
    (work / "lib").mkdir()
    out["multi_user"] = args.multi_user
    with running_app(work / "lib" / "library", extra=["--multi-user"] if args.multi_user else []) as url:
        # one visitor indexes videos and searches alone; the browser searches the same library
        # (single-user) or the showcase (multi-user)
        owner = Client(url, verbose=False, download_files=False)
        owner.predict([handle_file(str(v)) for v in videos], "tiny", api_name="/index")
        timed_search(owner, "warm up")
        single = [timed_search(owner, QUERIES[i % len(QUERIES)]) for i in range(args.single)]
        out["single_server_p50_ms"] = pct(single, 0.5)
        if not args.no_browser:
            out["single_browser_p50_ms"] = browser_p50(url, args.browser)

        errors: list[str] = []
        loaded: list[float] = []
        lock = threading.Lock()

        def visitor(k: int) -> None:
            try:
                c = Client(url, verbose=False, download_files=False)
                c.predict([handle_file(str(videos[k % len(videos)]))], "tiny", api_name="/index")
            except Exception as exc:
                with lock:
                    errors.append(f"index: {exc}")
                return
            for i in range(args.searches):
                try:
                    dt = timed_search(c, QUERIES[(k + i) % len(QUERIES)])
                    with lock:
                        loaded.append(dt)
                except Exception as exc:
                    with lock:
                        errors.append(str(exc)[:200])

        def indexer() -> None:
            try:
                Client(url, verbose=False, download_files=False).predict(
                    [handle_file(str(extra))], "tiny", api_name="/index"
                )
            except Exception as exc:
                with lock:
                    errors.append(f"indexer: {exc}")

        t0 = time.perf_counter()
        threads = [threading.Thread(target=visitor, args=(k,)) for k in range(args.visitors)]
        threads.append(threading.Thread(target=indexer))
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        out.update(
            loaded_p50_ms=pct(loaded, 0.5),
            loaded_p95_ms=pct(loaded, 0.95),
            loaded_searches_per_s=round(len(loaded) / wall, 2),
            errors=len(errors),
            error_samples=errors[:3],
        )
    shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
