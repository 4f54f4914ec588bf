"""What the browser demo does, as plain Python (no Gradio here): the parts wired together, and the
start-up. Each part is a module with one job:

- `backends.py`: modes and their backends; `collection.py`: libraries and their media folders;
- `identity.py`: visitor ids and the key; `visitors.py`: who exists and who may join;
- `quotas.py`: what an upload may store; `jobs.py`: heavy jobs shared fairly;
- `indexing.py`, `evaluation.py`, `exports.py`: the work; `media.py`: playable copies, thumbnails;
- `sweep.py`: removing idle visitors and orphan folders, in the background.

A local run has one collection per feature preset. With `multi_user`, each visitor has a private
collection from their first upload on, and everyone searches a read-only *showcase* of the
bundled examples, indexed at start-up.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path

from c2f.errors import C2FError, LibraryError
from c2f.search import Query
from c2f.search.types import Moment, SearchResult
from c2f.ui.backends import Backends
from c2f.ui.collection import SHOWCASE, Collection, Collections
from c2f.ui.config import AppConfig
from c2f.ui.evaluation import EvaluationLimitError, check_annotation_file, evaluate_bounded
from c2f.ui.examples import example_videos
from c2f.ui.exports import Exports
from c2f.ui.identity import VisitorKeys, signing_key
from c2f.ui.indexing import IndexOutcome, index_upload
from c2f.ui.jobs import Jobs
from c2f.ui.media import MediaFiles
from c2f.ui.quotas import MB, UPLOAD_EXTENSIONS, Quotas, Usage
from c2f.ui.sweep import Sweeper, remove_orphans
from c2f.ui.visitors import Visitors

SOURCES = ("auto", "my videos", "examples")  # what a search looks in
PREDICTIONS_FILE = "tvr_predictions.json"


class AppService:
    def __init__(self, config: AppConfig) -> None:
        self.config = config
        self.keys: VisitorKeys | None = None
        self.key_source = "none (a local run has no visitors)"
        if config.multi_user:
            key, self.key_source = (
                (config.secret.encode(), "the app's config")
                if config.secret
                else signing_key(config.library_root)
            )
            self.keys = VisitorKeys(key)
        self.export_root = config.export_root
        self.backends = Backends(config.device)
        self.collections = Collections(config.library_root, self.media_root, self.keys, config.device)
        self.visitors = Visitors(
            config.library_root / "visitors", config.max_visitors, config.new_visitors_per_minute
        )
        self.media = MediaFiles()
        self.quotas = Quotas(config, self.export_root)
        self.exports = Exports(self.export_root, self.keys)
        self.jobs = Jobs(
            {"indexing": config.index_slots, "evaluation": config.eval_slots, "clips": config.export_slots},
            config.jobs_waiting,
        )
        self.sweeper = Sweeper(
            self.visitors,
            self.visitor_folders,
            self.forget,
            self.jobs.busy,
            idle_seconds=config.idle_minutes * 60,
            every_seconds=config.sweep_seconds,
        )
        self._showcase_lock = threading.Lock()

    @property
    def media_root(self) -> Path:
        """The only folder whose files the browser may fetch."""
        return self.config.media_root

    # --- visitors ----------------------------------------------------------------------------------
    def visitor(self, token: object, session_hash: str | None) -> str | None:
        """The visitor id of a request (None on a local run): the signed browser token, else the
        Gradio session of an API client. Makes nothing: a visitor exists from their first upload."""
        if self.keys is None:
            return None
        vid = self.keys.verify(token)
        if vid is None:
            if not session_hash:
                raise C2FError("this request has no session: reload the page")
            vid = self.keys.from_session(session_hash)
        self.visitors.touch(vid)
        return vid

    def browser_token(self, token: object) -> str | None:
        """The token a browser keeps: its own when this server signed it, else a new one."""
        if self.keys is None:
            return None
        return token if self.keys.verify(token) else self.keys.new_token()

    def browser_secret(self) -> str | None:
        """The secret Gradio's BrowserState encrypts the token with (None: a local run)."""
        return None if self.keys is None else self.keys.browser_secret()

    def visitor_folders(self, who: str) -> list[Path]:
        """Everything a visitor has on disk: media, export and library folders (removed in this
        order: the visitor exists until the rest is gone)."""
        return [self.collections.media_folder(who), self.exports.folder(who), self.visitors.home(who)]

    def forget(self, who: str) -> None:
        """Drop what the process keeps of a visitor whose folders are going away."""
        self.collections.forget(who)
        self.media.forget(self.collections.media_folder(who))

    def usage(self, mode: str, who: str | None) -> Usage | None:
        """A visitor's usage against their quotas (None: a local run, no quota)."""
        if who is None:
            return None
        coll = self.collections.find(self.backends.get(mode).feature_settings, who)
        records = coll.library.list() if coll is not None else []
        return self.quotas.visitor_usage(records, self.visitor_folders(who))

    # --- collections -------------------------------------------------------------------------------
    def modes(self) -> list[str]:
        return self.backends.modes()

    def backend(self, mode: str):
        return self.backends.get(mode)

    def collection(self, mode: str, who: str | None) -> Collection | None:
        """`who`'s collection in `mode`'s preset, None when they have none (nothing is made)."""
        return self.collections.find(self.backends.get(mode).feature_settings, who)

    def source(self, mode: str, who: str | None, source: str = "auto") -> str | None:
        """Whose collection a search or an evaluation reads: a visitor's own videos, or the showcase
        ('auto': the visitor's when they have indexed some)."""
        if who is None:
            return None
        if source == "examples":
            return SHOWCASE
        if source == "my videos":
            return who
        coll = self.collection(mode, who)
        if coll is not None and any(r.status == "indexed" for r in coll.library.list()):
            return who
        return SHOWCASE

    def _readable(self, mode: str, who: str | None, source: str) -> Collection:
        src = self.source(mode, who, source)
        if src == SHOWCASE:
            return self.showcase(mode)
        coll = self.collection(mode, src)
        if coll is None:
            raise LibraryError("the library is empty: upload videos in the Library tab first")
        return coll

    def _holding(self, mode: str, who: str | None, source: str, video_ids: set[str]) -> Collection:
        """The collection a visitor may read that holds every one of `video_ids`: the one `source`
        names, else the showcase (the videos of a cached example's results); else the first, whose
        library then names what it lacks."""
        first = self._readable(mode, who, source)
        if who is None or first.read_only:
            return first
        showcase = self.showcase(mode)
        for coll in (first, showcase):
            if video_ids <= {r.video_id for r in coll.library.list()}:
                return coll
        return first

    def table(self, mode: str, who: str | None = None) -> list[list]:
        coll = self.collection(mode, who)
        return [
            [
                r.video_id,
                r.name,
                round(r.duration or 0.0, 1),
                r.num_clips or 0,
                r.status,
                "yes" if r.has_subtitles else "",
                r.error or "",
            ]
            for r in (coll.library.list() if coll is not None else [])
        ]

    def media_of(self, coll: Collection, video_id: str) -> tuple[Path, Path | None]:
        """(playable video, thumbnail or None) of one video of the collection."""
        return self.media.of(coll.library, coll.media, video_id)

    # --- writing -----------------------------------------------------------------------------------
    def index(
        self,
        mode: str,
        paths: list[str | Path],
        progress: Callable[[str, float, float], None] | None = None,
        who: str | None = None,
        transcribe: bool = False,
    ) -> IndexOutcome:
        """Uploaded files: each checked against the limits, quotas and caps on its own (a bad one
        is refused alone), subtitles paired by file stem. A visitor's first upload makes them one
        (refused when the demo is full)."""
        if not paths:
            raise C2FError("no file was given: upload one or more videos first")
        if who == SHOWCASE:
            raise LibraryError("the example collection is read-only")
        backend = self.backends.get(mode)
        if who is not None:
            self.visitors.admit(who)
        coll = self.collections.open(backend.feature_settings, who)
        transcriber = self.backends.transcriber(mode) if transcribe else None  # subtitles from speech
        with self.quotas.admit([Path(p) for p in paths], self.usage(mode, who)) as plan:
            return index_upload(coll, plan, self.media, progress, transcriber)

    def remove(self, mode: str, video_id: str, who: str | None = None) -> str:
        if not video_id:
            raise C2FError("pick a video to remove")
        if who == SHOWCASE:
            raise LibraryError("the example collection is read-only")
        coll = self.collection(mode, who)
        if coll is None:
            raise LibraryError(f"no video with id {video_id!r} in your library")
        rec = coll.library.remove(video_id)
        self.media.remove(coll.media, video_id)
        return f"removed {rec.name}"

    def discard_uploads(self, paths: list[str | Path]) -> None:
        """Uploaded files, once handled (the library keeps its own copies): removed from Gradio's
        cache at once instead of an hour later, when that cache is the app's own (files anywhere
        else, such as the bundled examples, are never touched)."""
        cache = self.config.gradio_cache.resolve()
        if os.environ.get("GRADIO_TEMP_DIR") != str(self.config.gradio_cache):
            return
        for p in map(Path, paths):
            p = p.resolve()
            if p.is_relative_to(cache) and p.parent != cache:
                p.unlink(missing_ok=True)
                with contextlib.suppress(OSError):
                    p.parent.rmdir()  # Gradio's folder for this upload, when nothing else is in it

    def clear_legacy_cache(self, mode: str) -> None:
        """Moment cuts of earlier versions lived in <library>/cache/: nothing reads them now."""
        coll = self.collection(mode, None)
        shutil.rmtree(coll.library.root / "cache", ignore_errors=True)

    # --- reading -----------------------------------------------------------------------------------
    def search(
        self,
        mode: str,
        query: str | Query,
        top_k: int = 5,
        moments: int = 3,
        who: str | None = None,
        source: str = "auto",
        match: str = "visual",
    ) -> tuple[SearchResult, Collection]:
        """`query`: a sentence, or a c2f.search.Query (more like a moment of the searched
        collection, a picture, or either mixed with a sentence), matched on what is seen.
        `match` (sentences): score clips by what is seen ("visual"), said ("speech") or "both"."""
        if isinstance(query, Query) and query.like is not None:
            coll = self._holding(mode, who, source, {query.like.video_id})
        else:
            coll = self._readable(mode, who, source)
        return self._search(coll, mode, query, top_k, moments, match), coll

    def search_showcase(
        self, mode: str, query: str, top_k: int = 5, moments: int = 3
    ) -> tuple[SearchResult, Collection]:
        """A search of the read-only showcase: the same answer for every visitor (it may be cached)."""
        coll = self.showcase(mode)
        return self._search(coll, mode, query, top_k, moments), coll

    def _search(
        self, coll: Collection, mode: str, query: str | Query, top_k: int, moments: int, match: str = "visual"
    ) -> SearchResult:
        return coll.library.search(
            query,
            self.backends.get(mode) if isinstance(query, Query) else self.backends.matching(mode, match),
            top_k_videos=int(top_k),
            moments_per_video=int(moments),
        )

    def evaluate(
        self,
        mode: str,
        annotations: str | Path,
        top_k: int = 10,
        progress=None,
        who: str | None = None,
        source: str = "auto",
    ):
        """The library's searches scored against TVR annotations; on a public deployment within the
        row, size and time limits, and the annotation upload makes the visitor one (their download
        is kept for them)."""
        c = self.config
        if c.multi_user:  # cheap refusals first: a refused file makes nobody a visitor
            try:
                check_annotation_file(Path(annotations), c.eval_max_rows, c.max_annotation_mb)
            except EvaluationLimitError:
                self.discard_uploads([annotations])  # (a file kept to run again is a usable one)
                raise
        if who is not None:
            self.visitors.admit(who)
        lib = self._readable(mode, who, source).library
        max_seconds = c.eval_max_seconds if c.multi_user else None
        return evaluate_bounded(lib, self.backends.get(mode), Path(annotations), top_k, progress, max_seconds)

    def export(self, who: str | None, make: Callable[[Path], Iterable[Path]]) -> list[Path]:
        """Files for the visitor to download: `make(folder)` writes them into a fresh folder and
        returns them; they are kept in the visitor's export folder when they fit in their disk
        quota (c2f.ui.exports). A visitor's first download makes them one."""
        room = float("inf")
        if who is not None:
            self.visitors.admit(who)
            used = self.quotas.visitor_usage([], self.visitor_folders(who)).bytes
            room = self.config.visitor_max_disk_mb * MB - used
        return self.exports.produce(who, make, room)

    def export_predictions(self, evaluation, who: str | None) -> Path:
        """The evaluation's TVR prediction file, one per visitor, replaced whole."""
        data = json.dumps(evaluation.predictions.to_json()).encode()

        def make(folder: Path) -> list[Path]:
            (folder / PREDICTIONS_FILE).write_bytes(data)
            return [folder / PREDICTIONS_FILE]

        return self.export(who, make)[0]

    def export_moments(
        self,
        mode: str,
        moments: list[dict],
        fmt: str,
        exact: bool = False,
        who: str | None = None,
        source: str = "auto",
        title: str = "C2F moments",
    ) -> Path:
        """Found moments ({video_id, name, start, end, score} of a collection the visitor reads) as
        one download in `fmt` (c2f.export.FORMATS: EDLs of several frame rates zipped into
        moments-edl.zip), through `export` (quota, one file per name, swept with the visitor).
        On a public deployment clips may cut at most `export_max_seconds` of video; cutting
        clips takes a job slot."""
        from c2f.export import FORMATS

        if fmt not in FORMATS:
            raise C2FError(f"unknown export format {fmt!r}: use one of {', '.join(FORMATS)}")
        if not moments:
            raise C2FError("no moment to export: search first (and tick the moments to take, or none for all)")
        chosen = [
            Moment(str(m["video_id"]), str(m["name"]), float(m["start"]), float(m["end"]), float(m["score"]), 0.0)
            for m in moments
        ]
        seconds = sum(m.end - m.start for m in chosen)
        if who is not None and fmt == "clips" and seconds > self.config.export_max_seconds:
            raise C2FError(
                f"these clips hold {seconds:.0f} s of video: this server cuts at most "
                f"{self.config.export_max_seconds:.0f} s per export, tick fewer moments"
            )
        coll = self._holding(mode, who, source, {m.video_id for m in chosen})

        def make(folder: Path) -> list[Path]:
            files = coll.library.export(chosen, folder, fmt, exact, title)
            if len(files) == 1:
                return files
            bundle = folder / f"moments-{fmt}.zip"  # one download (an EDL per frame rate)
            with zipfile.ZipFile(bundle, "w", zipfile.ZIP_STORED) as zf:
                for f in files:
                    zf.write(f, f.name)
                    f.unlink()
            return [bundle]

        with self.jobs.slot(who, "clips") if fmt == "clips" else contextlib.nullcontext():
            return self.export(who, make)[0]

    # --- start-up ----------------------------------------------------------------------------------
    def start(self, mode: str) -> None:
        """At start-up, before the first request: the served folder exists; on a public deployment,
        visitors who went idle while the server was down go, then every media or export folder of
        no live visitor, the showcase is indexed (outside any visitor's request and GPU budget) and
        the idle sweep starts in the background."""
        self.media_root.mkdir(parents=True, exist_ok=True)
        self.export_root.mkdir(parents=True, exist_ok=True)
        try:
            if self.config.multi_user:
                print(f"c2f: visitor ids are signed with the key from {self.key_source}", flush=True)
                self.sweeper.sweep_idle()
                live = self.visitors.live()
                remove_orphans(self.config.library_root, self.media_root, self.export_root, live, self.keys)
                self.sweeper.start()
                self.showcase(mode)
            else:
                self.clear_legacy_cache(mode)
        except C2FError as exc:  # the banner says why the mode cannot run
            print(f"c2f: the showcase is not ready: {exc}", flush=True)

    def showcase(self, mode: str) -> Collection:
        """The read-only example collection of `mode`'s feature preset, indexed on first need."""
        coll = self.collections.open(self.backends.get(mode).feature_settings, SHOWCASE)
        with self._showcase_lock:
            if not any(r.status == "indexed" for r in coll.library.list()):
                coll.library.add(example_videos(), copy=False)
                self.media.make_all(coll.library, coll.media)
        return coll


__all__ = ["SHOWCASE", "SOURCES", "UPLOAD_EXTENSIONS", "AppConfig", "AppService", "IndexOutcome"]
