"""The workspace host: file and terminal work inside one folder, for one call.

It speaks plain data (paths, texts, commands) rather than any agent's dialect, so the
plugin-dialect adapter (``lingma_mcp.lingma.ide_tools``) and the ACP backend's ``fs/*`` and
``terminal/*`` handlers both sit on it. Every action passes, in order: confinement (the
path must resolve inside the workspace), the approval gate, the change journal (before the
change is made), then the change itself, done atomically.

Failures raise :class:`WorkspaceError` with a message for the agent; denials raise its
subclass :class:`ApprovalDenied`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import shlex
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import diffs
from .beneath import Beneath
from .command_env import refused_env_names
from .confine import GIT_FOLDER, Confinement, confine
from .files import (
    READ_LIMIT,
    FileText,
    encode_text,
    read_for_change,
    read_text_file,
)
from .gate import BY_POLICY, UNKNOWN_TARGET_WARNING, ApprovalGate, visible
from .journal import CallRecord
from .paths import final_is_symlink, refuse_special
from .policy import ACTIONS
from .problems import check_text, has_check
from .sandbox import SandboxSpec
from .terminals import COMMAND_TIMEOUT, OUTPUT_LIMIT, TerminalOutput, Terminals, shell_argv
from .workspace_errors import ApprovalDenied, WorkspaceError


class _LocalChanges:
    """Stands in for the journal when a call has none: summaries only, in memory."""

    def __init__(self) -> None:
        self._first: dict[str, bytes | None] = {}
        self._last: dict[str, bytes | None] = {}

    def record(self, path: str, before: bytes | None, after: bytes | None, **_: Any) -> Any:
        self._first.setdefault(path, before)
        self._last[path] = after
        return lambda: None

    def changes(self) -> list[dict[str, Any]]:
        out = []
        for path, before in self._first.items():
            after = self._last[path]
            if before is None and after is None:
                continue
            added, removed = diffs.count_lines(before, after)
            action = "created" if before is None else "deleted" if after is None else "modified"
            out.append(
                {"path": path, "action": action, "lines_added": added, "lines_removed": removed}
            )
        return out


log = logging.getLogger("lingma_mcp.workspace.host")


def _missing_folders(ws: Beneath, rel: str) -> list[str]:
    """The folders above ``rel`` that a write would create, top first (relative)."""
    parts = rel.split("/")[:-1]
    missing: list[str] = []
    for end in range(1, len(parts) + 1):
        folder = "/".join(parts[:end])
        if missing or ws.lstat(folder) is None:
            missing.append(folder)
    return missing


def digest(content: str | bytes | None) -> str:
    """What an approval is bound to: the exact content of the action (a file's new text,
    a command with its folder and environment). ``None`` (nothing to show) is its own value."""
    if content is None:
        return "-"
    data = content if isinstance(content, bytes) else content.encode("utf-8", "surrogatepass")
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True, slots=True)
class _Pass:
    """One approval given ahead of its action (a PENDING tool call, an ACP permission):
    it covers that tool call, that action on that target, with that content, once."""

    call_id: str | None
    action: str
    target: str
    content: str  # digest()

    def covers(self, call_id: str | None, action: str, target: str, content: str) -> bool:
        if (self.action, self.target, self.content) != (action, target, content):
            return False
        # An operation that names its tool call must be that call's; one that names none
        # (an ACP fs/write_text_file) may use a pass whose content is exactly its own.
        return call_id is None or self.call_id is None or call_id == self.call_id


class WorkspaceHost:
    """File and terminal work for one call, confined to ``root``.

    Args:
        root: the call's workspace (checked with :func:`check_workspace` by the caller).
        gate: the call's approval gate.
        recorder: the call's record in the change journal (``None``: changes are listed
            but not kept for a revert).
        command_timeout: seconds after which a command's process group is killed.
        output_limit: bytes of each command's output kept (the last ones).
        guarded: folders inside the workspace, beyond every ``.git``, that a change is
            always asked about (the lingma-mcp work dir, should it lie there).
        sandbox: what commands may write and reach (``sandbox.command_spec``); ``None``:
            unconfined (tests, and ``--sandbox off``).
        passthrough_env: environment names the person passes on to commands besides the
            allowlist (``--command-env``).
        run_note: added to a command's refusal when ``run=deny`` came from the missing
            sandbox (``Settings.run_refusal_note``).
        on_ran: told the command line of each command once it has ended (the change
            record attributes what changed meanwhile to it).
    """

    def __init__(
        self,
        root: Path,
        gate: ApprovalGate,
        recorder: CallRecord | None = None,
        *,
        command_timeout: float = COMMAND_TIMEOUT,
        output_limit: int = OUTPUT_LIMIT,
        guarded: Sequence[Path] = (),
        sandbox: SandboxSpec | None = None,
        passthrough_env: Sequence[str] = (),
        run_note: str | None = None,
        on_ran: Callable[[str], None] | None = None,
    ) -> None:
        resolved = Path(os.path.realpath(root))
        if not resolved.is_dir():
            raise WorkspaceError(f"the workspace {root} does not exist or is not a folder")
        self._root = resolved
        self.gate = gate
        self._recorder: CallRecord | _LocalChanges = (
            recorder if recorder is not None else _LocalChanges()
        )
        self._terminals = Terminals(
            command_timeout=command_timeout,
            output_limit=output_limit,
            sandbox=sandbox,
            passthrough_env=passthrough_env,
        )
        self._run_note = run_note
        self._on_ran = on_ran
        self._displays: dict[str, str] = {}  # running commands, for the change record
        self._lock = asyncio.Lock()  # one change at a time
        self._guarded = tuple(Path(os.path.realpath(g)) for g in guarded)
        self._passes: list[_Pass] = []
        self._closed = False

    # -- properties --------------------------------------------------------------------

    @property
    def root(self) -> Path:
        return self._root

    @property
    def command_timeout(self) -> float:
        return self._terminals.command_timeout

    @property
    def approvals(self) -> list[dict[str, str]]:
        """``[{tool, target, decision, by}]``: every decision of this call so far."""
        return [r.as_dict() for r in self.gate.records]

    @property
    def changes(self) -> list[dict[str, Any]]:
        """``[{path, action, lines_added, lines_removed}]``: every file this call changed."""
        return self._recorder.changes()

    def record_into(self, recorder: Any) -> None:
        """Record hosted writes into ``recorder`` from now on (the call's record of
        changes, opened once the call starts: ``record(path, before, after, ..., by)``)."""
        self._recorder = recorder

    # -- confinement and approvals -----------------------------------------------------

    def confine(self, action: str, tool: str, raws: Sequence[str]) -> Confinement:
        """The confinement decision for an action's paths; refuses (recorded, nobody asked)
        when any lies outside the workspace.

        Raises:
            OutsideWorkspace: a target is outside (or cannot be resolved).
        """
        decision = confine(raws, self._root, guarded=self._guarded)
        if decision.outside:
            first = decision.outside[0]
            self.gate.refuse_outside(action, tool, first.shown, first.reason)
        return decision

    @staticmethod
    def _warning(action: str, decision: Confinement | None) -> str | None:
        """Why the setting alone may not allow this change, if it may not."""
        if action == "read":
            return None
        if decision is not None and decision.unknown:
            return UNKNOWN_TARGET_WARNING
        if decision is not None and decision.protected:
            target = decision.protected[0]
            where = (
                "a .git folder: a change there can make git run commands the next time you use it"
                if target.protected == GIT_FOLDER
                else "lingma-mcp's own work dir"
            )
            return f"{target.shown} is inside {where}."
        return None

    async def authorize(
        self,
        action: str,
        tool: str,
        targets: str | Sequence[str] | None,
        preview: str | None = None,
        *,
        command: str | None = None,
        call_id: str | None = None,
        content: str | bytes | None = None,
    ) -> bool:
        """Decide an action announced before it happens (a PENDING tool call of Lingma's
        own, an ACP permission request), through the same confinement and gate as the
        hosted tools.

        Args:
            targets: every path the action names (for ``run``: its folder, if given); all
                must be inside the workspace.
            command: for ``run``, the command line as it will run (shown, not confined:
                what a command may touch is the sandbox's to enforce).
            call_id: the tool call this approval is for.
            content: what the approval is bound to (the new text, the command and folder).

        An allowed action leaves a pass for exactly that tool call, action, target and
        content: the operation that follows, if it comes through this host, is not asked a
        second time; anything different is.
        """
        if action not in ACTIONS:
            raise ValueError(f"unknown class of action {action!r}; known: {', '.join(ACTIONS)}")
        raws = [targets] if isinstance(targets, str) else list(targets or [])
        raws = [r for r in raws if isinstance(r, str) and r.strip()]
        try:
            if action == "run":
                decision = self.confine(action, tool, raws) if raws else None
                named = isinstance(command, str) and bool(command.strip())
                shown = command.strip() if named and command else "an unnamed command"
                warning = self._warning(action, decision) if named else UNKNOWN_TARGET_WARNING
            else:
                decision = self.confine(action, tool, raws)
                shown = decision.shown or "an unnamed file"
                warning = self._warning(action, decision)
            await self._allow(action, tool, shown, preview, warning=warning)
        except WorkspaceError:  # refused or denied: recorded by the gate
            return False
        self._passes.append(_Pass(call_id or None, action, shown, digest(content)))
        return True

    async def _allow(
        self,
        action: str,
        tool: str,
        target: str,
        preview: str | None = None,
        *,
        warning: str | None = None,
        call_id: str | None = None,
        content: str | None = None,
    ) -> None:
        """Let an action through (a pass that covers it, or the gate), then check that the
        call is still live: an answer that came after the call ended changes nothing."""
        self._check_live()
        key = content if content is not None else digest(None)
        for index, given in enumerate(self._passes):
            if given.covers(call_id, action, target, key):
                del self._passes[index]
                return
        await self.gate.require(action, tool, target, preview, warning=warning)
        self._check_live()

    def _check_live(self) -> None:
        if self._closed or not self.gate.live:
            raise WorkspaceError("this call has ended; nothing more can be done in its workspace")

    def _resolve(self, action: str, tool: str, raw: str) -> tuple[Path, str, str | None]:
        """The one path of a hosted operation: resolved, shown, and why it is protected."""
        decision = self.confine(action, tool, [raw])
        target = decision.targets[0]
        assert target.path is not None
        return target.path, target.shown, self._warning(action, decision)

    # -- files -------------------------------------------------------------------------

    async def read_file(
        self,
        path: str,
        line: int | None = None,
        limit: int | None = None,
        *,
        tool: str = "read_text",
    ) -> FileText:
        """A text file's content (cut at 1 MiB, saying so through ``truncated``)."""
        resolved, rel, _ = self._resolve("read", tool, path)
        refuse_special(path, resolved)
        await self._allow("read", tool, rel)
        return await asyncio.to_thread(
            read_text_file, resolved, path, line=line, limit=limit, max_bytes=READ_LIMIT
        )

    async def read_text(
        self,
        path: str,
        line: int | None = None,
        limit: int | None = None,
        *,
        tool: str = "read_text",
    ) -> str:
        """A text file's content; when cut at 1 MiB, a last line says so."""
        return (await self.read_file(path, line, limit, tool=tool)).with_note()

    async def write_text(
        self, path: str, text: str, *, tool: str = "write_text", call_id: str | None = None
    ) -> None:
        """Create or replace a file with ``text`` (through the gate, into the journal).

        ``call_id``: the tool call this write belongs to, so an approval given for that call
        with exactly this text (a PENDING tool call) covers it.
        """
        async with self._lock:
            resolved, rel, warning = self._resolve("write", tool, path)
            refuse_special(path, resolved)
            old = await asyncio.to_thread(read_for_change, resolved, path)
            data = encode_text(text, old, path)
            if old == data:
                return  # nothing would change: no question, no record
            await self._allow(
                "write",
                tool,
                rel,
                diffs.preview(rel, old, data),
                warning=warning,
                call_id=call_id,
                content=digest(text),
            )
            # The person may have taken a while: the path is decided again (a folder swapped
            # for a link meanwhile is refused) and what is replaced is what is there now.
            resolved = self._same_place("write", tool, path, resolved)
            old = await asyncio.to_thread(read_for_change, resolved, path)
            data = encode_text(text, old, path)
            self._check_live()
            await asyncio.to_thread(self._write, resolved, rel, old, data, tool)
            action = "created" if old is None else "modified"
            added, removed = diffs.count_lines(old, data)
            self.gate.note(f"{action} {rel} (+{added} -{removed})")

    def _same_place(self, action: str, tool: str, raw: str, before: Path) -> Path:
        """The path decided again after a question; refused if it now leads elsewhere."""
        now, _, _ = self._resolve(action, tool, raw)
        if now != before:
            self.gate.refuse_outside(
                action,
                tool,
                raw,
                f"{raw} changed while the person was asked (it now leads to {now}); "
                "nothing was written: ask again",
            )
        return now

    def _write(self, resolved: Path, rel: str, old: bytes | None, data: bytes, tool: str) -> None:
        # Runs in a thread that a cancelled tool call cannot stop: the call's end is checked
        # here too, so a write whose call ended while it was queued does not land.
        self._check_live()
        with Beneath(self._root) as ws:
            # Every folder is opened from the workspace's own descriptor without following a
            # link: one swapped in since the path was decided cannot lead the write outside.
            like = ws.lstat(rel) if old is not None else None
            undo = self._recorder.record(
                rel,
                old,
                data,
                mode_before=stat.S_IMODE(like.st_mode) if like is not None else None,
                made_dirs=_missing_folders(ws, rel),
                by=tool,
            )
            try:
                ws.write_bytes(rel, data)
            except BaseException:
                undo()
                raise

    async def delete(self, path: str, *, tool: str = "delete", call_id: str | None = None) -> None:
        """Delete a file (through the gate, into the journal)."""
        async with self._lock:
            resolved, rel, warning = self._resolve("delete", tool, path)
            if final_is_symlink(path, self._root):
                raise WorkspaceError(
                    f"{path} is a symbolic link; deleting through it would delete the file it "
                    "points to, so it is refused: delete the file itself by its own path"
                )
            refuse_special(path, resolved)
            old = await asyncio.to_thread(read_for_change, resolved, path)
            if old is None:
                raise WorkspaceError(f"{path} does not exist")
            lines = len(old.splitlines())
            await self._allow(
                "delete",
                tool,
                rel,
                f"{rel} ({lines} lines) would be deleted",
                warning=warning,
                call_id=call_id,
                content=digest(None),
            )
            resolved = self._same_place("delete", tool, path, resolved)
            old = await asyncio.to_thread(read_for_change, resolved, path)
            if old is None:
                raise WorkspaceError(f"{path} does not exist")
            self._check_live()
            await asyncio.to_thread(self._delete, resolved, rel, path, old, tool)
            self.gate.note(f"deleted {rel} (-{len(old.splitlines())})")

    def _delete(self, resolved: Path, rel: str, raw: str, old: bytes, tool: str) -> None:
        self._check_live()  # as in _write
        with Beneath(self._root) as ws:
            st = ws.lstat(rel)
            if st is None:
                raise WorkspaceError(f"{raw} does not exist")
            undo = self._recorder.record(
                rel, old, None, mode_before=stat.S_IMODE(st.st_mode), by=tool
            )
            try:
                ws.remove_file(rel)
            except BaseException:
                undo()
                raise

    async def save(self, path: str) -> str:
        """Nothing to save outside an IDE (every change is already on disk): says so."""
        _, rel, _ = self._resolve("read", "save_file", path)
        return f"{rel} is saved: changes made here are written to disk at once"

    async def problems(
        self, paths: list[str], *, tool: str = "get_problems"
    ) -> list[dict[str, Any]]:
        """Syntax problems of the files (Python, JSON, TOML, YAML when a parser is at hand).

        Files without a check, missing, binary, or too large to read whole give nothing.
        """
        resolved = [self._resolve("read", tool, p)[:2] for p in paths]
        for raw, (path, _) in zip(paths, resolved, strict=True):
            refuse_special(raw, path)
        await self._allow("read", tool, ", ".join(rel for _, rel in resolved) or "(no files)")
        problems: list[dict[str, Any]] = []
        for raw, (path, rel) in zip(paths, resolved, strict=True):
            if not has_check(path.suffix) or not path.is_file():
                continue
            try:
                text = await asyncio.to_thread(read_text_file, path, raw)
            except WorkspaceError:
                continue
            if not text.truncated:
                problems.extend(check_text(rel, path.suffix, text.content))
        return problems

    # -- terminals ---------------------------------------------------------------------

    async def create_terminal(
        self,
        command: str,
        args: list[str] | None = None,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        output_byte_limit: int | None = None,
        background: bool = True,
        *,
        tool: str = "create_terminal",
        call_id: str | None = None,
    ) -> str:
        """Run a command in the workspace (or ``cwd`` inside it); returns its terminal id.

        Without ``args`` the command is a shell command line; with them, ``command`` is the
        program. With ``background`` false this returns once the command has ended (or was
        killed at the time limit). The question shows everything that decides what runs:
        the command with its arguments, its folder, and the environment the agent set.
        """
        if not isinstance(command, str) or not command.strip():
            raise WorkspaceError("the command is empty; say which command to run")
        args = list(args or [])
        if "\x00" in command or any("\x00" in str(a) for a in args):
            raise WorkspaceError("the command contains a NUL byte")
        folder = self._root
        warning = None
        if cwd is not None:
            folder, _, warning = self._resolve("run", tool, cwd)
            if not folder.is_dir():
                raise WorkspaceError(f"the working folder {cwd} is not a folder")
        display = shlex.join([command, *map(str, args)]) if args else command.strip()
        refused = refused_env_names(env or {})
        if refused:
            self.gate.refuse_outside(
                "run",
                tool,
                display,
                f"{display} was not run: it asked to set {', '.join(refused)}, which change "
                "what a command runs (another program, code loaded first) behind what the "
                "person would approve; run it without them",
            )
        details = [f"command: {display}", f"folder: {folder}"]
        if env:
            details.append("environment: " + ", ".join(f"{k}={v}" for k, v in env.items()))
        try:
            await self._allow(
                "run",
                tool,
                display,
                "\n".join(details),
                warning=warning,
                call_id=call_id,
                content=digest("\n".join(details)),
            )
        except ApprovalDenied as exc:
            if exc.by == BY_POLICY and self._run_note:
                raise ApprovalDenied(
                    f"{exc} {self._run_note}",
                    action=exc.action,
                    tool=exc.tool,
                    target=exc.target,
                    by=exc.by,
                ) from None
            raise
        argv = [command, *map(str, args)] if args else shell_argv(command)
        self._check_live()
        terminal_id = await self._terminals.start(
            argv, cwd=folder, env=env, output_limit=output_byte_limit, display=display
        )
        self.gate.note(f"running {visible(display, 200)}")
        self._displays[terminal_id] = display
        if not background:
            await self._terminals.wait(terminal_id)
            self._ended(terminal_id)
        return terminal_id

    def _ended(self, terminal_id: str) -> None:
        """A command has run its course: the change record may attribute to it (once)."""
        display = self._displays.pop(terminal_id, None)
        if display is not None and self._on_ran is not None:
            try:
                self._on_ran(display)
            except Exception:
                log.exception("the command's end could not be recorded")

    async def terminal_output(self, terminal_id: str) -> TerminalOutput:
        """The command's output so far, whether it still runs, and its exit.

        Not gated: the output belongs to a command this call was already allowed to run.
        """
        return self._terminals.output(terminal_id)

    async def wait_for_exit(self, terminal_id: str) -> int | None:
        """Wait for the command to end; its exit code (``None`` when killed by a signal)."""
        code = (await self._terminals.wait(terminal_id)).exit_code
        self._ended(terminal_id)
        return code

    async def kill_terminal(self, terminal_id: str) -> None:
        """Kill the command's whole process group; its output stays readable."""
        self._terminals.kill(terminal_id)

    async def release_terminal(self, terminal_id: str) -> None:
        """Kill the command if it still runs and forget it."""
        self._terminals.release(terminal_id)
        self._ended(terminal_id)

    def terminal_pid(self, terminal_id: str) -> int:
        """The command's pid, which is also its process group id."""
        return self._terminals.pid(terminal_id)

    async def close(self) -> None:
        """End the call: withdraw open questions, kill every command it started (whole
        groups). Idempotent."""
        self._closed = True
        self.gate.close()
        self._passes.clear()
        await self._terminals.close()
        for terminal_id in list(self._displays):
            self._ended(terminal_id)  # what a command left running changed is its own
