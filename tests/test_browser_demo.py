"""A real browser (Debian chromium driven by Playwright) uses the public demo (--multi-user, tiny
mode): a first visit searches the showcase at once, a moment row seeks the player within the same
file, brushing the curves seeks it, a visitor's Collection is right after a reload, and a second browser sees none of it.
The screenshot is kept in test-artifacts/."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from app_server import ROOT, launch_chromium, running_app
from videogen import make_video

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.browser


PLAYER_TIME = "document.querySelector('#player video').currentTime"
PLAYER_SRC = "document.querySelector('#player video').currentSrc"


def search(page, text: str) -> None:
    page.get_by_role("tab", name="Search").click()
    page.locator("#query textarea").fill(text)
    page.locator("#search-btn").click()


def brush(page, selector: str, left: float, right: float) -> None:
    """Drag across a plot from `left` to `right` (fractions of its drawing area's width)."""
    drawing = page.locator(f"{selector} canvas, {selector} svg.marks").first
    drawing.scroll_into_view_if_needed()
    box = drawing.bounding_box()
    y = box["y"] + box["height"] / 3  # inside the plotting area, above the x axis
    page.mouse.move(box["x"] + left * box["width"], y)
    page.mouse.down()
    page.mouse.move(box["x"] + (left + right) / 2 * box["width"], y, steps=4)
    page.mouse.move(box["x"] + right * box["width"], y, steps=4)
    page.mouse.up()


def brush_and_seek(page, left: float, right: float) -> float:
    """Brush the curves from `left` to `right`; the player's time once it has sought there.
    Gradio's plot ignores a brush within 1 s of its last one and redraws itself after each (or on
    a resize), so the drag is retried when it fell into such a moment."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for _ in range(3):
        page.wait_for_timeout(1200)
        page.locator("#player video").evaluate("v => { v.currentTime = 0; }")
        brush(page, "#result-plot", left, right)
        try:
            page.wait_for_function(f"() => {PLAYER_TIME} > 0.05", timeout=5_000)
        except PlaywrightTimeout:
            continue
        return page.locator("#player video").evaluate("v => v.currentTime")
    raise AssertionError("brushing the curves never moved the player")


@pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (make test installs it)"
)
def test_browser_showcase_seek_private_collection(tmp_path):
    from playwright.sync_api import expect, sync_playwright

    artifacts = ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    upload = make_video(tmp_path / "my_holiday.mp4", segments=[("red", 3), ("blue", 3)])
    cache = tmp_path / "examples_cache"
    env = {"C2F_CACHE_EXAMPLES": "1", "GRADIO_EXAMPLES_CACHE": str(cache)}
    with running_app(tmp_path / "library", extra=["--multi-user"], env=env) as url, sync_playwright() as pw:
        browser = launch_chromium(pw)
        alice = browser.new_context(viewport={"width": 1280, "height": 1400}).new_page()
        alice.goto(url)
        expect(alice.get_by_text("TINY TEST MODE").first).to_be_visible(timeout=30_000)

        # a first visit searches the showcase at once: no upload, no indexing
        search(alice, "a cyclist rides past a van")
        expect(alice.locator("#search-status")).to_contain_text("moment(s) in", timeout=30_000)
        video = alice.locator("#player video")
        expect(video).to_be_visible(timeout=30_000)
        expect(alice.locator("#result-plot")).to_be_visible()
        rows = alice.locator("#moments tbody tr")
        table = [r.locator("td").all_inner_texts() for r in rows.all()]  # [rank, video, start, end, ...]
        # the player was opened at the best moment
        alice.wait_for_function(f"() => Math.abs({PLAYER_TIME} - {table[0][2]}) < 0.3", timeout=15_000)
        top_src = video.evaluate("v => v.currentSrc || v.src")
        # two rows of one video: the first loads that video, the second seeks within the same file
        by_video: dict[str, list[list[str]]] = {}
        for r in table:
            by_video.setdefault(r[1], []).append(r)
        a, b = next(ms for ms in by_video.values() if len(ms) > 1)[:2]
        for r in (a, b):
            rows.nth(int(r[0]) - 1).locator("td").nth(2).click()
            if r is a and a[1] != table[0][1]:  # another video: its file replaces the top one
                alice.wait_for_function(f"() => {PLAYER_SRC} !== {top_src!r}", timeout=15_000)
            alice.wait_for_function(f"() => Math.abs({PLAYER_TIME} - {r[2]}) < 0.3", timeout=15_000)
            if r is a:
                src = video.evaluate("v => v.currentSrc || v.src")
                assert ".mp4" in src
        assert video.evaluate("v => v.currentSrc || v.src") == src  # no new file for the second row

        # brushing a span of the curves seeks the player to the span's start: further right, later
        times = [brush_and_seek(alice, left, right) for left, right in ((0.15, 0.3), (0.6, 0.8))]
        assert times[1] > times[0] + 0.3, times
        alice.screenshot(path=str(artifacts / "demo_search.png"), full_page=True)

        # Alice indexes a video of her own; after a reload her Collection still shows it
        alice.get_by_role("tab", name="Library").click()
        alice.locator("input[type=file]").first.set_input_files(str(upload))
        alice.get_by_role("button", name="Index uploaded files").click()
        expect(alice.locator("#index-status")).to_contain_text("1 video(s) added", timeout=120_000)
        alice.reload()
        alice.get_by_role("tab", name="Library").click()
        expect(alice.locator("#collection")).to_contain_text("my_holiday.mp4", timeout=30_000)

        # Bob, another browser, sees none of Alice's videos, in his Collection or in his searches
        bob = browser.new_context(viewport={"width": 1280, "height": 1400}).new_page()
        bob.goto(url)
        expect(bob.get_by_text("TINY TEST MODE").first).to_be_visible(timeout=30_000)
        search(bob, "a red wall")
        expect(bob.locator("#search-status")).to_contain_text("moment(s) in", timeout=30_000)
        expect(bob.locator("#moments")).not_to_contain_text("my_holiday")
        bob.get_by_role("tab", name="Library").click()
        expect(bob.locator("#collection")).not_to_contain_text("my_holiday.mp4")
        assert "my_holiday" not in bob.content()

        # an example query searches the showcase, kept after its first use: Bob's click fills the
        # cache, Alice (who has videos of her own) gets the same showcase results from it
        example = "a taxi in busy city traffic"
        shown = []
        for page in (bob, alice):
            page.get_by_role("tab", name="Search").click()
            page.get_by_text(example, exact=True).first.click()
            expect(page.locator("#search-status")).to_contain_text(example, timeout=30_000)
            shown.append(page.locator("#moments").inner_text())
            if page is bob:
                assert any(cache.rglob("*")), "the example's result was not kept"
        assert shown[0] == shown[1] and "my_holiday" not in shown[1]
        browser.close()
