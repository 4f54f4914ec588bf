"""The demo page's event handlers: Gradio's inputs in, the components' values out, every error as one
clear message (gr.Error / gr.Warning, never a server path). They call the service (c2f.ui.service);
app.py only lays the page out and wires its events to these.

Heavy work (indexing, evaluation) runs in a fair job slot (c2f.ui.jobs), taken before the GPU is
asked for on ZeroGPU (c2f.ui.zerogpu), so waiting for a turn never holds a GPU.
"""

from __future__ import annotations

import time

import gradio as gr

from c2f.errors import C2FError
from c2f.search import Query, parse_moment_ref
from c2f.search.by_example import DEFAULT_EXAMPLE_WEIGHT
from c2f.ui.curves import query_curves_html
from c2f.ui.examples import example_annotations, example_videos
from c2f.ui.media_route import media_url
from c2f.ui.player import public_result, results_html
from c2f.ui.service import AppService
from c2f.ui.text import public_text
from c2f.ui.transcript import result_transcript_html
from c2f.ui.zerogpu import SEARCH_SECONDS, gpu, index_seconds

LIBRARY_COLUMNS = ["id", "name", "duration (s)", "clips", "status", "subtitles", "error"]
# The export choices shown -> c2f.export formats.
EXPORT_FORMATS = {"CSV": "csv", "JSON": "json", "EDL (CMX 3600)": "edl", "Clips (zip)": "clips"}
OUTCOME_COLUMNS = ["desc_id", "query", "video", "rank of right video", "best IoU", "kind"]


def fail(exc: Exception):
    raise gr.Error(public_text(str(exc)), print_exception=False)


def _paths(files) -> list[str]:
    return [f if isinstance(f, str) else f.name for f in (files or [])]


