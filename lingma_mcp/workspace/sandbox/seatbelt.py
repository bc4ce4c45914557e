"""macOS: the Seatbelt profile ``sandbox-exec`` runs a program under (pure text, no I/O).

Modelled on the workspace-write profile of Codex's macOS sandbox (itself after Chromium's):
everything is denied unless allowed; reading files is allowed everywhere; writing only
beneath the writable folders, minus the read-only ones inside them; the network only when
it is on. Paths never enter the profile text: they go in as ``-D NAME=path`` parameters,
so no path can change the profile however it is spelt.

Written and unit-tested on Linux, where ``sandbox-exec`` does not exist: the text is
checked, not run. Treat a first run on a Mac as its real test.
"""

from __future__ import annotations

from pathlib import Path

from .spec import SandboxSpec

SANDBOX_EXEC = "/usr/bin/sandbox-exec"  # only this one: a sandbox-exec on PATH could be anyone's

# What nearly every program needs to start and run on macOS, whatever the sandbox.
_BASE = """\
(version 1)
(deny default)

; Programs may start programs; those inherit this profile.
(allow process-exec)
(allow process-fork)
(allow signal (target same-sandbox))
(allow process-info* (target same-sandbox))

; Reading is allowed everywhere; writing is decided below.
(allow file-read*)

; Start-up needs: system settings, user and group look-ups, CPU facts.
(allow sysctl-read)
(allow user-preference-read)
(allow mach-host*)
(allow mach-lookup (global-name "com.apple.system.opendirectoryd.libinfo"))

; POSIX semaphores (Python's multiprocessing), and pseudo-terminals.
(allow ipc-posix-sem)
(allow pseudo-tty)
(allow file-read* file-write* file-ioctl (literal "/dev/ptmx"))
(allow file-read* file-write* file-ioctl (regex #"^/dev/ttys[0-9]+$"))

; The devices every program may write.
(allow file-write-data
  (require-all
    (vnode-type CHARACTER-DEVICE)
    (require-any (literal "/dev/null") (literal "/dev/zero") (literal "/dev/tty"))))
"""

_NETWORK = """\
; The network is on.
(allow network-outbound)
(allow network-inbound)
(allow system-socket)
(allow mach-lookup
  (global-name "com.apple.SystemConfiguration.DNSConfiguration")
  (global-name "com.apple.SystemConfiguration.configd")
  (global-name "com.apple.networkd")
  (global-name "com.apple.dnssd.service")
  (global-name "com.apple.trustd")
  (global-name "com.apple.trustd.agent")
  (global-name "com.apple.SecurityServer")
  (global-name "com.apple.ocspd"))
"""


def profile(spec: SandboxSpec) -> tuple[str, list[tuple[str, str]]]:
    """The profile text and its ``(name, path)`` parameters for ``spec``."""
    params: list[tuple[str, str]] = []
    rules: list[str] = []
    for i, root in enumerate(spec.all_writable()):
        name = f"WRITABLE_{i}"
        params.append((name, str(root)))
        holes = [p for p in spec.read_only if p == root or root in p.parents]
        if not holes:
            rules.append(f'  (subpath (param "{name}"))')
            continue
        parts = [f'(subpath (param "{name}"))']
        for j, hole in enumerate(holes):
            hole_name = f"{name}_READ_ONLY_{j}"
            params.append((hole_name, str(hole)))
            parts.append(f'(require-not (subpath (param "{hole_name}")))')
        rules.append(f"  (require-all {' '.join(parts)})")
    text = _BASE
    if rules:
        text += "\n; Writing: beneath the writable folders, less their read-only parts.\n"
        text += "(allow file-write*\n" + "\n".join(rules) + ")\n"
    if spec.network:
        text += "\n" + _NETWORK
    return text, params


def seatbelt_argv(argv: list[str], spec: SandboxSpec) -> list[str]:
    """``sandbox-exec`` running ``argv`` under ``spec``'s profile."""
    text, params = profile(spec)
    defines = [f"-D{name}={Path(value)}" for name, value in params]
    return [SANDBOX_EXEC, "-p", text, *defines, "--", *argv]
