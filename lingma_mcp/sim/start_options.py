"""What the simulator should do: behaviour and faults, read from the environment and flags.

The bridge spawns the simulator exactly as it spawns the binary (``<bin> start --workDir X``)
and passes its own environment down, so environment variables are the main switch; a flag
on ``lingma-sim start`` wins over its variable when both are given.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

SIM_VERSION = "2.5.17-sim"

InfoFormat = Literal["two", "three", "json"]
INFO_FORMATS: tuple[str, ...] = ("two", "three", "json")
AuthState = Literal["logged_in", "logged_out", "expired"]
AUTH_STATES: tuple[str, ...] = ("logged_in", "logged_out", "expired")

# The binary's window of unanswered requests is unknown; 64 is enough for a client that
# replies promptly never to notice it, and small enough that one that forgets stalls fast.
DEFAULT_WINDOW = 64
DEFAULT_CHUNK = 8
# How long an agent-mode chat waits for the client's answer to a tool/invoke or a PENDING
# call before going on without it.
DEFAULT_TOOL_TIMEOUT = 30.0


class OptionError(ValueError):
    """An environment variable or flag has a value the simulator cannot use."""


@dataclass
class SimOptions:
    """Every switch of ``lingma-sim start``; see the README of the simulator in cli.py."""

    work_dir: Path
    socket_port: int = 0
    info_format: InfoFormat = "two"
    info_torn: bool = False
    no_info: bool = False
    start_delay: float = 0.0
    exit_at_start: int | None = None
    answer_size: int | None = None
    chunk: int = DEFAULT_CHUNK
    deltas: int | None = None
    delta_delay: float = 0.0
    think: bool = False
    stamp: bool = False
    auth: AuthState = "logged_in"
    rate_limit: bool = False
    crash_after: int | None = None
    hang: bool = False
    drop_after: int | None = None
    malformed: bool = False
    tool_async: bool = False
    tool_timeout: float = DEFAULT_TOOL_TIMEOUT
    ignore_sigterm: bool = False
    log_path: Path | None = None
    split: bool = True
    seed: int = 0
    window: int = DEFAULT_WINDOW
    verbose: bool = False


# Environment variable -> (option name, parser). Flags use the same parsers.
def _flag(value: str) -> bool:
    return value.strip().lower() not in ("", "0", "false", "no", "off")


def _count(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise OptionError(f"expected a whole number, got {value!r}") from None
    if number < 0:
        raise OptionError(f"expected a number >= 0, got {number}")
    return number


def _positive(value: str) -> int:
    number = _count(value)
    if number == 0:
        raise OptionError("expected a number > 0, got 0")
    return number


def _seconds(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise OptionError(f"expected seconds as a number, got {value!r}") from None
    if number < 0:
        raise OptionError(f"expected seconds >= 0, got {number}")
    return number


def _choice(choices: tuple[str, ...]):
    def parse(value: str) -> str:
        value = value.strip().lower()
        if value not in choices:
            raise OptionError(f"expected one of {', '.join(choices)}, got {value!r}")
        return value

    return parse


ENV_OPTIONS: dict[str, tuple[str, object]] = {
    "LINGMA_SIM_INFO_FORMAT": ("info_format", _choice(INFO_FORMATS)),
    "LINGMA_SIM_INFO_TORN": ("info_torn", _flag),
    "LINGMA_SIM_NO_INFO": ("no_info", _flag),
    "LINGMA_SIM_START_DELAY": ("start_delay", _seconds),
    "LINGMA_SIM_EXIT_AT_START": ("exit_at_start", _count),
    "LINGMA_SIM_ANSWER_SIZE": ("answer_size", _count),
    "LINGMA_SIM_CHUNK": ("chunk", _positive),
    "LINGMA_SIM_DELTAS": ("deltas", _positive),
    "LINGMA_SIM_DELTA_DELAY": ("delta_delay", _seconds),
    "LINGMA_SIM_THINK": ("think", _flag),
    "LINGMA_SIM_STAMP": ("stamp", _flag),
    "LINGMA_SIM_AUTH": ("auth", _choice(AUTH_STATES)),
    "LINGMA_SIM_RATE_LIMIT": ("rate_limit", _flag),
    "LINGMA_SIM_CRASH_AFTER": ("crash_after", _count),
    "LINGMA_SIM_HANG": ("hang", _flag),
    "LINGMA_SIM_DROP_AFTER": ("drop_after", _count),
    "LINGMA_SIM_MALFORMED": ("malformed", _flag),
    "LINGMA_SIM_TOOL_ASYNC": ("tool_async", _flag),
    "LINGMA_SIM_TOOL_TIMEOUT": ("tool_timeout", _seconds),
    "LINGMA_SIM_IGNORE_SIGTERM": ("ignore_sigterm", _flag),
    "LINGMA_SIM_LOG": ("log_path", Path),
    "LINGMA_SIM_SPLIT": ("split", _flag),
    "LINGMA_SIM_SEED": ("seed", _count),
    "LINGMA_SIM_WINDOW": ("window", _positive),
    "LINGMA_SIM_VERBOSE": ("verbose", _flag),
}


def parse_option(name: str, raw: str) -> object:
    """Parse one option's raw text with the parser its environment variable uses."""
    for option, parser in ENV_OPTIONS.values():
        if option == name:
            return parser(raw)  # type: ignore[operator]
    raise KeyError(name)


def build_options(
    work_dir: Path,
    env: Mapping[str, str] | None = None,
    flags: Mapping[str, object] | None = None,
) -> SimOptions:
    """Combine defaults, the environment and flags (flags win) into :class:`SimOptions`.

    Args:
        work_dir: the ``--workDir`` folder (created if missing).
        env: the environment to read; ``os.environ`` when omitted.
        flags: option name -> already-parsed value, for flags that were given.

    Raises:
        OptionError: a variable has an unusable value (the message names it).
    """
    env = os.environ if env is None else env
    values: dict[str, object] = {}
    for variable, (option, parser) in ENV_OPTIONS.items():
        raw = env.get(variable)
        if raw is None or raw == "":
            continue
        try:
            values[option] = parser(raw)  # type: ignore[operator]
        except OptionError as exc:
            raise OptionError(f"{variable}: {exc}") from None
    for option, value in (flags or {}).items():
        if value is not None:
            values[option] = value
    return SimOptions(work_dir=work_dir, **values)  # type: ignore[arg-type]
