"""Landlock, the Linux security module that lets an unprivileged process give up rights.

Three system calls through ``ctypes``, nothing else: the ABI version, a ruleset, and
``restrict_self``. Why not a package: the launcher that calls this runs as
``python -I -S`` (no site-packages, to keep its start under a few milliseconds), so it can
import nothing but the standard library and its own folder; and of the bindings on PyPI
(``landlock`` 1.0.0.dev5, ``landlockpy`` 0.2.0, ``py-landlock`` 0.1.1, all alpha or beta
from single authors) the most used one stops at ABI 5 (no network rules, no scopes). The
kernel interface is small and stable (``include/uapi/linux/landlock.h``), so it is written
down here once.

This module must stay importable on its own (no package-relative imports): the launcher
loads it by path. Only the standard library.

What we use Landlock for: writes. Reading and executing stay allowed everywhere (they are
not "handled"), every kind of write is handled and then allowed only beneath the writable
folders. TCP bind/connect (ABI >= 4) are handled and never allowed when the network is off.
Scopes (ABI >= 6): signals to processes outside the sandbox, and, with the network off,
abstract unix sockets outside it.
"""

from __future__ import annotations

import ctypes
import os

# Syscall numbers: the same on every architecture but alpha (new calls share one table).
_SYS_CREATE_RULESET = 444
_SYS_ADD_RULE = 445
_SYS_RESTRICT_SELF = 446
_CREATE_RULESET_VERSION = 1 << 0
_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38

# Filesystem rights (LANDLOCK_ACCESS_FS_*); reads and EXECUTE are deliberately absent.
WRITE_FILE = 1 << 1
REMOVE_DIR = 1 << 4
REMOVE_FILE = 1 << 5
MAKE_CHAR = 1 << 6
MAKE_DIR = 1 << 7
MAKE_REG = 1 << 8
MAKE_SOCK = 1 << 9
MAKE_FIFO = 1 << 10
MAKE_BLOCK = 1 << 11
MAKE_SYM = 1 << 12
REFER = 1 << 13  # ABI 2: link or rename a file into another folder
TRUNCATE = 1 << 14  # ABI 3
IOCTL_DEV = 1 << 15  # ABI 5: ioctl on a character or block device
# Network rights (LANDLOCK_ACCESS_NET_*), ABI 4.
BIND_TCP = 1 << 0
CONNECT_TCP = 1 << 1
# Scopes (LANDLOCK_SCOPE_*), ABI 6.
SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0
SCOPE_SIGNAL = 1 << 1

# Rights that apply to a file itself; a rule on a non-directory may hold only these.
_FILE_RIGHTS = WRITE_FILE | TRUNCATE | IOCTL_DEV
# What a writable folder allows. Never MAKE_CHAR / MAKE_BLOCK: no command needs to make
# device nodes in a workspace, and one made there by a privileged user would open the disk.
_FOLDER_RIGHTS = (
    WRITE_FILE
    | REMOVE_DIR
    | REMOVE_FILE
    | MAKE_DIR
    | MAKE_REG
    | MAKE_SOCK
    | MAKE_FIFO
    | MAKE_SYM
    | REFER
    | TRUNCATE
)


class _RulesetAttr(ctypes.Structure):
    # The newest layout; the kernel accepts a longer struct whose extra fields are zero,
    # so one layout serves every ABI.
    _fields_ = (
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    )


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1  # __attribute__((packed)) in the kernel header: 12 bytes
    _fields_ = (("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32))


_libc = None


def _syscall():  # type: ignore[no-untyped-def]
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def _check(result: int, what: str) -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return result


def abi_version() -> int:
    """The Landlock ABI this kernel offers; 0 when Landlock is missing or turned off."""
    libc = _syscall()
    version = libc.syscall(_SYS_CREATE_RULESET, None, ctypes.c_size_t(0), _CREATE_RULESET_VERSION)
    return version if version > 0 else 0


def handled_fs(abi: int) -> int:
    """Every write right the kernel knows at ``abi`` (what the ruleset takes over)."""
    rights = _FOLDER_RIGHTS | MAKE_CHAR | MAKE_BLOCK
    if abi < 2:
        rights &= ~REFER
    if abi < 3:
        rights &= ~TRUNCATE
    if abi >= 5:
        rights |= IOCTL_DEV
    return rights


def restrict(
    folders: list[str],
    files: list[str],
    *,
    abi: int,
    deny_tcp: bool,
    scope_signals: bool,
    scope_abstract_sockets: bool,
) -> None:
    """Confine this thread, and everything it starts from now on, for good.

    Args:
        folders: folders beneath which every write is allowed.
        files: files (devices such as ``/dev/null``) that may be written, not replaced.
        abi: the kernel's ABI (:func:`abi_version`); rights it lacks are left out.
        deny_tcp: refuse every TCP bind and connect (ABI >= 4; ignored below).
        scope_signals: refuse signals to processes outside the sandbox (ABI >= 6).
        scope_abstract_sockets: refuse connecting to abstract unix sockets outside the
            sandbox (ABI >= 6).

    A path that does not exist is skipped (nothing there to allow).

    Raises:
        OSError: the kernel refused the ruleset; the command must then not run.
    """
    libc = _syscall()
    handled = handled_fs(abi)
    attr = _RulesetAttr(handled, 0, 0)
    if deny_tcp and abi >= 4:
        attr.handled_access_net = BIND_TCP | CONNECT_TCP
    if abi >= 6:
        attr.scoped = (SCOPE_SIGNAL if scope_signals else 0) | (
            SCOPE_ABSTRACT_UNIX_SOCKET if scope_abstract_sockets else 0
        )
    ruleset = _check(
        libc.syscall(
            _SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr)), 0
        ),
        "landlock_create_ruleset",
    )
    try:
        for path, rights in [(f, _FOLDER_RIGHTS) for f in folders] + [
            (f, _FILE_RIGHTS) for f in files
        ]:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
            try:
                if os.fstat(fd).st_mode & 0o170000 != 0o040000:  # not a folder
                    rights &= _FILE_RIGHTS
                rule = _PathBeneathAttr(rights & handled, fd)
                _check(
                    libc.syscall(_SYS_ADD_RULE, ruleset, _RULE_PATH_BENEATH, ctypes.byref(rule), 0),
                    f"landlock_add_rule {path}",
                )
            finally:
                os.close(fd)
        # Required for an unprivileged restrict_self, and it keeps setuid programs (sudo)
        # from gaining what the ruleset takes away.
        _check(libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")
        _check(libc.syscall(_SYS_RESTRICT_SELF, ruleset, 0), "landlock_restrict_self")
    finally:
        os.close(ruleset)
