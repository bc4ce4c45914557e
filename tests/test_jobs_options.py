"""The jobs' and big answers' options: --detach-after and --max-result-chars."""

from __future__ import annotations

import pytest

from lingma_mcp.cli.main import UsageError, build_parser, settings_from


def settings(*flags: str, env: dict[str, str] | None = None):
    return settings_from(build_parser().parse_args(list(flags)), env or {})


def test_the_defaults_detach_per_host_and_cut_at_40000() -> None:
    default = settings()
    assert default.detach_after is None  # chosen per host
    assert default.max_result_chars == 40000


@pytest.mark.parametrize(
    ("value", "expected"), [("0", 0.0), ("0.00", 0.0), ("2", 2.0), ("45.5", 45.5)]
)
def test_detach_after_takes_seconds_and_zero_means_never(value: str, expected: float) -> None:
    assert settings("--detach-after", value).detach_after == expected
    assert settings(env={"LINGMA_DETACH_AFTER": value}).detach_after == expected


def test_flags_win_over_the_environment_for_both() -> None:
    env = {"LINGMA_DETACH_AFTER": "10", "LINGMA_MAX_RESULT_CHARS": "9000"}
    chosen = settings("--detach-after", "3", "--max-result-chars", "2000", env=env)
    assert (chosen.detach_after, chosen.max_result_chars) == (3.0, 2000)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--detach-after", "-1"], "--detach-after must be positive"),
        (["--detach-after", "soon"], "--detach-after must be a number"),
        (["--max-result-chars", "999"], "--max-result-chars must be at least 1000"),
        (["--max-result-chars", "4.5"], "--max-result-chars must be a number"),
    ],
)
def test_bad_values_are_refused_with_what_is_wrong(flags: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        settings(*flags)
