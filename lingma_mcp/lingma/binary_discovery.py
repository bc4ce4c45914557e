"""Finding the Lingma binary.

Order, first hit wins:

1. an explicit path (``--lingma-bin`` / ``LINGMA_BIN``); when it is set and wrong we stop
   there rather than silently run some other version the user did not ask for;
2. the version ``~/.lingma/bin/config.json`` names (key ``cosy.core.version``), at
   ``~/.lingma/bin/<version>/<arch>_<os>/Lingma`` (``Lingma.exe`` on Windows);
3. the newest version folder under ``~/.lingma/bin`` (versions compared numerically);
4. ``Lingma`` on ``PATH``.

A whole command given in ``LaunchOptions.command`` is run as it is, without a search: the
command line uses it for anything that speaks like Lingma. The home folder, platform and
``PATH`` are parameters so the macOS, Linux and Windows naming rules can be tested anywhere.
"""

from __future__ import annotations

import json
import os
import platform
import re
from dataclasses import dataclass
from pathlib import Path

from lingma_mcp.errors import LingmaNotFound

from .launch_options import LaunchOptions

NOT_FOUND_HINT = (
    "Install the Lingma plugin in an IDE (VS Code or JetBrains) and log in once; it puts "
    "the binary under ~/.lingma/bin. Or set LINGMA_BIN (--lingma-bin) to the binary's path, "
    "or LINGMA_PORT (--lingma-port) to attach to a Lingma that is already running."
)

_ARCH_ALIASES = {
    "x86_64": "x86_64",
    "amd64": "x86_64",
    "x64": "x86_64",
    "aarch64": "aarch64",
    "arm64": "aarch64",
    "armv8": "aarch64",
    "i686": "i686",
    "i386": "i686",
    "x86": "i686",
}


@dataclass(frozen=True)
class LingmaCommand:
    """How to start Lingma: ``argv`` is the prefix before ``start --workDir DIR``."""

    argv: tuple[str, ...]
    cwd: Path | None
    source: str  # "LINGMA_BIN", "config.json", "newest version", "PATH", or the command's

    def start_argv(self, work_dir: Path) -> list[str]:
        return [*self.argv, "start", "--workDir", str(work_dir)]


def os_name(system: str | None = None) -> str:
    """Lingma's folder name for an OS: ``linux``, ``darwin`` or ``windows``."""
    s = (system or platform.system()).lower()
    if s.startswith(("win", "cygwin", "msys")):
        return "windows"
    if s.startswith("darwin") or s == "macos":
        return "darwin"
    return "linux" if s.startswith("linux") else s


def arch_name(machine: str | None = None) -> str:
    """Lingma's folder name for a CPU: ``x86_64``, ``aarch64`` or ``i686``."""
    m = (machine or platform.machine()).lower()
    return _ARCH_ALIASES.get(m, m)


def binary_name(system: str | None = None) -> str:
    return "Lingma.exe" if os_name(system) == "windows" else "Lingma"


def platform_dir(system: str | None = None, machine: str | None = None) -> str:
    """``<arch>_<os>``, e.g. ``aarch64_darwin``."""
    return f"{arch_name(machine)}_{os_name(system)}"


def version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key comparing versions numerically: ``2.10.0`` > ``2.9.3``.

    Numeric parts sort above text parts, so ``2.5.0`` > ``2.5.beta``.
    """
    parts = [p for p in re.split(r"[.\-_+]", version) if p]
    return tuple((1, int(p)) if p.isdigit() else (0, p) for p in parts)


def find_lingma(
    options: LaunchOptions,
    *,
    home: Path | None = None,
    system: str | None = None,
    machine: str | None = None,
    path_env: str | None = None,
) -> LingmaCommand:
    """Find how to start Lingma, or raise :class:`LingmaNotFound` listing every place looked.

    Args:
        options: ``command``, ``command_cwd`` and ``binary`` are read.
        home, system, machine, path_env: the user's home folder, ``platform.system()``,
            ``platform.machine()`` and ``PATH``; defaults are the real ones (tests inject).

    Raises:
        LingmaNotFound: with ``places`` (every place looked) and ``hint`` (how to fix).
    """
    if options.command:
        return LingmaCommand(tuple(options.command), options.command_cwd, options.command_source)

    is_windows = os_name(system) == "windows"
    name = binary_name(system)
    places: list[str] = []

    if options.binary:
        found = _explicit(Path(options.binary).expanduser(), name, is_windows, places)
        if found is not None:
            return found
        raise _not_found(places)

    home = home if home is not None else Path.home()
    bin_root = home / ".lingma" / "bin"
    pdir = platform_dir(system, machine)

    config = bin_root / "config.json"
    version = _configured_version(config)
    if version is not None:
        candidate = bin_root / version / pdir / name
        if _is_runnable(candidate, is_windows):
            return LingmaCommand((str(candidate),), candidate.parent, "config.json")
        places.append(f"{candidate} (version {version} named by {config}; missing)")
    else:
        places.append(f"{config} (missing or without cosy.core.version)")

    newest = _newest_version(bin_root, pdir, name, is_windows)
    if newest is not None:
        return LingmaCommand((str(newest),), newest.parent, "newest version")
    places.append(f"{bin_root}/<version>/{pdir}/{name} (no installed version found)")

    path_value = path_env if path_env is not None else os.environ.get("PATH", "")
    for folder in filter(None, path_value.split(os.pathsep)):
        candidate = Path(folder) / name
        if _is_runnable(candidate, is_windows):
            return LingmaCommand((str(candidate),), candidate.parent, "PATH")
    places.append(f"{name} on PATH")
    raise _not_found(places)


def _explicit(path: Path, name: str, is_windows: bool, places: list[str]) -> LingmaCommand | None:
    # A folder is accepted too: users often paste the version folder rather than the file.
    candidate = path / name if path.is_dir() else path
    if _is_runnable(candidate, is_windows):
        return LingmaCommand((str(candidate),), candidate.parent, "LINGMA_BIN")
    why = "not executable" if candidate.is_file() else "no such file"
    places.append(f"{candidate} (from LINGMA_BIN / --lingma-bin; {why})")
    return None


def _is_runnable(path: Path, is_windows: bool) -> bool:
    if not path.is_file():
        return False
    return is_windows or os.access(path, os.X_OK)


def _configured_version(config: Path) -> str | None:
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    # The plugins write the dotted key flat: {"cosy.core.version": "2.11.1"}; accept the
    # nested spelling too in case a version writes it that way.
    version = data.get("cosy.core.version")
    if version is None:
        version = data
        for key in ("cosy", "core", "version"):
            version = version.get(key) if isinstance(version, dict) else None
    if not isinstance(version, str):
        return None
    version = version.strip()
    # It becomes a path component: refuse anything that could walk out of ~/.lingma/bin.
    if not version or version in (".", "..") or "/" in version or "\\" in version:
        return None
    return version


def _newest_version(bin_root: Path, pdir: str, name: str, is_windows: bool) -> Path | None:
    try:
        folders = [p for p in bin_root.iterdir() if p.is_dir()]
    except OSError:
        return None
    for folder in sorted(folders, key=lambda p: version_key(p.name), reverse=True):
        candidate = folder / pdir / name
        if _is_runnable(candidate, is_windows):
            return candidate
    return None


def _not_found(places: list[str]) -> LingmaNotFound:
    err = LingmaNotFound(places)
    err.hint = NOT_FOUND_HINT  # type: ignore[attr-defined]
    return err
