"""C2F browser demo (Gradio): index your videos, ask in words, see and play the moments, analyse errors.

UI only: every action calls c2f (c2f.ui.service.AppService over c2f.library / c2f.search / c2f.analysis).
Run: python app.py [--host 0.0.0.0] [--port 7860] [--library DIR] [--mode zero-shot|tiny|learned:NAME]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import gradio as gr

from c2f.errors import C2FError
from c2f.eval.predictions import write_predictions
from c2f.ui.examples import ASSETS, ensure_examples, example_annotations, example_queries
from c2f.ui.plots import results_figure
from c2f.ui.service import AppConfig, AppService

try:  # ZeroGPU Spaces: only the GPU-heavy functions ask for the GPU
    import spaces

    gpu = spaces.GPU
except ImportError:

    def gpu(fn):
        return fn


LIBRARY_COLUMNS = ["id", "name", "duration (s)", "clips", "status", "subtitles", "error"]
MOMENT_COLUMNS = ["rank", "video", "start (s)", "end (s)", "score", "video score"]
OUTCOME_COLUMNS = ["desc_id", "query", "video", "rank of right video", "best IoU", "kind"]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description="C2F demo")
    p.add_argument("--host", default=os.environ.get("C2F_HOST", "127.0.0.1"))
    p.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("C2F_PORT", os.environ.get("GRADIO_SERVER_PORT", "7860"))),
    )
    p.add_argument(
        "--library", default=os.environ.get("C2F_LIBRARY", "c2f_library"), help="library root folder"
    )
    p.add_argument(
        "--mode",
        default=os.environ.get("C2F_MODE", "zero-shot"),
        help="zero-shot, tiny (random test models) or learned:<checkpoint name>",
    )
    p.add_argument("--max-upload-mb", type=int, default=int(os.environ.get("C2F_MAX_UPLOAD_MB", "500")))
    p.add_argument(
        "--max-video-seconds", type=float, default=float(os.environ.get("C2F_MAX_VIDEO_SECONDS", "3600"))
    )
    p.add_argument("--device", default=os.environ.get("C2F_DEVICE"))
    return p.parse_args()


def build_demo(service: AppService) -> gr.Blocks:
    def fail(exc: Exception):
        raise gr.Error(str(exc), print_exception=False)

    def banner(mode):
        text, _ = service.mode_banner(mode)
        return text

    def library_rows(mode):
        try:
            return service.table(mode)
        except C2FError:
            return []

    def video_choices(mode):
        return gr.update(choices=[(f"{r[1]} ({r[0]})", r[0]) for r in library_rows(mode)], value=None)

    @gpu
    def index_files(files, mode, progress=gr.Progress()):
        paths = [f if isinstance(f, str) else f.name for f in (files or [])]
        try:
            outcome = service.index(
                mode, paths, progress=lambda name, v, overall: progress(overall, desc=f"{name}: {v:.0%}")
            )
        except C2FError as exc:
            fail(exc)
        for name, why in outcome.failed:
            gr.Warning(f"{name}: {why}")
        return outcome.summary(), library_rows(mode), video_choices(mode)

    def add_examples(mode, progress=gr.Progress()):
        videos = ensure_examples()
        return index_files(
            [str(p) for p in videos] + [str(p.with_suffix(".srt")) for p in videos], mode, progress
        )

    def remove_video(video_id, mode):
        try:
            msg = service.remove(mode, video_id)
        except C2FError as exc:
            fail(exc)
        return msg, library_rows(mode), video_choices(mode)

    @gpu
    def search(query, top_k, moments, mode):
        try:
            result = service.search(mode, query, top_k, moments)
        except C2FError as exc:
            fail(exc)
        for note in result.notes:
            gr.Info(note)
        rows = [
            [i, m.name, round(m.start, 2), round(m.end, 2), round(m.score, 4), round(m.video_score, 4)]
            for i, m in enumerate(result.moments, 1)
        ]
        fig = results_figure(result.videos)
        player = service.moment_clip(mode, result.moments[0]) if result.moments else None
        gallery = service.thumbnails(mode, result)
        timing = " · ".join(f"{k} {v:.0f} ms" for k, v in result.timings.items())
        status = f"{len(result.videos)} video(s), {len(result.moments)} moment(s) in {timing}"
        return rows, fig, player, gallery, status, result.to_dict(), result

    def play_selected(result, mode, evt: gr.SelectData):
        if result is None or not result.moments:
            return None
        row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        return service.moment_clip(mode, result.moments[int(row)])

    @gpu
    def run_analysis(annotations, top_k, mode, progress=gr.Progress()):
        path = annotations if isinstance(annotations, str) else getattr(annotations, "name", None)
        if not path:
            fail(
                C2FError("upload a TVR-format annotation file (.jsonl) first, or use the example annotations")
            )
        try:
            ev = service.evaluate(mode, path, top_k, progress=lambda f, d: progress(f, desc=d))
        except C2FError as exc:
            fail(exc)
        for _, why in ev.skipped[:5]:
            gr.Warning(why)
        out = write_predictions(
            ev.predictions, Path(tempfile.mkdtemp(prefix="c2f-pred-")) / "tvr_predictions.json"
        )
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

    with gr.Blocks(title="C2F: find the moment") as demo:
        gr.Markdown(
            "# C2F: find the moment, in any video of a collection\n"
            "Coarse to fine: rank the videos for a sentence, then localize the moment inside the best ones."
        )
        with gr.Row():
            mode = gr.Dropdown(service.modes(), value=service.config.mode, label="Mode", scale=1)
            mode_text = gr.Markdown(banner(service.config.mode), elem_id="mode-banner")
        last_result = gr.State(None)
        last_eval = gr.State(None)
        with gr.Tab("Library"):
            files = gr.File(
                file_count="multiple",
                label="Videos (and optional .srt / .vtt subtitles with the same name)",
                file_types=["video", ".srt", ".vtt"],
            )
            with gr.Row():
                index_btn = gr.Button("Index uploaded files", variant="primary")
                examples_btn = gr.Button("Add the example videos", elem_id="add-examples")
            index_status = gr.Markdown()
            table = gr.Dataframe(
                headers=LIBRARY_COLUMNS,
                value=library_rows(service.config.mode),
                label="Collection",
                interactive=False,
            )
            with gr.Row():
                to_remove = gr.Dropdown(choices=[], label="Video to remove")
                remove_btn = gr.Button("Remove")
        with gr.Tab("Search"):
            with gr.Row():
                query = gr.Textbox(
                    label="Describe the moment",
                    placeholder="she hands him the keys",
                    scale=4,
                    elem_id="query",
                )
                search_btn = gr.Button("Search", variant="primary", scale=1, elem_id="search-btn")
            with gr.Row():
                top_k = gr.Slider(1, 20, value=5, step=1, label="Videos (coarse top-k)")
                n_moments = gr.Slider(1, 5, value=3, step=1, label="Moments per video")
            gr.Examples(example_queries(), inputs=query)
            search_status = gr.Markdown()
            with gr.Row():
                player = gr.Video(
                    label="Best moment (select a row to play another)", elem_id="player", scale=1
                )
                gallery = gr.Gallery(label="Top videos", columns=3, height=220, scale=1)
            moments = gr.Dataframe(headers=MOMENT_COLUMNS, label="Moments", interactive=False)
            plot = gr.Plot(label="Importance over time, predicted spans shaded", elem_id="result-plot")
            with gr.Accordion("Raw result (JSON)", open=False):
                raw = gr.JSON()
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

        mode.change(banner, mode, mode_text, queue=False).then(library_rows, mode, table, queue=False).then(
            video_choices, mode, to_remove, queue=False
        )
        index_btn.click(index_files, [files, mode], [index_status, table, to_remove], api_name="index")
        examples_btn.click(add_examples, [mode], [index_status, table, to_remove], api_name="add_examples")
        remove_btn.click(remove_video, [to_remove, mode], [index_status, table, to_remove], api_name="remove")
        search_args = dict(
            fn=search,
            inputs=[query, top_k, n_moments, mode],
            outputs=[moments, plot, player, gallery, search_status, raw, last_result],
        )
        search_btn.click(**search_args, api_name="search")
        query.submit(**search_args, api_name=False)
        moments.select(play_selected, [last_result, mode], player)
        ann_example.click(use_example_annotations, None, ann, queue=False)
        run_btn.click(
            run_analysis,
            [ann, ann_topk, mode],
            [metrics, outcomes, export, last_eval, query_plot],
            api_name="evaluate",
        )
        outcomes.select(select_query, [last_eval], query_plot)
        demo.load(video_choices, mode, to_remove, queue=False)
    return demo


def main() -> None:
    args = parse_args()
    config = AppConfig(
        library_root=Path(args.library),
        mode=args.mode,
        max_upload_mb=args.max_upload_mb,
        max_video_seconds=args.max_video_seconds,
        device=args.device,
    )
    service = AppService(config)
    demo = build_demo(service)
    demo.queue(default_concurrency_limit=2, max_size=32)
    # Only the library and the bundled assets are ever served as files.
    demo.launch(
        server_name=args.host,
        server_port=args.port,
        allowed_paths=[str(config.library_root.resolve()), str(ASSETS)],
        max_file_size=f"{args.max_upload_mb}mb",
        show_error=False,
    )


if __name__ == "__main__":
    main()
