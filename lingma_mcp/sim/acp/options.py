"""``lingma-sim acp`` switches, read from ``LINGMA_SIM_ACP_*`` environment variables.

The bridge starts the simulator as it starts the CLI (``<bin> --acp``) and passes its
environment down, so the environment is the only switch.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

SIM_ACP_VERSION = "1.1.52-sim"

HELP_ENV = """\
Environment variables (all optional):
  LINGMA_SIM_ACP_STATE_DIR=PATH    conversations kept here, 0700/0600 (default ~/.lingma-sim-acp)
  LINGMA_SIM_ACP_AUTH=logged_in|logged_out
                                   logged_out: session/new, session/list, session/load and
                                   session/prompt fail with -32000 "Authentication required:
                                   Authentication is required."; authenticate never answers
  LINGMA_SIM_ACP_START_DELAY=S     read nothing for S seconds after start (default 0)
  LINGMA_SIM_ACP_CHUNK=N           characters per agent_message_chunk (default 8)
  LINGMA_SIM_ACP_DELTA_DELAY=S     seconds between chunks (default 0)
  LINGMA_SIM_ACP_THINK=0|1         agent_thought_chunk before answering (default 1)
  LINGMA_SIM_ACP_PLAN=0|1          a plan update for each prompt (default 1)
  LINGMA_SIM_ACP_MODELS=config|legacy|none
                                   models as a session config option (default), as the older
                                   "models" state set with session/set_model, or not at all
  LINGMA_SIM_ACP_NO_LIST=1         declare and serve no session/list
  LINGMA_SIM_ACP_NO_RESUME=1       declare and serve no session/resume
  LINGMA_SIM_ACP_NO_LOAD=1         loadSession false, session/load refused
  LINGMA_SIM_ACP_LOAD_REPLAY=before|after
                                   replay history before answering session/load (default), or
                                   0.2 s after it, serving nothing else meanwhile
  LINGMA_SIM_ACP_CRASH_AFTER=N     exit hard (code 3) after N answer chunks of a prompt
  LINGMA_SIM_ACP_EXIT_AT_START=N   print an error on stderr and exit N before reading anything
  LINGMA_SIM_ACP_CHATTER=exit|always|none
                                   non-JSON lines on stdout: at exit (default), also at start
                                   and before each prompt reply, or never
  LINGMA_SIM_ACP_SIGTERM_DELAY=S   seconds SIGTERM takes to end the process (default 0.5);
                                   negative: ignore SIGTERM (only SIGKILL ends it)
  LINGMA_SIM_ACP_LOG=PATH          one JSON line per message received, flushed
  LINGMA_SIM_ACP_VERBOSE=1         debug logging on stderr

Prompt instructions (one a line; any other text is answered as a chat):
  @create PATH TEXT   ask permission (kind edit), then fs/write_text_file PATH with TEXT
  @read PATH          ask permission (kind read), then fs/read_text_file PATH; quote it
  @run CMD ARGS...    ask permission (kind execute), then terminal/create, wait_for_exit,
                      output and release; quote the output
  @wait               answer nothing until session/cancel arrives
  @refuse             end the turn with stopReason refusal
"""

CHATTER_MODES = ("exit", "always", "none")
MODEL_MODES = ("config", "legacy", "none")


class OptionError(ValueError):
    """A LINGMA_SIM_ACP_* variable has a value the simulator cannot use."""


@dataclass
class AcpSimOptions:
    state_dir: Path
    logged_in: bool = True
    start_delay: float = 0.0
    chunk: int = 8
    delta_delay: float = 0.0
    think: bool = True
    plan: bool = True
    models: str = "config"
    list_sessions: bool = True
    resume: bool = True
    load: bool = True
    replay_after: bool = False
    crash_after: int | None = None
    exit_at_start: int | None = None
    chatter: str = "exit"
    sigterm_delay: float = 0.5
    log_path: Path | None = None
    verbose: bool = False


def _flag(value: str) -> bool:
    return value.strip().lower() not in ("", "0", "false", "no", "off")


def _number(name: str, value: str, kind: type[float] | type[int]) -> float | int:
    try:
        return kind(value)
    except ValueError:
        raise OptionError(f"{name}={value!r} is not a number") from None


def _choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise OptionError(f"{name}={value!r}: use one of {', '.join(choices)}")
    return value


def from_env(env: Mapping[str, str] | None = None) -> AcpSimOptions:
    """The options the environment asks for.

    Raises:
        OptionError: a variable's value is unusable (named in the message).
    """
    env = os.environ if env is None else env

    def get(key: str) -> str | None:
        return env.get("LINGMA_SIM_ACP_" + key)

    state = get("STATE_DIR")
    opts = AcpSimOptions(
        state_dir=Path(state).expanduser() if state else Path.home() / ".lingma-sim-acp"
    )
    if (value := get("AUTH")) is not None:
        opts.logged_in = _choice("AUTH", value, ("logged_in", "logged_out")) == "logged_in"
    for key, attr, kind in (
        ("START_DELAY", "start_delay", float),
        ("CHUNK", "chunk", int),
        ("DELTA_DELAY", "delta_delay", float),
        ("CRASH_AFTER", "crash_after", int),
        ("EXIT_AT_START", "exit_at_start", int),
        ("SIGTERM_DELAY", "sigterm_delay", float),
    ):
        if (value := get(key)) is not None:
            setattr(opts, attr, _number("LINGMA_SIM_ACP_" + key, value, kind))
    for key, attr in (("THINK", "think"), ("PLAN", "plan"), ("VERBOSE", "verbose")):
        if (value := get(key)) is not None:
            setattr(opts, attr, _flag(value))
    for key, attr in (("NO_LIST", "list_sessions"), ("NO_RESUME", "resume"), ("NO_LOAD", "load")):
        if (value := get(key)) is not None:
            setattr(opts, attr, not _flag(value))
    if (value := get("MODELS")) is not None:
        opts.models = _choice("MODELS", value, MODEL_MODES)
    if (value := get("CHATTER")) is not None:
        opts.chatter = _choice("CHATTER", value, CHATTER_MODES)
    if (value := get("LOAD_REPLAY")) is not None:
        opts.replay_after = _choice("LOAD_REPLAY", value, ("before", "after")) == "after"
    if (value := get("LOG")) is not None:
        opts.log_path = Path(value)
    if opts.chunk < 1:
        raise OptionError("LINGMA_SIM_ACP_CHUNK must be at least 1")
    return opts
