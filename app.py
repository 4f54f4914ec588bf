"""C2F browser demo (Gradio): index your videos, ask in words, see and play the moments, analyse errors.

UI only: every action calls c2f (c2f.ui.service.AppService over c2f.library / c2f.search / c2f.analysis).
Run: python app.py [--host 0.0.0.0] [--port 7860] [--library DIR] [--mode zero-shot|tiny|learned:NAME]
     [--multi-user]   (on by itself on a Hugging Face Space: private libraries + a shared showcase)
Settings and launch: c2f.ui.launch (on a Space, the platform's GRADIO_SERVER_NAME / _PORT).
"""

from __future__ import annotations

import gradio as gr

from c2f.errors import C2FError
from c2f.ui.examples import example_annotations, example_queries, example_videos
from c2f.ui.launch import serve
from c2f.ui.player import RESULTS_CSS, RESULTS_JS, media_url, public_result, results_html
from c2f.ui.plots import curves_table, results_figure
from c2f.ui.service import SOURCES, UPLOAD_EXTENSIONS, AppService
from c2f.ui.text import public_text
from c2f.ui.transcript import TRANSCRIPT_CSS, result_transcript_html
from c2f.ui.zerogpu import SEARCH_SECONDS, gpu, index_seconds, on_zerogpu

LIBRARY_COLUMNS = ["id", "name", "duration (s)", "clips", "status", "subtitles", "error"]
OUTCOME_COLUMNS = ["desc_id", "query", "video", "rank of right video", "best IoU", "kind"]

