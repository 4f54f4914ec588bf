"""A real browser (Debian chromium, Playwright) uses speech in the demo (tiny mode, local): a video
without subtitles is indexed with "transcribe speech", one with a .srt beside it keeps its file;
a search matching "both" shows the best moment's words under the player, says where they come from,
marks the moment's cues, and a click on a cue seeks the player. The tiny Whisper's words are random:
never read. Screenshot in test-artifacts/."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from app_server import ROOT, launch_chromium, running_app
from speechgen import make_speech_video
from videogen import write_srt

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.browser
PLAYER_TIME = "document.querySelector('#player video').currentTime"


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (make test installs it)")
def test_browser_transcribe_and_search_speech(tmp_path):
    from playwright.sync_api import expect, sync_playwright

    talk = tmp_path / "talk.mp4"
    make_speech_video(talk, sentences=("she hands him the keys to the car",))
    subbed = tmp_path / "subbed.mp4"
    spans = make_speech_video(subbed, sentences=("the dog runs across the kitchen",))
    end = spans[-1][1] + 1.0
    write_srt(subbed.with_suffix(".srt"), [(0.0, end / 2, "a dog in a kitchen"), (end / 2, end, "the dog runs away")])
    with running_app(tmp_path / "library") as url, sync_playwright() as pw:
        browser = launch_chromium(pw)
        page = browser.new_context(viewport={"width": 1280, "height": 1600}).new_page()
        page.goto(url)
        expect(page.get_by_text("TINY TEST MODE").first).to_be_visible(timeout=60_000)

        page.get_by_role("tab", name="Library").click()
        page.locator("input[type=file]").first.set_input_files([str(talk), str(subbed), str(subbed.with_suffix(".srt"))])
        page.locator("#transcribe input").check()
        page.get_by_role("button", name="Index uploaded files").click()
        expect(page.locator("#index-status")).to_contain_text("2 video(s) added", timeout=240_000)

        labels = {"subbed.mp4": "subtitle file", "talk.mp4": "machine transcript (whisper-tiny-test"}
        page.get_by_role("tab", name="Search").click()
        page.locator("#match").get_by_text("both").click()
        for query in ("a dog runs in a kitchen", "she hands him the keys", "a person talks"):
            page.locator("#query textarea").fill(query)
            page.locator("#search-btn").click()
            expect(page.locator("#search-status")).to_contain_text(query, timeout=60_000)
            words = page.locator("#transcript")
            expect(words).to_contain_text("Words of ", timeout=30_000)
            header = words.locator("p").first.inner_text()
            shown = header.removeprefix("Words of ").split(":")[0]
            # where the words come from, always said (the tiny Whisper may also have heard nothing)
            assert labels[shown] in header or (shown == "talk.mp4" and "no words" in header), header
            if shown == "subbed.mp4":  # its cues cover the whole video: the moment's are marked
                expect(words.locator("mark").first).to_be_visible()
                cue = words.locator("span, mark").last
                t = float(cue.get_attribute("data-t"))
                cue.click()  # a cue seeks the player to its start
                page.wait_for_function(f"() => Math.abs({PLAYER_TIME} - {t}) < 0.3", timeout=15_000)
        page.screenshot(path=str(ROOT / "test-artifacts" / "demo_speech.png"), full_page=True)
        browser.close()
