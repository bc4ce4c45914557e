"""The environment of commands Lingma runs, and the entries an agent may not set.

Two pure functions:

- :func:`clean_env`: what a hosted command gets from the server's environment. An
  allowlist, not a blocklist: the server's environment holds the person's tokens (the
  README tells CLI users to put ``QODERCN_PERSONAL_ACCESS_TOKEN`` in the host config), and
  a command that echoes ``$NAME`` must find nothing there. The person can pass more names
  with ``--command-env`` / ``LINGMA_COMMAND_ENV``.
- :func:`refused_env_names`: which entries of an environment an agent asked for would
  change what runs, so that running ``ls`` could run something else. The person approves
  a command line; a hidden ``BASH_ENV``, ``LD_PRELOAD`` or ``GIT_CONFIG_COUNT`` would run
  code the question never showed. Refusing is cheap: the agent can always write
  ``NAME=value command`` in the command line itself, where the person sees it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path

# What a command needs to find programs, know who and where it is, and print text.
ALLOWED_NAMES = ("PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "TERM", "TZ")
ALLOWED_PREFIXES = ("LC_",)

# Never passed on from the server's environment, unless the person names them.
_SECRET_PREFIXES = ("LINGMA_", "QODER")
_SECRET_SUFFIXES = ("_TOKEN", "_KEY", "_SECRET", "_PASSWORD")

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def parse_names(text: str | None) -> tuple[str, ...]:
    """``NAME,NAME`` (spaces allowed) -> names, in order, without repeats.

    Raises:
        ValueError: a name that is not an environment variable's name.
    """
    names: list[str] = []
    for piece in (text or "").split(","):
        name = piece.strip()
        if not name:
            continue
        if not _NAME.fullmatch(name):
            raise ValueError(
                f"{name!r} is not an environment variable name (letters, digits and _, "
                "not starting with a digit); give names separated by commas, e.g. "
                "'GOPATH,npm_config_cache'"
            )
        if name not in names:
            names.append(name)
    return tuple(names)


def _secret(name: str) -> bool:
    upper = name.upper()
    return upper.startswith(_SECRET_PREFIXES) or upper.endswith(_SECRET_SUFFIXES)


def _allowed(name: str) -> bool:
    return name in ALLOWED_NAMES or name.startswith(ALLOWED_PREFIXES)


def clean_env(
    source: Mapping[str, str],
    *,
    passthrough: Iterable[str] = (),
    tmpdir: Path | None = None,
) -> dict[str, str]:
    """A command's environment taken from ``source`` (the server's).

    Args:
        passthrough: names the person listed; passed on whatever they are called.
        tmpdir: the call's private temporary folder, set as ``TMPDIR``.
    """
    listed = set(passthrough)
    env = {
        name: value
        for name, value in source.items()
        if name in listed or (_allowed(name) and not _secret(name))
    }
    if tmpdir is not None:
        env["TMPDIR"] = str(tmpdir)
    return env


# Names whose value decides what runs. Shells: the files they source, the functions they
# import, how they split words and trace. The dynamic linker and every runtime's "load
# this first" switch. Programs that start other programs (editors, pagers, askpass, ssh,
# compilers, make). Where tools read their config (HOME, XDG) and where they download from
# or whom they trust (package indexes, proxies, CA bundles), since an install is code too.
_REFUSED_NAMES = frozenset(
    {
        # shells
        "PATH",
        "BASH_ENV",
        "ENV",
        "SHELL",
        "SHELLOPTS",
        "BASHOPTS",
        "BASH_XTRACEFD",
        "BASH_LOADABLES_PATH",
        "BASH_COMPAT",
        "POSIXLY_CORRECT",
        "IFS",
        "CDPATH",
        "GLOBIGNORE",
        "EXECIGNORE",
        "FPATH",
        "ZDOTDIR",
        "INPUTRC",
        "PS0",
        "PS1",
        "PS2",
        "PS3",
        "PS4",
        "PROMPT_COMMAND",
        "HOME",
        "TMPDIR",
        # programs that start programs
        "EDITOR",
        "VISUAL",
        "PAGER",
        "MANPAGER",
        "SYSTEMD_PAGER",
        "BROWSER",
        "LESSOPEN",
        "LESSCLOSE",
        "LESSKEY",
        "SSH_ASKPASS",
        "SUDO_ASKPASS",
        "VIMINIT",
        "EXINIT",
        "MYVIMRC",
        "GVIMINIT",
        "EMACSLOADPATH",
        # the C library and OpenSSL load code named here
        "GCONV_PATH",
        "LOCPATH",
        "NLSPATH",
        "HOSTALIASES",
        "RESOLV_HOST_CONF",
        "OPENSSL_CONF",
        "OPENSSL_ENGINES",
        "OPENSSL_MODULES",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
        "CURL_HOME",
        "WGETRC",
        # runtimes
        "NODE_OPTIONS",
        "NODE_PATH",
        "NODE_EXTRA_CA_CERTS",
        "NODE_TLS_REJECT_UNAUTHORIZED",
        "NODE_REPL_EXTERNAL_MODULE",
        "PERL5LIB",
        "PERL5OPT",
        "PERLLIB",
        "PERL5DB",
        "RUBYOPT",
        "RUBYLIB",
        "GEM_HOME",
        "GEM_PATH",
        "PHPRC",
        "PHP_INI_SCAN_DIR",
        "TCLLIBPATH",
        "CLASSPATH",
        "JAVA_HOME",
        "JAVA_TOOL_OPTIONS",
        "_JAVA_OPTIONS",
        "JDK_JAVA_OPTIONS",
        "JAVA_OPTS",
        "MAVEN_OPTS",
        "GRADLE_OPTS",
        "GRADLE_USER_HOME",
        "SBT_OPTS",
        "ANT_OPTS",
        "ERL_AFLAGS",
        "ERL_ZFLAGS",
        "ERL_FLAGS",
        "ERL_LIBS",
        "ELIXIR_ERL_OPTIONS",
        "VIRTUAL_ENV",
        "CONDA_PREFIX",
        # builds
        "CC",
        "CXX",
        "CPP",
        "LD",
        "AR",
        "AS",
        "CFLAGS",
        "CXXFLAGS",
        "CPPFLAGS",
        "LDFLAGS",
        "MAKEFLAGS",
        "MFLAGS",
        "GNUMAKEFLAGS",
        "MAKEFILES",
        "RUSTC",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTFLAGS",
        "RUSTDOCFLAGS",
    }
)

_REFUSED_PREFIXES = (
    "BASH_FUNC_",  # exported shell functions: `ls` could be redefined
    "LD_",  # LD_PRELOAD, LD_LIBRARY_PATH, LD_AUDIT ...
    "DYLD_",
    "PYTHON",  # PYTHONPATH, PYTHONSTARTUP, PYTHONHOME, PYTHONWARNINGS (imports) ...
    "PIP_",
    "UV_",
    "PIPX_",
    "POETRY_",
    "CONDA_",
    "NPM_CONFIG_",  # npm reads these in any case: npm_config_script_shell ...
    "YARN_",
    "PNPM_",
    "BUN_",
    "DENO_",
    "COREPACK_",
    "RUBY",
    "BUNDLE_",
    "PERL",
    "LUA_",
    "R_PROFILE",
    "R_ENVIRON",
    "R_LIBS",
    "JULIA_",
    "CARGO_",
    "RUSTUP_",
    "DOTNET_",
    "CORECLR_",
    "COMPLUS_",
    "MSBUILD",
    "NUGET_",
    "CMAKE_",
    "COMPOSER",
    "XDG_CONFIG_",
    "XDG_DATA_",
    "GIT_",  # GIT_CONFIG_*, GIT_SSH_COMMAND, GIT_EXEC_PATH, GIT_DIR ... (safe ones below)
    "SSH_",
)

# GIT_ names that only say who and when, or how much to print.
_GIT_HARMLESS = frozenset(
    {
        "GIT_AUTHOR_NAME",
        "GIT_AUTHOR_EMAIL",
        "GIT_AUTHOR_DATE",
        "GIT_COMMITTER_NAME",
        "GIT_COMMITTER_EMAIL",
        "GIT_COMMITTER_DATE",
        "GIT_TERMINAL_PROMPT",
        "GIT_OPTIONAL_LOCKS",
        "GIT_FLUSH",
        "GIT_QUIET",
    }
)

# Go's settings are one word after GO (GOFLAGS=-toolexec=..., GOPROXY, GOTOOLCHAIN).
_GO_SETTING = re.compile(r"GO[A-Z0-9]+")


def refused_env_names(env: Mapping[str, str]) -> list[str]:
    """The names in ``env`` (an environment an agent asked for) that change what runs.

    Also refused: a name that is not a variable's name (``=`` or NUL in it, empty), and a
    value with a NUL byte (it would be cut where the person cannot see). Sorted.
    """
    refused = []
    for name, value in env.items():
        upper = name.upper()
        if (
            not _NAME.fullmatch(name)
            or "\x00" in value
            or upper in _REFUSED_NAMES
            or upper.endswith("_PROXY")  # http_proxy, HTTPS_PROXY, ALL_PROXY: what is fetched
            or _GO_SETTING.fullmatch(upper)
        ):
            refused.append(name)
        elif upper.startswith(_REFUSED_PREFIXES) and upper not in _GIT_HARMLESS:
            refused.append(name)
    return sorted(refused)
