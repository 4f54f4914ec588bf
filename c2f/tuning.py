"""Speed settings chosen by measurement on this machine, not by capability flags.

A task (an encoder and its input shape, or the search scan) offers candidate settings; the first
time it runs on a machine each candidate is timed on a few real batches, candidates that miss the
task's accuracy bound are dropped, and the fastest survivor is kept. The choice is cached per CPU
model, torch build, kernel limits and C2F version in a JSON file (`C2F_TUNING_CACHE`, default
`~/.cache/c2f/tuning.json`), so later runs start at once. Overrides:

- `C2F_TUNE_<TASK>` (task upper-cased, `-`/`.` as `_`), e.g. `C2F_TUNE_S3D='{"dtype": "float32"}'`:
  the given keys replace the chosen ones, nothing is measured;
- `C2F_TUNING=off`: take each task's first (default) candidate without measuring.

Concurrency: one measurement per key at a time in a process; a thread asking for a key being
measured waits for that key only, and nothing else (other keys, `c2f doctor`) waits for a
measurement. The cache file is rewritten under a lock file beside it (read-modify-write across
processes loses no entry) and replaced atomically (`c2f.shared_files`).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from c2f import __version__
from c2f.environment import EnvironmentSettingError, env_choice
from c2f.shared_files import atomic_write_text, exclusive_lock

Setting = dict[str, Any]  # one candidate, JSON-serialisable: {"dtype": "bfloat16", "batch": 8}

_lock = threading.Lock()  # guards the two dicts below; never held while measuring or reading files
_choices: dict[str, Choice] = {}  # this process's choices, by cache key
_measuring: dict[str, threading.Event] = {}  # key being measured -> set when that measurement ends


@dataclass
class Choice:
    task: str
    shape: str
    setting: Setting
    source: str  # "measured" | "cache" | "env" | "off"
    # candidate label -> ms per unit of work, None = rejected (accuracy bound missed, or failed)
    timings_ms: dict[str, float | None] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


class TuningOverrideError(EnvironmentSettingError):
    """A C2F_TUNE_* variable that is not a JSON object of known settings."""


class Skip(Exception):
    """Raised by a `measure` function for a candidate not worth timing (it cannot win: a greedy
    search already settled the axis it varies). It is left out of the choice's timings."""


class Reject(Exception):
    """Raised by a `measure` function for a candidate that misses the task's accuracy bound; the
    message (e.g. the cosine reached) is kept in the choice's notes, its timing as None."""


class Dominated(Exception):
    """Raised by a `measure` function for a candidate stopped early because it is already clearly
    slower than the best so far. `seconds` (per unit of work, a lower bound) is kept in the
    choice's timings and `reason` in its notes; such a candidate is never chosen."""

    def __init__(self, seconds: float, reason: str) -> None:
        super().__init__(reason)
        self.seconds = seconds


def label(setting: Setting) -> str:
    return ",".join(f"{k}={v}" for k, v in setting.items())


@cache
def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("model name", "Model", "cpu model")):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine_key() -> str:
    """What a measured choice depends on: CPU, torch build, the kernel limits in force, C2F."""
    import torch

    capability = torch.backends.cpu.get_cpu_capability()
    return "|".join(
        [
            cpu_model(),
            platform.machine(),
            f"torch {torch.__version__}",
            f"aten {capability}",
            f"onednn-isa {os.environ.get('ONEDNN_MAX_CPU_ISA', '-')}",
            f"threads {torch.get_num_threads()}",
            f"c2f {__version__}",
        ]
    )


def cache_path() -> Path:
    env = os.environ.get("C2F_TUNING_CACHE")
    if env:
        return Path(env)
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "c2f" / "tuning.json"


def _read_cache() -> dict[str, Any]:
    try:
        data = json.loads(cache_path().read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_cache(key: str, choice: Choice) -> None:
    path = cache_path()
    entry = asdict(choice)
    json.dumps(entry)  # a setting that is not JSON fails here, before any file is touched
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with exclusive_lock(path.with_name(path.name + ".lock")):  # other processes' entries are kept
            data = _read_cache()
            data[key] = entry
            atomic_write_text(path, json.dumps(data, indent=1, sort_keys=True))
    except OSError:
        pass  # a read-only home only costs a re-measurement next time


def tuning_on() -> bool:
    """C2F_TUNING: on (measure, the default) or off (the first candidate of each task, unmeasured);
    another value is refused in one line."""
    words = {"on": True, "off": False, "1": True, "0": False, "true": True, "false": False}
    return env_choice("C2F_TUNING", True, words)


def env_name(task: str) -> str:
    return "C2F_TUNE_" + "".join(c if c.isalnum() else "_" for c in task.upper())


def env_override(task: str) -> Setting | None:
    """The JSON object in C2F_TUNE_<TASK>, None when unset; TuningOverrideError when not an object."""
    raw = os.environ.get(env_name(task))
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise TuningOverrideError(
            f'{env_name(task)} must be a JSON object such as \'{{"dtype": "float32"}}\', not {raw!r}'
        )
    return value


def time_call(fn: Callable[[], Any], repeats: int = 3, warmup: int = 1) -> float:
    """Median seconds of fn() over `repeats` runs after `warmup` untimed ones."""
    for _ in range(warmup):
        fn()
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs)


