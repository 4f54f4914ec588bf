"""C2F browser demo (Gradio): ask in words, see and play the moments, index your videos, analyse errors.

This file only lays the page out and wires its events: the handlers are c2f.ui.handlers.Handlers
(over c2f.ui.service.AppService), the settings and launch c2f.ui.launch.
Run: python app.py [--host 0.0.0.0] [--port 7860] [--library DIR] [--mode zero-shot|tiny|learned:NAME]
     [--multi-user]   (on by itself on a Hugging Face Space: private libraries + a shared showcase)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from c2f.search.by_example import DEFAULT_EXAMPLE_WEIGHT
from c2f.ui.examples import example_queries
from c2f.ui.launch import main
from c2f.ui.player import EXPORT_PICKED_JS, RESULTS_CSS, RESULTS_JS
from c2f.ui.service import SOURCES, UPLOAD_EXTENSIONS, AppService
from c2f.ui.transcript import TRANSCRIPT_CSS
from c2f.ui.zerogpu import on_zerogpu

if TYPE_CHECKING:
    import gradio as gr


def build_demo(service: AppService, cache_examples: bool = False) -> gr.Blocks:
    """The demo's page. `cache_examples`: the example queries search the read-only showcase, the
    same for every visitor, and Gradio keeps each one's result after its first use (multi-user only:
    a local library changes with every upload, so its results cannot be kept)."""
    # imported here, once the settings are checked: Gradio reads GRADIO_SERVER_PORT when imported
    import gradio as gr

    from c2f.ui.handlers import EXPORT_FORMATS, LIBRARY_COLUMNS, OUTCOME_COLUMNS, Handlers

    h = Handlers(service)
    multi = service.config.multi_user
    cache_examples = cache_examples and multi

    # Gradio's own temporary files (uploads, returned files) older than an hour go every 10 minutes.
    with gr.Blocks(title="C2F: find the moment", delete_cache=(600, 3600)) as demo:
        gr.Markdown(
            "# C2F: find the moment, in any video of a collection\n"
            "Coarse to fine: rank the videos for a sentence, then localize the moment inside the best ones."
            + (
                "\n\nSearch the example videos now, or add your own in the Library tab: they stay private "
                f"to this browser and are removed after {service.config.idle_minutes:.0f} idle minutes."
                if multi
                else ""
            )
        )
        # the visitor's signed id, encrypted in the browser's storage with a secret that survives restarts
        token = gr.BrowserState(None, storage_key="c2f-visitor", secret=service.browser_secret())
        with gr.Row():
            mode = gr.Dropdown(service.modes(), value=service.config.mode, label="Mode", scale=1)
            mode_text = gr.Markdown(h.banner(service.config.mode), elem_id="mode-banner")
        last_eval = gr.State(None)
        with gr.Tab("Search"):  # first: a first visit can search the showcase at once
            with gr.Row():
                query = gr.Textbox(
                    label="Describe the moment", placeholder=example_queries()[0], scale=4, elem_id="query"
                )
                search_btn = gr.Button("Search", variant="primary", scale=1, elem_id="search-btn")
            # status, player, thumbnails, moments and curves: one HTML block, re-rendered once per search
            results = gr.HTML(
                '<p id="search-status">Ask in words, or pick an example query.</p>',
                elem_id="results",
                js_on_load=RESULTS_JS,
                css_template=RESULTS_CSS + TRANSCRIPT_CSS,
                apply_default_css=False,
                render=False,
            )
            raw = gr.JSON(render=False)
            with gr.Accordion("Search by a picture", open=False), gr.Row():
                image = gr.Image(
                    type="filepath",
                    label="Picture: where does this scene appear? (alone, or mixed with the words above)",
                    sources=["upload", "clipboard"],
                    height=180,
                    elem_id="query-image",
                )
                weight = gr.Slider(
                    0, 1, value=DEFAULT_EXAMPLE_WEIGHT, step=0.05, elem_id="picture-weight",
                    label="Weight of the picture with words: (1 - w) x words + w x picture",
                )
            with gr.Row():
                top_k = gr.Slider(1, 20, value=5, step=1, label="Videos (coarse top-k)")
                n_moments = gr.Slider(1, 5, value=3, step=1, label="Moments per video")
                source = gr.Radio(list(SOURCES), value="auto", label="Search in", visible=multi)
                match = gr.Radio(
                    ["visual", "speech", "both"], value="visual", label="Match what is", elem_id="match"
                )
            if cache_examples:
                gr.Examples(
                    [[q, 5, 3, service.config.mode, "examples"] for q in example_queries()],
                    inputs=[query, top_k, n_moments, mode, source],
                    example_labels=example_queries(),
                    outputs=[results, raw],
                    fn=h.search_example,
                    cache_examples=True,
                    cache_mode="lazy",
                    api_visibility="private",
                )
            else:  # the example fills the query box; Search runs it on the visitor's library
                gr.Examples(example_queries(), inputs=query, cache_examples=False)
            results.render()
            with gr.Row(equal_height=True):
                export_format = gr.Radio(
                    list(EXPORT_FORMATS), value="CSV", label="Take the moments away (the ticked ones, or all)",
                    elem_id="export-format", scale=3,
                )
                exact_cuts = gr.Checkbox(False, label="Exact cuts (clips re-encoded)", elem_id="exact-cuts", scale=1)
                export_btn = gr.Button("Export", elem_id="export-btn", scale=1)
            picked = gr.Textbox(visible=False)  # the ticked ranks, read from the page by EXPORT_PICKED_JS
            export_file = gr.File(label="Download", elem_id="export-file", visible=False)  # shown with a file
            with gr.Accordion("Raw result (JSON)", open=False):
                raw.render()
        with gr.Tab("Library"):
            files = gr.File(
                file_count="multiple",
                label=f"Videos (and optional .srt / .vtt subtitles with the same name): {' '.join(UPLOAD_EXTENSIONS)}",
            )
            with gr.Row():
                index_btn = gr.Button("Index uploaded files", variant="primary")
                transcribe = gr.Checkbox(
                    False,
                    label="Transcribe speech (Whisper) for videos without subtitles",
                    elem_id="transcribe",
                )
                examples_btn = gr.Button("Add the example videos", elem_id="add-examples", visible=not multi)
            index_status = gr.Markdown(elem_id="index-status")
            table = gr.Dataframe(
                headers=LIBRARY_COLUMNS, label="Collection", interactive=False, elem_id="collection"
            )
            with gr.Row():
                to_remove = gr.Dropdown(choices=[], label="Video to remove", allow_custom_value=True)
                remove_btn = gr.Button("Remove")
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
            query_view = gr.HTML(elem_id="query-view", css_template=RESULTS_CSS, apply_default_css=False)
            export = gr.File(label="Predictions (TVR format)", elem_id="predictions-file", visible=False)

        library_outputs = [index_status, table, to_remove]
        private = dict(api_name=False, queue=False)
        mode.change(h.banner, mode, mode_text, **private).then(
            h.refreshed, [mode, token], [table, to_remove], **private
        )
        # Indexing and evaluation: fair job slots of their own (c2f.ui.jobs), not Gradio's limit.
        jobs = dict(concurrency_id="jobs", concurrency_limit=None)
        index_btn.click(
            h.index_files, [files, mode, token, transcribe], library_outputs, api_name="index", **jobs
        )
        if not multi:  # on a public deployment the examples are the showcase, already indexed
            examples_btn.click(
                h.add_examples, [mode, token], library_outputs, api_name="add_examples", **jobs
            )
        remove_btn.click(h.remove_video, [to_remove, mode, token], library_outputs, api_name="remove")
        # Gradio's queue costs a browser about 0.25 s per search (join, then results over a
        # stream); a search is 10-100 ms of CPU, so it is answered directly, except on ZeroGPU,
        # whose GPU calls go through the queue (there, at most 4 at once).
        searching = dict(concurrency_id="search", concurrency_limit=4) if on_zerogpu() else dict(queue=False)
        search_args = dict(
            fn=h.search,
            inputs=[query, top_k, n_moments, mode, source, token, match, image, weight],
            outputs=[results, raw],
            show_progress="minimal",
            **searching,
        )
        search_btn.click(**search_args, api_name="search")
        query.submit(**search_args, api_name=False)
        # a row's "More like this" (the results block's select event)
        results.select(
            h.more_like, [top_k, n_moments, mode, source, token], [results, raw], api_name=False, **searching
        )
        export_btn.click(
            h.export,
            [raw, picked, export_format, exact_cuts, mode, source, token],
            export_file,
            js=EXPORT_PICKED_JS,
            api_name="export",
            concurrency_id="exports",
            concurrency_limit=None,  # clips take a fair job slot of their own (c2f.ui.jobs)
        ).success(h.show_file, None, export_file, **private)
        ann_example.click(h.example_annotations, None, ann, **private)
        run_btn.click(
            h.run_analysis,
            [ann, ann_topk, mode, source, token],
            [metrics, outcomes, export, last_eval, query_view],
            api_name="evaluate",
            **jobs,
        ).success(h.show_file, None, export, **private)
        outcomes.select(h.select_query, [last_eval], query_view, **private)
        demo.load(h.page_load, [mode, token], [token, table, to_remove], **private)
    return demo


if __name__ == "__main__":
    raise SystemExit(main(build_demo))
