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
import os
import shlex
import stat
from pathlib import Path
from typing import Any

from . import diffs
from .errors import WorkspaceError
from .files import (
    READ_LIMIT,
    FileText,
    atomic_write,
    encode_text,
    make_parents,
    read_for_change,
    read_text_file,
    remove_file,
)
from .gate import ApprovalGate
from .journal import CallRecord
from .paths import final_is_symlink, refuse_special, relative_to_root, resolve_path
from .policy import ACTIONS
from .problems import check_text, has_check
from .terminals import COMMAND_TIMEOUT, OUTPUT_LIMIT, TerminalOutput, Terminals, shell_argv


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


class WorkspaceHost:
    """File and terminal work for one call, confined to ``root``.

    Args:
        root: the call's workspace (checked with :func:`check_workspace` by the caller).
        gate: the call's approval gate.
        recorder: the call's record in the change journal (``None``: changes are listed
            but not kept for a revert).
        command_timeout: seconds after which a command's process group is killed.
        output_limit: bytes of each command's output kept (the last ones).
    """

    def __init__(
        self,
        root: Path,
        gate: ApprovalGate,
        recorder: CallRecord | None = None,
        *,
        command_timeout: float = COMMAND_TIMEOUT,
        output_limit: int = OUTPUT_LIMIT,
    ) -> None:
        resolved = Path(os.path.realpath(root))
        if not resolved.is_dir():
            raise WorkspaceError(f"the workspace {root} does not exist or is not a folder")
        self._root = resolved
        self.gate = gate
        self._recorder: CallRecord | _LocalChanges = (
            recorder if recorder is not None else _LocalChanges()
        )
        self._terminals = Terminals(command_timeout=command_timeout, output_limit=output_limit)
        self._lock = asyncio.Lock()  # one change (and one question to the person) at a time
        self._authorized: set[tuple[str, str]] = set()
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

    # -- approvals ---------------------------------------------------------------------

    async def authorize(
        self, action: str, tool: str, target: str, preview: str | None = None
    ) -> bool:
        """Ask the gate about an action announced before it happens (a PENDING tool call,
        an ACP permission request). An allowed ``(action, target)`` is remembered, so the
        operation that follows on that target does not ask a second time.
        """
        if action not in ACTIONS:
            raise ValueError(f"unknown class of action {action!r}; known: {', '.join(ACTIONS)}")
        key = self._target_key(action, target)
        allowed = await self.gate.decide(action, tool, key, preview)
        if allowed:
            self._authorized.add((action, key))
        return allowed

    def _target_key(self, action: str, target: str) -> str:
        if action == "run":
            return target.strip()
        try:
            return relative_to_root(resolve_path(target, self._root), self._root)
        except WorkspaceError:
            return target  # the operation itself will be refused with the reason

    async def _allow(self, action: str, tool: str, target: str, preview: str | None = None) -> None:
        if self._closed:
            raise WorkspaceError("this call has ended; nothing more can be done in its workspace")
        if (action, target) in self._authorized:
            self._authorized.discard((action, target))
            return
        await self.gate.require(action, tool, target, preview)

    def _resolve(self, raw: str) -> tuple[Path, str]:
        path = resolve_path(raw, self._root)
        return path, relative_to_root(path, self._root)

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
        resolved, rel = self._resolve(path)
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

    async def write_text(self, path: str, text: str, *, tool: str = "write_text") -> None:
        """Create or replace a file with ``text`` (through the gate, into the journal)."""
        async with self._lock:
            resolved, rel = self._resolve(path)
            refuse_special(path, resolved)
            old = await asyncio.to_thread(read_for_change, resolved, path)
            data = encode_text(text, old, path)
            if old == data:
                return  # nothing would change: no question, no record
            await self._allow("write", tool, rel, diffs.preview(rel, old, data))
            # The person may have taken a while: what is replaced is what is there now.
            old = await asyncio.to_thread(read_for_change, resolved, path)
            data = encode_text(text, old, path)
            await asyncio.to_thread(self._write, resolved, rel, old, data)
            action = "created" if old is None else "modified"
            added, removed = diffs.count_lines(old, data)
            self.gate.note(f"{action} {rel} (+{added} -{removed})")

    def _write(self, resolved: Path, rel: str, old: bytes | None, data: bytes) -> None:
        like = os.stat(resolved) if old is not None else None
        made = make_parents(resolved, self._root)
        undo = self._recorder.record(
            rel,
            old,
            data,
            mode_before=stat.S_IMODE(like.st_mode) if like is not None else None,
            made_dirs=[relative_to_root(d, self._root) for d in made],
        )
        try:
            atomic_write(resolved, data, like=like)
        except BaseException:
            undo()
            raise

    async def delete(self, path: str, *, tool: str = "delete") -> None:
        """Delete a file (through the gate, into the journal)."""
        async with self._lock:
            resolved, rel = self._resolve(path)
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
            await self._allow("delete", tool, rel, f"{rel} ({lines} lines) would be deleted")
            old = await asyncio.to_thread(read_for_change, resolved, path)
            if old is None:
                raise WorkspaceError(f"{path} does not exist")
            await asyncio.to_thread(self._delete, resolved, rel, path, old)
            self.gate.note(f"deleted {rel} (-{len(old.splitlines())})")

    def _delete(self, resolved: Path, rel: str, raw: str, old: bytes) -> None:
        mode = stat.S_IMODE(os.stat(resolved).st_mode)
        undo = self._recorder.record(rel, old, None, mode_before=mode)
        try:
            remove_file(resolved, raw)
        except BaseException:
            undo()
            raise

    async def save(self, path: str) -> str:
        """Nothing to save outside an IDE (every change is already on disk): says so."""
        _, rel = self._resolve(path)
        return f"{rel} is saved: changes made here are written to disk at once"

    async def problems(
        self, paths: list[str], *, tool: str = "get_problems"
    ) -> list[dict[str, Any]]:
        """Syntax problems of the files (Python, JSON, TOML, YAML when a parser is at hand).

        Files without a check, missing, binary, or too large to read whole give nothing.
        """
        resolved = [self._resolve(p) for p in paths]
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
    ) -> str:
        """Run a command in the workspace (or ``cwd`` inside it); returns its terminal id.

        Without ``args`` the command is a shell command line; with them, ``command`` is the
        program. With ``background`` false this returns once the command has ended (or was
        killed at the time limit).
        """
        if not command or not command.strip():
            raise WorkspaceError("the command is empty")
        if "\x00" in command or any("\x00" in a for a in args or []):
            raise WorkspaceError("the command contains a NUL byte")
        folder = self._root
        if cwd is not None:
            folder, _ = self._resolve(cwd)
            if not folder.is_dir():
                raise WorkspaceError(f"the working folder {cwd} is not a folder")
        display = shlex.join([command, *args]) if args else command.strip()
        await self._allow("run", tool, display)
        argv = [command, *args] if args else shell_argv(command)
        terminal_id = await self._terminals.start(
            argv, cwd=folder, env=env, output_limit=output_byte_limit, display=display
        )
        self.gate.note(f"running {display}")
        if not background:
            await self._terminals.wait(terminal_id)
        return terminal_id

    async def terminal_output(self, terminal_id: str) -> TerminalOutput:
        """The command's output so far, whether it still runs, and its exit.

        Not gated: the output belongs to a command this call was already allowed to run.
        """
        return self._terminals.output(terminal_id)

    async def wait_for_exit(self, terminal_id: str) -> int | None:
        """Wait for the command to end; its exit code (``None`` when killed by a signal)."""
        return (await self._terminals.wait(terminal_id)).exit_code

    async def kill_terminal(self, terminal_id: str) -> None:
        """Kill the command's whole process group; its output stays readable."""
        self._terminals.kill(terminal_id)

    async def release_terminal(self, terminal_id: str) -> None:
        """Kill the command if it still runs and forget it."""
        self._terminals.release(terminal_id)

    def terminal_pid(self, terminal_id: str) -> int:
        """The command's pid, which is also its process group id."""
        return self._terminals.pid(terminal_id)

    async def close(self) -> None:
        """End the call: kill every command it started (whole groups). Idempotent."""
        self._closed = True
        await self._terminals.close()
