"""The change review as an MCP App, without a browser: what a host reads and calls.

The server runs in-process (the SDK's ``Client(app)``) on the scripted Lingma of
``fakes.py``; each test pins what a host sees: the tools that name the review
page, the page as a resource (self-contained, safe to inline), ``review_changes`` as data
and as text, ``revert_changes(paths=...)``. The page's behaviour in a real browser is
``test_review_browser.py``'s.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import pytest
from fakes import DONE, EDITS, Invoke, Person, agent_app
from mcp import Client
from mcp.client.extension import advertise
from mcp.server.apps import APP_MIME_TYPE, EXTENSION_ID

from lingma_mcp.asking import agent_calls as agent
from lingma_mcp.server.review_app import REVIEW_URI, git_headers, split_notes
from lingma_mcp.server.review_page import (
    PageError,
    build_page,
    read_file,
    script_text,
    style_text,
)
from lingma_mcp.workspace import (
    ApprovalGate,
    ChangeJournal,
    WorkspaceHost,
    parse_policy,
)

pytestmark = pytest.mark.timeout(30)

APPS = advertise(EXTENSION_ID, {"mimeTypes": [APP_MIME_TYPE]})
VENDOR = Path(__file__).parent.parent / "lingma_mcp" / "server" / "review" / "vendor"


def host(app: Any, **options: Any) -> Client:
    return Client(app, mode="legacy", extensions=[APPS], **options)


async def agent_call(client: Client) -> str:
    """An agent-mode ask whose three edits the person approves; its request id."""
    result = await client.call_tool("ask_lingma", {"prompt": "edit"})
    assert not result.is_error, result.content
    return result.structured_content["request_id"]


# -- what the host discovers ---------------------------------------------------------------


async def test_ask_lingma_and_review_changes_name_the_review_page(
    tmp_path: Path, project: Path
) -> None:
    app, _ = agent_app(tmp_path, project, EDITS)
    async with host(app) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    # The capability travels where the protocol has a field for it (2026-07-28 on).
    async with Client(app, mode="auto", extensions=[APPS]) as client:
        capabilities = client.server_capabilities
    for name in ("ask_lingma", "review_changes"):
        assert tools[name].meta["ui"] == {"resourceUri": REVIEW_URI}, name
    # The page is linked, nothing else changes: ask_lingma keeps its own _meta.
    assert "anthropic/maxResultSizeChars" in tools["ask_lingma"].meta
    assert tools["review_changes"].annotations.read_only_hint is True
    assert "paths" in tools["revert_changes"].input_schema["properties"]
    assert EXTENSION_ID in (capabilities.extensions or {})


async def test_the_page_is_an_mcp_app_that_loads_nothing_from_anywhere(
    tmp_path: Path, project: Path
) -> None:
    app, _ = agent_app(tmp_path, project, EDITS)
    async with host(app) as client:
        listed = [str(r.uri) for r in (await client.list_resources()).resources]
        read = await client.read_resource(REVIEW_URI)
    assert REVIEW_URI in listed
    page = read.contents[0]
    assert page.mime_type == APP_MIME_TYPE
    html = page.text
    assert html.startswith("<!doctype html>")
    # Everything inlined: no element that loads a file, no style that fetches one.
    assert not re.search(r"<(script|link|img|iframe)\b[^>]*\b(src|href)=", html, re.I)
    styles = "".join(re.findall(r"<style>(.*?)</style>", html, re.S))
    assert styles and not re.search(r"@import|url\(", styles, re.I)
    assert not re.search(r"<(style|script) data-inline", html)
    assert "Diff2HtmlUI" in html and ".d2h-file-wrapper" in html and ".hljs-keyword" in html


def test_the_inlined_scripts_can_only_end_where_the_page_ends_them() -> None:
    marked = re.findall(r"<(style|script) data-inline=", read_file("review.html"))
    assert marked == ["style"] * 4 + ["script"] * 2
    built = build_page()
    # Only the page's own two scripts open and close; none of the bundle's text can.
    assert len(re.findall(r"<script", built, re.I)) == 2
    assert len(re.findall(r"</script", built, re.I)) == 2
    assert "<!--" not in built.split("<head>", 1)[1]


def test_script_text_hides_what_the_html_parser_would_act_on() -> None:
    source = 'const a = /<!--/, b = "</script>", c = `<SCRIPT src=x>`;'
    safe = script_text(source)
    assert not re.search(r"<(!--|/?script)", safe, re.I)
    # The same characters to JavaScript: each "<" became the escape "\x3C".
    assert safe == source.replace("<", "\\x3C")
    assert style_text(".a{}", 'html[data-theme="dark"]') == 'html[data-theme="dark"]{\n.a{}\n}'
    with pytest.raises(PageError, match="</style"):
        style_text("a{content:'</style>'}")


def test_the_vendored_files_are_the_ones_recorded_with_their_checksums() -> None:
    readme = (VENDOR / "README.md").read_text()
    recorded = dict(
        (name, digest) for digest, name in re.findall(r"^([0-9a-f]{64})  (\S+)$", readme, re.M)
    )
    shipped = sorted(p.name for p in VENDOR.iterdir() if p.suffix in (".js", ".css"))
    assert sorted(recorded) == shipped
    for name, digest in recorded.items():
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == digest, name
    # Each vendored package's licence is shipped beside it.
    for licence in ("diff2html.md", "highlight.js.txt", "jsdiff.txt", "hogan.txt"):
        assert (VENDOR / f"LICENSE-{licence}").stat().st_size > 500


# -- review_changes ------------------------------------------------------------------------


async def test_review_changes_gives_the_files_the_approvals_and_the_diff(
    tmp_path: Path, project: Path
) -> None:
    app, _ = agent_app(tmp_path, project, EDITS)
    person = Person("approve", "approve", "approve")
    async with host(app, elicitation_callback=person) as client:
        request_id = await agent_call(client)
        result = await client.call_tool("review_changes", {"request_id": f" {request_id} "})
    assert not result.is_error
    review = result.structured_content
    assert review["request_id"] == request_id and review["running"] is False
    # Each change with the tool that made it (checkpoints list them in path order).
    assert sorted((c["path"], c["action"], c["by"]) for c in review["changes"]) == [
        ("keep.txt", "modified", "replace_text_by_path"),
        ("notes/new.txt", "created", "create_file_with_text"),
        ("old.txt", "deleted", "delete_file_by_path"),
    ]
    assert [(a["tool"], a["decision"], a["by"]) for a in review["approvals"]] == [
        ("create_file_with_text", "allowed", "person"),
        ("replace_text_by_path", "allowed", "person"),
        ("delete_file_by_path", "allowed", "person"),
    ]
    assert "+++ b/notes/new.txt" in review["diff"] and "-two\n+2\n" in review["diff"]
    assert review["notes"] == []
    # The same for a reader of text: the list, the approvals, the diff, how to undo.
    text = result.content[0].text
    assert text.startswith(f"Call {request_id} changed 3 files.")
    assert "- keep.txt: modified (+1 -1, by replace_text_by_path)" in text
    assert "- allowed delete_file_by_path old.txt (by person)" in text
    assert "-two\n+2" in text
    assert f'revert_changes(request_id="{request_id}")' in text


async def test_a_call_whose_every_action_was_denied_still_has_a_review(
    tmp_path: Path, project: Path
) -> None:
    app, _ = agent_app(tmp_path, project, EDITS)
    async with host(app, elicitation_callback=Person("deny", "deny", "deny")) as client:
        request_id = await agent_call(client)
        result = await client.call_tool("review_changes", {"request_id": request_id})
    review = result.structured_content
    assert review["changes"] == [] and review["diff"] == ""
    assert {a["decision"] for a in review["approvals"]} == {"denied"}
    assert "changed 0 files" in result.content[0].text


async def test_review_of_an_unknown_call_says_which_request_id_to_pass(
    tmp_path: Path, project: Path
) -> None:
    app, _ = agent_app(tmp_path, project, EDITS)
    async with host(app) as client:
        result = await client.call_tool("review_changes", {"request_id": "no-such-call"})
    assert result.is_error
    text = result.content[0].text
    assert "no-such-call" in text and "request_id of an agent-mode result" in text


async def test_approvals_are_forgotten_after_the_last_calls_kept(
    tmp_path: Path, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(agent, "KEPT_APPROVALS", 1)
    script = [Invoke("create_file_with_text", {"filePath": "a.txt", "text": "a\n"}), *DONE]
    app, _ = agent_app(tmp_path, project, script, approval="write=allow")
    async with host(app) as client:
        first = await agent_call(client)
        (project / "a.txt").unlink()
        second = await agent_call(client)
        old = await client.call_tool("review_changes", {"request_id": first})
        new = await client.call_tool("review_changes", {"request_id": second})
    # The changes stay on record; approvals are kept in memory for the latest calls only.
    assert [c["path"] for c in old.structured_content["changes"]] == ["a.txt"]
    assert old.structured_content["approvals"] is None
    assert [a["by"] for a in new.structured_content["approvals"]] == ["policy"]


def test_notes_are_lifted_out_of_the_diff_and_the_patch_is_kept_whole() -> None:
    patch = "diff --git a/a b/a\n--- a/a\n+++ b/a\n@@ -1 +1 @@\n-x\n+# not a note\n"
    diff = (
        patch
        + "# big.bin: left out of the checkpoints (12 MB)\n"
        + "\n[lingma-mcp: the diff is cut at 200,000 characters: 3 more lines]\n"
    )
    assert split_notes(diff) == (
        patch,
        [
            "# big.bin: left out of the checkpoints (12 MB)",
            "[lingma-mcp: the diff is cut at 200,000 characters: 3 more lines]",
        ],
    )
    assert split_notes("") == ("", [])


# -- revert_changes(paths=...) ----------------------------------------------------------------


async def test_revert_with_paths_puts_back_only_those_and_refuses_the_unknown(
    tmp_path: Path, project: Path
) -> None:
    app, _ = agent_app(tmp_path, project, EDITS)
    async with host(app, elicitation_callback=Person("approve", "approve", "approve")) as client:
        request_id = await agent_call(client)
        one = await client.call_tool(
            "revert_changes", {"request_id": request_id, "paths": ["keep.txt", "nope.txt"]}
        )
        again = await client.call_tool(
            "revert_changes", {"request_id": request_id, "paths": ["keep.txt"]}
        )
        rest = await client.call_tool("revert_changes", {"request_id": request_id})
    assert one.structured_content == {
        "request_id": request_id,
        "restored": ["keep.txt"],
        "refused": [{"path": "nope.txt", "reason": "this call did not change it"}],
    }
    assert again.structured_content["refused"] == [
        {"path": "keep.txt", "reason": "already reverted"}
    ]
    # The whole call afterwards: the other two files, keep.txt as already done.
    assert sorted(rest.structured_content["restored"]) == ["notes/new.txt", "old.txt"]
    assert (project / "keep.txt").read_text() == "one\ntwo\n"
    assert (project / "old.txt").read_text() == "bye\n"
    assert not (project / "notes" / "new.txt").exists()


async def test_revert_with_an_empty_list_of_paths_is_refused_saying_what_to_send(
    tmp_path: Path, project: Path
) -> None:
    app, _ = agent_app(tmp_path, project, EDITS)
    async with host(app) as client:
        result = await client.call_tool("revert_changes", {"request_id": "x", "paths": []})
    assert result.is_error
    assert result.content[0].text.startswith("Invalid argument paths: it is empty. Send ")


async def test_the_journal_reverts_only_the_paths_named(tmp_path: Path, project: Path) -> None:
    journal = ChangeJournal(tmp_path / "work")
    gate = ApprovalGate(parse_policy("write=allow,delete=allow"))
    ws = WorkspaceHost(project, gate, journal.begin("r1", project))
    await ws.write_text("keep.txt", "changed\n")
    await ws.delete("old.txt")
    await ws.close()
    outcome = journal.revert("r1", project, paths=["old.txt", "elsewhere.txt"])
    assert outcome == {
        "request_id": "r1",
        "restored": ["old.txt"],
        "refused": [{"path": "elsewhere.txt", "reason": "this call did not change it"}],
    }
    assert (project / "keep.txt").read_text() == "changed\n"


def test_plain_unified_diffs_get_the_git_headers_that_tell_created_from_renamed() -> None:
    journal_diff = (
        "--- /dev/null\n+++ b/notes/new.txt\n@@ -0,0 +1 @@\n+hello\n"
        # A removed line "-- two" and an added "++ 2" look like headers; the counts say not.
        "--- a/keep.txt\n+++ b/keep.txt\n@@ -1,2 +1,2 @@\n one\n--- two\n+++ 2\n"
        "--- a/old.txt\n+++ /dev/null\n@@ -1 +0,0 @@\n-bye\n\\ No newline at end of file\n"
    )
    assert git_headers(journal_diff) == (
        "diff --git a/notes/new.txt b/notes/new.txt\nnew file mode 100644\n"
        "--- /dev/null\n+++ b/notes/new.txt\n@@ -0,0 +1 @@\n+hello\n"
        "diff --git a/keep.txt b/keep.txt\n"
        "--- a/keep.txt\n+++ b/keep.txt\n@@ -1,2 +1,2 @@\n one\n--- two\n+++ 2\n"
        "diff --git a/old.txt b/old.txt\ndeleted file mode 100644\n"
        "--- a/old.txt\n+++ /dev/null\n@@ -1 +0,0 @@\n-bye\n\\ No newline at end of file\n"
    )
    # What git wrote already is left alone.
    from_git = (
        "diff --git a/x.py b/x.py\nnew file mode 100644\nindex 0000000..e69de29\n"
        "--- /dev/null\n+++ b/x.py\n@@ -0,0 +1 @@\n+pass\n"
    )
    assert git_headers(from_git) == from_git
