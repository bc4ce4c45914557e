"""The change review page: one self-contained HTML document, built from the package's files.

A host renders an MCP App's ``ui://`` resource in a sandboxed iframe whose default policy
allows inline scripts and styles and nothing from the network (MCP Apps 2026-01-26, "UI
Resource Format"). So the page's libraries (diff2html with its highlight.js, vendored under
``review/vendor``; see its README) cannot be fetched from anywhere: every
``<style data-inline>`` and ``<script data-inline>`` of ``review/review.html`` is replaced by
the file it names. The document is built once per process (about 330 kB) and kept.
"""

from __future__ import annotations

import functools
import re
from importlib import resources

FOLDER = "review"
TEMPLATE = "review.html"

_INLINE = re.compile(
    r'<(?P<tag>style|script) data-inline="(?P<name>[\w./-]+)"'
    r"(?: data-scope='(?P<scope>[^']+)')?></(?P=tag)>"
)
# Inside <script>, the HTML parser ends the element at "</script" and changes state at
# "<!--" and "<script"; written as "\x3C" (a "<" to JavaScript, in strings, regular
# expressions and templates alike), they are only text. diff2html's bundle has two.
_SCRIPT_HAZARD = re.compile(r"<(?=!--|/?script)", re.IGNORECASE)
_STYLE_HAZARD = re.compile(r"</style", re.IGNORECASE)


class PageError(RuntimeError):
    """The page's files are missing or cannot be inlined safely (a broken install)."""


def read_file(name: str) -> str:
    """One file of the page, by its path under ``review/``.

    Raises:
        PageError: the file is not in the installed package.
    """
    path = resources.files(__package__).joinpath(FOLDER, *name.split("/"))
    try:
        return path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        raise PageError(
            f"the review page's file {FOLDER}/{name} is missing from the installed package; "
            "reinstall lingma-mcp"
        ) from None


def script_text(source: str) -> str:
    """JavaScript made safe to stand between ``<script>`` and ``</script>``."""
    return _SCRIPT_HAZARD.sub(r"\\x3C", source)


def style_text(source: str, scope: str | None = None) -> str:
    """CSS for a ``<style>`` element, nested under ``scope`` when given.

    Raises:
        PageError: the CSS holds ``</style`` (no CSS needs it; it would end the element).
    """
    if _STYLE_HAZARD.search(source):
        raise PageError("a style sheet of the review page contains '</style'")
    # Nesting scopes a whole sheet (the dark highlight theme under the dark page).
    return f"{scope}{{\n{source}\n}}" if scope else source


def build_page() -> str:
    """The page with every marked style and script inlined.

    Raises:
        PageError: a file is missing or cannot be inlined.
    """

    def inline(found: re.Match[str]) -> str:
        tag, name, scope = found["tag"], found["name"], found["scope"]
        source = read_file(name)
        if tag == "script":
            return f"<script>\n{script_text(source)}\n</script>"
        return f"<style>\n{style_text(source, scope)}\n</style>"

    return _INLINE.sub(inline, read_file(TEMPLATE))


@functools.cache
def review_page() -> str:
    """The page, built on first use and kept for the life of the process."""
    return build_page()
