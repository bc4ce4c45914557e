"""The real CLI's own tools, Read, Edit, Write and Bash, acting on the disk themselves.

This is what ``qoderclicn`` 1.1.52 does (PROTOCOL.md §10.1, ``docs/cli-observed.md``):
no ``fs/*`` and no ``terminal/*`` to the client, whatever it declared. Each tool call is
announced (``tool_call``, pending); Edit, Write, a Read outside the session's folder and
a command that is not read-only first ask (``session/request_permission``, answered by
option kind); then the tool acts and ends ``completed`` or ``failed`` with the CLI's own
words. A command's output arrives as ``_meta.terminal_output`` and ``_meta.terminal_exit``.

Permission modes as the CLI's: ``default`` asks, ``acceptEdits`` lets edits through,
``yolo`` lets everything through, ``dontAsk`` refuses what would ask, ``auto`` asks here
(its classifier is not simulated). "Allow for this session" on an edit switches the
session to ``acceptEdits``; "Always allow" on a command saves a rule in
``<cwd>/.qoder/settings.local.json``, as the CLI does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from lingma_mcp.sim.acp import shapes
from lingma_mcp.sim.acp.model import ToolCall, ToolResult
from lingma_mcp.sim.acp.session import SessionRuntime, TurnCancelled, TurnState
from lingma_mcp.sim.acp.wire import PeerError, Wire

log = logging.getLogger("lingma_mcp.sim.acp")

BASH_TIMEOUT_MS = 120_000
OUTPUT_LIMIT = 30_000
NOTE_CHARS = 200
RULES_FILE = os.path.join(".qoder", "settings.local.json")


@dataclass(frozen=True)
class Outcome:
    """What a tool did: the output the CLI shows, a line for the simulated answer, and
    the structured output ``session/load`` replays (the CLI keeps one for Read and Bash)."""

    ok: bool
    output: str
    note: str
    kept: dict[str, Any] | None = None


class LocalTools:
    """Runs one prompt's tool calls in one session."""

    def __init__(
        self,
        wire: Wire,
        runtime: SessionRuntime,
        turn: TurnState,
        records: list[dict[str, Any]],
        on_mode: Callable[[SessionRuntime], None],
    ) -> None:
        self.wire = wire
        self.runtime = runtime
        self.turn = turn
        self.records = records
        self.on_mode = on_mode

    def update(self, update: dict[str, Any]) -> None:
        self.wire.notify("session/update", {"sessionId": self.runtime.session_id, "update": update})

    async def run(self, calls: tuple[ToolCall, ...]) -> list[ToolResult]:
        """Announce every call of one model response, then run them in order."""
        started = []
        for call in calls:
            call_id = shapes.new_call_id()
            start = shapes.tool_call(call_id, call.name, call.args)
            self.update(start)
            started.append((call_id, call, start))
        results = []
        for call_id, call, start in started:
            runner = _RUNNERS.get(call.name)
            if runner is None:
                failure = shapes.unknown_tool(call.name)
                outcome = Outcome(False, failure, f"{call.name}: unknown")
            else:
                outcome = await runner(self, call_id, call.args)
            if not outcome.ok:
                self.update(shapes.failed(call_id, outcome.output))
            self.records.append(
                {
                    "kind": "tool",
                    "id": call_id,
                    "name": call.name,
                    "title": start["title"],
                    "toolKind": start["kind"],
                    "status": "completed" if outcome.ok else "failed",
                    "input": call.args,
                    "output": outcome.kept or outcome.output,
                    "locations": start.get("locations"),
                }
            )
            results.append(ToolResult(call.name, outcome.ok, outcome.note))
        return results

    # -- permission ------------------------------------------------------------------------

    async def _permit(
        self, what: str, tool_call: dict[str, Any], options: list[dict[str, str]], rule: str = ""
    ) -> str | None:
        """None when the tool may run, else the text it fails with.

        Args:
            what: ``edit``, ``read`` or ``bash`` (which modes and rules let it through).
            rule: for a command, the rule "Always allow" saves.
        """
        mode = self.runtime.mode
        if mode == "yolo" or (what == "edit" and mode == "acceptEdits"):
            return None
        if what == "bash" and _allowed_by_rule(self.runtime.cwd, rule):
            return None
        if mode == "dontAsk":
            return shapes.DONT_ASK
        params = {"sessionId": self.runtime.session_id, "options": options, "toolCall": tool_call}
        self.turn.no_question.clear()
        try:
            reply = await self.wire.request("session/request_permission", params)
        except PeerError as exc:
            log.info("the client failed a permission request (%s): taken as a rejection", exc)
            return shapes.REJECTED
        finally:
            self.turn.no_question.set()
        outcome = (reply or {}).get("outcome") or {}
        if outcome.get("outcome") == "cancelled":
            raise TurnCancelled
        chosen = next((o for o in options if o["optionId"] == outcome.get("optionId")), None)
        if chosen is None or not chosen["kind"].startswith("allow"):
            return shapes.REJECTED
        if chosen["optionId"] == "proceed_always" and what == "edit":
            self.runtime.mode = "acceptEdits"
            self.on_mode(self.runtime)
        elif chosen["optionId"] == "proceed_always_and_save":
            _save_rule(self.runtime.cwd, rule)
        return None

    # -- the tools -------------------------------------------------------------------------

    async def read(self, call_id: str, args: dict[str, Any]) -> Outcome:
        given = str(args.get("file_path", ""))
        path = self.runtime.resolve(given)
        if not self.runtime.inside(path):
            asked = shapes.read_permission(call_id, args, path)
            refused = await self._permit("read", asked, list(map(dict, shapes.EDIT_OPTIONS)))
            if refused:
                return Outcome(False, refused, f"Read {given}: refused")
        text = _read(path)
        if isinstance(text, _Missing):
            failure = shapes.is_directory(path) if text.directory else None
            failure = failure or shapes.missing_file(self.runtime.cwd)
            return Outcome(False, failure, f"Read {given}: {_line(failure)}")
        self.runtime.remember_read(path)
        offset = int(args.get("offset") or 1)
        limit = int(args["limit"]) if args.get("limit") else None
        output = shapes.numbered(text, offset, limit)
        self.update(shapes.completed(call_id, output, fence=True))
        kept = shapes.read_kept(self.runtime.shown(path), text, offset, output.count("\n") + 1)
        return Outcome(True, output, f"{given} says: {_line(text)}", kept)

    async def edit(self, call_id: str, args: dict[str, Any]) -> Outcome:
        given = str(args.get("file_path", ""))
        path = self.runtime.resolve(given)
        old_string = str(args.get("old_string", ""))
        new_string = str(args.get("new_string", ""))
        several = args.get("allow_multiple") is True
        before = _read(path)
        if isinstance(before, _Missing):
            return Outcome(
                False, shapes.missing_file(self.runtime.cwd), f"Edit {given}: no such file"
            )
        count = before.count(old_string) if old_string else 0
        # The question shows the whole file when the edit can be placed (the first
        # occurrence if there are several), else just the two strings, as the CLI's does.
        if count:
            after = before.replace(old_string, new_string, -1 if several else 1)
            shown_old, shown_new = before, after
        else:
            after, shown_old, shown_new = before, old_string, new_string
        asked = shapes.file_permission(call_id, "Edit", args, path, shown_old, shown_new)
        refused = await self._permit("edit", asked, list(map(dict, shapes.EDIT_OPTIONS)))
        failure = refused or self._stale(path)
        if failure is None and count == 0:
            failure = shapes.no_occurrence(path)
        if failure is None and count > 1 and not several:
            failure = shapes.many_occurrences(path, count)
        if failure:
            return Outcome(False, failure, f"Edit {given}: failed: {_line(failure)}")
        _write(path, after)
        self.runtime.remember_read(path)
        replaced = count if several else 1
        output = shapes.edited(path, replaced, after)
        self.update(shapes.completed(call_id, output))
        return Outcome(True, output, f"Edit {given}: {replaced} replacements")

    async def write(self, call_id: str, args: dict[str, Any]) -> Outcome:
        given = str(args.get("file_path", ""))
        path = self.runtime.resolve(given)
        content = str(args.get("content", ""))
        found = _read(path)
        before = None if isinstance(found, _Missing) else found
        existed = before is not None
        asked = shapes.file_permission(call_id, "Write", args, path, before, content)
        refused = await self._permit("edit", asked, list(map(dict, shapes.EDIT_OPTIONS)))
        failure = refused or (self._stale(path) if existed else None)
        if failure:
            return Outcome(False, failure, f"Write {given}: failed: {_line(failure)}")
        _write(path, content)
        self.runtime.remember_read(path)
        output = shapes.written(path, existed)
        self.update(shapes.completed(call_id, output))
        return Outcome(True, output, f"wrote {given}")

    def _stale(self, path: str) -> str | None:
        state = self.runtime.read_state(path)
        if state == "unread":
            return shapes.NOT_READ
        return shapes.CHANGED_SINCE_READ if state == "changed" else None

    async def bash(self, call_id: str, args: dict[str, Any]) -> Outcome:
        command = str(args.get("command", ""))
        if not shapes.read_only(command):
            asked = shapes.bash_permission(call_id, args)
            refused = await self._permit(
                "bash", asked, shapes.bash_options(command), rule=f"Bash({command}:*)"
            )
            if refused:
                return Outcome(False, refused, f"{command}: refused")
        timeout = min(int(args.get("timeout") or BASH_TIMEOUT_MS), 600_000) / 1000
        code, out, err = await _run(command, self.runtime.cwd, timeout)
        output = "\n".join(part for part in (out, err) if part)
        note = f"exit {code}, output: {_line(output)}"
        if code != 0:
            return Outcome(False, shapes.exit_failure(code, output), note)
        data = output or shapes.NO_OUTPUT
        self.update(shapes.terminal_output(call_id, data))
        self.update(shapes.terminal_exit(call_id, data, code))
        return Outcome(True, data, note, shapes.bash_kept(out, err, code))


