"""The one ffmpeg pipe reader: ffmpeg's output read from stdout, its log drained as it comes.

ffmpeg writes its log to stderr while we read stdout. A log nobody reads fills the pipe (~64 KB):
ffmpeg blocks writing it, and our read of stdout blocks with it, for ever (a damaged 180 s MPEG-TS
logs ~200 KB of decoding errors). So a thread reads stderr line by line, keeps only the last
`TAIL_BYTES` of it for messages, and hands each line to the caller's parser when it has one. A
watchdog kills ffmpeg when a read of stdout waits `stall_s` without receiving a byte; the read then
raises CorruptVideoError. Only time spent waiting for ffmpeg counts, not the caller's own work
between reads (a slow encoder is not a stalled decoder). Closing kills and reaps ffmpeg: no zombie.

A watchdog cannot see a decoder that makes too much: an MPEG-TS whose timestamps jump makes ffmpeg's
fps filter fill the gap with copies of a frame (a 2 s file gave 274 MB of 64x48 frames at 30 fps,
~5 GB at 224 px). So a reader may carry an `OutputLimit`, what the probed duration allows
(`duration_limit`); past it, ffmpeg is killed and the read raises CorruptVideoError.
"""

from __future__ import annotations

import math
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from c2f.errors import CorruptVideoError

TAIL_BYTES = 64 * 1024  # the part of the log kept for messages
DEFAULT_STALL_S = 60.0
_LINE_LIMIT = 8192  # a line longer than this is read in pieces (no newline: still bounded)
# What a probed duration allows: 25 % more, plus 10 s (stream and container durations, a GOP of
# hidden edit-list frames, the fps filter's rounding). Timestamps that jump give orders of magnitude more.
DURATION_SLACK, SLACK_S = 1.25, 10.0


@dataclass(frozen=True)
class OutputLimit:
    """The most bytes a reader takes from ffmpeg, and why more is refused (ends the error line)."""

    max_bytes: int
    reason: str


def duration_limit(duration: float, per_second: float, unit_bytes: int, units: str) -> OutputLimit | None:
    """At most DURATION_SLACK x `duration` + SLACK_S seconds of `per_second` `units` of
    `unit_bytes` each (e.g. frames at 30 fps); None when the duration is unknown (<= 0)."""
    if not (duration > 0 and per_second > 0):
        return None
    allowed = math.ceil((DURATION_SLACK * duration + SLACK_S) * per_second)
    return OutputLimit(
        allowed * unit_bytes,
        f"ffmpeg gave more than {allowed} {units}, more than {duration:.1f} s of it can hold "
        "(timestamps that jump?)",
    )


def frame_limit(duration: float, fps: float, frame_bytes: int) -> OutputLimit | None:
    """The frames at `fps` of `frame_bytes` each that `duration` seconds allow (None: unknown)."""
    return duration_limit(duration, fps, frame_bytes, f"frames at {fps:.4g} fps")


