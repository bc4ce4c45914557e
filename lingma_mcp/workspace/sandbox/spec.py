"""What one sandboxed program may do: plain data, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Mode = Literal["workspace-write", "read-only", "off"]
MODES: tuple[str, ...] = ("workspace-write", "read-only", "off")


@dataclass(frozen=True)
class SandboxSpec:
    """The confinement of one program and everything it starts.

    Reading stays possible everywhere; the spec says where writing is.

    Attributes:
        mode: ``off`` runs the program as it is; the two others confine it. The spec
            builders (:func:`command_spec`, :func:`cli_spec`) turn the mode into the
            folders below; :func:`wrap` only tells ``off`` from the rest.
        writable: folders beneath which the program may create, change and delete.
        read_only: folders kept read-only even inside a writable one (``.git``, the
            lingma-mcp work dir). One that does not exist is not protected (nothing is
            there yet; creating it would change the person's folder).
        network: whether it may open network connections.
        contain: nothing it starts outlives it, not even a ``setsid`` daemon.
        tmpdir: its private temporary folder (writable; set as ``TMPDIR`` by the caller).
    """

    mode: Mode = "workspace-write"
    writable: tuple[Path, ...] = field(default=())
    read_only: tuple[Path, ...] = field(default=())
    network: bool = False
    contain: bool = True
    tmpdir: Path | None = None

    @property
    def confined(self) -> bool:
        return self.mode != "off"

    def all_writable(self) -> tuple[Path, ...]:
        """The writable folders, the private temporary folder included."""
        if self.tmpdir is None:
            return self.writable
        return (*self.writable, self.tmpdir)

    def protected(self) -> tuple[Path, ...]:
        """The read-only folders that lie inside a writable one (the others are read-only
        anyway, and need no mount of their own)."""
        roots = self.all_writable()
        return tuple(p for p in self.read_only if any(p == r or r in p.parents for r in roots))
