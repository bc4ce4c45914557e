"""The approval setting: which classes of action are allowed, asked about, or denied.

``--approval`` / ``LINGMA_APPROVAL`` read ``class=decision`` pairs over the default
``read=allow,write=ask,delete=ask,run=ask``. Also here: the class of a tool Lingma runs
itself and pauses for confirmation (a PENDING ``tool/call/sync``), judged by its name.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

ACTIONS: tuple[str, ...] = ("read", "write", "delete", "run")
DECISIONS: tuple[str, ...] = ("allow", "ask", "deny")
DEFAULT_POLICY = "read=allow,write=ask,delete=ask,run=ask"

SYNTAX_HELP = (
    "write class=decision pairs separated by commas, e.g. 'write=allow,run=deny'; "
    f"classes: {', '.join(ACTIONS)}; decisions: {', '.join(DECISIONS)}; "
    f"unnamed classes keep the default {DEFAULT_POLICY}"
)


@dataclass(frozen=True)
class Policy:
    """One decision per class of action."""

    read: str = "allow"
    write: str = "ask"
    delete: str = "ask"
    run: str = "ask"

    def decision(self, action: str) -> str:
        if action not in ACTIONS:
            raise ValueError(f"unknown class of action {action!r}; known: {', '.join(ACTIONS)}")
        return str(getattr(self, action))

    def as_text(self) -> str:
        return ",".join(f"{a}={self.decision(a)}" for a in ACTIONS)


def parse_policy(text: str | None) -> Policy:
    """Read an approval setting over the default; ``None`` or blank gives the default.

    Raises:
        ValueError: a malformed setting; the message shows the syntax.
    """
    policy = Policy()
    if text is None or not text.strip():
        return policy
    seen: set[str] = set()
    for piece in text.split(","):
        item = piece.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        key, value = key.strip().lower(), value.strip().lower()
        if not sep:
            raise ValueError(f"approval setting {text!r}: {item!r} has no '='; {SYNTAX_HELP}")
        if key not in ACTIONS:
            raise ValueError(f"approval setting {text!r}: unknown class {key!r}; {SYNTAX_HELP}")
        if value not in DECISIONS:
            raise ValueError(
                f"approval setting {text!r}: unknown decision {value!r} for {key}; {SYNTAX_HELP}"
            )
        if key in seen:
            raise ValueError(f"approval setting {text!r}: {key} is named twice; {SYNTAX_HELP}")
        seen.add(key)
        policy = replace(policy, **{key: value})
    return policy


# Checked in this order: a name that says both "read" and "terminal" runs something, and
# one that says "search_replace" writes. Unknown tools count as writes: asking too often
# is safer than letting an unknown action through.
_CLASS_WORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("run", ("terminal", "shell", "command", "bash", "exec")),
    ("delete", ("delete", "remove")),
    ("write", ("edit", "write", "create", "replace")),
    ("read", ("read", "search", "list", "grep")),
)


def classify_tool(name: str) -> str:
    """The class of action of one of Lingma's own tools, judged by its name."""
    lowered = name.lower()
    for action, words in _CLASS_WORDS:
        if any(word in lowered for word in words):
            return action
    return "write"
