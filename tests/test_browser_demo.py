"""A real browser (Debian chromium driven by Playwright) uses the demo: add an example video, search,
see the result plot and the player. The screenshot is kept in test-artifacts/."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from app_server import ROOT, running_app

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.browser


@pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (make test installs it)"
)
def test_browser_index_search_plot_and_player(tmp_path):
    from playwright.sync_api import expect, sync_playwright

    artifacts = ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    with running_app(tmp_path / "library") as url, sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 1400})
        page.goto(url)
        expect(page.get_by_text("TINY TEST MODE").first).to_be_visible(timeout=30_000)
        page.get_by_role("button", name="Add the example videos").click()
        expect(page.get_by_text("3 video(s) added")).to_be_visible(timeout=120_000)
        page.get_by_role("tab", name="Search").click()
        page.locator("#query textarea").fill("the light turns red")
        page.locator("#search-btn").click()
        expect(page.locator("#result-plot img")).to_be_visible(timeout=60_000)
        expect(page.locator("#player video")).to_be_visible(timeout=60_000)
        expect(page.get_by_text("moment(s) in")).to_be_visible()
        page.screenshot(path=str(artifacts / "demo_search.png"), full_page=True)
        browser.close()
