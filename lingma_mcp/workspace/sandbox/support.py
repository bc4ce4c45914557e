"""What this machine can enforce, found once per process, and the plain words for what not.

On Linux the launcher itself is run once in ``--probe`` mode: each step it would take
(user, mount, PID and network namespaces, a /proc of its own, a private /dev/shm, a
Landlock ruleset that really refuses a write) is tried in a child of its own, so what is
reported is what was seen to work, not what the kernel version suggests. That costs one
short process (about 20 ms) the first time a sandbox is needed or reported.
"""

from __future__ import annotations

import functools
import logging
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from . import landlock
from .seatbelt import SANDBOX_EXEC

log = logging.getLogger("lingma_mcp.workspace.sandbox")

LAUNCH = Path(__file__).with_name("launch.py")
PROBE_TIMEOUT = 20.0


@dataclass(frozen=True)
class SandboxSupport:
    """What can be enforced here.

    Attributes:
        mechanism: ``landlock``, ``seatbelt``, or ``None`` when nothing can be.
        reason: why there is no mechanism (empty when there is one).
        landlock_abi: the Landlock ABI in use (0 without Landlock).
        user_namespaces: an unprivileged user namespace can be made.
        mount_namespaces, pid_namespaces, network_namespaces: each can be made (inside a
            user namespace, or without one when we are privileged).
        fresh_proc: a /proc of the PID namespace's own can be mounted.
        private_shm: a private /dev/shm can be mounted.
    """

    mechanism: str | None
    reason: str = ""
    landlock_abi: int = 0
    user_namespaces: bool = False
    mount_namespaces: bool = False
    pid_namespaces: bool = False
    network_namespaces: bool = False
    fresh_proc: bool = False
    private_shm: bool = False

    @property
    def available(self) -> bool:
        return self.mechanism is not None

    @property
    def version(self) -> str | None:
        if self.mechanism == "landlock":
            return f"ABI {self.landlock_abi}"
        return None

    @property
    def containment(self) -> str:
        """How "nothing a command starts outlives it" is kept."""
        if self.mechanism == "landlock":
            return "PID namespace" if self.pid_namespaces else "child subreaper"
        return "process group"

    @property
    def notes(self) -> tuple[str, ...]:
        """What is not enforced with the defaults (network off)."""
        return tuple(self.not_enforced(network=False))

    def not_enforced(self, *, network: bool) -> list[str]:
        """Plain sentences: what a sandboxed command can still do here."""
        if self.mechanism is None:
            return [
                f"no OS sandbox is available here ({self.reason}): writes made by commands "
                "cannot be prevented, and commands can use the network"
            ]
        if self.mechanism == "seatbelt":
            return [
                "a daemon a command starts (setsid, double fork) can outlive it: macOS has "
                "no PID namespace, only the process group is killed"
            ]
        notes = []
        abi = self.landlock_abi
        if abi < 3:
            notes.append(
                f"a command can empty (truncate) a file outside the writable folders: that "
                f"needs Landlock ABI 3, this kernel has ABI {abi}"
            )
        if not self.mount_namespaces:
            notes.append(
                ".git and the lingma-mcp work dir are not kept read-only for commands: no "
                "mount namespace can be made here"
            )
        if not network:
            if not self.network_namespaces and abi < 4:
                notes.append(
                    f"the network is not blocked: no network namespace can be made here and "
                    f"Landlock ABI {abi} has no network rules (ABI 4)"
                )
            elif not self.network_namespaces:
                notes.append(
                    "only TCP is blocked (Landlock): UDP, DNS included, still reaches the "
                    "network, as no network namespace can be made here"
                )
        if not self.pid_namespaces:
            notes.append(
                "a daemon a command starts (setsid, double fork) is killed when the command "
                "ends, but survives if the command is killed: no PID namespace can be made "
                "here, so a child subreaper stands in"
            )
        elif not self.fresh_proc:
            notes.append("commands can see the server's other processes in /proc")
        if abi < 6:
            notes.append(
                f"a command can send signals to processes outside the sandbox: that needs "
                f"Landlock ABI 6, this kernel has ABI {abi}"
            )
        if not self.private_shm:
            notes.append(
                "/dev/shm is not writable for commands (POSIX shared memory and semaphores, "
                "as Python's multiprocessing uses, fail)"
            )
        if not self.user_namespaces and os.geteuid() == 0:
            notes.append(
                "commands keep the server's root privileges: no user namespace can be made"
            )
        return notes


def _parse_probe(output: str) -> dict[str, tuple[bool, str]]:
    """``name=1`` / ``name=0 why`` lines -> {name: (worked, why)}; ``abi=N`` as (N>0, N)."""
    seen: dict[str, tuple[bool, str]] = {}
    for line in output.splitlines():
        name, sep, rest = line.partition("=")
        if not sep:
            continue
        value, _, why = rest.partition(" ")
        if name == "abi":
            seen[name] = (value.isdigit() and int(value) > 0, value)
        else:
            seen[name] = (value == "1", why)
    return seen


def _probe_linux() -> SandboxSupport:
    abi = landlock.abi_version()
    if abi == 0:
        return SandboxSupport(
            None,
            "this Linux kernel offers no Landlock: it needs 5.13 or later built with "
            "CONFIG_SECURITY_LANDLOCK and landlock among its lsm= modules",
        )
    with tempfile.TemporaryDirectory(prefix="lingma-probe-") as scratch:
        try:
            done = subprocess.run(
                [sys.executable, "-I", "-S", str(LAUNCH), "--probe", scratch],
                capture_output=True,
                text=True,
                timeout=PROBE_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return SandboxSupport(None, f"the sandbox launcher could not be run: {exc}")
    seen = _parse_probe(done.stdout)
    log.debug("sandbox probe: %s", seen)
    worked, why = seen.get("landlock", (False, done.stderr.strip()[-300:] or "no answer"))
    if not worked:
        return SandboxSupport(None, f"Landlock ABI {abi} is offered but did not confine: {why}")

    def ok(name: str) -> bool:
        return seen.get(name, (False, ""))[0]

    return SandboxSupport(
        "landlock",
        landlock_abi=abi,
        user_namespaces=ok("user"),
        mount_namespaces=ok("mount"),
        pid_namespaces=ok("pid"),
        network_namespaces=ok("net"),
        fresh_proc=ok("proc"),
        private_shm=ok("shm"),
    )


@functools.cache
def support() -> SandboxSupport:
    """What this machine can enforce (probed once per process)."""
    if sys.platform.startswith("linux"):
        return _probe_linux()
    if sys.platform == "darwin":
        if os.access(SANDBOX_EXEC, os.X_OK):
            return SandboxSupport("seatbelt")
        return SandboxSupport(None, f"{SANDBOX_EXEC} is missing")
    if sys.platform == "win32":
        return SandboxSupport(None, "Windows has no sandbox lingma-mcp can use")
    return SandboxSupport(None, f"{sys.platform} has no sandbox lingma-mcp can use")
