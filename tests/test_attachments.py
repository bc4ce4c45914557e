"""ask_lingma's attachments: confined, checked, and carried as each backend's protocol allows.

Pure or file-system-only tests: the face's resolution of items into the contract's values
(``server/attachments.py``), the CLI backend's content blocks (``acp/attachments.py``) and
the IDE backend's context items (``lingma/attachments.py``).
"""

from __future__ import annotations

import base64
import os
import struct
import zlib
from pathlib import Path

import pytest
from acp.schema import PromptCapabilities
from pydantic import TypeAdapter, ValidationError

from lingma_mcp.acp.attachments import prompt_blocks
from lingma_mcp.asking.error_texts import InvalidArgument
from lingma_mcp.backend import FileAttachment, FolderAttachment, ImageAttachment
from lingma_mcp.errors import RequestRefused
from lingma_mcp.lingma.attachments import context_items
from lingma_mcp.server.attachments import (
    MAX_ATTACHMENTS,
    MAX_EMBED_BYTES,
    MAX_IMAGE_BYTES,
    MAX_TOTAL_BYTES,
    AttachmentItem,
    resolve,
    sniff_image,
)


def png() -> bytes:
    """A real 1x1 PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


ITEMS = TypeAdapter(list[AttachmentItem])


def items(*raw: dict) -> list:
    return ITEMS.validate_python(list(raw))


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "src").mkdir(parents=True)
    (root / "src" / "app.py").write_text("print('hi')\n")
    (root / "shot.png").write_bytes(png())
    return root


# -- the item schema -------------------------------------------------------------------------


def test_items_are_told_apart_by_their_type_field():
    parsed = items(
        {"type": "file", "path": "a"},
        {"type": "folder", "path": "b"},
        {"type": "image", "data": "AA==", "mime_type": "image/png"},
    )
    assert [type(i).__name__ for i in parsed] == ["FileItem", "FolderItem", "ImageItem"]


@pytest.mark.parametrize(
    "raw",
    [
        {"type": "video", "path": "a"},
        {"path": "a"},
        {"type": "file"},
        {"type": "file", "path": "a", "data": "AA=="},
        {"type": "image"},
        {"type": "image", "path": "a.png", "data": "AA=="},
    ],
)
def test_an_item_that_is_none_of_the_three_kinds_is_refused_by_the_schema(raw):
    with pytest.raises(ValidationError):
        items(raw)


def test_the_schema_a_host_sees_names_each_kind_and_its_fields():
    schema = ITEMS.json_schema()
    kinds = {d["title"]: d for d in schema["$defs"].values()}
    assert set(kinds) == {"file", "folder", "image"}
    assert set(kinds["image"]["properties"]) == {"type", "path", "data", "mime_type"}
    assert "discriminator" in schema["items"]


# -- resolving items against the workspace -------------------------------------------------


def test_a_text_file_is_read_for_embedding_and_named_relative_to_the_workspace(workspace):
    (found,) = resolve(items({"type": "file", "path": "src/app.py"}), workspace)
    assert isinstance(found, FileAttachment)
    assert found.name == "src/app.py" and found.text == "print('hi')\n"
    assert found.path == (workspace / "src" / "app.py").resolve()
    assert found.size == len("print('hi')\n") and found.mime_type == "text/x-python"


def test_binary_and_large_files_go_by_reference_without_their_content(workspace):
    (workspace / "blob.bin").write_bytes(b"\x00\x01\x02")
    (workspace / "big.txt").write_text("x" * (MAX_EMBED_BYTES + 1))
    blob, big = resolve(
        items({"type": "file", "path": "blob.bin"}, {"type": "file", "path": "big.txt"}),
        workspace,
    )
    assert blob.text is None and blob.mime_type == "application/octet-stream"
    assert big.text is None and big.size == MAX_EMBED_BYTES + 1


@pytest.mark.parametrize("path", ["../outside.txt", "/etc/hostname", "~/x"])
def test_a_path_outside_the_workspace_is_refused_before_anything_is_read(workspace, path):
    with pytest.raises(InvalidArgument, match="outside the workspace"):
        resolve(items({"type": "file", "path": path}), workspace)


def test_a_link_leading_out_of_the_workspace_is_refused(workspace, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("token")
    os.symlink(secret, workspace / "innocent.txt")
    with pytest.raises(InvalidArgument, match="outside the workspace"):
        resolve(items({"type": "file", "path": "innocent.txt"}), workspace)


def test_git_and_the_work_dir_are_never_attached(workspace):
    (workspace / ".git").mkdir()
    (workspace / ".git" / "config").write_text("[core]\n")
    work = workspace / ".lingma-work"
    work.mkdir()
    (work / "answers.json").write_text("{}")
    with pytest.raises(InvalidArgument, match=r"inside \.git"):
        resolve(items({"type": "file", "path": ".git/config"}), workspace)
    with pytest.raises(InvalidArgument, match="never attached"):
        resolve(
            items({"type": "file", "path": ".lingma-work/answers.json"}), workspace, guarded=[work]
        )


def test_a_missing_file_and_the_wrong_kind_say_what_to_send(workspace):
    with pytest.raises(InvalidArgument, match=r"there is no nope\.txt in the workspace"):
        resolve(items({"type": "file", "path": "nope.txt"}), workspace)
    with pytest.raises(InvalidArgument, match="is a folder \\(send it as type folder\\)"):
        resolve(items({"type": "file", "path": "src"}), workspace)
    with pytest.raises(InvalidArgument, match="is not a folder \\(send it as type file\\)"):
        resolve(items({"type": "folder", "path": "src/app.py"}), workspace)


def test_a_folder_is_attached_by_path(workspace):
    (found,) = resolve(items({"type": "folder", "path": "src/"}), workspace)
    assert found == FolderAttachment((workspace / "src").resolve(), "src")


def test_a_workspace_image_is_read_and_typed_by_its_bytes(workspace):
    (found,) = resolve(items({"type": "image", "path": "shot.png"}), workspace)
    assert isinstance(found, ImageAttachment)
    assert found.mime_type == "image/png" and found.data == png() and found.name == "shot.png"


def test_an_inline_image_is_decoded_from_base64_or_a_data_url(workspace):
    data = base64.b64encode(png()).decode()
    plain, url = resolve(
        items(
            {"type": "image", "data": data, "mime_type": "image/png"},
            {"type": "image", "data": f"data:image/png;base64,{data}"},
        ),
        workspace,
    )
    assert (plain.name, url.name) == ("image 1", "image 2")
    assert plain.data == url.data == png() and url.mime_type == "image/png"


@pytest.mark.parametrize(
    ("item", "problem"),
    [
        ({"type": "image", "data": "not base64!", "mime_type": "image/png"}, "not base64"),
        (
            {"type": "image", "data": base64.b64encode(b"hello").decode(), "mime_type": "x"},
            "not a PNG, JPEG, GIF or WebP image",
        ),
        (
            {"type": "image", "data": base64.b64encode(png()).decode(), "mime_type": "image/gif"},
            "is image/png by its bytes, not image/gif",
        ),
        ({"type": "image", "path": "src/app.py"}, "not a PNG, JPEG, GIF or WebP image"),
    ],
)
def test_an_image_that_is_not_what_it_claims_is_refused_clearly(workspace, item, problem):
    with pytest.raises(InvalidArgument, match=problem):
        resolve(items(item), workspace)


def test_an_image_over_the_bound_is_refused_with_the_bound(workspace):
    big = workspace / "huge.png"
    with big.open("wb") as handle:  # sparse: the size alone is over
        handle.write(png())
        handle.truncate(MAX_IMAGE_BYTES + 1)
    with pytest.raises(InvalidArgument, match=r"over the 5\.0 MB bound"):
        resolve(items({"type": "image", "path": "huge.png"}), workspace)
    inline = base64.b64encode(png() + b"\x00" * MAX_IMAGE_BYTES).decode()
    with pytest.raises(InvalidArgument, match=r"image 1 has 5\.0 MB, over the 5\.0 MB bound"):
        resolve(items({"type": "image", "data": inline, "mime_type": "image/png"}), workspace)


def test_what_one_question_carries_is_bounded_text_going_by_reference_past_the_bound(workspace):
    share = MAX_TOTAL_BYTES // 4 - 1024  # four images just under the total
    for n in range(5):
        with (workspace / f"big{n}.png").open("wb") as handle:
            handle.write(png())
            handle.truncate(share)
    (workspace / "notes.txt").write_text("n" * 200_000)
    four = [{"type": "image", "path": f"big{n}.png"} for n in range(4)]
    *images, notes = resolve(items(*four, {"type": "file", "path": "notes.txt"}), workspace)
    assert len(images) == 4 and notes.text is None and notes.size == 200_000
    with pytest.raises(InvalidArgument, match=r"with big4\.png they carry"):
        resolve(items(*four, {"type": "image", "path": "big4.png"}), workspace)


def test_too_many_items_are_refused_and_repeats_count_once(workspace):
    one = {"type": "file", "path": "src/app.py"}
    assert len(resolve(items(one, one, {"type": "file", "path": "./src/app.py"}), workspace)) == 1
    with pytest.raises(InvalidArgument, match=f"over the bound of {MAX_ATTACHMENTS}"):
        resolve(items(*[one] * (MAX_ATTACHMENTS + 1)), workspace)


def test_image_types_are_known_by_their_first_bytes():
    assert sniff_image(png()) == "image/png"
    assert sniff_image(b"\xff\xd8\xff\xe0rest") == "image/jpeg"
    assert sniff_image(b"GIF89a...") == "image/gif"
    assert sniff_image(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image/webp"
    assert sniff_image(b"<svg/>") is None


# -- the CLI backend: ACP content blocks by the capabilities the CLI declared ---------------

FILE = FileAttachment(Path("/ws/a.txt"), "a.txt", "text/plain", 6, "alpha\n")
BINARY = FileAttachment(Path("/ws/b.bin"), "b.bin", "application/octet-stream", 3, None)
FOLDER = FolderAttachment(Path("/ws/src"), "src")
IMAGE = ImageAttachment(png(), "image/png", "shot.png", Path("/ws/shot.png"))


def dumped(blocks: list) -> list[dict]:
    return [b.model_dump(by_alias=True, exclude_none=True) for b in blocks]


def test_the_cli_gets_embedded_files_folder_links_and_images_where_declared():
    caps = PromptCapabilities(image=True, embedded_context=True)
    blocks = dumped(prompt_blocks("look", [FILE, BINARY, FOLDER, IMAGE], caps))
    assert blocks == [
        {"type": "text", "text": "look"},
        {
            "type": "resource",
            "resource": {"uri": "file:///ws/a.txt", "text": "alpha\n", "mimeType": "text/plain"},
        },
        {
            "type": "resource_link",
            "name": "b.bin",
            "uri": "file:///ws/b.bin",
            "mimeType": "application/octet-stream",
            "size": 3,
        },
        {
            "type": "resource_link",
            "name": "src",
            "uri": "file:///ws/src",
            "mimeType": "inode/directory",
        },
        {"type": "image", "data": base64.b64encode(png()).decode(), "mimeType": "image/png"},
    ]


def test_without_embedded_context_files_go_as_links_every_agent_takes():
    (_, block) = dumped(prompt_blocks("look", [FILE], PromptCapabilities(image=True)))
    assert block["type"] == "resource_link" and block["uri"] == "file:///ws/a.txt"


def test_an_image_for_a_cli_that_declared_no_images_is_refused_before_sending():
    with pytest.raises(RequestRefused) as caught:
        prompt_blocks("look", [FILE, IMAGE], PromptCapabilities(embedded_context=True))
    assert caught.value.argument == "attachments"
    assert "promptCapabilities.image" in caught.value.problem and "shot.png" in caught.value.problem


# -- the IDE backend: files as chat context, the rest refused naming the CLI backend --------


def test_the_ide_backend_sends_files_as_context_items_by_path():
    assert context_items([FILE]) == [{"type": "file", "path": "/ws/a.txt", "name": "a.txt"}]


@pytest.mark.parametrize("item", [IMAGE, FOLDER])
def test_the_ide_backend_refuses_images_and_folders_naming_the_cli_backend(item):
    with pytest.raises(RequestRefused) as caught:
        context_items([FILE, item])
    assert item.name in caught.value.problem and "--backend cli" in caught.value.send
