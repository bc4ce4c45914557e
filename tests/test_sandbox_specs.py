"""The sandbox's pure parts: specs, the launcher's line, the Seatbelt profile, the report.

No process is started here: the machine's support is given as a value, so each fallback
is pinned whatever this kernel offers.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from lingma_mcp.workspace.sandbox import (
    SandboxSpec,
    SandboxSupport,
    SandboxUnavailable,
    cli_spec,
    cli_state_dirs,
    command_spec,
    explain,
    looks_refused,
    report,
    support,
    wrap,
)
from lingma_mcp.workspace.sandbox.seatbelt import profile
from lingma_mcp.workspace.sandbox.support import LAUNCH, _parse_probe

EVERYTHING = SandboxSupport(
    "landlock",
    landlock_abi=7,
    user_namespaces=True,
    mount_namespaces=True,
    pid_namespaces=True,
    network_namespaces=True,
    fresh_proc=True,
    private_shm=True,
)
LANDLOCK_ONLY = SandboxSupport("landlock", landlock_abi=7)
OLD_KERNEL = SandboxSupport("landlock", landlock_abi=3)
NOTHING = SandboxSupport(None, "this Linux kernel offers no Landlock")
SEATBELT = SandboxSupport("seatbelt")


def options(line: list[str]) -> list[str]:
    """The launcher options of a wrapped line (between the script and ``--``)."""
    return line[line.index(str(LAUNCH)) + 1 : line.index("--")]


# -- specs ------------------------------------------------------------------------------


def test_a_command_may_write_its_workspace_but_not_git_or_the_work_dir(tmp_path: Path) -> None:
    spec = command_spec(tmp_path, mode="workspace-write", protected=[tmp_path / "work"])
    root = tmp_path.resolve()
    assert spec.writable == (root,)
    assert spec.read_only == (root / ".git", root / "work")
    assert (spec.network, spec.contain) == (False, True)


def test_read_only_leaves_nothing_writable_but_the_calls_temporary_folder(tmp_path: Path) -> None:
    spec = command_spec(tmp_path, mode="read-only", tmpdir=tmp_path / "t")
    assert spec.writable == () and spec.all_writable() == (tmp_path / "t",)


def test_only_read_only_folders_inside_a_writable_one_need_protecting(tmp_path: Path) -> None:
    spec = SandboxSpec(
        writable=(tmp_path / "ws",),
        read_only=(tmp_path / "ws" / ".git", tmp_path / "elsewhere"),
    )
    assert spec.protected() == (tmp_path / "ws" / ".git",)


def test_the_cli_state_folders_follow_its_config_variable(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert cli_state_dirs({"HOME": str(home)}) == (
        home / ".qoder-cn",
        home / ".qoder-cli",
        home / ".qodersec",
    )
    moved = cli_state_dirs({"HOME": str(home), "QODERCN_CONFIG_DIR": str(tmp_path / "cfg")})
    assert moved[0] == tmp_path / "cfg" and moved[1:] == (home / ".qoder-cli", home / ".qodersec")


def test_the_cli_keeps_its_network_and_state_and_gets_the_workspace_only_to_write(
    tmp_path: Path,
) -> None:
    states = cli_state_dirs({"HOME": str(tmp_path / "home")})
    ws = tmp_path / "ws"
    agent = cli_spec(ws, states, "workspace-write")
    assert agent.network and agent.contain
    assert agent.writable[0] == ws.resolve() and set(agent.writable[1:]) == {
        s.resolve() for s in states
    }
    assert agent.read_only[0] == ws.resolve() / ".git"
    for folder in states:  # made, private, so Landlock has something to allow
        assert folder.is_dir() and folder.stat().st_mode & 0o777 == 0o700
    chat = cli_spec(None, states, "read-only")
    assert set(chat.writable) == {s.resolve() for s in states} and chat.read_only == ()
    assert ws.resolve() not in cli_spec(ws, states, "read-only").writable


# -- the launcher's line ----------------------------------------------------------------


def test_the_launcher_uses_every_layer_this_machine_offers(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    spec = command_spec(tmp_path, mode="workspace-write", tmpdir=tmp_path / "t")
    line = wrap(["ls", "-l"], spec, found=EVERYTHING)
    assert line[:3] == [sys.executable, "-I", "-S"] and line[-3:] == ["--", "ls", "-l"]
    opts = options(line)
    root = str(tmp_path.resolve())
    assert opts[:2] == ["-a", "7"]
    assert ["-w", root] == opts[2:4] and ["-w", f"{root}/t"] == opts[4:6]
    assert ["-r", f"{root}/.git"] == opts[opts.index("-r") : opts.index("-r") + 2]
    assert {"-U", "-M", "-P", "-p", "-N", "-n", "-s", "-c", "-m"} <= set(opts)


def test_without_namespaces_landlock_and_the_subreaper_stand_alone(tmp_path: Path) -> None:
    opts = options(
        wrap(["true"], command_spec(tmp_path, mode="workspace-write"), found=LANDLOCK_ONLY)
    )
    assert "-r" not in opts and not {"-U", "-M", "-P", "-N", "-p", "-m"} & set(opts)
    assert {"-n", "-c", "-s"} <= set(opts)


def test_an_older_landlock_gets_no_scopes_and_the_network_on_gets_no_rules(tmp_path: Path) -> None:
    spec = command_spec(tmp_path, mode="workspace-write", network=True)
    opts = options(wrap(["true"], spec, found=OLD_KERNEL))
    assert opts[:2] == ["-a", "3"] and "-s" not in opts and "-n" not in opts


def test_the_mode_off_runs_the_program_as_it_is(tmp_path: Path) -> None:
    assert wrap(["ls"], command_spec(tmp_path, mode="off"), found=NOTHING) == ["ls"]


def test_a_sandbox_asked_for_where_none_exists_is_refused_with_the_way_out(
    tmp_path: Path,
) -> None:
    with pytest.raises(SandboxUnavailable, match="offers no Landlock") as refused:
        wrap(["ls"], command_spec(tmp_path, mode="workspace-write"), found=NOTHING)
    assert "cannot be prevented" in str(refused.value) and "--sandbox off" in str(refused.value)


# -- macOS ------------------------------------------------------------------------------


def test_the_seatbelt_profile_denies_by_default_and_allows_the_workspace_less_git(
    tmp_path: Path,
) -> None:
    spec = command_spec(tmp_path, mode="workspace-write", tmpdir=tmp_path / "t")
    text, params = profile(spec)
    assert text.startswith("(version 1)\n(deny default)\n")
    assert "(allow file-read*)" in text
    assert (
        '(require-all (subpath (param "WRITABLE_0")) '
        '(require-not (subpath (param "WRITABLE_0_READ_ONLY_0"))))'
    ) in text
    assert '  (subpath (param "WRITABLE_1"))' in text
    assert "network-outbound" not in text and "system-socket" not in text
    root = tmp_path.resolve()
    assert params == [
        ("WRITABLE_0", str(root)),
        ("WRITABLE_0_READ_ONLY_0", str(root / ".git")),
        ("WRITABLE_1", str(tmp_path / "t")),
    ]


def test_paths_go_to_sandbox_exec_as_parameters_never_into_the_profile(tmp_path: Path) -> None:
    odd = tmp_path / 'we"ird\n(allow default)'
    spec = SandboxSpec(writable=(odd,), network=True)
    line = wrap(["ls"], spec, found=SEATBELT)
    assert line[:2] == ["/usr/bin/sandbox-exec", "-p"]
    assert "(allow default)" not in line[2] and "(allow network-outbound)" in line[2]
    assert f'-DWRITABLE_0={tmp_path.resolve()}/we"ird\n(allow default)' in line
    assert line[-2:] == ["--", "ls"]


def test_read_only_on_macos_allows_no_write_rule_at_all() -> None:
    text, params = profile(SandboxSpec(mode="read-only"))
    assert "(allow file-write*\n" not in text and params == []


# -- what is said -----------------------------------------------------------------------


def test_the_report_of_a_fully_capable_machine_names_nothing_unenforced() -> None:
    assert report("workspace-write", False, found=EVERYTHING) == {
        "mode": "workspace-write",
        "enforced": True,
        "mechanism": "landlock",
        "version": "ABI 7",
        "network": "off",
        "containment": "PID namespace",
        "not_enforced": [],
    }


def test_the_report_says_what_a_machine_without_namespaces_leaves_open() -> None:
    said = report("workspace-write", False, found=LANDLOCK_ONLY)
    assert said["containment"] == "child subreaper"
    notes = " | ".join(said["not_enforced"])
    assert ".git and the lingma-mcp work dir are not kept read-only" in notes
    assert "only TCP is blocked" in notes and "UDP" in notes
    assert "survives if the command is killed" in notes
    assert "/dev/shm" in notes


def test_the_report_names_the_rules_an_older_landlock_lacks() -> None:
    notes = " | ".join(report("workspace-write", False, found=OLD_KERNEL)["not_enforced"])
    assert "network is not blocked" in notes and "ABI 4" in notes
    assert "send signals to processes outside" in notes
    assert "truncate" not in notes  # ABI 3 has it
    assert "truncate" in " | ".join(SandboxSupport("landlock", landlock_abi=2).notes)


def test_the_report_with_no_sandbox_says_writes_cannot_be_prevented() -> None:
    said = report("off", False, found=NOTHING)
    assert said["enforced"] is False and said["mechanism"] == "none available"
    assert said["network"] == "on"
    assert "writes made by commands cannot be prevented" in said["not_enforced"][0]
    assert "offers no Landlock" in said["not_enforced"][0]


def test_the_report_of_the_sandbox_turned_off_says_so() -> None:
    said = report("off", False, found=EVERYTHING)
    assert said["enforced"] is False and said["mechanism"] == "landlock"
    assert said["not_enforced"] == [
        "the sandbox is off (--sandbox off): commands run unconfined, writing anywhere the "
        "server may and using the network"
    ]


def test_macos_says_daemons_can_outlive_a_command() -> None:
    said = report("workspace-write", True, found=SEATBELT)
    assert said["mechanism"] == "seatbelt" and said["containment"] == "process group"
    assert "outlive" in said["not_enforced"][0]


def test_windows_has_no_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "win32")
    found = support.__wrapped__()  # type: ignore[attr-defined]
    assert found.mechanism is None and "Windows" in found.reason


def test_the_probe_lines_are_read_into_what_worked_and_why_not() -> None:
    assert _parse_probe("abi=7\nuser=1\nmount=0 cannot make namespaces: nope\nnoise\n") == {
        "abi": (True, "7"),
        "user": (True, ""),
        "mount": (False, "cannot make namespaces: nope"),
    }
    assert _parse_probe("abi=0\n") == {"abi": (False, "0")}


def test_a_refusal_is_explained_with_the_folders_the_command_may_write(tmp_path: Path) -> None:
    spec = command_spec(tmp_path, mode="workspace-write", tmpdir=tmp_path / "t")
    text = explain(spec)
    assert str(tmp_path.resolve()) in text and f"temporary folder {tmp_path / 't'}" in text
    assert f"kept read-only: {tmp_path.resolve() / '.git'}" in text and "no network" in text
    assert "nowhere" in explain(command_spec(tmp_path, mode="read-only"))
    assert looks_refused("bash: /etc/x: Permission denied\n")
    assert looks_refused("curl: (6) Could not resolve host: example.com")
    assert not looks_refused("error: test failed\n")
