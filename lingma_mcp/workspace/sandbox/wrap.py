"""``wrap()``: the command line that runs a program under a spec on this machine."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from ..workspace_errors import WorkspaceError
from .seatbelt import seatbelt_argv
from .spec import SandboxSpec
from .support import LAUNCH, SandboxSupport, support


class SandboxUnavailable(WorkspaceError):
    """A sandbox was asked for where none can be enforced; nothing was run."""


def _real(path: os.PathLike[str] | str) -> str:
    # Landlock and bind mounts follow links anyway; resolving here makes the launcher's
    # line say what it will really allow, and lets read-only folders be matched to the
    # writable folders they lie in.
    return os.path.realpath(path)


def launcher_argv(argv: Sequence[str], spec: SandboxSpec, found: SandboxSupport) -> list[str]:
    """The Linux launcher's line for ``spec``, using only what ``found`` says works."""
    line = [sys.executable, "-I", "-S", str(LAUNCH), "-a", str(found.landlock_abi)]
    for folder in spec.all_writable():
        line += ["-w", _real(folder)]
    if found.mount_namespaces:
        line += ["-M"]
        for folder in spec.protected():
            line += ["-r", _real(folder)]
        if found.private_shm:
            line += ["-m"]
    if found.user_namespaces:
        line += ["-U"]
    if not spec.network:
        line += ["-n"]
        if found.network_namespaces:
            line += ["-N"]
    if found.landlock_abi >= 6:
        line += ["-s"]
    if spec.contain:
        line += ["-c"]
        if found.pid_namespaces:
            line += ["-P"]
            if found.fresh_proc and found.mount_namespaces:
                line += ["-p"]
    return [*line, "--", *argv]


def wrap(
    argv: Sequence[str], spec: SandboxSpec, *, found: SandboxSupport | None = None
) -> list[str]:
    """The argv that runs ``argv`` under ``spec`` (``argv`` itself when the mode is off).

    Args:
        found: what this machine can enforce; :func:`support` when not given (tests pass
            a narrower one to exercise the fallbacks).

    Raises:
        SandboxUnavailable: the spec confines, and nothing here can enforce it.
    """
    if not spec.confined:
        return list(argv)
    found = support() if found is None else found
    if found.mechanism == "landlock":
        return launcher_argv(argv, spec, found)
    if found.mechanism == "seatbelt":
        real = replace(
            spec,
            writable=tuple(Path(_real(p)) for p in spec.writable),
            read_only=tuple(Path(_real(p)) for p in spec.read_only),
            tmpdir=None if spec.tmpdir is None else Path(_real(spec.tmpdir)),
        )
        return seatbelt_argv(list(argv), real)
    raise SandboxUnavailable(
        f"commands cannot be sandboxed on this machine ({found.reason}), so writes made by "
        "commands cannot be prevented; run lingma-mcp with --sandbox off (or "
        "LINGMA_SANDBOX=off) to accept that and run them unconfined"
    )


# What a refusal by the sandbox looks like in a command's output: the errno texts of
# Landlock (EACCES), a read-only mount (EROFS), a network namespace with no route, and
# what curl and the resolver say when there is no network.
_REFUSALS = (
    "Permission denied",
    "Read-only file system",
    "Operation not permitted",
    "Network is unreachable",
    "Couldn't connect to server",
    "Could not resolve host",
    "Temporary failure in name resolution",
)


def looks_refused(output: str) -> bool:
    """Whether a failed command's output suggests the sandbox refused it something."""
    return any(text in output for text in _REFUSALS)


def explain(spec: SandboxSpec) -> str:
    """One paragraph for a sandboxed command's output when it failed on a refusal."""
    writable = [str(p) for p in spec.writable]
    if spec.tmpdir is not None:
        writable.append(f"its temporary folder {spec.tmpdir}")
    where = ", ".join(writable) if writable else "nowhere"
    parts = [f"[lingma-mcp] This command ran in a {spec.mode} sandbox: it may write only in "]
    parts.append(where)
    kept = spec.protected()
    if kept:
        parts.append(f"; kept read-only: {', '.join(str(p) for p in kept)}")
    if not spec.network:
        parts.append("; it has no network")
    parts.append(
        ". 'Permission denied', 'Read-only file system' or a refused connection above come "
        "from that; do the work inside the workspace instead."
    )
    return "".join(parts)
