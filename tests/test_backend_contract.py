"""Both backends offer the whole contract: every member of its interfaces, alike in kind.

The face holds either backend through :mod:`lingma_mcp.backend`'s protocols and never asks
which; a method one backend lacks, or offers with other parameters, would only show when a
host reaches that path. This pins them side by side.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from lingma_mcp.acp.cli_backend import CliBackend
from lingma_mcp.acp.cli_client import CliChatStream, CliClient
from lingma_mcp.backend import Backend, BackendClient, ChatStreamLike
from lingma_mcp.lingma.ide_client import LingmaClient
from lingma_mcp.lingma.streams import ChatStream
from lingma_mcp.lingma.supervisor import LingmaSupervisor

IMPLEMENTATIONS = [
    (Backend, LingmaSupervisor),
    (Backend, CliBackend),
    (BackendClient, LingmaClient),
    (BackendClient, CliClient),
    (ChatStreamLike, ChatStream),
    (ChatStreamLike, CliChatStream),
]


def members(protocol: type) -> dict[str, Any]:
    """The protocol's own methods and properties (async iteration included)."""
    own = {
        name: value
        for name, value in vars(protocol).items()
        if not name.startswith("_") or name in ("__aiter__", "__anext__")
    }
    return {name: value for name, value in own.items() if callable(value) or _is_property(value)}


def _is_property(value: Any) -> bool:
    return isinstance(value, property)


def parameters(function: Any) -> list[str]:
    return [p for p in inspect.signature(function).parameters if p != "self"]


def mismatches(protocol: type, implementation: type) -> list[str]:
    """What ``implementation`` lacks of ``protocol``, or offers unlike it."""
    found = []
    for name, wanted in members(protocol).items():
        if not hasattr(implementation, name) and name not in _instance_attributes(implementation):
            found.append(f"no {name}")
            continue
        offered = getattr(implementation, name, None)
        if _is_property(wanted) or not callable(offered):
            continue  # an attribute or property: its presence is the contract
        should_await = inspect.iscoroutinefunction(wanted)
        if inspect.iscoroutinefunction(offered) != should_await:
            found.append(f"{name} is {'not ' if should_await else ''}async")
        # The contract's parameters, in order; an implementation may add keyword-only ones.
        have, want = tuple(parameters(offered)), tuple(parameters(wanted))
        if have[: len(want)] != want:
            found.append(f"{name}{have} is not {name}{want}")
    return found


@pytest.mark.parametrize(
    ("protocol", "implementation"),
    IMPLEMENTATIONS,
    ids=[f"{impl.__name__}-{proto.__name__}" for proto, impl in IMPLEMENTATIONS],
)
def test_every_member_of_the_contract_is_there_alike(protocol: type, implementation: type) -> None:
    assert mismatches(protocol, implementation) == []


def test_a_missing_or_different_member_is_caught() -> None:
    class Partial:
        def __init__(self) -> None:
            self.unrelated = 1

        async def login_state(self) -> None: ...

        def models(self) -> None: ...  # not async

        async def sessions(self, folder: str) -> None: ...  # another parameter

    found = mismatches(BackendClient, Partial)
    assert "models is not async" in found and "no session" in found and "no open_chat" in found
    assert "sessions('folder',) is not sessions('project',)" in found


def _instance_attributes(implementation: type) -> set[str]:
    """Names set in ``__init__`` (``self.finish = ...``): attributes, not class members."""
    source = inspect.getsource(implementation.__init__)
    return {
        line.split("self.", 1)[1].split(" ", 1)[0].split(":")[0]
        for line in source.splitlines()
        if line.strip().startswith("self.")
    }
