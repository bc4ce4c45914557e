"""lingma-mcp: serve MCP over stdio, check the set-up, ask from a terminal, or run a demo.

In serve mode stdout belongs to MCP: every log line goes to stderr. ``ask`` prints the
answer on stdout (that is its job) and everything else on stderr.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from .. import __version__
from ..config import (
    DEFAULT_APPROVAL_TIMEOUT,
    DEFAULT_CHECKPOINT_MAX_FILE_MB,
    DEFAULT_CLI_SESSION_TIMEOUT,
    DEFAULT_COMMAND_TIMEOUT,
    DEFAULT_MAX_PROMPT_CHARS,
    DEFAULT_MAX_RESULT_CHARS,
    DEFAULT_REQUEST_TIMEOUT,
    DEFAULT_STARTUP_TIMEOUT,
    MIN_MAX_RESULT_CHARS,
    MODES,
    SANDBOX_MODES,
    Settings,
    absolute_path,
    absolute_program,
)

log = logging.getLogger("lingma_mcp")

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

# flag dest -> environment variable. The names are a contract: users' MCP configs set them.
ENV_VARS: dict[str, str] = {
    "lingma_bin": "LINGMA_BIN",
    "lingma_port": "LINGMA_PORT",
    "work_dir": "LINGMA_WORK_DIR",
    "workspace": "LINGMA_WORKSPACE",
    "model": "LINGMA_MODEL",
    "reasoning_effort": "LINGMA_REASONING_EFFORT",
    "mode": "LINGMA_MODE",
    "startup_timeout": "LINGMA_STARTUP_TIMEOUT",
    "request_timeout": "LINGMA_REQUEST_TIMEOUT",
    "log_level": "LINGMA_MCP_LOG_LEVEL",
    "simulate": "LINGMA_MCP_SIMULATE",
    "max_prompt_chars": "LINGMA_MAX_PROMPT_CHARS",
    "detach_after": "LINGMA_DETACH_AFTER",
    "max_result_chars": "LINGMA_MAX_RESULT_CHARS",
    "approval": "LINGMA_APPROVAL",
    "command_timeout": "LINGMA_COMMAND_TIMEOUT",
    "approval_timeout": "LINGMA_APPROVAL_TIMEOUT",
    "checkpoint_max_file_mb": "LINGMA_CHECKPOINT_MAX_FILE_MB",
    "cli_session_timeout": "LINGMA_CLI_SESSION_TIMEOUT",
    "backend": "LINGMA_BACKEND",
    "cli_bin": "LINGMA_CLI_BIN",
    "sandbox": "LINGMA_SANDBOX",
    "sandbox_network": "LINGMA_SANDBOX_NETWORK",
    "command_env": "LINGMA_COMMAND_ENV",
}

COMMANDS = ("serve", "doctor", "ask", "demo")
BACKENDS = ("auto", "ide", "cli")


TTY_HINT = """\
lingma-mcp serves MCP over stdio: an MCP host (VS Code, Claude Desktop, an agent SDK ...)
starts it and talks to it; typed lines are not questions. To try it from this terminal:
  lingma-mcp doctor                  check the set-up step by step
  lingma-mcp ask "your question"     ask Lingma once
  lingma-mcp --simulate demo         the whole MCP path against the simulator
