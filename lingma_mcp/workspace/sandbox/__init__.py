"""The OS sandbox for everything Lingma runs: hosted commands and the CLI process.

Knows nothing of MCP or of Lingma's protocols: a spec (:class:`SandboxSpec`) of what one
program may write, whether it may use the network and whether anything it starts may
outlive it, and :func:`wrap`, which turns a program's argv into the argv that runs it so
confined on this machine.

- Linux: Landlock (``landlock.py``, through ``ctypes``) confines writes and TCP, applied
  by a small launcher (``launch.py`` + ``launcher.py``) that also makes user, mount, PID
  and network namespaces where they can be made, then ``exec``s the program. Those two
  files run as a standalone script and are never imported as part of this package.
- macOS: ``sandbox-exec`` with a generated Seatbelt profile (``seatbelt.py``).
- Elsewhere, or on a Linux without Landlock: nothing; :func:`support` says why and
  :func:`wrap` refuses a spec that confines.

:func:`support` probes once what can be enforced; :func:`report` says it in words for
``auth_status`` and ``doctor``.
"""

from __future__ import annotations

from .report import report
from .spec import MODES, Mode, SandboxSpec
from .specs import cli_spec, cli_state_dirs, command_spec
from .support import SandboxSupport, support
from .wrap import SandboxUnavailable, explain, looks_refused, wrap


def default_mode() -> Mode:
    """``workspace-write`` where this machine can enforce it, else ``off``."""
    return "workspace-write" if support().available else "off"


__all__ = [
    "MODES",
    "Mode",
    "SandboxSpec",
    "SandboxSupport",
    "SandboxUnavailable",
    "cli_spec",
    "cli_state_dirs",
    "command_spec",
    "default_mode",
    "explain",
    "looks_refused",
    "report",
    "support",
    "wrap",
]
