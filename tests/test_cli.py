"""The command line: options and their environment variables, doctor, ask, demo.

The commands run in this process (the ``command`` fixture: ``main`` with the arguments a
terminal passes), their simulator a process as ``--simulate`` starts it. Where only the
process can show it (a terminal that is not UTF-8, a bare start on a terminal, the demo's
own stdio servers), the command runs as its own process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Done

from lingma_mcp import __version__
from lingma_mcp.cli.main import ENV_VARS, build_parser, main, settings_from
from lingma_mcp.config import Settings

pytestmark = pytest.mark.timeout(60)
Command = Callable[..., Done]


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 45, encoding: str = "utf-8"
):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("LINGMA_", "LINGMA_SIM_"))}
    full_env.update({"LINGMA_SIM_DELTA_DELAY": "0.001", "LINGMA_SIM_ANSWER_SIZE": "120"})
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "lingma_mcp", *args],
        capture_output=True,
        text=True,
        encoding=encoding,
        env=full_env,
        timeout=timeout,
        check=False,
    )


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"lingma-mcp {__version__}"


def test_every_option_has_its_environment_variable(tmp_path: Path) -> None:
    env = {
        "LINGMA_BIN": "/opt/lingma/Lingma",
        "LINGMA_PORT": "37010",
        "LINGMA_WORK_DIR": str(tmp_path / "w"),
        "LINGMA_WORKSPACE": str(tmp_path),
        "LINGMA_MODEL": "dashscope_qwen3_coder",
        "LINGMA_REASONING_EFFORT": "high",
        "LINGMA_MODE": "agent",
        "LINGMA_STARTUP_TIMEOUT": "12",
        "LINGMA_REQUEST_TIMEOUT": "34",
        "LINGMA_MCP_LOG_LEVEL": "debug",
        "LINGMA_MCP_SIMULATE": "1",
        "LINGMA_MAX_PROMPT_CHARS": "5000",
        "LINGMA_DETACH_AFTER": "0",
        "LINGMA_MAX_RESULT_CHARS": "5000",
        "LINGMA_APPROVAL": "write=allow",
        "LINGMA_COMMAND_TIMEOUT": "56",
        "LINGMA_APPROVAL_TIMEOUT": "78",
        "LINGMA_CHECKPOINT_MAX_FILE_MB": "2.5",
        "LINGMA_CLI_SESSION_TIMEOUT": "120",
        "LINGMA_BACKEND": "CLI",
        "LINGMA_CLI_BIN": "/opt/qoderclicn",
        "LINGMA_SANDBOX": "read-only",
        "LINGMA_SANDBOX_NETWORK": "on",
        "LINGMA_COMMAND_ENV": "GOPATH",
    }
    assert set(env) == set(ENV_VARS.values())
    settings = settings_from(build_parser().parse_args([]), env)
    assert settings.lingma_bin == "/opt/lingma/Lingma"
    assert settings.lingma_port == 37010
    assert settings.work_dir == tmp_path / "w"
    assert settings.workspace == tmp_path
    assert settings.model == "dashscope_qwen3_coder"
    assert settings.reasoning_effort == "high"
    assert settings.mode == "agent"
    assert settings.startup_timeout == 12.0
    assert settings.request_timeout == 34.0
    assert settings.log_level == "DEBUG"
    assert settings.simulate is True
    assert settings.max_prompt_chars == 5000
    assert settings.detach_after == 0.0 and settings.max_result_chars == 5000
    assert settings.approval == "write=allow"
    assert settings.command_timeout == 56.0 and settings.approval_timeout == 78.0
    assert settings.checkpoint_max_file_mb == 2.5 and settings.cli_session_timeout == 120.0
    assert settings.backend == "cli" and settings.cli_bin == "/opt/qoderclicn"
    assert (settings.sandbox, settings.sandbox_network, settings.command_env) == (
        "read-only",
        True,
        ("GOPATH",),
    )


def test_path_options_are_resolved_against_the_folder_the_server_started_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The simulator (and Lingma) run in another folder: a relative path must mean the one
    # the user typed it in, not theirs.
    monkeypatch.chdir(tmp_path)
    args = build_parser().parse_args(
        ["--work-dir", "state/../work", "--workspace", "project", "--lingma-bin", "bin/Lingma"]
    )
    settings = settings_from(args, {"LINGMA_CLI_BIN": "./tools/qoderclicn"})
    assert settings.work_dir == tmp_path / "work"
    assert settings.workspace == tmp_path / "project"
    assert settings.lingma_bin == str(tmp_path / "bin" / "Lingma")
    assert settings.cli_bin == str(tmp_path / "tools" / "qoderclicn")
    # A bare program name is still looked up on PATH.
    assert settings_from(build_parser().parse_args(["--cli-bin", "qoderclicn"]), {}).cli_bin == (
        "qoderclicn"
    )


def test_a_relative_work_dir_reaches_the_simulator_as_an_absolute_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    options = Settings(simulate=True, work_dir=Path("work")).launch_options()
    assert options.command_cwd != tmp_path  # the simulator runs beside the package
    assert options.work_dir == tmp_path / "work"


def test_flags_win_over_the_environment(tmp_path: Path) -> None:
    args = build_parser().parse_args(
        ["--model", "auto", "--mode", "chat", "--request-timeout", "5", "--log-level", "info"]
    )
    env = {"LINGMA_MODEL": "other", "LINGMA_MODE": "agent", "LINGMA_REQUEST_TIMEOUT": "99"}
    settings = settings_from(args, env)
    assert (settings.model, settings.mode, settings.request_timeout) == ("auto", "chat", 5.0)
    assert settings.log_level == "INFO"


def test_options_work_before_and_after_the_command() -> None:
    before = build_parser().parse_args(["--simulate", "--model", "auto", "doctor"])
    after = build_parser().parse_args(["doctor", "--simulate", "--model", "auto"])
    for args in (before, after):
        settings = settings_from(args, {})
        assert settings.simulate and settings.model == "auto"


def test_defaults_without_flags_or_environment() -> None:
    settings = settings_from(build_parser().parse_args([]), {})
    assert settings.mode == "chat" and settings.model is None and settings.simulate is False
    assert settings.lingma_port is None and settings.log_level == "WARNING"
    assert settings.max_prompt_chars == 1_000_000


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LINGMA_PORT": "abc"}, "LINGMA_PORT must be a number"),
        ({"LINGMA_MODE": "yolo"}, "LINGMA_MODE must be one of chat, agent"),
        ({"LINGMA_REQUEST_TIMEOUT": "-3"}, "LINGMA_REQUEST_TIMEOUT must be positive"),
        ({"LINGMA_MCP_LOG_LEVEL": "loud"}, "LINGMA_MCP_LOG_LEVEL must be one of"),
    ],
)
def test_a_bad_environment_value_is_refused_by_name(
    command: Command, env: dict[str, str], message: str
) -> None:
    done = command("--version", env=env)  # --version exits before settings are read
    assert done.returncode == 0
    done = command("doctor", env=env)
    assert done.returncode == 2
    assert message in done.stderr


def test_doctor_on_the_simulator_passes_every_step(command: Command, tmp_path: Path) -> None:
    done = command("doctor", "--simulate", "--work-dir", str(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith(("✓", "✗"))]
    assert [line.split(":")[0] for line in lines] == [
        "✓ Lingma binary",
        "✓ Lingma starts",
        "✓ Logged in",
        "✓ Models",
        "✓ Sandbox (agent mode)",
        "✓ Change record (agent mode)",
    ]
    assert "All is well" in done.stdout


def test_doctor_without_lingma_says_where_it_looked_and_fails(
    command: Command, tmp_path: Path
) -> None:
    done = command("doctor", "--lingma-bin", str(tmp_path / "missing" / "Lingma"))
    assert done.returncode == 1
    assert "✗ Lingma binary: Lingma was not found" in done.stdout
    assert str(tmp_path / "missing" / "Lingma") in done.stdout
    assert "LINGMA_BIN" in done.stdout


def test_doctor_logged_out_fails_on_the_login_step(command: Command, tmp_path: Path) -> None:
    logged_out = {"LINGMA_SIM_AUTH": "logged_out"}
    done = command("doctor", "--simulate", "--work-dir", str(tmp_path), env=logged_out)
    assert done.returncode == 1
    assert "✓ Lingma starts" in done.stdout
    assert "✗ Logged in: Lingma is not logged in. Open this URL in a browser" in done.stdout
    assert "https://" in done.stdout and "lingma-mcp doctor` again" in done.stdout
    assert "`login` tool" not in done.stdout  # the terminal has no tools


def test_ask_streams_the_answer_to_stdout_and_status_to_stderr(
    command: Command, tmp_path: Path
) -> None:
    done = command("ask", "--simulate", "--work-dir", str(tmp_path), "what is up")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Lingma sim answer")
    assert "what is up" in done.stdout
    assert "[lingma]" not in done.stdout
    assert "session_id sim-session-" in done.stderr
    assert "continue with: lingma-mcp --simulate ask --session-id sim-session-" in done.stderr


def test_ask_copes_with_a_stdout_that_is_not_utf8(tmp_path: Path) -> None:
    done = run_cli(
        "ask",
        "--simulate",
        "--work-dir",
        str(tmp_path),
        "你好 ✓",
        env={"PYTHONIOENCODING": "cp1252"},
        encoding="cp1252",
    )
    assert done.returncode == 0, done.stderr
    assert "UnicodeEncodeError" not in done.stderr
    assert done.stdout.startswith("Lingma sim answer")


def test_a_prompt_over_the_limit_is_refused_in_the_terminal(
    command: Command, tmp_path: Path
) -> None:
    done = command(
        "ask", "--simulate", "--work-dir", str(tmp_path), "--max-prompt-chars", "5", "too long"
    )
    assert done.returncode == 2
    assert "--max-prompt-chars" in done.stderr


def test_bare_lingma_mcp_on_a_terminal_says_what_it_is(tmp_path: Path) -> None:
    import pty
    import select

    main_fd, child_fd = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINGMA_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "lingma_mcp", "--simulate", "--work-dir", str(tmp_path)],
        stdin=child_fd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    os.close(child_fd)
    try:
        assert process.stderr is not None
        ready, _, _ = select.select([process.stderr], [], [], 30)
        assert ready, "nothing on stderr"
        first = os.read(process.stderr.fileno(), 4096).decode()
        assert "serves MCP over stdio" in first
        assert "lingma-mcp doctor" in first
    finally:
        process.terminate()
        process.wait(timeout=30)
        os.close(main_fd)


def test_ask_refuses_an_empty_prompt(command: Command, tmp_path: Path) -> None:
    done = command("ask", "--simulate", "--work-dir", str(tmp_path), "  ")
    assert done.returncode == 2
    assert "Invalid argument prompt: it is empty" in done.stderr


def test_ask_reports_rate_limits_with_a_nonzero_exit(command: Command, tmp_path: Path) -> None:
    done = command(
        "ask", "--simulate", "--work-dir", str(tmp_path), "hi", env={"LINGMA_SIM_RATE_LIMIT": "1"}
    )
    assert done.returncode == 1
    assert "429" in done.stderr
    assert done.stdout == ""


def test_demo_tours_the_whole_path_on_both_backends_and_exits_zero() -> None:
    done = run_cli("demo", timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "backend cli, CLI version 1.1.52-sim" in done.stdout
    assert "ok   cli: ask_lingma" in done.stdout and "ok   cli: follow-up" in done.stdout
    assert done.stdout.count("streamed text equals the answer: True") >= 4
    assert "The whole path works" in done.stdout


def test_the_readme_host_snippet_matches_the_example_config() -> None:
    import json
    import re

    root = Path(__file__).parent.parent
    example = json.loads((root / "mcp.json.example").read_text("utf-8"))
    readme = (root / "README.md").read_text("utf-8")
    snippet = re.search(r"```json\n(\{.*?\})\n```", readme, re.S)
    assert snippet, "the README shows a host config"
    shown = json.loads(snippet.group(1))
    for name, entry in shown["mcpServers"].items():
        assert example["mcpServers"][name] == entry
    assert any("--simulate" in e["args"] for e in example["servers"].values())


def test_the_example_host_config_starts_this_command_with_known_variables() -> None:
    import json

    example = json.loads((Path(__file__).parent.parent / "mcp.json.example").read_text("utf-8"))
    entries = [*example["mcpServers"].values(), *example["servers"].values()]
    for entry in entries:
        assert entry["command"] == "lingma-mcp"
        assert set(entry.get("env", {})) <= set(ENV_VARS.values())
        build_parser().parse_args(entry["args"])  # every flag in it exists


def test_a_malformed_approval_setting_is_refused_at_start_with_the_syntax(
    command: Command,
) -> None:
    for argv, env in (
        (["--approval", "write=maybe"], {}),
        ([], {"LINGMA_APPROVAL": "everything"}),
    ):
        result = command(*argv, "doctor", env=env)
        assert result.returncode == 2
        assert "class=decision" in result.stderr and "write=allow,run=deny" in result.stderr
        assert result.stdout == ""


def test_the_approval_flag_wins_and_the_command_timeout_is_checked(command: Command) -> None:
    args = build_parser().parse_args(["--approval", "run=deny", "--command-timeout", "7"])
    settings = settings_from(args, {"LINGMA_APPROVAL": "run=allow"})
    assert (settings.approval, settings.command_timeout) == ("run=deny", 7.0)
    result = command("--command-timeout", "0", "doctor")
    assert result.returncode == 2 and "--command-timeout must be positive" in result.stderr