class FfmpegPipe:
    """`ffmpeg ...` with its output on a pipe; use as a context manager (closing ends ffmpeg).

    `on_line(line) -> keep`: called in the log thread with every stderr line (bytes, newline kept),
    then once with b"" when the log ends; lines it returns False for stay out of the tail.
    """

    def __init__(
        self,
        cmd: Sequence[str],
        path: str,
        stall_s: float = DEFAULT_STALL_S,
        on_line: Callable[[bytes], bool] | None = None,
        limit: OutputLimit | None = None,
    ) -> None:
        self.path = path
        self.stall_s = stall_s
        self.limit = limit
        self.bytes_read = 0  # ffmpeg's output read so far
        self.log_bytes = 0  # everything ffmpeg logged, kept or not
        self._on_line = on_line
        self._tail: deque[bytes] = deque()
        self._tail_bytes = 0
        self._lock = threading.Lock()
        self._waiting_since: float | None = None  # monotonic time a read started waiting, None when not
        self._stalled = False
        self._closed = threading.Event()
        self._proc = subprocess.Popen(
            list(cmd), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        self.pid = self._proc.pid
        self._log_thread = threading.Thread(target=self._drain_log, daemon=True, name="c2f-ffmpeg-log")
        self._watchdog = threading.Thread(target=self._watch, daemon=True, name="c2f-ffmpeg-watchdog")
        self._log_thread.start()
        self._watchdog.start()

    # --- the caller's side --------------------------------------------------------------------------
    def read(self, n: int) -> bytearray:
        """`n` bytes of ffmpeg's output (fewer only at its end), writable (numpy/torch take it as is).
        Raises CorruptVideoError when ffmpeg gives nothing for `stall_s`, or more than `limit`."""
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        stdout = self._proc.stdout
        assert stdout is not None
        while got < n:
            self._waiting_since = time.monotonic()
            try:
                count = stdout.readinto1(view[got:])  # what the pipe holds: progress is seen as it comes
            except (OSError, ValueError):  # closed under us by the watchdog's kill
                count = 0
            finally:
                self._waiting_since = None
            if not count:
                break
            got += count
        view.release()
        if self._stalled:
            raise self._stall_error()
        self.bytes_read += got
        if self.limit is not None and self.bytes_read > self.limit.max_bytes:
            self.close()
            raise CorruptVideoError(self.path, self.limit.reason)
        del buf[got:]
        return buf

    def wait(self) -> int:
        """ffmpeg's exit code once its output has ended; the log is fully read on return. Raises
        CorruptVideoError when ffmpeg does not exit within `stall_s`."""
        try:
            code = self._proc.wait(timeout=self.stall_s)
        except subprocess.TimeoutExpired:
            self._stalled = True
            self.close()
            raise self._stall_error() from None
        self._log_thread.join(timeout=self.stall_s)
        return code

    def tail(self) -> str:
        """The kept end of the log (at most TAIL_BYTES)."""
        with self._lock:
            return b"".join(self._tail).decode(errors="replace")

    def last_line(self) -> str:
        """The last kept log line ("" when none): the reason a message gives."""
        with self._lock:
            for line in reversed(self._tail):
                text = line.decode(errors="replace").strip()
                if text:
                    return text
        return ""

    def close(self) -> None:
        """Kill ffmpeg if it still runs, reap it, stop the threads. Idempotent."""
        self._closed.set()
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        self._log_thread.join(timeout=5)
        for stream in (self._proc.stdout, self._proc.stderr):
            if stream is not None:
                stream.close()

    def __enter__(self) -> FfmpegPipe:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- threads --------------------------------------------------------------------------------------
    def _stall_error(self) -> CorruptVideoError:
        reason = self.last_line()
        return CorruptVideoError(
            self.path, f"ffmpeg made no progress for {self.stall_s:g} s" + (f" ({reason})" if reason else "")
        )

    def _drain_log(self) -> None:
        stderr = self._proc.stderr
        assert stderr is not None
        try:
            for line in iter(lambda: stderr.readline(_LINE_LIMIT), b""):
                self.log_bytes += len(line)
                if self._on_line is not None and not self._on_line(line):
                    continue
                with self._lock:
                    self._tail.append(line)
                    self._tail_bytes += len(line)
                    while self._tail_bytes > TAIL_BYTES and len(self._tail) > 1:
                        self._tail_bytes -= len(self._tail.popleft())
        except (OSError, ValueError):  # stderr closed by close()
            pass
        finally:
            if self._on_line is not None:
                self._on_line(b"")

    def _watch(self) -> None:
        check_every = min(1.0, self.stall_s / 4)
        while not self._closed.wait(check_every):
            since = self._waiting_since
            if since is not None and time.monotonic() - since > self.stall_s:
                self._stalled = True
                self._proc.kill()  # the blocked read sees the end of the pipe
                return
