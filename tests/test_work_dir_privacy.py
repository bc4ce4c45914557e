"""Every file the server leaves under the work dir is private: 0600 files in 0700 folders,
whatever the umask (prompts, answers and changes are kept there)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from fakes import text_of
from servers import mcp_server

pytestmark = pytest.mark.timeout(60)


# Lingma's own: the binary writes its port and pid there 0644 (no secret), as the
# simulator does; everything else under the work dir is written by the server or kept
# private by the simulator as by Lingma.
LINGMAS_OWN = {".info", ".info.json"}


def _modes(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): oct(stat.S_IMODE(path.stat().st_mode))
        for path in [folder, *folder.rglob("*")]
        if not path.is_symlink() and path.name not in LINGMAS_OWN
    }


async def test_every_file_under_the_work_dir_is_private_after_an_agent_run(
    tmp_path: Path,
) -> None:
    old_umask = os.umask(0o022)  # the usual umask, which alone would leave files 0644
    try:
        async with mcp_server(tmp_path, mode="agent", approval="write=allow") as client:
            prompt = "note this\n@create notes/new.txt hello\\n"
            result = await client.call_tool("ask_lingma", {"prompt": prompt})
            assert not result.is_error, text_of(result)
            assert result.structured_content["changes"], text_of(result)
    finally:
        os.umask(old_umask)
    modes = _modes(tmp_path / "work")
    assert len(modes) > 2  # the lock, Lingma's files, the change record
    # Folders 0700; files 0600, or 0400 where git keeps its objects read-only: nobody else
    # may read either.
    expected = {name: "0o700" if (tmp_path / "work" / name).is_dir() else "0o600" for name in modes}
    assert {n: "0o600" if m == "0o400" else m for n, m in modes.items()} == expected
