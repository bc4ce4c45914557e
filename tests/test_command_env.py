"""The environment hosted commands get, and the entries an agent may not set."""

from __future__ import annotations

from pathlib import Path

import pytest

from lingma_mcp.workspace.command_env import clean_env, parse_names, refused_env_names

SERVER = {
    "PATH": "/usr/bin:/bin",
    "HOME": "/home/me",
    "USER": "me",
    "LOGNAME": "me",
    "SHELL": "/bin/bash",
    "LANG": "en_US.UTF-8",
    "LC_ALL": "C.UTF-8",
    "TERM": "xterm",
    "TZ": "Europe/Berlin",
    "QODERCN_PERSONAL_ACCESS_TOKEN": "pt-secret",
    "QODER_CONFIG_DIR": "/home/me/.q",
    "LINGMA_APPROVAL": "run=allow",
    "GITHUB_TOKEN": "ghp_x",
    "AWS_SECRET_ACCESS_KEY": "k",
    "OPENAI_API_KEY": "sk",
    "DB_PASSWORD": "pw",
    "CLIENT_SECRET": "s",
    "SSH_AUTH_SOCK": "/run/agent",
    "VIRTUAL_ENV": "/srv/venv",
    "GOPATH": "/home/me/go",
}


def test_commands_get_the_allowlist_and_nothing_else() -> None:
    assert clean_env(SERVER) == {
        k: SERVER[k]
        for k in ("PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LC_ALL", "TERM", "TZ")
    }


def test_the_private_temporary_folder_is_tmpdir(tmp_path: Path) -> None:
    assert clean_env({"TMPDIR": "/tmp"}, tmpdir=tmp_path) == {"TMPDIR": str(tmp_path)}


def test_names_the_person_lists_are_passed_on_even_secret_looking_ones() -> None:
    env = clean_env(SERVER, passthrough=("GOPATH", "GITHUB_TOKEN", "NOT_SET"))
    assert env["GOPATH"] == "/home/me/go" and env["GITHUB_TOKEN"] == "ghp_x"
    assert "NOT_SET" not in env and "QODERCN_PERSONAL_ACCESS_TOKEN" not in env


def test_an_allowlisted_prefix_never_lets_a_secret_through() -> None:
    assert clean_env({"LC_API_KEY": "k", "LC_TIME": "C"}) == {"LC_TIME": "C"}


def test_listed_names_are_read_with_spaces_and_repeats() -> None:
    assert parse_names(" GOPATH, npm_config_cache ,GOPATH,, ") == ("GOPATH", "npm_config_cache")
    assert parse_names(None) == () and parse_names("") == ()


@pytest.mark.parametrize("bad", ["A-B", "1ABC", "A=B", "A B"])
def test_a_listed_name_that_is_no_variable_name_is_refused_with_an_example(bad: str) -> None:
    with pytest.raises(ValueError, match=r"not an environment variable name.*e\.g\."):
        parse_names(f"GOPATH,{bad}")


@pytest.mark.parametrize(
    "name",
    [
        # shells: what they source, import, split and trace with
        "PATH",
        "BASH_ENV",
        "ENV",
        "SHELLOPTS",
        "IFS",
        "PS4",
        "PROMPT_COMMAND",
        "CDPATH",
        "ZDOTDIR",
        "HOME",
        "TMPDIR",
        # the dynamic linker, glibc and OpenSSL
        "LD_PRELOAD",
        "LD_LIBRARY_PATH",
        "LD_AUDIT",
        "DYLD_INSERT_LIBRARIES",
        "GCONV_PATH",
        "OPENSSL_CONF",
        # runtimes' "load this first"
        "PYTHONPATH",
        "PYTHONSTARTUP",
        "PYTHONWARNINGS",
        "NODE_OPTIONS",
        "PERL5OPT",
        "PERL5LIB",
        "RUBYOPT",
        "JAVA_TOOL_OPTIONS",
        "_JAVA_OPTIONS",
        "DOTNET_STARTUP_HOOKS",
        "LUA_INIT",
        "ERL_AFLAGS",
        "PHPRC",
        # git config and programs it runs
        "GIT_CONFIG_COUNT",
        "GIT_CONFIG_KEY_0",
        "GIT_CONFIG_PARAMETERS",
        "GIT_SSH_COMMAND",
        "GIT_EXEC_PATH",
        "GIT_DIR",
        "GIT_PAGER",
        "GIT_EXTERNAL_DIFF",
        # programs that start programs
        "EDITOR",
        "PAGER",
        "LESSOPEN",
        "SSH_ASKPASS",
        "VIMINIT",
        # builds and installs: what is compiled, fetched and trusted
        "CC",
        "MAKEFLAGS",
        "RUSTC_WRAPPER",
        "GOFLAGS",
        "GOTOOLCHAIN",
        "PIP_INDEX_URL",
        "npm_config_script_shell",
        "UV_INDEX_URL",
        "CARGO_BUILD_RUSTC_WRAPPER",
        "https_proxy",
        "ALL_PROXY",
        "SSL_CERT_FILE",
        "REQUESTS_CA_BUNDLE",
        "XDG_CONFIG_HOME",
    ],
)
def test_an_entry_that_changes_what_runs_is_refused(name: str) -> None:
    assert refused_env_names({name: "x"}) == [name]


@pytest.mark.parametrize(
    "name",
    [
        "FOO",
        "DEBUG",
        "NODE_ENV",
        "RUST_LOG",
        "RUST_BACKTRACE",
        "GIT_AUTHOR_NAME",
        "GIT_COMMITTER_EMAIL",
        "GIT_TERMINAL_PROMPT",
        "GOOGLE_CLOUD_PROJECT",
        "CI",
        "COLUMNS",
        "NO_COLOR",
    ],
)
def test_an_entry_that_only_informs_the_program_is_let_through(name: str) -> None:
    assert refused_env_names({name: "1"}) == []


def test_malformed_entries_are_refused_and_the_names_come_sorted() -> None:
    env = {"": "x", "A=B": "x", "BASH_FUNC_ls%%": "() { evil; }", "OK": "a\x00b", "FINE": "1"}
    assert refused_env_names(env) == sorted(["", "A=B", "BASH_FUNC_ls%%", "OK"])
    assert refused_env_names({"PATH": "/x", "LD_PRELOAD": "/y", "X": "1"}) == ["LD_PRELOAD", "PATH"]
