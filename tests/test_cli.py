"""The command line: options and their environment variables, doctor, ask, demo."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lingma_mcp import __version__
from lingma_mcp.cli import ENV_VARS, build_parser, main, settings_from

pytestmark = pytest.mark.timeout(60)


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 45):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("LINGMA_", "LINGMA_SIM_"))}
    full_env.update({"LINGMA_SIM_DELTA_DELAY": "0.001", "LINGMA_SIM_ANSWER_SIZE": "120"})
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "lingma_mcp", *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
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
        "LINGMA_MODE": "agent",
        "LINGMA_STARTUP_TIMEOUT": "12",
        "LINGMA_REQUEST_TIMEOUT": "34",
        "LINGMA_MCP_LOG_LEVEL": "debug",
        "LINGMA_MCP_SIMULATE": "1",
        "LINGMA_BACKEND": "CLI",
        "LINGMA_CLI_BIN": "/opt/qoderclicn",
    }
    assert set(env) == set(ENV_VARS.values())
    settings = settings_from(build_parser().parse_args([]), env)
    assert settings.lingma_bin == "/opt/lingma/Lingma"
    assert settings.lingma_port == 37010
    assert settings.work_dir == tmp_path / "w"
    assert settings.workspace == tmp_path
    assert settings.model == "dashscope_qwen3_coder"
    assert settings.mode == "agent"
    assert settings.startup_timeout == 12.0
    assert settings.request_timeout == 34.0
    assert settings.log_level == "DEBUG"
    assert settings.simulate is True
    assert settings.backend == "cli" and settings.cli_bin == "/opt/qoderclicn"


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


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LINGMA_PORT": "abc"}, "LINGMA_PORT must be a number"),
        ({"LINGMA_MODE": "yolo"}, "LINGMA_MODE must be one of chat, agent"),
        ({"LINGMA_REQUEST_TIMEOUT": "-3"}, "LINGMA_REQUEST_TIMEOUT must be positive"),
        ({"LINGMA_MCP_LOG_LEVEL": "loud"}, "LINGMA_MCP_LOG_LEVEL must be one of"),
    ],
)
def test_a_bad_environment_value_is_refused_by_name(env: dict[str, str], message: str) -> None:
    done = run_cli("--version", env=env)  # --version exits before settings are read
    assert done.returncode == 0
    done = run_cli("doctor", env=env)
    assert done.returncode == 2
    assert message in done.stderr


def test_doctor_on_the_simulator_passes_every_step() -> None:
    done = run_cli("doctor", "--simulate")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith(("✓", "✗"))]
    assert [line.split(":")[0] for line in lines] == [
        "✓ Lingma binary",
        "✓ Lingma starts",
        "✓ Logged in",
        "✓ Models",
    ]
    assert "All is well" in done.stdout


def test_doctor_without_lingma_says_where_it_looked_and_fails(tmp_path: Path) -> None:
    done = run_cli("doctor", "--lingma-bin", str(tmp_path / "missing" / "Lingma"))
    assert done.returncode == 1
    assert "✗ Lingma binary: Lingma was not found" in done.stdout
    assert str(tmp_path / "missing" / "Lingma") in done.stdout
    assert "LINGMA_BIN" in done.stdout


def test_doctor_logged_out_fails_on_the_login_step() -> None:
    done = run_cli("doctor", "--simulate", env={"LINGMA_SIM_AUTH": "logged_out"})
    assert done.returncode == 1
    assert "✓ Lingma starts" in done.stdout
    assert "✗ Logged in: not logged in" in done.stdout
    assert "`login` tool" in done.stdout


def test_ask_streams_the_answer_to_stdout_and_status_to_stderr(tmp_path: Path) -> None:
    done = run_cli("ask", "--simulate", "--work-dir", str(tmp_path), "what is up")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Lingma sim answer")
    assert "what is up" in done.stdout
    assert "[lingma]" not in done.stdout
    assert "session_id sim-session-" in done.stderr


def test_ask_refuses_an_empty_prompt() -> None:
    done = run_cli("ask", "--simulate", "  ")
    assert done.returncode == 2
    assert "prompt is empty" in done.stderr


def test_ask_reports_rate_limits_with_a_nonzero_exit(tmp_path: Path) -> None:
    done = run_cli(
        "ask", "--simulate", "--work-dir", str(tmp_path), "hi", env={"LINGMA_SIM_RATE_LIMIT": "1"}
    )
    assert done.returncode == 1
    assert "429" in done.stderr
    assert done.stdout == ""


def test_demo_tours_the_whole_path_and_exits_zero() -> None:
    done = run_cli("demo", timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "streamed text equals the answer: True" in done.stdout
    assert "The whole path works" in done.stdout


def test_the_example_host_config_starts_this_command_with_known_variables() -> None:
    import json

    example = json.loads((Path(__file__).parent.parent / "mcp.json.example").read_text("utf-8"))
    entries = [*example["mcpServers"].values(), *example["servers"].values()]
    for entry in entries:
        assert entry["command"] == "lingma-mcp"
        assert set(entry.get("env", {})) <= set(ENV_VARS.values())
        build_parser().parse_args(entry["args"])  # every flag in it exists
