"""``lingma-mcp doctor``: each step of the path, ✓ or ✗ with the fix.

Steps: find the binary (and, for the CLI, the node it runs with), start it, read the login
(for the CLI, which credential it logs in with and what a token in its environment
means), list the models. Exit code 0 only when every step passed, so scripts and CI can
use it.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from typing import TextIO

import anyio

from .. import __version__
from ..asking.bridge import Bridge
from ..asking.error_texts import error_text, not_logged_in
from ..config import Settings
from ..errors import LingmaError, LingmaNotLoggedIn


def _marks(stream: TextIO) -> tuple[str, str]:
    encoding = getattr(stream, "encoding", None) or "ascii"
    try:
        "✓✗".encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return "OK  ", "FAIL"
    return "✓", "✗"


def run_doctor(settings: Settings, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    return anyio.run(_doctor, settings, out)


async def _doctor(settings: Settings, out: TextIO) -> int:
    ok_mark, bad_mark = _marks(out)
    failures = 0

    def report(ok: bool, step: str, detail: str) -> None:
        nonlocal failures
        failures += 0 if ok else 1
        out.write(f"{ok_mark if ok else bad_mark} {step}: {detail}\n")
        out.flush()

    out.write(f"lingma-mcp {__version__} doctor\n")
    from ..asking.backend_choice import choose

    choice = choose(settings)
    out.write(f"Backend: {choice.kind} ({choice.reason})\n")
    found = _find_programs(settings, choice.kind, report, out)
    if not found:
        out.write("\nFix the step marked above and run `lingma-mcp doctor` again.\n")
        return 1

    bridge = Bridge(settings, audience="terminal")
    bridge.start()
    try:
        try:
            await bridge.client()
        except LingmaError as exc:
            step = "Lingma answers" if settings.lingma_port else f"{_serving(choice.kind)} starts"
            report(False, step, bridge.error_text(exc))
            return 1
        state = bridge.state()
        if choice.kind == "cli":
            report(
                True,
                "Lingma CLI starts",
                f"version {state.version or 'unknown'}, pid {state.pid} (ACP over stdio)",
            )
        elif settings.lingma_port:
            report(
                True,
                "Lingma answers",
                f"version {state.version or 'unknown'} on port {state.port} (attached)",
            )
        else:
            report(
                True,
                "Lingma starts",
                f"version {state.version or 'unknown'}, pid {state.pid}, port {state.port}, "
                f"work dir {state.work_dir}",
            )
        info = await bridge.auth()
        if info.logged_in:
            who = info.user_name or "unknown user"
            extra = f", until {info.expires_at}" if info.expires_at else ""
            report(True, "Logged in", f"as {who}{extra}")
        elif choice.kind == "cli":
            fix = info.problem or (
                f"{info.status}. Run `qoderclicn login` in a terminal (or set "
                "QODERCN_PERSONAL_ACCESS_TOKEN for the server)"
            )
            report(False, "Logged in", f"{fix.rstrip('.')}; then run `lingma-mcp doctor` again.")
        else:
            try:
                url = await bridge.login_url()
                where = f"Open this URL in a browser and log in: {url}"
            except LingmaError:
                where = "Log in once in the Lingma IDE plugin (VS Code or JetBrains)"
            report(
                False,
                "Logged in",
                f"{not_logged_in(info.status)} {where}; then run `lingma-mcp doctor` again.",
            )
        if choice.kind == "cli":
            _credential_notes(out)
        elif settings.reasoning_effort:
            out.write(
                f"- Reasoning effort: --reasoning-effort {settings.reasoning_effort} is left "
                "out: the IDE backend has no such option (the CLI backend has).\n"
            )
        try:
            models = await bridge.model_list()
            count = sum(len(m) for m in models.scenes.values())
            if count:
                report(
                    True,
                    "Models",
                    f"{count} across {', '.join(sorted(models.scenes))}; "
                    f"default {models.default_model or 'chosen by Lingma'}",
                )
            else:
                report(False, "Models", "Lingma lists none; it does so when not logged in.")
        except LingmaNotLoggedIn:
            report(False, "Models", "not listed until Lingma is logged in (see above).")
        except LingmaError as exc:
            report(False, "Models", bridge.error_text(exc))
        _agent_mode(settings, choice.kind, report)
    finally:
        with anyio.move_on_after(15, shield=True):
            await bridge.close()
    if failures:
        out.write(f"\n{failures} step(s) failed; each says how to fix it.\n")
        return 1
    out.write("\nAll is well: add lingma-mcp to your MCP host (see the README).\n")
    return 0


def _credential_notes(out: TextIO) -> None:
    """Which credential the CLI logs in with, and, for a token, what a person should know."""
    from ..asking.backend_choice import cli_credential

    credential, warning = cli_credential()
    out.write(f"- Credential: {credential}\n")
    if warning:
        out.write(f"- Note: {warning}\n")


def _find_binary(settings: Settings, report: Callable[[bool, str, str], None]) -> bool:
    from ..asking.backend_choice import find_ide_for

    if settings.lingma_port:
        report(True, "Lingma binary", f"not needed: attaching to port {settings.lingma_port}")
        return True
    try:
        command = find_ide_for(settings)
    except LingmaError as exc:
        report(False, "Lingma binary", error_text(exc))
        return False
    if command.source == "simulator":
        report(True, "Lingma binary", "the bundled simulator (--simulate)")
    else:
        report(True, "Lingma binary", f"{command.argv[0]} (found by {command.source})")
    return True


def _serving(kind: str) -> str:
    return "Lingma CLI" if kind == "cli" else "Lingma"


def _find_programs(
    settings: Settings, kind: str, report: Callable[[bool, str, str], None], out: TextIO
) -> bool:
    """Check both programs; only the one that serves can fail the run, the other is noted
    with its fix so a person can switch."""
    if kind == "cli":
        found = _find_cli(settings, report)
        _find_binary(settings, _note(out, "IDE binary (not serving)"))
    else:
        found = _find_binary(settings, report)
        if not settings.simulate and not settings.lingma_port:
            _find_cli(settings, _note(out, "Lingma CLI (not serving)"))
    return found


def _agent_mode(settings: Settings, backend: str, report: Callable[[bool, str, str], None]) -> None:
    """What agent mode can promise on this machine: the sandbox and the change record."""
    sandbox = settings.sandbox_report()
    missing = "; ".join(sandbox["not_enforced"])
    if sandbox["enforced"]:
        what = (
            f"{sandbox['mode']} by {sandbox['mechanism']} {sandbox['version']}, network "
            f"{sandbox['network']} for commands, {sandbox['containment']}"
        )
        if backend == "cli":
            what += "; the Lingma CLI runs inside it too"
        report(
            True,
            "Sandbox (agent mode)",
            what + (f"; not enforced here: {missing}" if missing else ""),
        )
    elif sandbox["mode"] == "off":
        report(True, "Sandbox (agent mode)", f"off, as set: {missing}")
    else:
        report(
            False,
            "Sandbox (agent mode)",
            f"none can be enforced here ({missing}); commands are refused "
            "(run=deny). Start with --sandbox off to accept running them unconfined.",
        )
    git = shutil.which("git")
    if git:
        report(True, "Change record (agent mode)", f"git at {git}: every change is recorded")
    else:
        report(
            False,
            "Change record (agent mode)",
            "git is not on PATH: only files written through lingma-mcp's own tools are "
            "recorded, not those changed by commands or by Lingma's own tools; install git",
        )


def _note(out: TextIO, step: str) -> Callable[[bool, str, str], None]:
    def note(ok: bool, _: str, detail: str) -> None:
        out.write(f"- {step}: {detail if ok else 'missing. ' + detail}\n")

    return note


def _find_cli(settings: Settings, report: Callable[[bool, str, str], None]) -> bool:
    from ..asking.backend_choice import find_cli_for, node_beside

    try:
        command = find_cli_for(settings)
        # A Node script with no node on this PATH fails at its first line: say so here.
        node = node_beside(command)
    except LingmaError as exc:
        report(False, "Lingma CLI", error_text(exc))
        return False
    if command.source == "simulator":
        report(True, "Lingma CLI", "the bundled ACP simulator (--simulate --backend cli)")
        return True
    detail = f"{command.argv[0]} (found by {command.source})"
    if node is not None:
        folder = node.split(os.pathsep, 1)[0]
        detail += f"; node is not on PATH, the one in {folder} is used"
    report(True, "Lingma CLI", detail)
    return True
