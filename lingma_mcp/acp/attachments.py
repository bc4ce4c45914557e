"""A question and its attachments as the content blocks of one ``session/prompt``. Pure.

ACP lets every agent take ``text`` and ``resource_link`` blocks; ``image`` blocks and
embedded ``resource`` blocks only where the agent declared ``promptCapabilities.image``
and ``promptCapabilities.embeddedContext`` at ``initialize``. So:

- the prompt is the first block, as text;
- a file goes embedded (its text, as read when the question was asked: ACP's preferred
  way to hand over context) where the agent takes embedded context and the face read the
  text; otherwise as a link the agent reads itself (a binary file, a file over the face's
  bound, an agent without embedded context);
- a folder goes as a link (``qoderclicn`` 1.1.52 turns one into an ``@folder/**``
  mention);
- an image goes as an image block, or is refused where the agent did not declare images:
  nothing is sent then, and the refusal says so.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

from acp.helpers import (
    embedded_text_resource,
    image_block,
    resource_block,
    resource_link_block,
    text_block,
)
from acp.schema import (
    EmbeddedResourceContentBlock,
    ImageContentBlock,
    PromptCapabilities,
    ResourceContentBlock,
    TextContentBlock,
)

from lingma_mcp.backend import Attachment, FileAttachment, FolderAttachment, ImageAttachment
from lingma_mcp.errors import RequestRefused

PromptBlock = (
    TextContentBlock | ImageContentBlock | ResourceContentBlock | EmbeddedResourceContentBlock
)

FOLDER_MIME = "inode/directory"


def prompt_blocks(
    prompt: str, attachments: Sequence[Attachment], capabilities: PromptCapabilities | None
) -> list[PromptBlock]:
    """The prompt's blocks: its text, then each attachment in the order given.

    Raises:
        RequestRefused: an image for an agent that did not declare image prompts.
    """
    caps = capabilities if capabilities is not None else PromptCapabilities()
    blocks: list[PromptBlock] = [text_block(prompt)]
    for item in attachments:
        if isinstance(item, ImageAttachment):
            if not caps.image:
                raise RequestRefused(
                    "attachments",
                    f"the image {item.name} cannot be sent: this Lingma CLI did not declare "
                    "image prompts (promptCapabilities.image)",
                    "the attachments without images, and describe the image in the prompt",
                )
            blocks.append(image_block(base64.b64encode(item.data).decode("ascii"), item.mime_type))
        elif isinstance(item, FileAttachment):
            blocks.append(_file_block(item, embed=bool(caps.embedded_context)))
        elif isinstance(item, FolderAttachment):
            blocks.append(resource_link_block(item.name, item.path.as_uri(), mime_type=FOLDER_MIME))
    return blocks


def _file_block(item: FileAttachment, *, embed: bool) -> PromptBlock:
    uri = item.path.as_uri()
    if embed and item.text is not None:
        return resource_block(embedded_text_resource(uri, item.text, mime_type=item.mime_type))
    return resource_link_block(item.name, uri, mime_type=item.mime_type, size=item.size)
