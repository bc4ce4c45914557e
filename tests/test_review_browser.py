"""The review page in headless Chromium, hosted the way an MCP Apps host hosts it.

``review_host.py`` puts the page (read from the server as a host reads it) into a
sandboxed iframe under the Apps spec's default policy and plays the host's side of its
JSON-RPC, forwarding the page's ``tools/call`` to the real server. The main test hands it
a real agent-mode call made on the simulator, clicks its revert buttons with the mouse and
checks what reached the server and the files on disk. The others feed the page crafted
results: what it must show nothing for, and text it must never run.

Skipped, saying why, where Chromium is not installed (``.ci/run`` installs Debian's).

Run as a script, ``python tests/test_review_browser.py docs/review-app.png`` takes the
README's screenshot of the main test's review.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from fakes import Person
from mcp import Client
from mcp.client.extension import advertise
from mcp.server.apps import APP_MIME_TYPE, EXTENSION_ID
from review_host import ReviewHost, chromium, find_chromium
from servers import mcp_server

from lingma_mcp.server.review_page import review_page

CHROMIUM = find_chromium()
pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="Chromium is not installed (apt-get install chromium; .ci/run does), or set "
        "LINGMA_TEST_CHROMIUM to a Chromium or Chrome binary",
    ),
]

APP_PY = 'def greet(name):\n    return "hi " + name\n\n\nprint(greet("lingma"))\n'
README = "# demo\n\nSays hello.\n"
NEW_APP_PY = (
    "def greet(name: str) -> str:\\n"
    '    """Greet someone politely."""\\n'
    '    return f"Hello, {name}!"\\n\\n\\n'
    'print(greet("lingma"))\\n'
)
PROMPT = "\n".join(
    [
        "Make greet polite, note what is left to do, drop old.txt",
        f"@replace app.py {NEW_APP_PY}",
        "@create notes/todo.md # To do\\n\\n- tests for greet\\n",
        "@delete old.txt",
        "@run sed -i s/demo/greeter/ README.md",
        "@run rm -rf build",
    ]
)


def as_json(result: Any) -> dict[str, Any]:
    """A tool result as it travels to the page (the wire's camelCase names)."""
    return result.model_dump(mode="json", by_alias=True, exclude_none=True)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "app.py").write_text(APP_PY)
    (folder / "old.txt").write_text("bye\n")
    (folder / "README.md").write_text(README)
    return folder.resolve()


@asynccontextmanager
async def agent_server(tmp_path: Path, project: Path) -> AsyncIterator[Client]:
    """The real server on the simulator, for a host that declares MCP Apps; the person
    approves the edits and the sed, not the rm."""
    person = Person("approve", "approve", "approve", "approve", "deny")
    apps = advertise(EXTENSION_ID, {"mimeTypes": [APP_MIME_TYPE]})
    host = {"elicitation_callback": person, "extensions": [apps]}
    async with mcp_server(tmp_path, workspace=project, mode="agent", host=host) as client:
        yield client


