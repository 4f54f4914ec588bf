"""A real browser (Debian chromium driven by Playwright) uses the public demo (--multi-user, tiny
mode), and the app restarts in the middle of it, as a Space does:

- a first visit lands on the search with the example queries in sight and searches the showcase;
- the results view: one panel of curves per top video, captioned with its name in the ranking's
  order; every moment of the table drawn as a band in its video's panel, with the table's rank,
  span and score; hovering reads out time and scores; a band, a row or a point of a panel seeks
  the player;
- a visitor indexes a video; the app restarts on the same folder; the same browser reloads and the
  video is still in the visitor's Collection and searchable; a second browser sees none of it.
Screenshots are kept in test-artifacts/."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from app_server import ROOT, free_port, launch_chromium, running_app
from videogen import make_video

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.browser


PLAYER_TIME = "document.querySelector('#player video').currentTime"
PLAYER_SRC = "document.querySelector('#player video').currentSrc"


def search(page, text: str, source: str | None = None) -> None:
    if source:
        page.get_by_label(source).check()
    page.locator("#query textarea").fill(text)
    page.locator("#search-btn").click()


def wait_for_time(page, t: float) -> None:
    page.wait_for_function(f"() => Math.abs({PLAYER_TIME} - {t}) < 0.3", timeout=15_000)


def check_results_view(page) -> None:
    """The curves of the design, against the moments table; a band and a point of a panel seek."""
    captions = page.locator(".c2f-curve figcaption").all_inner_texts()
    cards = page.locator(".c2f-videos button").all_inner_texts()
    names = [re.match(r"\d+\. (.+) \(", c).group(1) for c in cards]  # the coarse ranking
    assert [re.match(r"(\d+)\. (\S+)", c).groups() for c in captions] == [
        (str(k), n) for k, n in enumerate(names, 1)
    ], (captions, cards)
    legend = page.locator(".c2f-legend").first
    for series in ("importance", "start probability", "end probability", "predicted span"):
        assert series in legend.inner_text()
    # each band is in its rank's colour, the swatch by that rank in the table, and the legend shows
    # every colour a band has (before: cycling colours, the legend showing the first alone)
    stripes = legend.locator("span", has_text="predicted span").locator("rect")
    legend_colours = set(stripes.evaluate_all("rects => rects.map((r) => r.getAttribute('fill'))"))
    band_colours = {}
    for band in page.locator(".c2f-span").all():
        rank = band.get_attribute("data-rank")
        band_colours[rank] = band.locator("rect").get_attribute("fill")
        swatch = page.locator(f"#moments tr[data-rank='{rank}'] .c2f-swatch rect").get_attribute("fill")
        assert swatch == band_colours[rank], (rank, swatch, band_colours[rank])
    assert len(set(band_colours.values())) > 1 and set(band_colours.values()) <= legend_colours
    rows = [r.locator("td").all_inner_texts() for r in page.locator("#moments tbody tr").all()]
    bands = page.locator(".c2f-span")
    assert bands.count() == len(rows) > 0
    for rank, video, start, end, score, *_ in rows:
        band = page.locator(f".c2f-span[data-rank='{rank}']")
        panel = band.locator("xpath=ancestor::figure").locator("figcaption").inner_text()
        assert re.match(rf"\d+\. {re.escape(video)} ", panel), (rank, video, panel)
        got = [float(band.get_attribute(f"data-{k}")) for k in ("start", "end", "score")]
        assert got == pytest.approx([float(start), float(end), float(score)], abs=6e-3)
        assert f"#{rank} · {float(score):.3f}" in band.locator("text").text_content()
    # clicking a band plays its video from the span's start
    rank, video, start = rows[-1][:3]
    src = page.locator(f".c2f-span[data-rank='{rank}']").get_attribute("data-src")
    page.locator(f".c2f-span[data-rank='{rank}'] text").click()
    page.wait_for_function(f"() => {PLAYER_SRC}.includes({src!r})", timeout=15_000)
    wait_for_time(page, float(start))
    # hovering reads out time and scores; a click where no band is seeks to the time under the pointer
    panel = page.locator(".c2f-curve").last
    svg = panel.locator("svg")
    svg.scroll_into_view_if_needed()
    box = svg.bounding_box()
    starts = [float(b.get_attribute("data-start")) for b in panel.locator(".c2f-span").all()]
    ends = [float(b.get_attribute("data-end")) for b in panel.locator(".c2f-span").all()]
    duration = float(panel.get_attribute("data-duration"))
    free = next(
        t / 20 * duration
        for t in range(1, 20)
        if not any(s <= t / 20 * duration <= e for s, e in zip(starts, ends, strict=True))
    )
    left, width = box["x"] + box["width"] * 34 / 900, box["width"] * (900 - 34 - 8) / 900
    page.mouse.move(left + width * free / duration, box["y"] + box["height"] * 0.5)
    readout = panel.locator(".c2f-readout")
    assert re.fullmatch(r"[\d.]+ s · importance [\d.]+ · start [\d.]+ · end [\d.]+", readout.inner_text())
    assert float(readout.inner_text().split(" s")[0]) == pytest.approx(free, abs=0.05 * duration)
    page.mouse.click(left + width * free / duration, box["y"] + box["height"] * 0.5)
    wait_for_time(page, free)


@pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (make test installs it)"
)
def test_browser_results_view_restart_and_private_collections(tmp_path):
    from playwright.sync_api import expect, sync_playwright

    artifacts = ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    upload = make_video(tmp_path / "my_holiday.mp4", segments=[("red", 3), ("blue", 3)])
    cache = tmp_path / "examples_cache"
    env = {"C2F_CACHE_EXAMPLES": "1", "GRADIO_EXAMPLES_CACHE": str(cache)}
    app = dict(extra=["--multi-user"], env=env, port=free_port())  # the same port: the same browser storage
    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        alice = browser.new_context(viewport={"width": 1280, "height": 1400}).new_page()
        with running_app(tmp_path / "library", **app) as url:
            alice.goto(url)
            expect(alice.get_by_text("TINY TEST MODE").first).to_be_visible(timeout=30_000)
            # a first visit lands on the search, the example queries in sight, and searches the showcase
            expect(alice.locator("#query textarea")).to_be_in_viewport()
            expect(alice.get_by_text("a taxi in busy city traffic", exact=True).first).to_be_in_viewport()
            search(alice, "a cyclist rides past a van")
            expect(alice.locator("#search-status")).to_contain_text("moment(s) in", timeout=30_000)
            expect(alice.locator("#player video")).to_be_visible(timeout=30_000)
            rows = alice.locator("#moments tbody tr")
            table = [r.locator("td").all_inner_texts() for r in rows.all()]  # [rank, video, start, ...]
            wait_for_time(alice, float(table[0][2]))  # the player was opened at the best moment
            # a row of another video loads that video's file, and seeks
            other = next(r for r in table if r[1] != table[0][1])
            rows.nth(int(other[0]) - 1).locator("td").nth(2).click()
            wait_for_time(alice, float(other[2]))
            check_results_view(alice)
            alice.screenshot(path=str(artifacts / "demo_search.png"), full_page=True)

            # Alice indexes a video of her own
            alice.get_by_role("tab", name="Library").click()
            alice.locator("input[type=file]").first.set_input_files(str(upload))
            alice.get_by_role("button", name="Index uploaded files").click()
            expect(alice.locator("#index-status")).to_contain_text("1 video(s) added", timeout=120_000)

        # the app restarts on the same folder; Alice's browser reloads: her video is still hers
        with running_app(tmp_path / "library", **app) as url:
            alice.reload()
            alice.get_by_role("tab", name="Library").click()
            expect(alice.locator("#collection")).to_contain_text("my_holiday.mp4", timeout=30_000)
            alice.get_by_role("tab", name="Search").click()
            search(alice, "a red wall", source="my videos")
            expect(alice.locator("#search-status")).to_contain_text("“a red wall”", timeout=30_000)
            expect(alice.locator("#moments")).to_contain_text("my_holiday.mp4")

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
