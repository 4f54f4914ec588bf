"""The demo's modes and their search backends: each loaded once per process, behind its own lock
(a slow load never holds up another mode), a failed load remembered and told at once."""

from __future__ import annotations

import os
import threading

from c2f.errors import C2FError
from c2f.search import list_checkpoints, load_backend


def known_modes() -> list[str]:
    """The demo's modes: zero-shot, tiny, and learned:<name> per checkpoint under checkpoints/."""
    return ["zero-shot", "tiny", *(f"learned:{name}" for name in list_checkpoints())]


def check_mode(mode: str) -> None:
    """Refuse a mode that is not one of `known_modes()`, in one line naming them."""
    modes = known_modes()
    if mode not in modes:
        raise C2FError(f"unknown mode {mode!r}: choose one of {', '.join(modes)}")


class Backends:
    def __init__(self, device: str | None = None) -> None:
        self.device = device
        self._loaded: dict[str, object] = {}
        self._errors: dict[str, C2FError] = {}
        self._mode_locks: dict[str, threading.Lock] = {}
        self._transcribers: dict[str, object] = {}  # Whisper per model, loaded on first "transcribe"
        self._lock = threading.Lock()  # guards the dicts only; never held while loading

    def modes(self) -> list[str]:
        return known_modes()

    def get(self, mode: str):
        """The backend of `mode`, loaded once per process; other modes never wait for it, and a
        failed load is remembered so the next caller hears why at once."""
        with self._lock:
            if mode in self._loaded:
                return self._loaded[mode]
            if mode in self._errors:
                raise self._errors[mode]
            mode_lock = self._mode_locks.setdefault(mode, threading.Lock())
        with mode_lock:
            with self._lock:
                if mode in self._loaded:
                    return self._loaded[mode]
                if mode in self._errors:
                    raise self._errors[mode]
            check_mode(mode)
            kind, _, ckpt = mode.partition(":")
            try:
                backend = load_backend(kind, ckpt or None, self.device)
            except C2FError as exc:
                with self._lock:
                    self._errors[mode] = exc
                raise
            with self._lock:
                self._loaded[mode] = backend
            return backend

    def banner(self, mode: str) -> tuple[str, bool]:
        """(markdown, usable): what the active mode is, or exactly why it cannot run."""
        try:
            b = self.get(mode)
        except C2FError as exc:
            return f"**Mode `{mode}` is not available.** {exc}".replace("\n", "  \n"), False
        if b.is_tiny:
            return f"### ⚠️ TINY TEST MODE: random weights, results are meaningless\n{b.description}", True
        return f"**Mode:** {b.name}. {b.description}", True

    def matching(self, mode: str, match: str = "visual"):
        """The backend of `mode` scoring clips by `match`: "visual", "speech" or "both"."""
        backend = self.get(mode)
        if match == "visual":
            return backend
        if not hasattr(backend, "with_match"):
            raise C2FError(f"matching the words said needs the zero-shot or tiny mode, not {mode}")
        return backend.with_match(match)

    def transcriber(self, mode: str):
        """The Whisper that "transcribe speech" uses in `mode`: the tiny random one in the tiny
        test mode, else C2F_WHISPER_MODEL (default base); missing weights say which files."""
        from c2f.speech.models import DEFAULT_WHISPER_MODEL, TINY_TEST_MODEL
        from c2f.speech.whisper import WhisperTranscriber

        tiny = self.get(mode).is_tiny
        model = TINY_TEST_MODEL if tiny else os.environ.get("C2F_WHISPER_MODEL", DEFAULT_WHISPER_MODEL)
        with self._lock:
            found = self._transcribers.get(model)
        if found is None:
            found = WhisperTranscriber(model, device=self.device)
            with self._lock:
                found = self._transcribers.setdefault(model, found)
        return found


__all__ = ["Backends", "check_mode", "known_modes"]
