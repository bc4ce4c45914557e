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
                                   Authentication is required."; authenticate never answers.
                                   QODERCN_PERSONAL_ACCESS_TOKEN, QODERCN_PAT,
                                   QODERCN_SERVICE_ACCOUNT_KEY or QODERCN_JOB_TOKEN in the
                                   environment logs it in whatever this says (the value is
                                   never shown), as the CLI adopts a token at start
  LINGMA_SIM_ACP_SCRIPT=FILE       play FILE, in the CLI's --fake-responses format, instead of
                                   the prompt's @ instructions (the --fake-responses flag wins)
  LINGMA_SIM_ACP_CLIENT_TOOLS=1    hand file and command work to the client (fs/*,
                                   terminal/*) as ACP allows; default: act on the disk
                                   after a permission request, as qoderclicn 1.1.52 does
  LINGMA_SIM_ACP_CANCEL_WAITS=1    session/cancel while a permission question is open ends
                                   the prompt only once the question is answered (default:
                                   at once, as the CLI; the question's late answer is ignored)
  LINGMA_SIM_ACP_START_DELAY=S     read nothing for S seconds after start (default 0)
  LINGMA_SIM_ACP_NEW_DELAY=S       session/new takes S seconds, as the CLI scanning a big
                                   workspace (default 0; other requests are served meanwhile)
  LINGMA_SIM_ACP_CHUNK=N           characters per agent_message_chunk (default 8)
  LINGMA_SIM_ACP_DELTA_DELAY=S     seconds between chunks (default 0)
  LINGMA_SIM_ACP_THINK=0|1         agent_thought_chunk before answering (default 1)
  LINGMA_SIM_ACP_PLAN=0|1          a plan update for each prompt (default 1)
  LINGMA_SIM_ACP_MODELS=both|config|legacy|none
                                   how sessions declare models: as the CLI, a "models" state
                                   and config options mode/model (default both); only config
                                   options; only the older state (set with session/set_model);
                                   or not at all
  LINGMA_SIM_ACP_EFFORTS=none,high,max
                                   values of the reasoning_effort config option (default as
                                   shown; empty: no such option, as the CLI with a script)
  LINGMA_SIM_ACP_NO_LIST=1         declare and serve no session/list
  LINGMA_SIM_ACP_NO_RESUME=1       declare and serve no session/resume
  LINGMA_SIM_ACP_NO_LOAD=1         loadSession false, session/load refused
  LINGMA_SIM_ACP_LOAD_REPLAY=split|before|after
                                   session/load replays the first user message before its
                                   reply and the rest after it, as the CLI (default split);
                                   all before; or all 0.2 s after, serving nothing meanwhile
  LINGMA_SIM_ACP_CRASH_AFTER=N     exit hard (code 3) after N answer chunks of a prompt
  LINGMA_SIM_ACP_EXIT_AT_START=N   print an error on stderr and exit N before reading anything
  LINGMA_SIM_ACP_CHATTER=exit|always|none
                                   non-JSON lines on stdout: at exit (default), also at start
                                   and before each prompt reply, or never
  LINGMA_SIM_ACP_SIGTERM_DELAY=S   seconds SIGTERM takes to end the process (default 0.5);
                                   negative: ignore SIGTERM (only SIGKILL ends it)
  LINGMA_SIM_ACP_LOG=PATH          one JSON line per message received, flushed
  LINGMA_SIM_ACP_VERBOSE=1         debug logging on stderr
  QODERCN_EXPOSE_TOKEN_USAGE=1     the prompt result's usage counts tokens (else zeros, as
                                   the CLI): a script's usageMetadata, or for instructions
                                   one token per four characters of prompt and answer

Prompt instructions, without a script (one a line; any other text is answered as a chat;
the answer quotes each tool's outcome and names the prompt's attachments):
  @read PATH          Read {file_path}: runs unasked inside the session's folder
  @create PATH TEXT   Write {file_path, content}: asks, then writes the file
  @edit PATH OLD NEW  Edit {file_path, old_string, new_string}: asks, then replaces OLD
                      (needs an earlier Read of PATH in the session, as the CLI)
  @run COMMAND        Bash {command}: asks unless read-only (echo, ls, cat...), then runs it
  @call NAME {JSON}   any tool call, arguments as a --fake-responses functionCall's args
  @wait               answer nothing until session/cancel arrives
  @refuse             end the turn with stopReason refusal
  @error [MESSAGE]    fail as the CLI does: an "[Error] MESSAGE" chunk, then error 500
PATH, OLD and NEW are words, or JSON strings in double quotes; \\n in TEXT, OLD and NEW is
a newline. With LINGMA_SIM_ACP_CLIENT_TOOLS=1 the same calls go to the client as fs/*
and terminal/* requests, each after a permission request.
"""

CHATTER_MODES = ("exit", "always", "none")
MODEL_MODES = ("both", "config", "legacy", "none")
TOKEN_VARIABLES = (
    "QODERCN_PERSONAL_ACCESS_TOKEN",
    "QODERCN_PAT",
    "QODERCN_SERVICE_ACCOUNT_KEY",
    "QODERCN_JOB_TOKEN",
)


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
    models: str = "both"
    efforts: tuple[str, ...] = ("none", "high", "max")
    list_sessions: bool = True
    resume: bool = True
    load: bool = True
    replay: str = "split"
    script: Path | None = None
    client_tools: bool = False
    cancel_waits: bool = False
    new_delay: float = 0.0
    credential: str | None = None  # the name of the token variable that logs it in
    expose_usage: bool = False
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
        ("NEW_DELAY", "new_delay", float),
        ("CHUNK", "chunk", int),
        ("DELTA_DELAY", "delta_delay", float),
        ("CRASH_AFTER", "crash_after", int),
        ("EXIT_AT_START", "exit_at_start", int),
        ("SIGTERM_DELAY", "sigterm_delay", float),
    ):
        if (value := get(key)) is not None:
            setattr(opts, attr, _number("LINGMA_SIM_ACP_" + key, value, kind))
    for key, attr in (
        ("THINK", "think"),
        ("PLAN", "plan"),
        ("VERBOSE", "verbose"),
        ("CLIENT_TOOLS", "client_tools"),
        ("CANCEL_WAITS", "cancel_waits"),
    ):
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
        opts.replay = _choice("LOAD_REPLAY", value, ("split", "before", "after"))
    if (value := get("LOG")) is not None:
        opts.log_path = Path(value)
    if (value := get("SCRIPT")) is not None:
        opts.script = Path(value)
    if (value := get("EFFORTS")) is not None:
        opts.efforts = tuple(v.strip() for v in value.split(",") if v.strip())
    # Never the value: only which variable holds a credential.
    opts.credential = next((name for name in TOKEN_VARIABLES if env.get(name)), None)
    if opts.credential is not None:
        opts.logged_in = True
    opts.expose_usage = _flag(env.get("QODERCN_EXPOSE_TOKEN_USAGE", ""))
    if opts.chunk < 1:
        raise OptionError("LINGMA_SIM_ACP_CHUNK must be at least 1")
    return opts
