"""The two sandboxes lingma-mcp starts programs in: a hosted command's, and the CLI's.

What the Lingma CLI (``qoderclicn`` 1.1.52) writes was observed, not guessed: run offline
(``--acp --fake-responses``) under ``strace -f`` while its Bash, Read, Write and Edit tools
worked, with an empty HOME, it wrote

- its config folder, ``~/.qoder-cn`` (``QODERCN_CONFIG_DIR`` or ``QODER_CONFIG_DIR`` move
  it): login, settings, session transcripts, logs, shell snapshots, plugins;
- ``~/.qoder-cli/ai-stats`` (always under HOME, whatever the config folder);
- ``~/.qodersec`` (its bundled security-scan plugin's state and log);
- its temporary files (task output, ``git-diff-*``, the shell's ``cwd`` file) under
  ``os.tmpdir()``, which honours ``TMPDIR``: the private temporary folder takes them;
- ``~/.config/git/ignore`` (it adds its ``*.local.md`` files to the person's global git
  ignore): not its own, so refused; it carries on without it;
- and what its tools were told to write.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from .spec import Mode, SandboxSpec

CONFIG_DIR_VARIABLES = ("QODERCN_CONFIG_DIR", "QODER_CONFIG_DIR")


def _resolved(path: Path) -> Path:
    return Path(os.path.realpath(path.expanduser()))


def command_spec(
    workspace: Path,
    *,
    mode: Mode,
    network: bool = False,
    protected: Iterable[Path] = (),
    tmpdir: Path | None = None,
) -> SandboxSpec:
    """The sandbox of commands the workspace host runs for one call.

    ``workspace-write``: the workspace is writable, its ``.git`` and the ``protected``
    folders (the lingma-mcp work dir) are not. ``read-only``: nothing is writable but the
    call's private temporary folder (gone when the call ends, so nothing lasts).
    """
    root = _resolved(workspace)
    return SandboxSpec(
        mode=mode,
        writable=(root,) if mode == "workspace-write" else (),
        read_only=(root / ".git", *(_resolved(p) for p in protected)),
        network=network,
        contain=True,
        tmpdir=tmpdir,
    )


def cli_state_dirs(
    env: Mapping[str, str] | None = None, home: Path | None = None
) -> tuple[Path, ...]:
    """The folders the Lingma CLI keeps its own state in (see the module's notes)."""
    env = os.environ if env is None else env
    home = Path(env.get("HOME") or Path.home()) if home is None else home
    config = next((env[v] for v in CONFIG_DIR_VARIABLES if env.get(v)), None)
    return (
        Path(config).expanduser() if config else home / ".qoder-cn",
        home / ".qoder-cli",
        home / ".qodersec",
    )


def cli_spec(
    workspace: Path | None,
    state_dirs: Iterable[Path],
    mode: Mode,
    *,
    protected: Iterable[Path] = (),
    tmpdir: Path | None = None,
) -> SandboxSpec:
    """The sandbox of the whole CLI process and everything it starts.

    Its network stays on: it must reach its model service. Its state folders are always
    writable; the workspace only in ``workspace-write`` mode and when there is one
    (``workspace=None`` or ``read-only``: chat mode, the CLI's state alone). The state
    folders are created (0700) when missing: a Landlock rule needs an existing folder, and
    the CLI could not create them itself once confined.
    """
    states = []
    for folder in state_dirs:
        folder = folder.expanduser()
        if mode != "off":
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        states.append(_resolved(folder))
    writable = list(states)
    read_only = [_resolved(p) for p in protected]
    if workspace is not None:
        root = _resolved(workspace)
        read_only.insert(0, root / ".git")
        if mode == "workspace-write":
            writable.insert(0, root)
    return SandboxSpec(
        mode=mode,
        writable=tuple(writable),
        read_only=tuple(read_only),
        network=True,
        contain=True,
        tmpdir=tmpdir,
    )
