"""Cheap, honest problem reports: syntax checks with parsers that are at hand, nothing else.

An IDE answers ``get_problems`` from its language servers; outside one the honest answer is
what a parser can prove. Python is compiled (never run), JSON and TOML are parsed, YAML
only when a YAML parser is installed. Any other file yields no problems: an empty list
means "nothing found", never "checked and clean".
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

Problem = dict[str, Any]


def _problem(file: str, line: int | None, column: int | None, message: str, source: str) -> Problem:
    return {
        "file": file,
        "line": line,
        "column": column,
        "message": message,
        "severity": "error",
        "source": source,
    }


def _python(file: str, text: str) -> list[Problem]:
    try:
        compile(text, file, "exec", dont_inherit=True)
    except SyntaxError as exc:
        return [_problem(file, exc.lineno, exc.offset, exc.msg, "python")]
    except ValueError as exc:  # e.g. source with NUL bytes
        return [_problem(file, None, None, str(exc), "python")]
    return []


def _json(file: str, text: str) -> list[Problem]:
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        return [_problem(file, exc.lineno, exc.colno, exc.msg, "json")]
    return []


_TOML_AT = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")


def _toml_parser() -> Any:
    try:
        import tomllib  # Python 3.11+

        return tomllib
    except ModuleNotFoundError:  # pragma: no cover - Python 3.10
        try:
            import tomli  # type: ignore[import-not-found]

            return tomli
        except ModuleNotFoundError:
            return None


def _toml(file: str, text: str) -> list[Problem]:
    parser = _toml_parser()
    if parser is None:  # pragma: no cover - Python 3.10 without tomli
        return []
    try:
        parser.loads(text)
    except parser.TOMLDecodeError as exc:
        message = str(exc)
        found = _TOML_AT.search(message)
        if found:
            return [_problem(file, int(found[1]), int(found[2]), message[: found.start()], "toml")]
        return [_problem(file, None, None, message, "toml")]
    return []


def _yaml(file: str, text: str) -> list[Problem]:
    try:
        import yaml  # type: ignore[import-untyped]
    except ImportError:
        return []
    try:
        for _ in yaml.safe_load_all(text):
            pass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else None
        column = mark.column + 1 if mark is not None else None
        return [_problem(file, line, column, str(exc.problem or exc), "yaml")]
    except yaml.YAMLError as exc:
        return [_problem(file, None, None, str(exc), "yaml")]
    return []


_CHECKS: dict[str, Callable[[str, str], list[Problem]]] = {
    ".py": _python,
    ".pyi": _python,
    ".json": _json,
    ".toml": _toml,
    ".yaml": _yaml,
    ".yml": _yaml,
}


def has_check(suffix: str) -> bool:
    """True when files with this suffix get a syntax check."""
    return suffix.lower() in _CHECKS


def check_text(file: str, suffix: str, text: str) -> list[Problem]:
    """The syntax problems of ``text`` (named ``file`` in the reports), or ``[]``."""
    check = _CHECKS.get(suffix.lower())
    return check(file, text) if check is not None else []
