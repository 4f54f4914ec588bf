"""A real browser (Debian chromium driven by Playwright) on the local demo (tiny mode): a row's
"More like this" shows new results, its own moment left out; a picture is a query; the ticked
moments download as CSV, the same rows as the table."""

from __future__ import annotations

import csv
import io
import re
import shutil
from pathlib import Path

import pytest
from app_server import ROOT, launch_chromium, running_app
from videogen import make_image, make_video

from c2f.features import get_preset
from c2f.library import Library

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.browser
PATTERN = [("red", 1.5), ("yellow", 1.5)]


def table_rows(page) -> list[list[str]]:
    """[rank, video, start, end, score, ...] of each moment row."""
    return [r.locator("td").all_inner_texts() for r in page.locator("#moments tbody tr").all()]


@pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (make test installs it)"
)
def test_more_like_this_picture_and_export_in_the_browser(tmp_path):
    from playwright.sync_api import expect, sync_playwright

    videos = tmp_path / "videos"
    make_video(videos / "a.mp4", segments=[("black", 3.0), *PATTERN, ("black", 3.0), *PATTERN])
    make_video(videos / "b.mp4", segments=[("blue", 3.0), *PATTERN, ("blue", 1.5)])
    library = tmp_path / "library"
    Library(library / "tiny-clip-only", settings=get_preset("tiny-clip-only")).add([videos])
    picture = make_image(tmp_path / "red.png", size=(96, 64))
    artifacts = ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    with running_app(library) as url, sync_playwright() as pw:
        browser = launch_chromium(pw)
        page = browser.new_context(viewport={"width": 1280, "height": 1400}, accept_downloads=True).new_page()
        page.goto(url)
        expect(page.get_by_text("TINY TEST MODE").first).to_be_visible(timeout=30_000)
        page.locator("#query textarea").fill("a red car")
        page.locator("#search-btn").click()
        expect(page.locator("#search-status")).to_contain_text("“a red car”", timeout=30_000)
        first = table_rows(page)

        # a row's "More like this": new results, the row's own moment left out
        source = next(r for r in first if r[1] == "a.mp4")
        row = page.locator("#moments tbody tr").nth(int(source[0]) - 1)
        row.get_by_role("button", name="More like this").click()
        expect(page.locator("#search-status")).to_contain_text("“like ", timeout=30_000)
        expect(page.locator("#results")).to_contain_text("the source moment is left out")
        like = table_rows(page)
        assert like and like != first
        start, end = float(source[2]), float(source[3])
        for r in like:
            assert not (r[1] == "a.mp4" and float(r[2]) < end and float(r[3]) > start), (source, r)
        page.screenshot(path=str(artifacts / "demo_more_like_this.png"), full_page=True)

        # a picture as the query: the red clips lead
        page.get_by_text("Search by a picture").click()
        page.locator("#query-image input[type=file]").set_input_files(str(picture))
        page.locator("#query textarea").fill("")
        page.locator("#search-btn").click()
        expect(page.locator("#search-status")).to_contain_text("“picture red.png”", timeout=30_000)
        shown = table_rows(page)
        assert {(r[1], r[2]) for r in shown[:3]} == {("a.mp4", "3.00"), ("a.mp4", "9.00"), ("b.mp4", "3.00")}

        # tick two moments, export them as CSV: the download holds exactly those rows
        for rank in (1, 3):
            page.locator(f"#moments .c2f-take[value='{rank}']").check()
        page.get_by_label("CSV").check()
        box = page.locator("#export-file")
        expect(box).to_be_hidden()  # before: an empty box of ~300 px under the Export button
        page.locator("#export-btn").click()
        link = page.locator("#export-file a").first
        expect(link).to_be_visible(timeout=30_000)
        assert box.bounding_box()["height"] < 200, box.bounding_box()
        page.screenshot(path=str(artifacts / "demo_export.png"), full_page=True)
        with page.expect_download() as download:
            link.click()
        text = Path(download.value.path()).read_text()
        got = [(r["name"], float(r["start"]), float(r["end"])) for r in csv.DictReader(io.StringIO(text))]
        assert got == [(shown[k][1], float(shown[k][2]), float(shown[k][3])) for k in (0, 2)]
        assert re.fullmatch(r"moments.*\.csv", download.value.suggested_filename)
        # ticking did not seek the player away from the best moment
        browser.close()