_RUNNERS: dict[str, Callable[[LocalTools, str, dict[str, Any]], Awaitable[Outcome]]] = {
    "Read": LocalTools.read,
    "Edit": LocalTools.edit,
    "Write": LocalTools.write,
    "Bash": LocalTools.bash,
}


# Process groups of the commands running now: a cancelled prompt kills its command's
# group, and the simulator kills them all when a signal ends it (a command in its own
# group would outlive a kill of the simulator's group).
RUNNING: set[int] = set()


def kill_running_commands() -> None:
    """End every command's process group: those registered, and (where ``/proc`` shows
    them) any child just started, before its spawn returned to be registered."""
    for group in RUNNING | _child_groups():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGKILL)


def _child_groups() -> set[int]:
    """Process groups of this process's children other than its own group (Linux)."""
    me, mine = os.getpid(), os.getpgrp()
    groups = set()
    for entry in os.scandir("/proc") if os.path.isdir("/proc") else []:
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", encoding="ascii", errors="replace") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        parent, group = int(fields[1]), int(fields[2])
        if parent == me and group != mine:
            groups.add(group)
    return groups


async def _run(command: str, cwd: str, timeout: float) -> tuple[int, str, str]:
    """Run ``command`` with bash in its own process group; (exit code, stdout, stderr).

    The environment is the simulator's own, tokens included, as the CLI's commands
    inherit the CLI's. A cancelled prompt kills the whole group, as the CLI's cancel
    ended a running ``sleep``.
    """
    process = await asyncio.create_subprocess_exec(
        "/bin/bash",
        "-c",
        command,
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    RUNNING.add(process.pid)
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout)
    except (asyncio.CancelledError, asyncio.TimeoutError) as exc:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()
        if isinstance(exc, asyncio.CancelledError):
            raise
        return 124, "", f"Command timed out after {timeout:g} s"
    finally:
        RUNNING.discard(process.pid)
    stdout, stderr = (p.decode(errors="replace").rstrip("\n")[:OUTPUT_LIMIT] for p in (out, err))
    return process.returncode or 0, stdout, stderr