@asynccontextmanager
async def hosted_page(
    profile: Path, html: str, client: Client | None = None, **options: Any
) -> AsyncIterator[ReviewHost]:
    """The page in a browser, its ``tools/call`` forwarded to ``client``."""

    async def call_tool(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        assert client is not None, f"the page called {name} where no server was expected"
        return as_json(await client.call_tool(name, arguments))

    assert CHROMIUM is not None
    async with chromium(CHROMIUM, profile) as cdp:
        host = ReviewHost(cdp, call_tool, **options)
        try:
            await host.open(html)
            yield host
        finally:
            await host.close()


async def review_of_an_agent_call(
    client: Client, host: ReviewHost
) -> tuple[dict[str, Any], dict[str, Any]]:
    """An agent-mode ask, its result handed to the page as a host would; the ask's
    structured result and the review the page asked for, once it is drawn."""
    arguments = {"prompt": PROMPT}
    result = await client.call_tool("ask_lingma", arguments)
    assert not result.is_error, result.content
    await host.show_tool_call(arguments, as_json(result))
    files = len(result.structured_content["changes"])
    await host.wait_for(
        "document.querySelector('#review[data-state=ready]')"
        f" && document.querySelectorAll('.d2h-file-wrapper').length === {files}"
    )
    request_id = result.structured_content["request_id"]
    review = await client.call_tool("review_changes", {"request_id": request_id})
    return result.structured_content, review.structured_content


ROWS = """[...document.querySelectorAll('#files tr')].map((row) => ({
    path: row.dataset.path,
    change: row.children[1].textContent,
    by: row.children[3].textContent,
    revert: row.children[4].textContent}))"""


async def test_a_real_agent_call_is_reviewed_and_reverted_through_the_host(
    tmp_path: Path, project: Path
) -> None:
    async with agent_server(tmp_path, project) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        uri = tools["ask_lingma"].meta["ui"]["resourceUri"]
        html = (await client.read_resource(uri)).contents[0].text
        async with hosted_page(tmp_path / "profile", html, client) as host:
            ask, review = await review_of_an_agent_call(client, host)
            request_id = ask["request_id"]
            # The page asked the server, through the host, for the diff of that call.
            assert host.tool_calls == [
                {"name": "review_changes", "arguments": {"request_id": request_id}}
            ]
            rows = await host.evaluate(ROWS)
            approvals = await host.evaluate(
                "[...document.querySelectorAll('#approvals li')].map((li) => li.textContent)"
            )
            highlighted = await host.evaluate(
                "document.querySelectorAll('.d2h-file-wrapper [class^=hljs-]').length"
            )
            summary = await host.evaluate("document.getElementById('summary').textContent")

            await host.click('tr[data-path="app.py"] .revert-file')
            await host.wait_for(
                "document.querySelector('tr[data-path=\"app.py\"] .outcome.restored')"
            )
            app_py_after_one = (project / "app.py").read_text()
            todo_after_one = (project / "notes" / "todo.md").exists()

            await host.click("#revert-all")  # the first click asks again
            await host.wait_for("document.getElementById('revert-all').dataset.armed")
            await host.click("#revert-all")
            await host.wait_for(
                "document.querySelectorAll('#files .outcome.restored').length === 4"
            )
            status = await host.evaluate("document.getElementById('status').textContent")
            buttons_left = await host.evaluate("document.querySelectorAll('.revert-file').length")
            problems = list(host.problems)

    # What the page shows is the call: its files, who made each change, its approvals.
    assert [(r["path"], r["change"]) for r in rows] == [
        ("README.md", "modified"),
        ("app.py", "modified"),
        ("notes/todo.md", "created"),
        ("old.txt", "deleted"),
    ]
    made_by = {c["path"]: c["by"] or "\u2014" for c in review["changes"]}
    assert {r["path"]: r["by"] for r in rows} == made_by
    # The command's edit is the command's, not the last tool's.
    assert made_by["README.md"] == "command: sed -i s/demo/greeter/ README.md"
    assert made_by["app.py"] == "replace_text_by_path"
    assert all(r["revert"] == "Revert" for r in rows)
    added = sum(c["lines_added"] for c in ask["changes"])
    removed = sum(c["lines_removed"] for c in ask["changes"])
    assert (added, removed) == (7, 4)
    assert summary == f"Call {request_id} \u00b7 4 files \u00b7 +{added} \u2212{removed}"
    assert [(a["decision"], a["tool"], a["target"], a["by"]) for a in ask["approvals"]] == [
        ("allowed", "replace_text_by_path", "app.py", "person"),
        ("allowed", "create_file_with_text", "notes/todo.md", "person"),
        ("allowed", "delete_file_by_path", "old.txt", "person"),
        ("allowed", "run_in_terminal", "sed -i s/demo/greeter/ README.md", "person"),
        ("denied", "run_in_terminal", "rm -rf build", "person"),
    ]
    marks = {"allowed": "\u2713 allowed", "denied": "\u2717 denied"}
    assert approvals == [
        f"{marks[a['decision']]} {a['tool']} {a['target']} by {a['by']}" for a in ask["approvals"]
    ]
    assert highlighted > 0  # the Python file's diff is highlighted
    # One file, then the rest: each click sent the tools/call a person would expect.
    assert host.tool_calls[1:] == [
        {"name": "revert_changes", "arguments": {"request_id": request_id, "paths": ["app.py"]}},
        {"name": "revert_changes", "arguments": {"request_id": request_id}},
    ]
    assert app_py_after_one == APP_PY and todo_after_one
    assert (project / "old.txt").read_text() == "bye\n"
    assert (project / "README.md").read_text() == README
    assert not (project / "notes" / "todo.md").exists()
    assert "Restored 3 file(s)" in status and "app.py: already reverted" in status
    assert buttons_left == 0
    assert problems == []


async def test_a_chat_answer_shows_nothing_and_asks_the_server_nothing(tmp_path: Path) -> None:
    chat = {
        "content": [{"type": "text", "text": "An answer."}],
        "structuredContent": {
            "answer": "An answer.",
            "mode": "chat",
            "request_id": "r1",
            "status": "done",
            "changes": [],
            "approvals": [],
        },
    }
    async with hosted_page(tmp_path / "profile", review_page()) as host:
        await host.show_tool_call({"prompt": "hi"}, chat)
        await host.wait_for("document.querySelector('#review[data-state=empty]')")
        sizes = [p for m, p in host.notifications if m == "ui/notifications/size-changed"]
        hidden = await host.evaluate("document.getElementById('review').hidden")
    assert hidden and host.tool_calls == []
    assert sizes[-1] == {"width": 0, "height": 0}  # an inline frame takes no room


async def test_text_from_the_call_is_shown_as_text_and_never_run(tmp_path: Path) -> None:
    evil = '<img src=x onerror="document.title=1">'
    review = {
        "content": [{"type": "text", "text": "review"}],
        "structuredContent": {
            "request_id": "r2",
            "running": False,
            "changes": [
                {
                    "path": f"{evil}.txt",
                    "action": "created",
                    "lines_added": 1,
                    "lines_removed": 0,
                    "by": f"command: echo {evil}",
                }
            ],
            "approvals": [
                {
                    "tool": "run_in_terminal",
                    "target": f"echo {evil}",
                    "decision": "allowed",
                    "by": "person",
                }
            ],
            "diff": f"--- /dev/null\n+++ b/{evil}.txt\n@@ -0,0 +1 @@\n+{evil}\n",
            "notes": [f"# {evil}: a note"],
        },
    }
    async with hosted_page(tmp_path / "profile", review_page()) as host:
        await host.show_tool_call({"request_id": "r2"}, review)
        await host.wait_for("document.querySelector('#review[data-state=ready] .d2h-file-wrapper')")
        images = await host.evaluate("document.querySelectorAll('img').length")
        title = await host.evaluate("document.title")
        path = await host.evaluate("document.querySelector('#files td.path').textContent")
        diff_text = await host.evaluate("document.getElementById('diff').textContent")
        note = await host.evaluate("document.getElementById('notes').textContent")
    assert images == 0 and title == "Lingma's changes"
    assert path == f"{evil}.txt" and evil in diff_text and note == f"# {evil}: a note"
    assert host.problems == []


async def test_an_ask_shown_by_a_host_that_forwards_nothing_says_how_to_revert(
    tmp_path: Path,
) -> None:
    ask = {
        "content": [{"type": "text", "text": "Done."}],
        "structuredContent": {
            "answer": "Done.",
            "mode": "agent",
            "request_id": "r3",
            "status": "done",
            "changes": [
                {"path": "a.txt", "action": "created", "lines_added": 1, "lines_removed": 0}
            ],
            "approvals": [
                {"tool": "Write", "target": "a.txt", "decision": "allowed", "by": "policy"}
            ],
        },
    }
    async with hosted_page(tmp_path / "profile", review_page(), server_tools=False) as host:
        await host.show_tool_call({"prompt": "make a.txt", "mode": "agent"}, ask)
        await host.wait_for("document.querySelector('#review[data-state=ready] #files tr')")
        notice = await host.evaluate("document.getElementById('notice').textContent")
        diff = await host.evaluate("document.getElementById('diff').textContent")
        disabled = await host.evaluate(
            "[...document.querySelectorAll('button.danger')].map((b) => b.disabled)"
        )
        approval = await host.evaluate("document.querySelector('#approvals li').textContent")
    # What the result itself carries is shown; nothing is asked of a host that cannot pass it.
    assert host.tool_calls == []
    assert "revert_changes with request_id r3" in notice
    assert diff == "The diff is in lingma://changes/r3."
    assert disabled == [True, True]  # "Revert all" and the file's own button
    assert approval == "\u2713 allowed Write a.txt by policy"


async def test_an_error_result_is_shown_to_the_person(tmp_path: Path) -> None:
    failed = {
        "content": [{"type": "text", "text": "no changes are recorded for 'x'"}],
        "isError": True,
    }
    async with hosted_page(tmp_path / "profile", review_page()) as host:
        await host.show_tool_call({"request_id": "x"}, failed)
        status = await host.wait_for(
            "document.querySelector('#review[data-state=ready] .status.error')?.textContent"
        )
        shown = await host.evaluate(
            "[...document.querySelectorAll('section, .actions')].filter((n) => !n.hidden).length"
        )
    assert status == "no changes are recorded for 'x'"
    assert shown == 0  # no empty lists, no buttons: only what went wrong


async def review_screenshot() -> bytes:  # pragma: no cover - a maintainer's tool
    """The README's picture: the main test's review, before anything is reverted."""
    with tempfile.TemporaryDirectory() as scratch:
        tmp = Path(scratch)
        folder = tmp / "project"
        folder.mkdir()
        (folder / "app.py").write_text(APP_PY)
        (folder / "old.txt").write_text("bye\n")
        (folder / "README.md").write_text(README)
        async with agent_server(tmp, folder) as client:
            html = (await client.read_resource("ui://lingma/review.html")).contents[0].text
            async with hosted_page(tmp / "profile", html, client) as host:
                await review_of_an_agent_call(client, host)
                return await host.screenshot()


if __name__ == "__main__":  # pragma: no cover
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "review.png")
    out.write_bytes(asyncio.run(review_screenshot()))
    print(f"saved {out}")
