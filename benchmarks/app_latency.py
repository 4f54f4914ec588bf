"""Latency of the demo as visitors feel it (tiny mode, 2 CPU cores): prints one JSON object.

- single-visitor server p50: one `/search` through gradio_client, request to answer;
- single-visitor browser p50: Chromium, from the click on Search to the last change of the page
  caused by it (status, player, thumbnails, moments, curve panels: measured in the page, no change
  for 0.6 s after it);
- loaded p50/p95: N visitors search at once while another visitor indexes a video; errors counted.

--baseline DIR runs the demo of another source tree (e.g. `git archive OLD | tar -x -C DIR`) at the
same time and interleaves its single-visitor searches with this tree's (same load, A/B): on a shared
machine compare the two medians, not absolute values.

Run: .venv/bin/python benchmarks/app_latency.py [--visitors 8] [--searches 10] [--no-browser]
     [--baseline DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from app_server import launch_chromium, running_app  # noqa: E402
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


# Installed once per page: the time of the page's last DOM change a visitor can see (Gradio's
# screen-reader status, `.sr-only`, announces "complete" 0.5-2 s after a search: left out).
WATCH_JS = """() => { window.__c2fLast = performance.now();
  const seen = (m) => { const el = m.target.nodeType === 1 ? m.target : m.target.parentElement;
    return !(el && el.closest('.sr-only')); };
  new MutationObserver((ms) => { if (ms.some(seen)) window.__c2fLast = performance.now(); })
    .observe(document.body, {subtree: true, childList: true, attributes: true, characterData: true}); }"""
CLICK_JS = """() => { const s = document.querySelector('#search-status');
  window.__c2fOld = s ? s.innerText : ''; const t = performance.now();
  document.querySelector('#search-btn').click(); return t; }"""
STATUS_CHANGED_JS = """() => { const s = document.querySelector('#search-status');
  return s && s.innerText.includes('moment(s)') && s.innerText !== window.__c2fOld; }"""


def browser_p50s(urls: dict[str, str], n: int) -> dict[str, float]:
    """Browser p50 (ms) of each app, their searches interleaved (order alternating)."""
    from playwright.sync_api import sync_playwright

    times: dict[str, list[float]] = {name: [] for name in urls}
    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        pages = {}
        for name, url in urls.items():
            page = browser.new_context(viewport={"width": 1280, "height": 1400}).new_page()
            page.goto(url)
            page.get_by_role("tab", name="Search").click()
            page.evaluate(WATCH_JS)
            pages[name] = page
        for i in range(n + 1):
            for name in list(pages)[:: 1 if i % 2 == 0 else -1]:
                page = pages[name]
                page.locator("#query textarea").fill(f"{QUERIES[i % len(QUERIES)]} {i}")
                page.wait_for_timeout(300)
                t0 = page.evaluate(CLICK_JS)
                page.wait_for_function(STATUS_CHANGED_JS, timeout=60_000, polling=20)
                page.wait_for_function("() => performance.now() - window.__c2fLast > 600", timeout=60_000)
                if i:  # the first search warms the page up
                    times[name].append((page.evaluate("() => window.__c2fLast") - t0) / 1000)
        browser.close()
    return {name: pct(t, 0.5) for name, t in times.items()}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--videos", type=int, default=4)
    p.add_argument("--visitors", type=int, default=8)
    p.add_argument("--searches", type=int, default=10)
    p.add_argument("--single", type=int, default=15)
    p.add_argument("--browser", type=int, default=8)
    p.add_argument("--no-browser", action="store_true")
    p.add_argument("--multi-user", action="store_true", help="run the app as on a public Space")
    p.add_argument("--baseline", type=Path, help="another source tree, measured alongside (A/B)")
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="c2f-bench-"))
    videos = [
        make_video(work / f"v{i}.mp4", segments=[(COLOURS[i % 6], 3), (COLOURS[(i + 1) % 6], 3)])
        for i in range(args.videos)
    ]
    extra = make_video(work / "late.mp4", segments=[("yellow", 4), ("black", 4)])
    out: dict = {"videos": args.videos, "visitors": args.visitors, "searches_each": args.searches}
    out["multi_user"] = args.multi_user
    extra_args = ["--multi-user"] if args.multi_user else []
    with ExitStack() as apps:
        trees = {"this": ROOT, **({"baseline": args.baseline.resolve()} if args.baseline else {})}
        urls = {}
        for name, tree in trees.items():
            (work / name).mkdir()
            urls[name] = apps.enter_context(running_app(work / name / "library", extra=extra_args, root=tree))
        url = urls["this"]
        # one visitor indexes videos and searches alone; the browser searches the same library
        # (single-user) or the showcase (multi-user)
        clients = {}
        for name, u in urls.items():
            clients[name] = Client(u, verbose=False, download_files=False)
            clients[name].predict([handle_file(str(v)) for v in videos], "tiny", api_name="/index")
            timed_search(clients[name], "warm up")
        single: dict[str, list[float]] = {name: [] for name in urls}
        for i in range(args.single):
            for name, c in clients.items():
                single[name].append(timed_search(c, QUERIES[i % len(QUERIES)]))
        out["single_server_p50_ms"] = pct(single["this"], 0.5)
        if args.baseline:
            out["baseline"] = str(args.baseline)
            out["baseline_single_server_p50_ms"] = pct(single["baseline"], 0.5)
        if not args.no_browser:
            browser = browser_p50s(urls, args.browser)
            out["single_browser_p50_ms"] = browser["this"]
            if args.baseline:
                out["baseline_single_browser_p50_ms"] = browser["baseline"]

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