@dataclass(frozen=True)
class _Missing:
    """A path with no file to read (``directory``: a folder is there)."""

    directory: bool


def _read(path: str) -> str | _Missing:
    # Synchronous on purpose: small files, one prompt at a time per session.
    try:
        with open(path, encoding="utf-8", errors="replace", newline="") as handle:
            return handle.read()
    except IsADirectoryError:
        return _Missing(directory=True)
    except OSError:
        return _Missing(directory=False)


def _write(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write(text)


def _line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:NOTE_CHARS]
    return ""


def _rules_path(cwd: str) -> str:
    return os.path.join(cwd, RULES_FILE)


def _rules(cwd: str) -> list[str]:
    try:
        with open(_rules_path(cwd), encoding="utf-8") as handle:
            allow = json.load(handle).get("permissions", {}).get("allow", [])
    except (OSError, ValueError, AttributeError):
        return []
    return [rule for rule in allow if isinstance(rule, str)]


def _allowed_by_rule(cwd: str, rule: str) -> bool:
    if not rule.startswith("Bash("):
        return False
    command = rule[len("Bash(") : -len(":*)")]
    for saved in _rules(cwd):
        if saved.startswith("Bash(") and saved.endswith(":*)"):
            prefix = saved[len("Bash(") : -len(":*)")]
            if command == prefix or command.startswith(prefix + " "):
                return True
    return False


def _save_rule(cwd: str, rule: str) -> None:
    """Add ``rule`` to ``<cwd>/.qoder/settings.local.json``, as "Always allow" does."""
    allow = _rules(cwd)
    if rule not in allow:
        allow.append(rule)
    path = _rules_path(cwd)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump({"permissions": {"allow": allow}}, handle, indent=2)
        handle.write("\n")
