"""The public demo (--multi-user, tiny mode) against strangers and a hostile script, through
gradio_client, on one app: API sessions that only search make nothing; malformed tokens (any type,
non-ASCII) are no identity and no error; another visitor's upload starts at once while someone
evaluates 5,000 rows (which stops at the time limit); a flood of new sessions fills the demo up to
its cap of visitors, past which each hears "the demo is full, try later" while everybody else is
served as before."""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path

import pytest
from app_server import running_app
from gradio_client import Client, handle_file
from videogen import make_video

from c2f.ui.config import AppConfig
from c2f.ui.examples import example_annotations

EVAL_SECONDS = 20  # the app's evaluation time limit


@pytest.fixture(scope="module")
def public_app(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    env = {"C2F_MAX_VISITORS": "3", "C2F_EVAL_MAX_SECONDS": str(EVAL_SECONDS), "C2F_EVAL_MAX_ROWS": "5000"}
    with running_app(root / "library", extra=["--multi-user"], env=env) as url:
        yield url, root


def client(url: str) -> Client:
    return Client(url, verbose=False, download_files=False)


def everything_under(*roots: Path) -> list[str]:
    return sorted(str(p) for root in roots for p in root.rglob("*"))


def log_lines(root: Path, pattern: str) -> list[str]:
    return re.findall(pattern, (root / "app.log").read_text())


def test_api_sessions_that_only_search_make_nothing(public_app):
    url, root = public_app
    library = root / "library"
    before = everything_under(library, AppConfig(library_root=library).temp_root)
    c = client(url)
    for k in range(60):  # 60 strangers' sessions (the client chooses its session id)
        c.reset_session()
        *_, raw = c.predict(f"a taxi in busy city traffic {k}", 3, 2, "tiny", api_name="/search")
        assert raw["moments"]
    assert everything_under(library, AppConfig(library_root=library).temp_root) == before
    assert not (library / "visitors").exists()


def test_malformed_tokens_are_no_identity_and_no_error(public_app):
    url, _ = public_app
    c = client(url)
    for token in ("é" * 32 + "." + "0" * 32, "\u0660" * 65, "x.y", 12, ["a"], {"id": "0" * 32}, ""):
        *_, raw = c.predict("a big grey rabbit", 3, 2, "tiny", "auto", token, api_name="/search")
        assert raw["moments"], token


@pytest.mark.slow
def test_an_upload_starts_at_once_while_another_visitor_evaluates_5000_rows(public_app, tmp_path):
    url, root = public_app
    rows = [json.loads(line) for line in example_annotations().read_text().splitlines() if line.strip()]
    big = tmp_path / "5000.jsonl"
    big.write_text("".join(json.dumps({**rows[k % len(rows)], "desc_id": k}) + "\n" for k in range(5000)))
    too_big = tmp_path / "5001.jsonl"
    too_big.write_text(big.read_text() + json.dumps({**rows[0], "desc_id": 5000}) + "\n")
    with pytest.raises(Exception, match="more than 5000 rows: this server evaluates up to 5000 at once"):
        client(url).predict(handle_file(str(too_big)), 10, "tiny", "examples", api_name="/evaluate")

    outcome: dict = {}

    def evaluate() -> None:
        t0 = time.monotonic()
        try:
            client(url).predict(handle_file(str(big)), 10, "tiny", "examples", api_name="/evaluate")
            outcome["result"] = "finished"
        except Exception as exc:
            outcome["result"] = str(exc)
        outcome["seconds"] = time.monotonic() - t0

    started = len(log_lines(root, r"c2f: evaluation started"))
    evaluator = threading.Thread(target=evaluate)
    evaluator.start()
    deadline = time.monotonic() + 60
    while len(log_lines(root, r"c2f: evaluation started")) == started:
        assert time.monotonic() < deadline, "the evaluation never started"
        time.sleep(0.2)
    time.sleep(2)  # well into its searches
    video = make_video(tmp_path / "second.mp4", segments=[("red", 2), ("blue", 2)])
    t0 = time.monotonic()
    status, *_ = client(url).predict([handle_file(str(video))], "tiny", api_name="/index")
    upload_seconds = time.monotonic() - t0
    assert status == "1 video(s) added" and evaluator.is_alive(), "the upload did not overtake the evaluation"
    waited = float(log_lines(root, r"c2f: indexing started ([\d.]+) s after")[-1])
    print(
        f"\nsecond visitor's upload while 5,000 rows are evaluated: started after {waited:.2f} s in line, "
        f"done in {upload_seconds:.1f} s"
    )
    assert waited < 1.0
    evaluator.join(EVAL_SECONDS + 120)
    # the evaluation stops at the time limit, with the reason (or finished first on a fast machine)
    assert (
        outcome["result"] == "finished" or f"past this server's {EVAL_SECONDS} s limit" in outcome["result"]
    )
    print(f"5,000-row evaluation: {outcome['result'][:80]} after {outcome['seconds']:.0f} s")


def test_a_session_flood_fills_the_demo_and_nothing_else_breaks(public_app, tmp_path):
    url, _ = public_app
    video = make_video(tmp_path / "flood.mp4", segments=[("green", 2)])
    c = client(url)
    answers = []
    for _ in range(6):  # a script opening new sessions and uploading from each
        c.reset_session()
        try:
            answers.append(c.predict([handle_file(str(video))], "tiny", api_name="/index")[0])
        except Exception as exc:
            answers.append(str(exc))
    full = "the demo is full, try later (3 visitors have videos here)"
    added = [a for a in answers if a == "1 video(s) added"]
    assert len(added) == 1 and all(full in a for a in answers if a not in added), answers
    # a new stranger is served as before
    c2 = client(url)
    *_, raw = c2.predict("a taxi in busy city traffic", 3, 2, "tiny", api_name="/search")
    assert raw["moments"]