class Handlers:
    def __init__(self, service: AppService) -> None:
        self.service = service
        # what needs a GPU on ZeroGPU, asked for as long as the work needs
        self._index_on_gpu = gpu(lambda mode, paths, *_a, **_k: index_seconds(paths))(self.service.index)
        self._evaluate_on_gpu = gpu(SEARCH_SECONDS)(self.service.evaluate)
        self._search_on_gpu = gpu(SEARCH_SECONDS)(self._search_shown)
        self._showcase_on_gpu = gpu(SEARCH_SECONDS)(self._showcase_shown)

    def who(self, token, request: gr.Request | None) -> str | None:
        try:
            return self.service.visitor(token, getattr(request, "session_hash", None))
        except C2FError as exc:
            fail(exc)

    # --- page and library ------------------------------------------------------------------------
    def banner(self, mode: str) -> str:
        return self.service.backends.banner(mode)[0]

    def library_rows(self, mode, token=None, request: gr.Request = None) -> list[list]:
        try:
            return self.service.table(mode, self.who(token, request))
        except C2FError:
            return []

    @staticmethod
    def video_choices(rows):
        return gr.update(choices=[(f"{r[1]} ({r[0]})", r[0]) for r in rows], value=None)

    def refreshed(self, mode, token, request: gr.Request = None):
        rows = self.library_rows(mode, token, request)
        return rows, self.video_choices(rows)

    def page_load(self, mode, token, request: gr.Request):
        """A page opens: its token (a new one unless this server signed it), its collection."""
        token = self.service.browser_token(token)
        return (token, *self.refreshed(mode, token, request))

    def index_files(
        self, files, mode, token=None, transcribe=False, request: gr.Request = None, progress=gr.Progress()
    ):
        paths = _paths(files)
        who = self.who(token, request)
        try:
            t0 = time.monotonic()
            with self.service.jobs.slot(who, "indexing") as waited:
                print(f"c2f: indexing started {waited:.2f} s after it was asked for", flush=True)
                outcome = self._index_on_gpu(
                    mode,
                    paths,
                    progress=lambda name, v, overall: progress(overall, desc=f"{name}: {v:.0%}"),
                    who=who,
                    transcribe=bool(transcribe),
                )
            print(f"c2f: indexing ended after {time.monotonic() - t0:.2f} s", flush=True)
        except C2FError as exc:
            fail(exc)
        finally:
            self.service.discard_uploads(paths)
        for name, why in outcome.failed:
            gr.Warning(public_text(f"{name}: {why}"))
        return (public_text(outcome.summary()), *self.refreshed(mode, token, request))

    def add_examples(self, mode, token=None, request: gr.Request = None, progress=gr.Progress()):
        return self.index_files(
            [str(p) for p in example_videos()], mode, token, request=request, progress=progress
        )

    def remove_video(self, video_id, mode, token=None, request: gr.Request = None):
        try:
            msg = self.service.remove(mode, video_id, self.who(token, request))
        except C2FError as exc:
            fail(exc)
        return (msg, *self.refreshed(mode, token, request))

    # --- search ----------------------------------------------------------------------------------
    def shown(self, result, coll, mode: str) -> tuple[str, dict]:
        """A search's outputs: the results block (with the best moment's words; rows offer "More
        like this" when the mode searches by example) and the raw result (no server path)."""
        media = {v.video_id: self.service.media_of(coll, v.video_id) for v in result.videos}
        urls = {video_id: media_url(video) for video_id, (video, _) in media.items()}
        words = result_transcript_html(coll.library, result, urls)  # under the player: the moment's words
        more_like = getattr(self.service.backend(mode), "example_queries", False)
        return results_html(result, media, more_like) + words, public_result(result)

    def _search_shown(self, query, top_k, moments, mode, who, source, match):
        return self.shown(*self.service.search(mode, query, top_k, moments, who, source, match), mode)

    def _showcase_shown(self, query, top_k, moments, mode):
        return self.shown(*self.service.search_showcase(mode, query, top_k, moments), mode)

    def search(
        self,
        query,
        top_k,
        moments,
        mode,
        source="auto",
        token=None,
        match="visual",
        image=None,
        weight=DEFAULT_EXAMPLE_WEIGHT,
        request: gr.Request = None,
    ):
        """A sentence; with a picture (a file path), the picture alone or mixed with the sentence:
        score = (1 - weight) * text + weight * picture."""
        try:
            if image:
                text = query if isinstance(query, str) and query.strip() else None
                query = Query(text=text, image=str(image), weight=float(weight))
            return self._search_on_gpu(query, top_k, moments, mode, self.who(token, request), source, match)
        except C2FError as exc:
            fail(exc)

    def more_like(
        self, top_k, moments, mode, source="auto", token=None, evt: gr.EventData = None, request: gr.Request = None
    ):
        """A row's "More like this" (the results block's select event, {like: "VIDEO_ID:START-END"}):
        moments like that one in the collection it came from, itself left out."""
        try:
            data = getattr(evt, "_data", None) or {}
            like = parse_moment_ref(str(data.get("like", "")) if isinstance(data, dict) else "")
            who = self.who(token, request)
            return self._search_on_gpu(Query(like=like), top_k, moments, mode, who, source, "visual")
        except C2FError as exc:
            fail(exc)

    def export(self, raw, picked, label, exact, mode, source="auto", token=None, request: gr.Request = None):
        """The last search's moments (the ticked ones, space-separated ranks in `picked`; none
        ticked: all) as a download in the format `label` names (EXPORT_FORMATS)."""
        raw = raw if isinstance(raw, dict) else {}
        found = raw.get("moments") or []
        try:
            ranks = [int(r) for r in str(picked or "").split()]
        except ValueError:
            ranks = []
        chosen = [found[r - 1] for r in ranks if 1 <= r <= len(found)] if ranks else found
        who = self.who(token, request)
        title = f"C2F {raw.get('query', '')}".strip()
        try:
            path = self.service.export_moments(
                mode, chosen, EXPORT_FORMATS.get(label, str(label)), bool(exact), who, source, title
            )
        except C2FError as exc:
            fail(exc)
        return str(path)

    def search_example(self, query, top_k, moments, mode, _source="examples"):
        """An example query: always over the showcase, whoever asks (the example sets 'Search in')."""
        try:
            return self._showcase_on_gpu(query, top_k, moments, mode)
        except C2FError as exc:
            fail(exc)

    # --- error analysis --------------------------------------------------------------------------
    def run_analysis(
        self,
        annotations,
        top_k,
        mode,
        source="auto",
        token=None,
        request: gr.Request = None,
        progress=gr.Progress(),
    ):
        path = annotations if isinstance(annotations, str) else getattr(annotations, "name", None)
        if not path:
            fail(
                C2FError("upload a TVR-format annotation file (.jsonl) first, or use the example annotations")
            )
        who = self.who(token, request)
        try:
            with self.service.jobs.slot(who, "evaluation") as waited:
                print(f"c2f: evaluation started {waited:.2f} s after it was asked for", flush=True)
                ev = self._evaluate_on_gpu(mode, path, top_k, lambda f, d: progress(f, desc=d), who, source)
            out = self.service.export_predictions(ev, who)
        except C2FError as exc:
            fail(exc)
        for _, why in ev.skipped[:5]:
            gr.Warning(public_text(why))
        return ev.metric_rows(), ev.outcome_rows(), str(out), ev, self.query_view(ev, 0)

    @staticmethod
    def query_view(ev, row: int) -> str:
        if ev is None or not ev.queries:
            return ""
        video, truth = ev.query_video(row)
        return query_curves_html(video, truth, ev.queries[row].desc)

    def select_query(self, ev, evt: gr.SelectData) -> str:
        row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        return self.query_view(ev, int(row))

    @staticmethod
    def show_file() -> gr.File:
        """Shows a download box once an event has put a file in it (hidden before: an empty one is a
        large blank area). A step of its own: the API's answer stays the file itself."""
        return gr.File(visible=True)

    @staticmethod
    def example_annotations() -> str:
        return str(example_annotations())


__all__ = ["EXPORT_FORMATS", "LIBRARY_COLUMNS", "OUTCOME_COLUMNS", "Handlers", "fail"]
