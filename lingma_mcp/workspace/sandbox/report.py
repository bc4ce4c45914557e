"""What ``auth_status.bridge.sandbox`` and ``doctor`` show about the sandbox."""

from __future__ import annotations

from typing import Any

from .support import SandboxSupport, support


def report(mode: str, network: bool, *, found: SandboxSupport | None = None) -> dict[str, Any]:
    """The sandbox as a person should see it: what is enforced, by what, and what is not.

    Args:
        mode: the mode in force (``Settings.sandbox_mode``).
        network: whether hosted commands may use the network (``--sandbox-network``).
        found: what the machine can enforce; probed when not given.
    """
    found = support() if found is None else found
    enforced = mode != "off" and found.available
    if mode == "off" and not found.available:
        not_enforced = found.not_enforced(network=network)
    elif mode == "off":
        not_enforced = [
            "the sandbox is off (--sandbox off): commands run unconfined, writing anywhere "
            "the server may and using the network"
        ]
    else:
        not_enforced = found.not_enforced(network=network)
    return {
        "mode": mode,
        "enforced": enforced,
        "mechanism": found.mechanism or "none available",
        "version": found.version,
        "network": "on" if network or not enforced else "off",
        "containment": found.containment if enforced else "process group",
        "not_enforced": not_enforced,
    }
