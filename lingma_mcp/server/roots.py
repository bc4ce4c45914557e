"""The folder an MCP call works in: the host's roots, else ``--workspace``.

A host that offers roots says which folders the person opened; a call's ``workspace``
must lie inside one of them (or inside ``--workspace`` where the host offers none), and a
call that names none works in the first. Only the MCP face knows roots; the folder it
settles on goes to the asking service as a plain path.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import anyio
from mcp.server.mcpserver import Context

from ..workspace import WorkspaceError, check_workspace

log = logging.getLogger(__name__)

ROOTS_TIMEOUT_S = 5.0


def _path_from_uri(uri: str) -> Path | None:
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        return None
    return Path(url2pathname(parsed.path))  # url2pathname also percent-decodes


async def host_roots(ctx: Context) -> list[Path]:
    """Every folder the host offers as a root (existing ones), or ``[]`` without roots."""
    try:
        caps = ctx.client_capabilities
        if caps is None or caps.roots is None or not ctx.session.can_send_request:
            return []
        with anyio.fail_after(ROOTS_TIMEOUT_S), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # roots are deprecated in the newest protocol
            result = await ctx.session.list_roots()
    except Exception as exc:  # a host without working roots falls back to --workspace
        log.debug("roots/list failed, using --workspace: %r", exc)
        return []
    roots = [_path_from_uri(str(root.uri)) for root in result.roots]
    return [p for p in roots if p is not None and p.is_dir()]


async def call_workspace(ctx: Context, requested: str | None, default: Path) -> tuple[Path, bool]:
    """The call's workspace and whether it came from the host's roots.

    Without ``requested``: the host's first root, else ``default`` (``--workspace``). With
    it: that folder (relative to the first allowed folder), which must lie inside one of
    the host's roots when the host offers roots, else inside ``default``.

    Raises:
        WorkspaceNotAllowed: ``requested`` lies outside every allowed folder (the message
            names them).
        WorkspaceError: ``requested`` does not exist or is not a folder.
    """
    roots = await host_roots(ctx)
    if requested is None or not requested.strip():
        return (roots[0], True) if roots else (default, False)
    return _checked(requested, roots or [default]), False


def _checked(requested: str, allowed: list[Path]) -> Path:
    try:
        candidate = Path(requested).expanduser()
    except RuntimeError:  # "~nosuchuser": no such user to expand
        raise WorkspaceError(
            f"{requested!r} starts with '~' but names no user on this machine"
        ) from None
    if not candidate.is_absolute():
        candidate = allowed[0] / candidate
    return check_workspace(candidate, allowed)
