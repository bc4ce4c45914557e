"""A question's attachments as the plugin dialect carries them in ``chat/ask``. Pure.

The plugin's ``chat/ask`` has a list for context beside the question, ``extra.context[]``
(PROTOCOL.md section 9, read from the decompiled plugin). The shape of its items has not
been seen on the wire, so this stays conservative: files only, each as
``{"type": "file", "path": <absolute path>, "name": <path in the workspace>}``, with no
content (the binary reads the workspace itself). Whether this Lingma reads them is not
known; the question names nothing else. Folders and images have no field known to work
(``chatContext.imageUrls`` takes URLs of images uploaded to Lingma's cloud), so they are
refused with the backend that can send them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..backend import Attachment, FileAttachment, ImageAttachment
from ..errors import RequestRefused

CLI_BACKEND = "or run lingma-mcp with --backend cli (the Lingma CLI, qoderclicn)"


def context_items(attachments: Sequence[Attachment]) -> list[dict[str, Any]]:
    """The ``extra.context`` items for ``attachments``.

    Raises:
        RequestRefused: an image or a folder (the IDE backend has no way to send one).
    """
    items: list[dict[str, Any]] = []
    for item in attachments:
        if isinstance(item, FileAttachment):
            items.append({"type": "file", "path": str(item.path), "name": item.name})
            continue
        what = "image" if isinstance(item, ImageAttachment) else "folder"
        raise RequestRefused(
            "attachments",
            f"the {what} {item.name} cannot be sent: the IDE backend's plugin protocol has no "
            f"field known to carry a {what}",
            f"files only (type file) with this backend, {CLI_BACKEND}, which sends {what}s",
        )
    return items
