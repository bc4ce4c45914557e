"""``lingma-sim``: a stand-in for the Lingma binary, invoked exactly as the binary is.

    lingma-sim start --workDir DIR [--socketPort N]   # plus the binary's other flags, ignored
    lingma-sim version
    lingma-sim status -o json --workDir DIR
    lingma-sim acp [--acp]                            # like `qoderclicn --acp`; see its --help

Behaviour and faults are chosen by environment variables (the bridge passes its
environment to the child) or by the flags of ``start`` below, which win:

    LINGMA_SIM_INFO_FORMAT=two|three|json  .info as 2 lines, 3 lines, or .info.json
    LINGMA_SIM_INFO_TORN=1         write .info port line, pause, then pid (not atomic)
    LINGMA_SIM_NO_INFO=1           never write .info (keeps running)
    LINGMA_SIM_START_DELAY=S       wait S seconds before listening and writing .info
    LINGMA_SIM_EXIT_AT_START=N     print an error to stderr and exit N before .info
    LINGMA_SIM_ANSWER_SIZE=N       answers of exactly N characters
    LINGMA_SIM_CHUNK=N             N characters per chat/answer delta (default 8)
    LINGMA_SIM_DELTAS=N            exactly N deltas per answer, whatever its size
    LINGMA_SIM_DELTA_DELAY=S       S seconds between deltas (default 0)
    LINGMA_SIM_THINK=1             chat/think events for every model
    LINGMA_SIM_STAMP=1             each delta's text is ⟨time.monotonic_ns() at send⟩
    LINGMA_SIM_AUTH=logged_in|logged_out|expired
    LINGMA_SIM_RATE_LIMIT=1        chat/finish statusCode 429, reason error
    LINGMA_SIM_CRASH_AFTER=N       exit hard (code 3) after N deltas of a chat
    LINGMA_SIM_HANG=1              accept chat/ask, then send nothing for it
    LINGMA_SIM_DROP_AFTER=N        drop the WebSocket after N deltas (once per process)
    LINGMA_SIM_MALFORMED=1         malformed frames between good ones
    LINGMA_SIM_TOOL_ASYNC=1        tool/invoke with async: true (outcome via tool/invokeResult)
    LINGMA_SIM_TOOL_TIMEOUT=S      wait S s for a tool/invoke answer or approval (default 30)
    LINGMA_SIM_IGNORE_SIGTERM=1    ignore SIGTERM (a supervisor must SIGKILL)
    LINGMA_SIM_LOG=PATH            one JSON line per message received, flushed
    LINGMA_SIM_SPLIT=0             one frame per text message (default: split and merge)
    LINGMA_SIM_SEED=N              seed of the split points (default 0)
    LINGMA_SIM_WINDOW=N            unanswered requests before stalling (default 64)
    LINGMA_SIM_VERBOSE=1           debug logging on stderr (every reply received)

Files: <workDir>/sessions.json holds the conversations (0600, in a 0700 work dir,
replaced atomically); a damaged one is moved aside as sessions.json.corrupt-<time>.
LINGMA_SIM_LOG is written 0600.

Agent mode is scripted by the prompt: `lingma-sim --help-agent` lists the instructions.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from lingma_mcp.sim.account import USER_TYPE, USERNAME
from lingma_mcp.sim.start_options import (
    AUTH_STATES,
    ENV_OPTIONS,
    INFO_FORMATS,
    SIM_VERSION,
    OptionError,
    build_options,
    parse_option,
)

# Flags of `start` that set an option: flag -> (option name, takes a value).
_START_FLAGS: dict[str, tuple[str, bool]] = {
    "--info-format": ("info_format", True),
    "--info-torn": ("info_torn", False),
    "--no-info": ("no_info", False),
    "--start-delay": ("start_delay", True),
    "--exit-at-start": ("exit_at_start", True),
    "--answer-size": ("answer_size", True),
    "--chunk": ("chunk", True),
    "--deltas": ("deltas", True),
    "--delta-delay": ("delta_delay", True),
    "--think": ("think", False),
    "--stamp": ("stamp", False),
    "--auth": ("auth", True),
    "--rate-limit": ("rate_limit", False),
    "--crash-after": ("crash_after", True),
    "--hang": ("hang", False),
    "--drop-after": ("drop_after", True),
    "--malformed": ("malformed", False),
    "--tool-async": ("tool_async", False),
    "--tool-timeout": ("tool_timeout", True),
    "--ignore-sigterm": ("ignore_sigterm", False),
    "--log": ("log_path", True),
    "--seed": ("seed", True),
    "--window": ("window", True),
    "--verbose": ("verbose", False),
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lingma-sim",
        description="A stand-in for the Lingma binary (plugin dialect over LSP-framed WebSocket).",
        epilog="Environment variables: see `python -m lingma_mcp.sim --help-env`.",
    )
    parser.add_argument("--help-env", action="store_true", help="list the LINGMA_SIM_* variables")
    parser.add_argument(
        "--help-agent", action="store_true", help="list the agent-mode prompt instructions"
    )
    commands = parser.add_subparsers(dest="command")

    start = commands.add_parser("start", help="run the simulator")
    start.add_argument(
        "--workDir", type=Path, required=True, help="folder for .info and sessions.json"
    )
    start.add_argument(
        "--socketPort", type=int, default=0, help="WebSocket port (default: a free one)"
    )
    for ignored in ("--httpPort", "--transportType", "--endpoint", "--copyDataDir"):
        start.add_argument(
            ignored, help="accepted and ignored, as a stand-in for the binary's flag"
        )
    start.add_argument(
        "--no-split", dest="split", action="store_false", default=None, help="= LINGMA_SIM_SPLIT=0"
    )
    for flag, (option, takes_value) in _START_FLAGS.items():
        variable = next(v for v, (name, _) in ENV_OPTIONS.items() if name == option)
        kwargs: dict[str, object] = {"dest": option, "default": None, "help": f"= {variable}"}
        if flag == "--info-format":
            kwargs["choices"] = INFO_FORMATS
        if flag == "--auth":
            kwargs["choices"] = AUTH_STATES
        if takes_value:
            start.add_argument(flag, **kwargs)  # type: ignore[arg-type]
        else:
            start.add_argument(flag, action="store_const", const=True, **kwargs)  # type: ignore[arg-type]

    commands.add_parser("version", help="print the simulator's version")
    status = commands.add_parser("status", help="print the login status")
    status.add_argument("-o", "--output", choices=("json", "text"), default="text")
    status.add_argument("--workDir", type=Path)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["acp"]:  # the ACP stand-in has its own switches and help
        from lingma_mcp.sim.acp import main as acp_main

        return acp_main(argv[1:])
    args = _parser().parse_args(argv)
    if args.help_env:
        print(__doc__)
        return 0
    if args.help_agent:
        from lingma_mcp.sim.instructions import HELP

        print(HELP)
        return 0
    if args.command == "version":
        print(SIM_VERSION)
        return 0
    if args.command == "status":
        return _status(args)
    if args.command == "start":
        return _start(args)
    _parser().print_help(sys.stderr)
    return 2


def _start(args: argparse.Namespace) -> int:
    flags: dict[str, object] = {"socket_port": args.socketPort, "split": args.split}
    try:
        for option, takes_value in _START_FLAGS.values():
            raw = getattr(args, option)
            if raw is None:
                continue
            flags[option] = parse_option(option, raw) if takes_value else True
        options = build_options(args.workDir.resolve(), flags=flags)
    except OptionError as exc:
        sys.stderr.write(f"lingma-sim: {exc}\n")
        return 2
    logging.basicConfig(
        level=logging.DEBUG if options.verbose else logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s lingma-sim[%(process)d]: %(message)s",
    )
    if not options.verbose:
        logging.getLogger("websockets").setLevel(logging.WARNING)
    from lingma_mcp.sim.server import run_server  # websockets is only needed to serve

    try:
        return asyncio.run(run_server(options))
    except KeyboardInterrupt:
        return 0


def _status(args: argparse.Namespace) -> int:
    try:
        state = build_options(Path(args.workDir or ".")).auth
    except OptionError as exc:
        sys.stderr.write(f"lingma-sim: {exc}\n")
        return 2
    logged_in = state == "logged_in"
    report = {
        "logged_in": logged_in,
        "username": USERNAME if logged_in else "",
        "user_type": USER_TYPE if logged_in else "",
        "version": SIM_VERSION,
        "status": state,
    }
    if args.output == "json":
        print(json.dumps(report))
    else:
        print("\n".join(f"{key}: {value}" for key, value in report.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
