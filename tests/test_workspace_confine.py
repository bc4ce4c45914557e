"""The one confinement decision, over generated paths: nothing outside is ever inside.

The same function decides the hosted tools, Lingma's own PENDING tools, the CLI's
permission requests and revert; these properties hold for all of them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lingma_mcp.workspace import WorkspaceNotAllowed
from lingma_mcp.workspace.confine import GIT_FOLDER, WORK_DIR, confine, confine_one
from lingma_mcp.workspace.paths import check_agent_workspace

NAMES = st.sampled_from(
    ["a", "b.txt", "..", ".", "", "~", ".git", "link_out", "link_in", "sub", "é", "名", "x" * 300]
)
PREFIXES = st.sampled_from(["", "/", "~/", "./", "../", "/etc/", "~root/", "~nosuchuser_q/"])


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    root = (tmp_path / "proj").resolve()
    (root / "sub").mkdir(parents=True)
    (root / ".git").mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "link_out").symlink_to(outside, target_is_directory=True)
    (root / "link_in").symlink_to(root / "sub", target_is_directory=True)
    return root, outside.resolve()


def _real_inside(raw: str, root: Path) -> bool | None:
    """An independent judgement: None where the path cannot be used at all."""
    if "\x00" in raw or not raw.strip():
        return None
    expanded = os.path.expanduser(raw)
    if expanded.startswith("~"):
        return None
    joined = os.path.join(str(root), expanded)
    if any(len(part.encode()) > 255 for part in joined.split("/")):
        return None  # refused as too long before it is resolved: fail closed
    full = os.path.realpath(joined)
    return full == str(root) or full.startswith(str(root) + os.sep)


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(prefix=PREFIXES, parts=st.lists(NAMES, max_size=6), nul=st.booleans())
def test_a_target_is_inside_exactly_when_it_resolves_inside(
    tree: tuple[Path, Path], prefix: str, parts: list[str], nul: bool
) -> None:
    root, outside = tree
    raw = prefix + "/".join(parts) + ("\x00" if nul else "")
    target = confine_one(raw, root)
    expected = _real_inside(raw, root)
    if expected is None:
        assert not target.inside and target.reason  # unusable paths fail closed
    else:
        assert target.inside == expected, raw
    if target.inside:
        assert target.path is not None
        assert target.path == root or root in target.path.parents
        assert outside not in (target.path, *target.path.parents)
    else:
        assert target.path is None and target.reason


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raws=st.lists(st.text(max_size=40), max_size=5))
def test_one_target_outside_makes_the_whole_action_outside(
    tree: tuple[Path, Path], raws: list[str]
) -> None:
    root, _ = tree
    decision = confine([*raws, "../escape"], root)
    assert not decision.allowed
    assert any(t.raw == "../escape" for t in decision.outside)


def test_no_target_at_all_is_unknown_never_allowed(tree: tuple[Path, Path]) -> None:
    root, _ = tree
    decision = confine([], root)
    assert decision.unknown and not decision.allowed


@given(rest=st.lists(st.sampled_from(["config", "hooks", "x", "sub"]), max_size=3))
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_anything_in_a_git_folder_is_protected(tree: tuple[Path, Path], rest: list[str]) -> None:
    root, _ = tree
    for raw in ("/".join([".git", *rest]), "/".join(["sub", ".git", *rest])):
        target = confine_one(raw, root)
        assert target.inside and target.protected == GIT_FOLDER


def test_the_work_dir_inside_the_workspace_is_protected(tree: tuple[Path, Path]) -> None:
    root, _ = tree
    decision = confine(["sub/state/x.json", "sub/other.txt"], root, guarded=[root / "sub/state"])
    assert [t.protected for t in decision.targets] == [WORK_DIR, None]


def test_the_home_folder_or_root_needs_naming_and_the_work_dir_is_never_inside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    (home / "proj").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    work = tmp_path / "state"
    for folder in (home, Path("/")):
        with pytest.raises(WorkspaceNotAllowed, match="--workspace"):
            check_agent_workspace(folder, explicit=False, work_dir=work)
    check_agent_workspace(home, explicit=True, work_dir=work)  # named, work dir elsewhere
    with pytest.raises(WorkspaceNotAllowed, match="work dir"):
        check_agent_workspace(Path("/"), explicit=True, work_dir=work)  # holds every work dir
    check_agent_workspace(home / "proj", explicit=False, work_dir=work)
    with pytest.raises(WorkspaceNotAllowed, match="work dir"):
        check_agent_workspace(tmp_path, explicit=True, work_dir=work)
