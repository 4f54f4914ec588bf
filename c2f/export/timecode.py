"""Frames of a moment, and SMPTE timecodes of frames, at a video's frame rate.

- Rate: the exact frame rate (a fraction: 25, 30, 30000/1001) and the timecode base that counts
  it (25, 30). NTSC rates 30000/1001 (29.97) and 60000/1001 (59.94) are counted drop-frame
  (SMPTE 12M): the labels ;00 and ;01 (;00-;03 at 59.94) are skipped at the start of every minute
  except minutes 0, 10, 20, ..., so the timecode follows the wall clock (frame 17982 at 29.97 is
  00:10:00;00, written with ';' before the frames). 24000/1001 (23.976) is counted non-drop at base
  24, as editors do. Any other rate is counted non-drop at its rounded base (a label per frame;
  the clock drifts for rates such as 12.5). A variable frame rate is taken at its average.
- Frames of a moment [start, end) in seconds: those whose display begins inside it, frames
  ceil(start * fps) .. ceil(end * fps) - 1 (a product within 1e-6 frame of an integer counts as
  that integer), at least one frame.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction

from c2f.errors import C2FError

_NTSC = {30: Fraction(30000, 1001), 60: Fraction(60000, 1001), 24: Fraction(24000, 1001)}
_ROUNDING = 1e-6  # frames: float noise in start * fps


class TimecodeError(C2FError):
    """A timecode that does not exist at its rate (malformed, out of range, or a dropped label)."""


@dataclass(frozen=True)
class Rate:
    fps: Fraction  # exact frames per second
    base: int  # frames counted per timecode second
    drop_frame: bool

    @classmethod
    def of(cls, fps: float | Fraction) -> Rate:
        """The rate of a video whose (average) frame rate is `fps`; NTSC rates recognised within 0.01."""
        value = float(fps)
        if not value > 0 or not math.isfinite(value):
            raise C2FError(f"a frame rate must be positive, not {fps!r}")
        for base, exact in _NTSC.items():
            if abs(value - float(exact)) < 0.01:
                return cls(exact, base, base != 24)
        exact = Fraction(fps).limit_denominator(1001) if not isinstance(fps, Fraction) else fps
        return cls(exact, max(1, round(value)), False)

    @property
    def dropped(self) -> int:
        """Labels skipped per minute (not at tenth minutes): 2 at 29.97, 4 at 59.94, else 0."""
        return self.base // 15 if self.drop_frame else 0

    @property
    def label(self) -> str:
        """'25', '29.97', '30' (file names, FCM comments)."""
        value = float(self.fps)
        return f"{value:.2f}".rstrip("0").rstrip(".") if self.fps.denominator != 1 else str(self.fps.numerator)


def moment_frames(start: float, end: float, rate: Rate) -> tuple[int, int]:
    """(first frame, end frame exclusive) of the moment [start, end) seconds: the frames whose
    display begins inside it, at least one."""
    fps = float(rate.fps)
    first = max(0, math.ceil(start * fps - _ROUNDING))
    stop = max(first + 1, math.ceil(end * fps - _ROUNDING))
    return first, stop


def frame_seconds(frame: int, rate: Rate) -> float:
    """The time (seconds) at which `frame` begins to show."""
    return float(frame / rate.fps)


def to_timecode(frame: int, rate: Rate) -> str:
    """Frame number (0 = 00:00:00:00) -> 'HH:MM:SS:FF' (drop-frame: 'HH:MM:SS;FF'), wrapping at 24 h."""
    if frame < 0:
        raise TimecodeError(f"no timecode for frame {frame}")
    base, drop = rate.base, rate.dropped
    if drop:  # add back the labels skipped before this frame
        per_10_min = base * 600 - 9 * drop
        per_min = base * 60 - drop
        tens, rest = divmod(frame, per_10_min)
        frame += 9 * drop * tens + (drop * ((rest - drop) // per_min) if rest > drop else 0)
    ff = frame % base
    seconds = frame // base
    hh, mm, ss = seconds // 3600 % 24, seconds // 60 % 60, seconds % 60
    return f"{hh:02d}:{mm:02d}:{ss:02d}{';' if rate.drop_frame else ':'}{ff:02d}"


_TIMECODE = re.compile(r"^(\d{2}):(\d{2}):(\d{2})[:;.,](\d{2,3})$")


def from_timecode(text: str, rate: Rate) -> int:
    """'HH:MM:SS:FF' (';' or ':' before the frames) -> frame number at `rate`; TimecodeError for
    a malformed timecode, fields out of range, or a label drop-frame counting skips."""
    m = _TIMECODE.match(text.strip())
    if m is None:
        raise TimecodeError(f"{text!r} is not a timecode (HH:MM:SS:FF)")
    hh, mm, ss, ff = (int(g) for g in m.groups())
    if mm > 59 or ss > 59 or ff >= rate.base:
        raise TimecodeError(f"{text!r} does not exist at {rate.label} fps")
    drop = rate.dropped
    if drop and ss == 0 and ff < drop and mm % 10:
        raise TimecodeError(f"{text!r} is a label drop-frame timecode skips at {rate.label} fps")
    minutes = 60 * hh + mm
    return (3600 * hh + 60 * mm + ss) * rate.base + ff - drop * (minutes - minutes // 10)