def build_demo(service: AppService, cache_examples: bool = False) -> gr.Blocks:
    """The demo's page. `cache_examples`: the example queries search the read-only showcase, the
    same for every visitor, and Gradio keeps each one's result after its first use (multi-user only:
    a local library changes with every upload, so its results cannot be kept)."""
    multi = service.config.multi_user
    cache_examples = cache_examples and multi

    def fail(exc: Exception):
        raise gr.Error(public_text(str(exc)), print_exception=False)

    def who(token, request: gr.Request | None):
        try:
            return service.visitor(token, getattr(request, "session_hash", None))
        except C2FError as exc:
            fail(exc)

    def banner(mode):
        return service.mode_banner(mode)[0]

    def library_rows(mode, token=None, request: gr.Request = None):
        try:
            return service.table(mode, who(token, request))
        except C2FError:
            return []

    def video_choices(rows):
        return gr.update(choices=[(f"{r[1]} ({r[0]})", r[0]) for r in rows], value=None)

    def refreshed(mode, token, request: gr.Request = None):
        rows = library_rows(mode, token, request)
        return rows, video_choices(rows)

    def on_load(mode, token, request: gr.Request):
        token = service.browser_token(token)
        return (token, *refreshed(mode, token, request))

    def index_gpu_seconds(files, *_args, **_kw):
        return index_seconds([f if isinstance(f, str) else f.name for f in (files or [])])

    @gpu(index_gpu_seconds)
    def index_files(
        files, mode, token=None, transcribe=False, request: gr.Request = None, progress=gr.Progress()
    ):
        paths = [f if isinstance(f, str) else f.name for f in (files or [])]
        try:
            outcome = service.index(
                mode,
                paths,
                progress=lambda name, v, overall: progress(overall, desc=f"{name}: {v:.0%}"),
                who=who(token, request),
                transcribe=bool(transcribe),
            )
        except C2FError as exc:
            fail(exc)
        for name, why in outcome.failed:
            gr.Warning(public_text(f"{name}: {why}"))
        return (public_text(outcome.summary()), *refreshed(mode, token, request))

    def add_examples(mode, token=None, request: gr.Request = None, progress=gr.Progress()):
        return index_files([str(p) for p in example_videos()], mode, token, request=request, progress=progress)

    def remove_video(video_id, mode, token=None, request: gr.Request = None):
        try:
            msg = service.remove(mode, video_id, who(token, request))
        except C2FError as exc:
            fail(exc)
        return (msg, *refreshed(mode, token, request))

    def shown(result, coll):
        """A search's outputs: the results block, the curves and the raw result (no server path)."""
        media = {v.video_id: service.media(coll, v.video_id) for v in result.videos}
        urls = {video_id: media_url(video) for video_id, (video, _) in media.items()}
        words = result_transcript_html(coll.library, result, urls)  # under the player: the moment's words
        return results_html(result, media) + words, curves_table(result.videos), public_result(result)

    @gpu(SEARCH_SECONDS)
    def search(
        query, top_k, moments, mode, source="auto", token=None, match="visual", request: gr.Request = None
    ):
        try:
            return shown(*service.search(mode, query, top_k, moments, who(token, request), source, match))
        except C2FError as exc:
            fail(exc)

    @gpu(SEARCH_SECONDS)
    def search_example(query, top_k, moments, mode, _source="examples"):
        """An example query: always over the showcase, whoever asks (the example sets 'Search in')."""
        try:
            return shown(*service.search_showcase(mode, query, top_k, moments))
        except C2FError as exc:
            fail(exc)

    def brushed_start(evt: gr.SelectData):
        """A span brushed on the curves: its start, for the player to seek to (in the browser)."""
        return round(float(evt.index[0]), 3) if isinstance(evt.index, (list, tuple)) else gr.skip()

    @gpu(SEARCH_SECONDS)
    def run_analysis(
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
        visitor = who(token, request)
        try:
            ev = service.evaluate(mode, path, top_k, lambda f, d: progress(f, desc=d), visitor, source)
        except C2FError as exc:
            fail(exc)
        for _, why in ev.skipped[:5]:
            gr.Warning(public_text(why))
        out = service.export_predictions(ev, visitor)
        return ev.metric_rows(), ev.outcome_rows(), str(out), ev, show_query(ev, 0)

    def show_query(ev, row):
        if ev is None or not ev.queries:
            return None
        video, gt = ev.query_video(row)
        return results_figure([video], {video.video_id: gt})

    def select_query(ev, evt: gr.SelectData):
        row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        return show_query(ev, int(row))

    def use_example_annotations():
        return str(example_annotations())

    # Gradio's own temporary files (uploads, returned files) older than an hour go every 10 minutes.
    with gr.Blocks(title="C2F: find the moment", delete_cache=(600, 3600)) as demo:
        gr.Markdown(
            "# C2F: find the moment, in any video of a collection\n"
            "Coarse to fine: rank the videos for a sentence, then localize the moment inside the best ones."
            + (
                "\n\nYour videos are private to this browser and removed after "
                f"{service.config.idle_minutes:.0f} idle minutes; until you add some, searches look in the examples."
                if multi
                else ""
            )
        )
        token = gr.BrowserState(None, storage_key="c2f-visitor")
        with gr.Row():
            mode = gr.Dropdown(service.modes(), value=service.config.mode, label="Mode", scale=1)
            mode_text = gr.Markdown(banner(service.config.mode), elem_id="mode-banner")
        last_eval = gr.State(None)
        seek_t = gr.Number(visible=False)
        with gr.Tab("Library"):
            files = gr.File(
                file_count="multiple",
                label=f"Videos (and optional .srt / .vtt subtitles with the same name): {' '.join(UPLOAD_EXTENSIONS)}",
            )
            with gr.Row():
                index_btn = gr.Button("Index uploaded files", variant="primary")
                transcribe = gr.Checkbox(
                    False, label="Transcribe speech (Whisper) for videos without subtitles", elem_id="transcribe"
                )
                examples_btn = gr.Button("Add the example videos", elem_id="add-examples", visible=not multi)
            index_status = gr.Markdown(elem_id="index-status")
            table = gr.Dataframe(
                headers=LIBRARY_COLUMNS, label="Collection", interactive=False, elem_id="collection"
            )
            with gr.Row():
                to_remove = gr.Dropdown(choices=[], label="Video to remove", allow_custom_value=True)
                remove_btn = gr.Button("Remove")
        with gr.Tab("Search"):
            with gr.Row():
                query = gr.Textbox(
                    label="Describe the moment", placeholder=example_queries()[0], scale=4, elem_id="query"
                )
                search_btn = gr.Button("Search", variant="primary", scale=1, elem_id="search-btn")
            with gr.Row():
                top_k = gr.Slider(1, 20, value=5, step=1, label="Videos (coarse top-k)")
                n_moments = gr.Slider(1, 5, value=3, step=1, label="Moments per video")
                source = gr.Radio(list(SOURCES), value="auto", label="Search in", visible=multi)
                match = gr.Radio(["visual", "speech", "both"], value="visual", label="Match what is", elem_id="match")
            # status, player, thumbnails and moments: one HTML block, re-rendered once per search
            results = gr.HTML(
                '<p id="search-status">Ask in words, or pick an example query.</p>',
                elem_id="results",
                js_on_load=RESULTS_JS,
                css_template=RESULTS_CSS + TRANSCRIPT_CSS,
                apply_default_css=False,
                render=False,
            )
            plot = gr.LinePlot(
                x="time (s)",
                y="importance",
                color="video",
                tooltip="all",
                label="Importance over time (hover for values, brush a span to jump; click a row or a thumbnail to play it)",
                elem_id="result-plot",
                height=260,
                render=False,
            )
            raw = gr.JSON(render=False)
            if cache_examples:
                gr.Examples(
                    [[q, 5, 3, service.config.mode, "examples"] for q in example_queries()],
                    inputs=[query, top_k, n_moments, mode, source],
                    example_labels=example_queries(),
                    outputs=[results, plot, raw],
                    fn=search_example,
                    cache_examples=True,
                    cache_mode="lazy",
                    api_visibility="private",
                )
            else:  # the example fills the query box; Search runs it on the visitor's library
                gr.Examples(example_queries(), inputs=query, cache_examples=False)
            results.render()
            plot.render()
            with gr.Accordion("Raw result (JSON)", open=False):
                raw.render()
        with gr.Tab("Error analysis"):
            gr.Markdown(
                "Load TVR-format annotations (`vid_name`, `ts`, `desc`, `desc_id`, `type`) for videos of the "
                "library (matched by file name), run the evaluation, and inspect each query."
            )
            with gr.Row():
                ann = gr.File(label="Annotations (.jsonl)", file_types=[".jsonl", ".json"])
                ann_example = gr.Button("Use the example annotations")
                ann_topk = gr.Slider(1, 50, value=10, step=1, label="Videos per query")
                run_btn = gr.Button("Run evaluation", variant="primary")
            metrics = gr.Dataframe(
                headers=["task", "metric", "value (%)"], label="Metrics", interactive=False
            )
            outcomes = gr.Dataframe(
                headers=OUTCOME_COLUMNS, label="Per query (select a row)", interactive=False
            )
            query_plot = gr.Plot(label="Right video: curves, predicted spans, ground truth (hatched)")
            export = gr.File(label="Predictions (TVR format)")

        library_outputs = [index_status, table, to_remove]
        private = dict(api_name=False, queue=False)
        mode.change(banner, mode, mode_text, **private).then(
            refreshed, [mode, token], [table, to_remove], **private
        )
        index_btn.click(
            index_files,
            [files, mode, token, transcribe],
            library_outputs,
            api_name="index",
            concurrency_id="index",
            concurrency_limit=1,
        )
        if not multi:  # on a public deployment the examples are the showcase, already indexed
            examples_btn.click(
                add_examples, [mode, token], library_outputs, api_name="add_examples", concurrency_id="index"
            )
        remove_btn.click(remove_video, [to_remove, mode, token], library_outputs, api_name="remove")
        search_args = dict(
            fn=search,
            inputs=[query, top_k, n_moments, mode, source, token, match],
            outputs=[results, plot, raw],
            show_progress="minimal",
            # Gradio's queue costs a browser about 0.25 s per search (join, then results over a
            # stream); a search is 10-100 ms of CPU, so it is answered directly, except on ZeroGPU,
            # whose GPU calls go through the queue (there, at most 4 at once).
            **(dict(concurrency_id="search", concurrency_limit=4) if on_zerogpu() else dict(queue=False)),
        )
        search_btn.click(**search_args, api_name="search")
        query.submit(**search_args, api_name=False)
        plot.select(brushed_start, None, seek_t, show_progress="hidden", **private).then(
            None, seek_t, None, js="(t) => window.c2fSeek && window.c2fSeek(null, t)", **private
        )
        ann_example.click(use_example_annotations, None, ann, **private)
        run_btn.click(
            run_analysis,
            [ann, ann_topk, mode, source, token],
            [metrics, outcomes, export, last_eval, query_plot],
            api_name="evaluate",
            concurrency_id="index",
        )
        outcomes.select(select_query, [last_eval], query_plot, **private)
        demo.load(on_load, [mode, token], [token, table, to_remove], **private)
    return demo


if __name__ == "__main__":
    serve(build_demo)
