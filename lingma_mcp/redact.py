"""A last line of defence for secrets in log lines and in Lingma's output shown to hosts.

The first line is the allow-list: Lingma's ``auth/status`` reply is parsed into a model
without token fields (``lingma_mcp.lingma.auth``), and every result this server returns is
built field by field. This filter catches what still gets through: a raw payload logged
whole, Lingma's own stderr (which logs its frames, sometimes cut across lines), a traceback.

Three passes, each masking what it finds:

1. ``Bearer <credential>`` / ``Basic <credential>``, whatever precedes it;
2. the value after a secret-named key (``token``, ``refreshToken``, ``password``,
   ``Authorization`` ...), quoted (spaces and escaped quotes inside) or bare;
3. token-shaped values whatever their key, for a value whose key is on another line:
   Lingma's ``pt-``/``rt-`` prefixes (PROTOCOL.md §9), and any run of 20 or more letters
   and digits that mixes both (hex digests, base64 bodies).

Cost: each pass is one ``re.sub`` whose patterns have bounded repetition around a literal
(keys, prefixes) or a single unbounded character class with no alternative after it, so
no position is rescanned more than a constant number of times: linear in the text. A 1 MB
unknown tool name or URI costs milliseconds, not minutes (the old pattern, an unbounded
``[A-Za-z_]*`` before the key, rescanned every run of letters from each of its positions).
"""

from __future__ import annotations

import logging
import re

MASK = "***"

# The longest value the key pass masks; a longer quoted value is masked up to here (the
# rest of a real secret that long is caught by the shape pass).
_MAX_VALUE = 4096

_BEARER = re.compile(r"(?i)\b(?P<scheme>bearer|basic)(?P<gap>[ \t]{1,8})[A-Za-z0-9._~+/=-]{1,4096}")

_KEY = (
    r"(?:token|secret|password|passwd|pwd|api[_-]?key|access[_-]?key|authorization|cookie"
    r"|credential)"
)


def _quoted(quote: str) -> str:
    r"""A value in ``quote`` with its escapes kept inside (``"ab\"cd"`` is one value), or
    the same value quoted inside a quoted string (a frame in a log line: ``\"ab\\\"cd\"``),
    where every escape is doubled. An unclosed quote masks to the end of the line. Each
    alternative of a step opens on a different character, so no position is tried twice."""
    q = re.escape(quote)
    plain = rf"(?:[^{q}\\\n]|\\.)"
    # Escaped once more: two backslashes are one of the inner text, escaping the next inner
    # character (a quote or a backslash, itself escaped); a backslash before any other
    # character is an inner escape (\n); a backslash before the quote closes.
    inner = rf"(?:\\\\(?:\\.|[^\\\n])|\\[^{q}\\\n]|[^{q}\\\n])"
    return (
        rf"(?P<open_{ord(quote)}>{q})(?P<nl_{ord(quote)}>\n?)"
        rf"{plain}{{1,{_MAX_VALUE}}}(?P<close_{ord(quote)}>{q})?"
        r"|"
        rf"(?P<eopen_{ord(quote)}>\\{q})(?P<enl_{ord(quote)}>\n?)"
        rf"{inner}{{1,{_MAX_VALUE}}}(?P<eclose_{ord(quote)}>\\{q})?"
    )


_SECRET = re.compile(
    rf"(?i)(?P<key>{_KEY}[A-Za-z0-9_-]{{0,32}}[\\\"']{{0,3}}[ \t]{{0,8}}[:=][ \t]{{0,8}})"
    r"(?:" + _quoted('"') + r"|" + _quoted("'") + r"|"
    # bare, up to a separator; "Bearer x" is left to the first pass
    rf"(?!(?:bearer|basic)[ \t])(?P<bv>[^\s\"',;}}\]\\]{{1,{_MAX_VALUE}}})"
    r")"
)

# The groups that hold a quoted value's opening, line break and closing, per alternative.
_QUOTED_GROUPS = tuple(
    (f"{kind}open_{ord(quote)}", f"{kind}nl_{ord(quote)}", f"{kind}close_{ord(quote)}")
    for quote in "\"'"
    for kind in ("", "e")
)

_PREFIXED = re.compile(r"(?<![A-Za-z0-9])(?P<prefix>[pr]t-)[A-Za-z0-9._~+/=-]{8,}")
_RUN = re.compile(r"[A-Za-z0-9]{20,}")


def _mask_secret(m: re.Match[str]) -> str:
    for opening, newline, closing in _QUOTED_GROUPS:
        if m.group(opening) is not None:
            quote, closing_quote = m.group(opening), m.group(closing) or ""
            return f"{m.group('key')}{quote}{m.group(newline)}{MASK}{closing_quote}"
    return f"{m.group('key')}{MASK}"


def _mask_run(m: re.Match[str]) -> str:
    run = m.group(0)
    if run.isdigit() or run.isalpha():
        return run  # a long number or word, not a token
    return MASK


def redact(text: str) -> str:
    """``text`` with secret values masked; linear in ``len(text)``."""
    text = _BEARER.sub(lambda m: f"{m.group('scheme')}{m.group('gap')}{MASK}", text)
    text = _SECRET.sub(_mask_secret, text)
    text = _PREFIXED.sub(lambda m: f"{m.group('prefix')}{MASK}", text)
    return _RUN.sub(_mask_run, text)


def redact_lines(lines: list[str]) -> list[str]:
    """Each line redacted, and the whole once more: a key at the end of one line and its
    value at the start of the next are masked too."""
    joined = redact("\n".join(lines))
    return joined.split("\n")


class SecretFilter(logging.Filter):
    """Masks secrets in every record that passes the handler: message, traceback, stack."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is the record's own problem
            message = None
        if message is not None:
            cleaned = redact(message)
            if cleaned != message:
                record.msg = cleaned
                record.args = None
        if record.exc_info and not record.exc_text:
            # A formatter uses exc_text when set: the traceback is formatted once, here,
            # and masked like the message (exception texts can quote a payload).
            record.exc_text = redact(self._formatter.formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True
