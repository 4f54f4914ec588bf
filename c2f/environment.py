"""Settings read from environment variables (C2F_*, and the platform's GRADIO_SERVER_PORT): the one
parser of numbers (`env_int`, `env_float`), switches (`env_flag`: 0 or 1) and named choices
(`env_choice`), so a value it does not accept is one line naming the variable and what it takes
(the CLI prints `error: ...` and exits 2), never a bare ValueError from int() nor a value silently
taken for the default.

Unset or blank means the default.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from c2f.errors import C2FError

Default = TypeVar("Default", int, float, None)  # what an unset variable gives
Value = TypeVar("Value")


class EnvironmentSettingError(C2FError, ValueError):
    """An environment variable holds a value it does not accept."""


def _number(
    name: str,
    default: Default,
    parse: Callable[[str], float],
    kind: str,
    minimum: float | None,
    maximum: float | None,
    env: Mapping[str, str] | None,
) -> Any:
    raw = (os.environ if env is None else env).get(name, "").strip()
    if not raw:
        return default
    try:
        value = parse(raw)
        ok = (
            math.isfinite(value)
            and (minimum is None or value >= minimum)
            and (maximum is None or value <= maximum)
        )
    except (ValueError, OverflowError):  # not a number; a whole number too long for a float
        ok = False
    if not ok:
        accepted = kind
        if minimum is not None:
            accepted += f" from {minimum:g} to {maximum:g}" if maximum is not None else f" >= {minimum:g}"
        raise EnvironmentSettingError(f"{name}={raw!r}: give a {accepted}")
    return value


def env_int(
    name: str,
    default: Default,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    env: Mapping[str, str] | None = None,
) -> int | Default:
    """The whole number in `name` (`env`, default os.environ), within [minimum, maximum]."""
    return _number(name, default, int, "whole number", minimum, maximum, env)


def env_float(
    name: str, default: Default, *, minimum: float | None = None, env: Mapping[str, str] | None = None
) -> float | Default:
    """The finite number in `name` (`env`, default os.environ), at least `minimum`."""
    return _number(name, default, float, "number", minimum, None, env)


def env_choice(
    name: str, default: Value, choices: Mapping[str, Value], *, env: Mapping[str, str] | None = None
) -> Value:
    """What `choices` maps the value of `name` to (matched without regard to case), `default` when
    unset or blank; another value is refused, the line naming every accepted one."""
    raw = (os.environ if env is None else env).get(name, "").strip()
    if not raw:
        return default
    if raw.lower() not in choices:
        accepted = list(choices)
        said = " or ".join(accepted) if len(accepted) <= 2 else f"one of {', '.join(accepted)}"
        raise EnvironmentSettingError(f"{name}={raw!r}: give {said}")
    return choices[raw.lower()]


def env_flag(name: str, default: Value, *, env: Mapping[str, str] | None = None) -> bool | Value:
    """A switch: 1 (on) or 0 (off); `default` when unset or blank (None: let the program decide)."""
    return env_choice(name, default, {"0": False, "1": True}, env=env)


__all__ = ["EnvironmentSettingError", "env_choice", "env_flag", "env_float", "env_int"]
