"""``lingma-sim acp``: a stand-in for ``qoderclicn --acp``, as awkward as the real one.

ACP over stdio, one JSON message a line. Like ``qoderclicn`` 1.1.52 its tools act on
the disk themselves after a ``session/request_permission`` (no ``fs/*``, no
``terminal/*``; ``LINGMA_SIM_ACP_CLIENT_TOOLS=1`` hands them to the client instead), it
numbers its own requests from 0, reads the CLI's ``--fake-responses`` scripts, keeps
conversations for ``session/load`` and ``session/fork`` after a restart, ignores the end
of its input (only a signal ends it), takes its time over SIGTERM and prints chatter on
stdout at exit. See ``lingma-sim acp --help`` for the switches.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from lingma_mcp.sim.acp.model import Response, ScriptError, parse_script
from lingma_mcp.sim.acp.options import HELP_ENV, AcpSimOptions, OptionError, from_env

log = logging.getLogger("lingma_mcp.sim.acp")


def _parser() -> argparse.ArgumentParser:
    return argparse.ArgumentParser(
        prog="lingma-sim acp",
        description="A stand-in for `qoderclicn --acp`: the Agent Client Protocol over stdio.",
        epilog=HELP_ENV,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    parser.add_argument(
        "--acp", action="store_true", help="accepted and ignored, as `qoderclicn --acp`"
    )
    parser.add_argument(
        "--fake-responses",
        metavar="FILE",
        type=Path,
        help="play FILE (the CLI's --fake-responses JSONL) instead of the prompt's instructions",
    )
    args = parser.parse_args(argv)
    try:
        opts = from_env()
        if args.fake_responses is not None:
            opts.script = args.fake_responses
        script = _script(opts.script)
    except OptionError as exc:
        sys.stderr.write(f"lingma-sim acp: {exc}\n")
        return 2
    logging.basicConfig(
        level=logging.DEBUG if opts.verbose else logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s lingma-sim-acp[%(process)d]: %(message)s",
    )
    if opts.exit_at_start is not None:
        sys.stderr.write(f"Error: simulated start-up failure (exit {opts.exit_at_start})\n")
        return opts.exit_at_start
    return asyncio.run(_serve(opts, script))


def _script(path: Path | None) -> list[Response] | None:
    """The scripted model responses, read once at start as the CLI reads its file."""
    if path is None:
        return None
    try:
        return parse_script(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise OptionError(f"cannot read the script {path}: {exc.strerror}") from None
    except ScriptError as exc:
        raise OptionError(f"{path}: {exc}") from None


async def _serve(opts: AcpSimOptions, script: list[Response] | None) -> int:
    from lingma_mcp.sim.acp.agent import AcpSimAgent
    from lingma_mcp.sim.acp.local_tools import kill_running_commands
    from lingma_mcp.sim.acp.wire import Wire

    loop = asyncio.get_running_loop()
    wire = Wire(sys.stdout.buffer, opts.log_path)
    done: asyncio.Future[int] = loop.create_future()

    def on_signal(code: int, delay: float) -> None:
        if delay < 0:
            log.info("ignoring SIGTERM, as asked")
            return
        log.info("signal received; exiting in %g s", delay)
        loop.call_later(delay, lambda: done.done() or done.set_result(code))

    loop.add_signal_handler(signal.SIGTERM, on_signal, 143, opts.sigterm_delay)
    loop.add_signal_handler(signal.SIGINT, on_signal, 130, 0.0)
    if opts.chatter == "always":
        wire.chatter("Qoder CLI CN (simulated) starting")
    if opts.start_delay:
        await asyncio.sleep(opts.start_delay)
    reader = asyncio.StreamReader(limit=64 * 1024 * 1024)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    agent = AcpSimAgent(wire, opts, script)
    serving = asyncio.ensure_future(wire.read_forever(reader, agent.handle))
    code = await done
    serving.cancel()
    kill_running_commands()
    if opts.chatter != "none":
        wire.chatter("Shutting down... goodbye from Qoder CLI CN (simulated)")
    sys.stdout.flush()
    os._exit(code)  # no waiting on the stdin reader thread or pending tasks


def simulator_command() -> list[str]:
    """The command that runs the simulator as the CLI is run (``--acp`` is added by the
    caller, as for the real CLI)."""
    return [sys.executable, "-m", "lingma_mcp.sim", "acp"]