Press Ctrl-D (Ctrl-Z then Enter on Windows) or Ctrl-C to leave.
"""


class UsageError(Exception):
    """A flag or environment variable has a value that cannot be used."""


def _add_options(parser: argparse.ArgumentParser, *, sub: bool) -> None:
    # On subcommands the defaults are SUPPRESS so `lingma-mcp --simulate doctor` and
    # `lingma-mcp doctor --simulate` both work: a subparser must not reset the parent's value.
    d = argparse.SUPPRESS if sub else None
    g = parser.add_argument_group("Lingma options (each also read from its environment variable)")
    g.add_argument(
        "--lingma-bin", default=d, metavar="PATH", help="the Lingma binary (env LINGMA_BIN)"
    )
    g.add_argument(
        "--lingma-port",
        default=d,
        metavar="PORT",
        help="attach to a Lingma already listening on this port (env LINGMA_PORT)",
    )
    g.add_argument(
        "--work-dir",
        default=d,
        metavar="DIR",
        help="Lingma's --workDir, where its .info and state live (env LINGMA_WORK_DIR)",
    )
    g.add_argument(
        "--workspace",
        default=d,
        metavar="DIR",
        help="default folder for Lingma's context when the host offers no root "
        "(env LINGMA_WORKSPACE; default: the current folder)",
    )
    g.add_argument("--model", default=d, metavar="KEY", help="default model key (env LINGMA_MODEL)")
    g.add_argument(
        "--reasoning-effort",
        default=d,
        metavar="VALUE",
        help="CLI backend: the default reasoning effort, one of the values the Lingma CLI offers "
        "for the model (e.g. none, high, max); skipped where the model has none "
        "(env LINGMA_REASONING_EFFORT)",
    )
    g.add_argument(
        "--mode", default=d, choices=MODES, help="default mode: chat or agent (env LINGMA_MODE)"
    )
    g.add_argument(
        "--startup-timeout",
        default=d,
        metavar="SECONDS",
        help=f"how long Lingma may take to start (env LINGMA_STARTUP_TIMEOUT; "
        f"default {DEFAULT_STARTUP_TIMEOUT:g})",
    )
    g.add_argument(
        "--request-timeout",
        default=d,
        metavar="SECONDS",
        help=f"default bound on one ask (env LINGMA_REQUEST_TIMEOUT; "
        f"default {DEFAULT_REQUEST_TIMEOUT:g})",
    )
    g.add_argument(
        "--max-prompt-chars",
        default=d,
        metavar="N",
        help=f"refuse longer prompts before asking Lingma (env LINGMA_MAX_PROMPT_CHARS; "
        f"default {DEFAULT_MAX_PROMPT_CHARS})",
    )
    g.add_argument(
        "--log-level",
        default=d,
        type=str.upper,
        choices=LOG_LEVELS,
        help="log level on stderr (env LINGMA_MCP_LOG_LEVEL; default WARNING)",
    )
    g.add_argument(
        "--detach-after",
        default=d,
        metavar="SECONDS",
        help="a foreground ask still running after this long returns its text so far and "
        "continues as a job (env LINGMA_DETACH_AFTER; default: 45 for hosts known to cut "
        "calls at 60 s, never for others; 0: never)",
    )
    g.add_argument(
        "--max-result-chars",
        default=d,
        metavar="N",
        help="longer answers come back cut, the whole behind lingma://answers/{request_id} "
        f"(env LINGMA_MAX_RESULT_CHARS; default {DEFAULT_MAX_RESULT_CHARS})",
    )
    g.add_argument(
        "--backend",
        default=d,
        choices=BACKENDS,
        help="what serves: ide (the IDE plugin's Lingma binary), cli (the Lingma CLI, "
        "qoderclicn --acp) or auto: ide when its binary is found, else cli "
        "(env LINGMA_BACKEND; default auto)",
    )
    g.add_argument(
        "--cli-bin",
        default=d,
        metavar="PATH",
        help="the Lingma CLI (env LINGMA_CLI_BIN; default qoderclicn or qodercli on PATH, "
        "then the npm global bin folder)",
    )
    g.add_argument(
        "--simulate",
        action="store_true",
        default=d if sub else None,
        help="run against the bundled Lingma simulator (env LINGMA_MCP_SIMULATE=1)",
    )
    g.add_argument(
        "--approval",
        default=d,
        metavar="POLICY",
        help="agent mode: what Lingma may do without asking, as class=decision pairs "
        "(classes read, write, delete, run; decisions allow, ask, deny), e.g. "
        "'write=allow,run=deny' (env LINGMA_APPROVAL; default "
        "read=allow,write=ask,delete=ask,run=ask)",
    )
    g.add_argument(
        "--command-timeout",
        default=d,
        metavar="SECONDS",
        help="agent mode: a command Lingma runs is killed after this long "
        f"(env LINGMA_COMMAND_TIMEOUT; default {DEFAULT_COMMAND_TIMEOUT:g})",
    )
    g.add_argument(
        "--approval-timeout",
        default=d,
        metavar="SECONDS",
        help="agent mode: an approval question nobody answers within this long is decided "
        "by the approval setting (deny) (env LINGMA_APPROVAL_TIMEOUT; default "
        f"{DEFAULT_APPROVAL_TIMEOUT:g})",
    )
    g.add_argument(
        "--checkpoint-max-file-mb",
        default=d,
        metavar="MB",
        help="agent mode: a changed file larger than this is listed but its contents are not "
        "kept, so it is not shown as a diff nor reverted (env LINGMA_CHECKPOINT_MAX_FILE_MB; "
        f"default {DEFAULT_CHECKPOINT_MAX_FILE_MB:g})",
    )
    g.add_argument(
        "--cli-session-timeout",
        default=d,
        metavar="SECONDS",
        help="CLI backend: how long opening a session may take (the CLI scans the workspace "
        "first) (env LINGMA_CLI_SESSION_TIMEOUT; default "
        f"{DEFAULT_CLI_SESSION_TIMEOUT:g})",
    )
    g.add_argument(
        "--sandbox",
        default=d,
        choices=SANDBOX_MODES,
        help="agent mode: what commands Lingma runs, and the CLI backend's whole process, may "
        "write: workspace-write (the workspace, less .git, and a private temporary folder), "
        "read-only, or off (env LINGMA_SANDBOX; default workspace-write where this machine "
        "can enforce it; where it cannot, commands are refused unless run= is set)",
    )
    g.add_argument(
        "--sandbox-network",
        default=d,
        choices=("on", "off"),
        help="agent mode: whether commands may use the network (env LINGMA_SANDBOX_NETWORK; "
        "default off; the CLI backend's own process keeps its network)",
    )
    g.add_argument(
        "--command-env",
        default=d,
        metavar="NAME,...",
        help="agent mode: environment variables passed on to commands besides PATH, HOME, "
        "USER, LOGNAME, SHELL, LANG, LC_*, TERM and TZ (env LINGMA_COMMAND_ENV)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lingma-mcp",
        description="Lingma (Tongyi Lingma) as an MCP server. Without a command it serves "
        "MCP over stdio, for an MCP host to start.",
    )
    parser.add_argument("--version", action="version", version=f"lingma-mcp {__version__}")
    _add_options(parser, sub=False)
    subs = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = subs.add_parser("serve", help="serve MCP over stdio (the default)")
    _add_options(p, sub=True)
    p = subs.add_parser(
        "doctor", help="check each step (binary, start-up, login, models); exit 0 when all is well"
    )
    _add_options(p, sub=True)
    p = subs.add_parser("ask", help="ask one question; the answer streams to stdout")
    p.add_argument("prompt", help="the question")
    p.add_argument("--session-id", help="continue the conversation this id names")
    p.add_argument("--timeout-s", type=float, help="seconds for the whole answer")
    _add_options(p, sub=True)
    p = subs.add_parser(
        "demo", help="a tour of the whole MCP path against the simulator (no Lingma needed)"
    )
    _add_options(p, sub=True)
    return parser


def _truthy(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


def _number(name: str, value: str, *, integer: bool = False) -> Any:
    try:
        number = int(value) if integer else float(value)
    except ValueError:
        raise UsageError(f"{name} must be a number, not {value!r}") from None
    if number <= 0:
        raise UsageError(f"{name} must be positive, not {value!r}")
    return number


def _one_of(name: str, value: Any, choices: tuple[str, ...]) -> str:
    """``value`` as the one of ``choices`` it names, in any case."""
    for choice in choices:
        if str(value).strip().lower() == choice.lower():
            return choice
    raise UsageError(f"{name} must be one of {', '.join(choices)}, not {value!r}")


# The options that are one of a few words, and those that are a positive number (and
# whether a whole one); the rest need more than that and are read one by one.
CHOICES = {
    "mode": MODES,
    "log_level": LOG_LEVELS,
    "backend": BACKENDS,
    "sandbox": SANDBOX_MODES,
}
POSITIVE = {
    "startup_timeout": False,
    "request_timeout": False,
    "max_prompt_chars": True,
    "command_timeout": False,
    "approval_timeout": False,
    "checkpoint_max_file_mb": False,
    "cli_session_timeout": False,
}


def settings_from(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> Settings:
    """Flags win over the environment, the environment over the defaults."""
    env = os.environ if env is None else env

    def pick(dest: str) -> Any:
        value = getattr(args, dest, None)
        if value is not None and value is not False:
            return value, f"--{dest.replace('_', '-')}"
        raw = env.get(ENV_VARS[dest])
        if raw is not None and raw.strip() != "":
            return raw.strip(), ENV_VARS[dest]
        return None, None

    settings = Settings()
    # Paths are made absolute here, once: Lingma and the simulator run in other folders.
    value, _ = pick("lingma_bin")
    if value:
        settings.lingma_bin = str(absolute_path(value))
    value, name = pick("lingma_port")
    if value is not None:
        port = _number(name, str(value), integer=True)
        if port > 65535:
            raise UsageError(f"{name} must be a TCP port (1-65535), not {value!r}")
        settings.lingma_port = port
    value, _ = pick("work_dir")
    if value:
        settings.work_dir = absolute_path(value)
    value, _ = pick("workspace")
    if value:
        settings.workspace = absolute_path(value)
        settings.workspace_explicit = True
    value, _ = pick("model")
    if value:
        settings.model = str(value)
    value, _ = pick("reasoning_effort")
    if value:
        settings.reasoning_effort = str(value).strip()
    for dest, choices in CHOICES.items():
        value, name = pick(dest)
        if value:
            setattr(settings, dest, _one_of(name, value, choices))
    for dest, integer in POSITIVE.items():
        value, name = pick(dest)
        if value is not None:
            setattr(settings, dest, _number(name, str(value), integer=integer))
    value, name = pick("detach_after")
    if value is not None:
        # 0 is allowed here (never detach), unlike the other durations.
        try:
            never = float(str(value)) == 0
        except ValueError:
            never = False  # _number says what is wrong with it
        settings.detach_after = 0.0 if never else _number(name, str(value))
    value, name = pick("max_result_chars")
    if value is not None:
        chars = _number(name, str(value), integer=True)
        if chars < MIN_MAX_RESULT_CHARS:
            raise UsageError(f"{name} must be at least {MIN_MAX_RESULT_CHARS}, not {value!r}")
        settings.max_result_chars = chars
    value, name = pick("approval")
    if value is not None:
        from ..workspace.policy import parse_policy

        try:
            parse_policy(str(value))
        except ValueError as exc:
            raise UsageError(f"{name}: {exc}") from None
        settings.approval = str(value)
    value, _ = pick("cli_bin")
    if value:
        settings.cli_bin = absolute_program(str(value))
    value, name = pick("sandbox_network")
    if value:
        network = str(value).strip().lower()
        if network not in ("on", "off"):
            raise UsageError(f"{name} must be on or off, not {value!r}")
        settings.sandbox_network = network == "on"
    value, name = pick("command_env")
    if value:
        from ..workspace.command_env import parse_names

        try:
            settings.command_env = parse_names(str(value))
        except ValueError as exc:
            raise UsageError(f"{name}: {exc}") from None
    flag = getattr(args, "simulate", None)
    settings.simulate = bool(flag) or _truthy(env.get(ENV_VARS["simulate"], ""))
    return settings


def configure_logging(level: str) -> None:
    """Everything to stderr; stdout is MCP's (serve) or the answer's (ask)."""
    from ..redact import SecretFilter

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
    )
    handler.addFilter(SecretFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # websockets' DEBUG lines dump frame excerpts; an auth/status reply's excerpt can end in
    # a token, so frames are never logged whatever the level (the RPC core logs methods).
    logging.getLogger("websockets").setLevel(max(logging.INFO, root.level))


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = settings_from(args)
    except UsageError as exc:
        parser.error(str(exc))
    configure_logging(settings.log_level)
    command = args.command or "serve"
    if command == "serve":
        if args.command is None and sys.stdin.isatty():
            sys.stderr.write(TTY_HINT)
        return _serve(settings)
    if command == "doctor":
        from .doctor import run_doctor

        return run_doctor(settings)
    if command == "ask":
        from .terminal_ask import run_ask

        return run_ask(settings, args.prompt, session_id=args.session_id, timeout_s=args.timeout_s)
    if command == "demo":
        from .demo import run_demo

        return run_demo(settings)
    parser.error(f"unknown command {command!r}")
    return 2


def _serve(settings: Settings) -> int:
    import anyio

    from ..server.app import build_app, serve_stdio

    log.info(
        "lingma-mcp %s serving stdio (simulate=%s, workspace=%s)",
        __version__,
        settings.simulate,
        settings.workspace,
    )
    app = build_app(settings)
    try:
        anyio.run(serve_stdio, app)
    except KeyboardInterrupt:  # pragma: no cover - signals are handled inside on POSIX
        pass
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
