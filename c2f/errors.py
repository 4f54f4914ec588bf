"""Typed errors with messages a user can act on.

Every error raised on purpose by C2F derives from `C2FError`; the CLI and the UI show its message
as is, never a traceback (`c2f.cli.exit_status`: how a program run from a shell reports one).
"""

from __future__ import annotations

import os
from pathlib import Path


class C2FError(Exception):
    """Base class of every error C2F raises on purpose."""


# --- videos --------------------------------------------------------------------------------------
def reason_about(file: str | os.PathLike, message: str) -> str:
    """`message` without the path of `file` it begins with (a VideoError's, a subtitle error's
    "PATH: reason"), so that a line naming the file, "skipped FILE: ...", names it once. `file`
    may be the file's name alone; a message about something else is returned unchanged."""
    head, sep, rest = message.partition(": ")
    if sep and head and Path(head).name == Path(file).name:
        return rest
    return message


class VideoError(C2FError):
    """A video could not be used; `path` names the file."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.reason = message


class NotAFileError(VideoError):
    """The path does not exist or is not a regular file."""


class NotAVideoError(VideoError):
    """The file is not a media container ffmpeg understands (e.g. text renamed .mp4)."""


class NoVideoStreamError(VideoError):
    """The container holds no video stream (e.g. audio only)."""


class EmptyVideoError(VideoError):
    """The video stream has zero duration or no decodable frame."""


class CorruptVideoError(VideoError):
    """The file is truncated or its stream cannot be decoded."""


# --- weights, checkpoints, features --------------------------------------------------------------
class MissingWeightsError(C2FError):
    """Pretrained weights are not on disk and cannot be downloaded.

    The message names the file and the folder it must be put in.
    """

    def __init__(self, what: str, filename: str, where: list[str], hint: str = "") -> None:
        places = "\n  ".join(where)
        msg = f"missing weights for {what}: '{filename}' was not found. Put it in one of:\n  {places}"
        if hint:
            msg += f"\n{hint}"
        super().__init__(msg)
        self.what = what
        self.filename = filename
        self.where = where


class CheckpointError(C2FError):
    """A checkpoint is unknown, unreadable, or does not fit what it is used with."""


class FeatureMismatchError(C2FError):
    """Features were produced with other settings than the ones asked for (stale or foreign)."""


class FeatureFileError(C2FError):
    """A feature file is missing, unreadable, or not in the C2F format."""


class SubtitleError(C2FError):
    """A subtitle file could not be parsed."""


# --- data, queries, library ----------------------------------------------------------------------
class AnnotationError(C2FError):
    """Bad rows in a TVR-format annotation file; `problems` lists (line number, reason)."""

    def __init__(self, path: str, problems: list[tuple[int, str]]) -> None:
        if len(problems) == 1:  # one line; line 0 = the whole file
            ln, why = problems[0]
            message = f"{path}: line {ln}: {why}" if ln else f"{path}: {why}"
        else:
            shown = "\n".join(f"  line {ln}: {why}" for ln, why in problems[:20])
            more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
            message = f"{path}: {len(problems)} bad annotation row(s):\n{shown}{more}"
        super().__init__(message)
        self.path = path
        self.problems = problems


class QueryError(C2FError):
    """A search query is empty, too long, or otherwise unusable."""


class LibraryError(C2FError):
    """The video library cannot do what was asked (empty, unknown video, locked, ...)."""