def choose(
    task: str,
    shape: str,
    candidates: Sequence[Setting],
    measure: Callable[[Setting], float | None],
) -> Choice:
    """The setting for `task` on inputs of `shape`: from the environment, this process, the cache, or
    measured now. `measure(setting)` returns seconds per unit of work (lower is better), or None when
    the setting misses the accuracy bound or fails, or raises `Skip` for a candidate not worth timing,
    `Reject` for one that misses the bound, `Dominated` for one stopped early as clearly slower;
    `candidates[0]` is the safe default, used when every candidate is rejected."""
    if not candidates:
        raise ValueError(f"{task}: no candidate settings")
    key = f"{machine_key()}|{task}|{shape}"
    override = env_override(task)
    unmeasured = None
    if override is not None:
        unmeasured = Choice(task, shape, {**candidates[0], **override}, "env")
    elif not tuning_on():
        unmeasured = Choice(task, shape, dict(candidates[0]), "off")
    if unmeasured is not None:
        with _lock:  # recorded too, so that `c2f doctor` shows what is in force
            _choices[key] = unmeasured
        return unmeasured
    while True:
        with _lock:
            known = _choices.get(key)
            if known is not None and known.source not in ("env", "off"):
                return known
            pending = _measuring.get(key)
            if pending is None:  # this thread measures the key; others asking for it wait below
                done = _measuring[key] = threading.Event()
                break
        pending.wait()  # then the choice is known, or that measurement failed and this one runs
    try:
        cached = _read_cache().get(key)
        if isinstance(cached, dict) and cached.get("setting") in [dict(c) for c in candidates]:
            choice = Choice(**{**cached, "source": "cache"})
        else:
            choice = _measure(task, shape, candidates, measure)
            _write_cache(key, choice)
        with _lock:
            _choices[key] = choice
        return choice
    finally:
        with _lock:
            del _measuring[key]
        done.set()


def _measure(task: str, shape: str, candidates: Sequence[Setting], measure: Callable[[Setting], float | None]) -> Choice:
    """Time every candidate; the fastest one that is not rejected wins, else `candidates[0]`."""
    timings: dict[str, float | None] = {}
    notes: list[str] = []
    best: tuple[float, Setting] | None = None
    skipped = 0
    for cand in candidates:
        try:
            seconds = measure(dict(cand))
        except Skip:
            skipped += 1
            continue
        except Dominated as exc:  # timed (in part), never chosen
            timings[label(cand)] = round(exc.seconds * 1e3, 4)
            notes.append(f"{label(cand)}: {exc}")
            continue
        except Reject as exc:
            seconds = None
            notes.append(f"{label(cand)}: rejected, {exc}")
        except Exception as exc:  # a kernel this machine lacks: the candidate is out, not the task
            seconds = None
            notes.append(f"{label(cand)}: {type(exc).__name__}: {exc}"[:300])
        timings[label(cand)] = None if seconds is None else round(seconds * 1e3, 4)
        if seconds is not None and (best is None or seconds < best[0]):
            best = (seconds, dict(cand))
    setting = best[1] if best is not None else dict(candidates[0])
    if skipped:
        notes.append(f"{skipped} of {len(candidates)} candidates not timed (their axis was settled)")
    return Choice(task, shape, setting, "measured", timings, notes)


def choices_made() -> list[Choice]:
    """This process's choices so far (for `c2f doctor`)."""
    with _lock:
        return list(_choices.values())


def cached_choices() -> list[Choice]:
    """Choices cached for this machine key by earlier runs."""
    prefix = machine_key() + "|"
    out = []
    for key, value in _read_cache().items():
        if key.startswith(prefix) and isinstance(value, dict):
            with contextlib.suppress(TypeError):
                out.append(Choice(**{**value, "source": "cache"}))
    return out


def forget() -> None:
    """Drop this process's choices (tests that change the environment)."""
    with _lock:
        _choices.clear()
