"""The sandbox's flags and settings, and what a machine without a sandbox does to `run`."""

from __future__ import annotations

import pytest

import lingma_mcp.workspace.sandbox as sandbox
from lingma_mcp.cli.main import UsageError, build_parser, settings_from
from lingma_mcp.config import SANDBOX_MODES, Settings
from lingma_mcp.workspace.policy import parse_policy
from lingma_mcp.workspace.sandbox import SandboxSupport

CAPABLE = SandboxSupport("landlock", landlock_abi=7, pid_namespaces=True)
INCAPABLE = SandboxSupport(None, "this Linux kernel offers no Landlock")


@pytest.fixture
def capable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox, "support", lambda: CAPABLE)


@pytest.fixture
def incapable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox, "support", lambda: INCAPABLE)


def parse(*argv: str, **env: str) -> Settings:
    return settings_from(build_parser().parse_args(list(argv)), env)


def test_the_flags_and_their_variables_are_read() -> None:
    settings = parse("--sandbox", "read-only", "--sandbox-network", "on", "--command-env", "A, B")
    assert (settings.sandbox, settings.sandbox_network, settings.command_env) == (
        "read-only",
        True,
        ("A", "B"),
    )
    settings = parse(
        LINGMA_SANDBOX="OFF", LINGMA_SANDBOX_NETWORK="off", LINGMA_COMMAND_ENV="GOPATH"
    )
    assert (settings.sandbox, settings.sandbox_network, settings.command_env) == (
        "off",
        False,
        ("GOPATH",),
    )
    # The flag wins over the variable.
    assert parse("--sandbox", "workspace-write", LINGMA_SANDBOX="off").sandbox == "workspace-write"
    assert (parse().sandbox, parse().sandbox_network, parse().command_env) == (None, False, ())


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LINGMA_SANDBOX": "strict"}, "LINGMA_SANDBOX must be one of workspace-write, read-only"),
        ({"LINGMA_SANDBOX_NETWORK": "yes"}, "LINGMA_SANDBOX_NETWORK must be on or off"),
        ({"LINGMA_COMMAND_ENV": "A-B"}, "LINGMA_COMMAND_ENV: 'A-B' is not an environment"),
    ],
)
def test_a_bad_value_says_which_variable_and_what_is_accepted(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        parse(**env)


def test_the_modes_spelt_out_in_the_settings_are_the_sandboxes() -> None:
    assert SANDBOX_MODES == sandbox.MODES


def test_the_default_mode_is_workspace_write_where_it_can_be_enforced(capable: None) -> None:
    settings = Settings()
    assert settings.sandbox_mode == "workspace-write" and settings.sandbox_enforced
    assert settings.effective_approval() is None and settings.run_refusal_note() is None
    assert Settings(approval="write=allow").effective_approval() == "write=allow"


def test_without_a_sandbox_commands_are_denied_by_default(incapable: None) -> None:
    settings = Settings()
    assert settings.sandbox_mode == "off" and not settings.sandbox_enforced
    assert parse_policy(settings.effective_approval()).run == "deny"
    assert Settings(approval="write=allow").effective_approval() == "write=allow,run=deny"
    note = settings.run_refusal_note()
    assert note is not None and "offers no Landlock" in note
    assert "writes made by commands cannot be prevented" in note and "--sandbox off" in note
    # A sandbox asked for by name that cannot be enforced denies the same way.
    assert Settings(sandbox="workspace-write").effective_approval() == "run=deny"


@pytest.mark.parametrize(
    "settings",
    [Settings(sandbox="off"), Settings(approval="run=allow"), Settings(approval="RUN = ask")],
    ids=["sandbox-off", "run-allow", "run-ask"],
)
def test_the_person_can_accept_unconfined_commands_explicitly(
    incapable: None, settings: Settings
) -> None:
    assert settings.effective_approval() == settings.approval
    assert settings.run_refusal_note() is None


def test_the_report_follows_the_settings(capable: None) -> None:
    said = Settings(sandbox="read-only", sandbox_network=True).sandbox_report()
    assert (said["mode"], said["network"], said["enforced"]) == ("read-only", "on", True)
