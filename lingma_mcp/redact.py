"""A last line of defence for secrets in log lines.

The first line is the allow-list: Lingma's ``auth/status`` reply is parsed into a model
without token fields (``lingma_mcp.lingma.auth``), and every result this server returns is
built field by field. This filter catches what a future change might still let through: a
raw payload logged whole, with ``token``-like keys in it.
"""

from __future__ import annotations

import logging
import re

MASK = "***"

# A key that names a secret, then its quoted or bare value: "token": "abc", token=abc,
# 'refreshToken': 'abc', "accessToken":"abc" ...
_SECRET = re.compile(
    r"""(?P<key>["']?[A-Za-z_]*(?:token|Token|TOKEN|secret|Secret|password|Password)["']?"""
    r"""\s*[:=]\s*)(?P<q>["']?)(?P<value>[^"',\s}\]]+)(?P=q)"""
)


def redact(text: str) -> str:
    """``text`` with the values of secret-named keys masked."""
    return _SECRET.sub(lambda m: f"{m.group('key')}{m.group('q')}{MASK}{m.group('q')}", text)


class SecretFilter(logging.Filter):
    """Masks secret-named values in every record that passes the handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is the record's own problem
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = None
        return True
