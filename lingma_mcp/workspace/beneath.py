"""Link-safe file operations beneath a workspace root.

Resolving a path and then using it leaves a window: a folder on the way can be swapped for
a symbolic link in between, and the operation lands wherever the link points. Here nothing
is resolved ahead: the root is opened once, and every operation walks from it one folder
at a time, each opened relative to the one before (``dir_fd``) with ``O_NOFOLLOW |
O_DIRECTORY``. A folder that is a link is refused whenever it is met, so a swap between a
check and a use cannot redirect the operation outside the root. The last component is
looked at without following it either (``lstat``, ``unlink``, ``rename`` all act on the
name itself).

Paths are relative, ``/``-separated and canonical: no ``..``, no ``.``, no empty
component, no leading ``/``, no NUL. Only regular files and symbolic links are read,
written or removed; devices, fifos and sockets are refused.

A final symbolic link is refused by :meth:`Beneath.write_bytes` unless ``replace_link`` is
given. Writing replaces by rename, which replaces the link itself and never writes through
it, so replacing is safe; it is still a choice, because it changes what the name is. A
revert makes that choice when it restores a file the call turned into a link.

POSIX only (Linux and macOS): ``openat``/``mkdirat``/``renameat``/``unlinkat`` through
``dir_fd``, ``O_NOFOLLOW`` and ``O_DIRECTORY`` all exist on both. Nothing here is
Linux-only; ``O_CLOEXEC`` is used where the OS has it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path

from .files import fill
from .paths import MAX_NAME_BYTES, MAX_PATH_BYTES, special_kind
from .workspace_errors import OutsideWorkspace, WorkspaceError

# getattr: these do not exist on Windows, where Beneath refuses to open (see SUPPORTED).
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_DIR_FLAGS = os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC
_READ_FLAGS = os.O_RDONLY | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0) | _CLOEXEC
_TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC
SUPPORTED = bool(_NOFOLLOW and _DIRECTORY) and os.open in os.supports_dir_fd
TEMP_SUFFIX = ".lingma-tmp"


class UnsafePath(OutsideWorkspace):
    """A path that could lead outside the root: ``..``, absolute, NUL, a link, a device."""


def split_relative(rel: str) -> list[str]:
    """The components of a canonical relative path, or :class:`UnsafePath` saying why not.

    Pure: it looks at the text only.
    """
    if not isinstance(rel, str) or not rel:
        raise UnsafePath("the path is empty or not text; give a path relative to the workspace")
    shown = rel.replace("\x00", "\\0")[:200]
    if "\x00" in rel:
        raise UnsafePath(f"the path {shown!r} contains a NUL byte")
    if rel.startswith("/"):
        raise UnsafePath(f"the path {shown!r} is absolute; give it relative to the workspace")
    parts = rel.split("/")
    for part in parts:
        if part in ("", ".", ".."):
            raise UnsafePath(
                f"the path {shown!r} has a {part or 'empty'!r} component; "
                "give a plain path inside the workspace"
            )
    try:
        encoded = os.fsencode(rel)
    except UnicodeEncodeError:
        raise UnsafePath(f"the path {shown!r} cannot be encoded for this file system") from None
    if len(encoded) > MAX_PATH_BYTES or any(len(p) > MAX_NAME_BYTES for p in encoded.split(b"/")):
        raise UnsafePath(
            f"the path {shown[:80]!r}… is too long (at most {MAX_PATH_BYTES} bytes, "
            f"{MAX_NAME_BYTES} per name)"
        )
    return parts


def _fsync_fd(fd: int) -> None:
    # Makes a rename or unlink in that folder durable; some file systems refuse it.
    with contextlib.suppress(OSError):
        os.fsync(fd)


class Beneath:
    """A workspace root, opened once; every operation walks from it without following links.

    Args:
        root: the workspace folder. It is opened as given (resolve it first); everything
            below it is walked without following links.

    Raises:
        WorkspaceError: the root cannot be opened as a folder.

    Use as a context manager, or call :meth:`close`. Safe to share between threads: each
    operation opens and closes its own descriptors.
    """

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self._fd = -1
        if not SUPPORTED:
            raise WorkspaceError(
                "link-safe file operations need O_NOFOLLOW, O_DIRECTORY and openat (Linux, "
                "macOS); this system lacks them"
            )
        try:
            self._fd = os.open(self.root, os.O_RDONLY | _DIRECTORY | _CLOEXEC)
        except OSError as exc:
            raise WorkspaceError(f"cannot open the workspace {root}: {exc.strerror}") from None

    def close(self) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)

    def __enter__(self) -> Beneath:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- walking -----------------------------------------------------------------------

    def _open_folder(self, parent: int, name: str, shown: str) -> int:
        """Open one folder below ``parent`` without following a link; raise if it is one."""
        try:
            return os.open(name, _DIR_FLAGS, dir_fd=parent)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
                try:
                    st = os.stat(name, dir_fd=parent, follow_symlinks=False)
                except OSError:
                    raise exc from None
                if stat.S_ISLNK(st.st_mode):
                    raise UnsafePath(
                        f"{shown} is a symbolic link, not a folder; nothing is done through "
                        "links to folders, which could lead outside the workspace"
                    ) from None
                raise WorkspaceError(f"{shown} is a file, not a folder") from None
            raise

    @contextlib.contextmanager
    def _parent(self, rel: str, *, create: bool = False) -> Iterator[tuple[int, str, list[str]]]:
        """The open folder holding ``rel``'s last component, that name, and folders made.

        Missing folders are made when ``create`` (``FileNotFoundError`` otherwise).
        """
        parts = split_relative(rel)
        if self._fd < 0:
            raise WorkspaceError("the workspace handle is closed")
        made: list[str] = []
        fd = os.dup(self._fd)
        try:
            for i, name in enumerate(parts[:-1]):
                shown = "/".join(parts[: i + 1])
                try:
                    child = self._open_folder(fd, name, shown)
                except FileNotFoundError:
                    if not create:
                        raise
                    try:
                        os.mkdir(name, 0o777, dir_fd=fd)
                        made.append(shown)
                    except FileExistsError:
                        pass  # made meanwhile: opened below like any other
                    except OSError as exc:
                        raise WorkspaceError(
                            f"cannot create the folder {shown}: {exc.strerror}"
                        ) from None
                    child = self._open_folder(fd, name, shown)
                except OSError as exc:
                    raise WorkspaceError(
                        f"cannot open the folder {shown}: {exc.strerror}"
                    ) from None
                os.close(fd)
                fd = child
            yield fd, parts[-1], made
        finally:
            os.close(fd)

    # -- reading -----------------------------------------------------------------------

    def lstat(self, rel: str) -> os.stat_result | None:
        """The stat of ``rel`` itself (a link is not followed); ``None`` if it does not exist.

        Raises:
            UnsafePath: the path is not canonical, or a folder on the way is a link.
        """
        try:
            with self._parent(rel) as (fd, name, _):
                return os.stat(name, dir_fd=fd, follow_symlinks=False)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except WorkspaceError as exc:
            if isinstance(exc, UnsafePath):
                raise
            return None  # a file where a folder would be: nothing exists at ``rel``

    def open_file(self, rel: str) -> int | None:
        """An open read-only descriptor on the regular file ``rel`` (the caller closes it);
        ``None`` if nothing exists there.

        Raises:
            UnsafePath: a link (final or on the way), a device, fifo or socket.
            WorkspaceError: a folder, or it cannot be opened.
        """
        try:
            with self._parent(rel) as (parent, name, _):
                try:
                    fd = os.open(name, _READ_FLAGS, dir_fd=parent)
                except FileNotFoundError:
                    return None
                except OSError as exc:
                    if exc.errno == errno.ELOOP:
                        raise UnsafePath(f"{rel} is a symbolic link; it is not followed") from None
                    raise WorkspaceError(f"cannot open {rel}: {exc.strerror}") from None
        except (FileNotFoundError, NotADirectoryError):
            return None
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            if stat.S_ISDIR(st.st_mode):
                raise WorkspaceError(f"{rel} is a folder, not a file")
            raise UnsafePath(f"{rel} is {special_kind(st.st_mode) or 'not a regular file'}")
        return fd

    def read_bytes(self, rel: str, *, max_bytes: int | None = None) -> bytes | None:
        """The bytes of the regular file ``rel``; ``None`` if it does not exist.

        Raises:
            UnsafePath: a link, a device, fifo or socket, or a link on the way.
            WorkspaceError: a folder, unreadable, or larger than ``max_bytes``.
        """
        fd = self.open_file(rel)
        if fd is None:
            return None
        with os.fdopen(fd, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if max_bytes is not None and size > max_bytes:
                raise WorkspaceError(f"{rel} has {size} bytes, more than the {max_bytes} allowed")
            return f.read()

    def read_link(self, rel: str) -> str | None:
        """The target of the symbolic link ``rel``; ``None`` if nothing exists there.

        Raises:
            WorkspaceError: it exists but is not a link.
        """
        try:
            with self._parent(rel) as (fd, name, _):
                return os.readlink(name, dir_fd=fd)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            if exc.errno == errno.EINVAL:
                raise WorkspaceError(f"{rel} is not a symbolic link") from None
            raise WorkspaceError(f"cannot read the link {rel}: {exc.strerror}") from None

    # -- changing ----------------------------------------------------------------------

    def _check_replaceable(
        self, fd: int, name: str, rel: str, *, replace_link: bool
    ) -> os.stat_result | None:
        try:
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            return None
        if stat.S_ISDIR(st.st_mode):
            raise WorkspaceError(f"{rel} is a folder; a file cannot replace it")
        if stat.S_ISLNK(st.st_mode) and not replace_link:
            raise UnsafePath(
                f"{rel} is a symbolic link; writing through it could change a file outside the "
                "workspace, so it is refused"
            )
        kind = special_kind(st.st_mode)
        if kind is not None:
            raise UnsafePath(f"{rel} is {kind}, not a regular file")
        return st

    def _temp(self, fd: int, name: str, mode: int) -> tuple[int, str]:
        stem = name[:40]
        for _ in range(16):
            temp = f".{stem}.{secrets.token_hex(6)}{TEMP_SUFFIX}"
            try:
                return os.open(temp, _TEMP_FLAGS, mode, dir_fd=fd), temp
            except FileExistsError:
                continue
        raise WorkspaceError(f"cannot create a temporary file beside {name}")  # pragma: no cover

    def write_bytes(
        self,
        rel: str,
        data: bytes,
        *,
        mode: int | None = None,
        replace_link: bool = False,
        durable: bool = True,
    ) -> list[str]:
        """Replace (or create) ``rel`` with ``data``, atomically and durably.

        The bytes go to a temporary file in the same folder, are flushed, renamed over the
        name, and the folder is flushed. With ``durable`` false the two flushes are left to
        the caller (one ``os.sync()`` after many writes costs far less than two ``fsync``
        each); the rename is atomic all the same. A replaced regular file keeps its mode (and owner,
        where allowed) unless ``mode`` is given; a new file gets ``mode``, or 0666 less the
        umask. Missing folders are created.

        Returns:
            The folders created, top first (relative paths).

        Raises:
            UnsafePath: not canonical, a link on the way, a final link (unless
                ``replace_link``), a device, fifo or socket.
            WorkspaceError: a folder is in the way, or the write failed.
        """
        with self._parent(rel, create=True) as (fd, name, made):
            old = self._check_replaceable(fd, name, rel, replace_link=replace_link)
            keep = old if old is not None and stat.S_ISREG(old.st_mode) else None
            private = mode is not None or keep is not None
            temp_fd, temp = self._temp(fd, name, 0o600 if private else 0o666)
            try:
                try:
                    fill(temp_fd, data, mode=mode, like=keep, durable=durable)
                finally:
                    os.close(temp_fd)
                os.replace(temp, name, src_dir_fd=fd, dst_dir_fd=fd)
            except BaseException as exc:
                with contextlib.suppress(OSError):
                    os.unlink(temp, dir_fd=fd)
                if isinstance(exc, OSError):
                    raise WorkspaceError(f"cannot write {rel}: {exc.strerror}") from None
                raise
            if durable:
                _fsync_fd(fd)
            return made

    def write_link(self, rel: str, target: str, *, durable: bool = True) -> list[str]:
        """Make ``rel`` a symbolic link to ``target``, replacing a file or link there.

        The link is made under a temporary name and renamed into place. Nothing is written
        through it: it is only a name, as the one it restores was.

        Returns:
            The folders created, top first.

        Raises:
            UnsafePath: as :meth:`write_bytes`; WorkspaceError: a folder in the way.
        """
        if "\x00" in target:
            raise UnsafePath("a link target cannot contain a NUL byte")
        with self._parent(rel, create=True) as (fd, name, made):
            self._check_replaceable(fd, name, rel, replace_link=True)
            for _ in range(16):
                temp = f".{name[:40]}.{secrets.token_hex(6)}{TEMP_SUFFIX}"
                try:
                    os.symlink(target, temp, dir_fd=fd)
                    break
                except FileExistsError:
                    continue
                except OSError as exc:
                    raise WorkspaceError(f"cannot create the link {rel}: {exc.strerror}") from None
            try:
                os.replace(temp, name, src_dir_fd=fd, dst_dir_fd=fd)
            except OSError as exc:
                with contextlib.suppress(OSError):
                    os.unlink(temp, dir_fd=fd)
                raise WorkspaceError(f"cannot create the link {rel}: {exc.strerror}") from None
            if durable:
                _fsync_fd(fd)
            return made

    def remove_file(self, rel: str, *, durable: bool = True) -> None:
        """Remove the file or link ``rel`` (a link itself, never what it points to).

        Raises:
            UnsafePath: not canonical, a link on the way, a device, fifo or socket.
            WorkspaceError: missing, a folder, or it could not be removed.
        """
        try:
            with self._parent(rel) as (fd, name, _):
                st = self._check_replaceable(fd, name, rel, replace_link=True)
                if st is None:
                    raise WorkspaceError(f"{rel} does not exist")
                try:
                    os.unlink(name, dir_fd=fd)
                except FileNotFoundError:
                    raise WorkspaceError(f"{rel} does not exist") from None
                except OSError as exc:
                    raise WorkspaceError(f"cannot remove {rel}: {exc.strerror}") from None
                if durable:
                    _fsync_fd(fd)
        except (FileNotFoundError, NotADirectoryError):
            raise WorkspaceError(f"{rel} does not exist") from None

    def remove_folder(self, rel: str, *, durable: bool = True) -> bool:
        """Remove the folder ``rel`` if it is empty; True when it was removed.

        A missing, non-empty or non-folder ``rel`` is left alone (False).

        Raises:
            UnsafePath: not canonical, or a link on the way.
        """
        try:
            with self._parent(rel) as (fd, name, _):
                try:
                    os.rmdir(name, dir_fd=fd)
                except OSError:
                    return False
                if durable:
                    _fsync_fd(fd)
                return True
        except (FileNotFoundError, NotADirectoryError):
            return False
        except WorkspaceError as exc:
            if isinstance(exc, UnsafePath):
                raise
            return False
