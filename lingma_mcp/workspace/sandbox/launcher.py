"""The Linux sandbox launcher: confine one program, run it, and report its end as its own.

Run through ``python -I -S launch.py OPTIONS -- PROGRAM ARGS...`` (``wrap()`` builds the line;
the options are what ``support()`` found this machine can do, so nothing here probes or
guesses). It sets the sandbox up and then ``exec``s the program, the way Codex's sandbox
helper does, rather than running Python between ``fork`` and ``exec`` in the server
(``preexec_fn``), which is unsafe with threads and cannot make namespaces for a
multi-threaded process anyway.

Standalone and standard library only, started with ``-I -S``: no site-packages and no
package import, so it starts in a few milliseconds (the goal is under 20 ms a command).
``launch.py``, the script itself, is a few lines that import this module and its one
sibling, ``landlock.py``, by their folder: a module's compiled form is cached, a script is
compiled anew on every run (8 ms for this one).

Steps, each one only when its option is given:

1. New namespaces in one ``unshare``: user (the caller's uid and gid mapped to themselves,
   ``setgroups`` denied), mount, PID and network (a fresh one holds only a loopback that
   is down: no route anywhere).
2. In the private mount namespace: each read-only folder bind-mounted read-only over
   itself (Landlock cannot carve a read-only hole in a writable folder; this is
   bubblewrap's way), and a private ``/dev/shm``. The working folder is entered again so
   that it, too, is seen through the new mounts.
3. With a PID namespace, a child becomes its init: it mounts a ``/proc`` of its own, starts
   the program and waits; when the program ends, init ends, and the kernel kills whatever
   is left in the namespace, ``setsid`` daemons and double forks included. Without one,
   the launcher is a child subreaper and kills what is left itself (``-c``).
4. Landlock, last (it forbids mounting): writes only beneath the writable folders and to a
   few devices, TCP bind/connect refused with the network off, signals to processes
   outside refused.

Signals, status and output: the launcher and init block every signal they can, so a
SIGTERM sent to the process group reaches the program (which shares the group) and leaves
the launcher alive to report; the program gets the signal mask the launcher was started
with. SIGKILL to the group ends everything at once (init dies, and the namespace with it;
init also dies with the launcher through the parent-death signal). The launcher then exits
with the program's status, or kills itself with the signal that killed the program.
Stdout and stderr are the program's own: the launcher writes only its own failures to
stderr, prefixed ``lingma-mcp sandbox:``, and then exits 125 without running anything.
"""

from __future__ import annotations

import _signal as signal  # `signal` imports enum: 3 to 8 ms of a 20 ms budget
import ctypes
import os

import landlock  # this folder is on sys.path: launch.py put it there

_CLONE_NEWNS = 0x00020000
_CLONE_NEWUSER = 0x10000000
_CLONE_NEWPID = 0x20000000
_CLONE_NEWNET = 0x40000000
_MS_RDONLY = 1
_MS_NOSUID = 2
_MS_NODEV = 4
_MS_NOEXEC = 8
_MS_REMOUNT = 32
_MS_NOATIME = 1024
_MS_NODIRATIME = 2048
_MS_BIND = 4096
_MS_REC = 16384
_MS_PRIVATE = 1 << 18
_MS_RELATIME = 1 << 21
_ST_RELATIME = 4096
_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36

# Devices every program may write (not create or remove). Under strace, bash, git, Python,
# Node, npm, pip, make, ripgrep and the Lingma CLI opened only /dev/null and /dev/tty for
# writing; /dev/zero and /dev/full are the other bit buckets, and programs that make a
# pseudo-terminal (Python's pty, `script`, node-pty) open /dev/ptmx and then /dev/pts/N.
DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/tty", "/dev/ptmx", "/dev/pts")

FAILED = 125  # the launcher itself failed: nothing was run (as `env` and `nice` do)

_libc = ctypes.CDLL(None, use_errno=True)


class Options:
    """What to set up, parsed from the command line (see ``wrap.launcher_argv``)."""

    def __init__(self) -> None:
        self.writable: list[str] = []
        self.read_only: list[str] = []
        self.abi = 0
        self.no_network = False
        self.scope_signals = False
        self.user_ns = False
        self.mount_ns = False
        self.pid_ns = False
        self.net_ns = False
        self.fresh_proc = False
        self.private_shm = False
        self.contain = False


class SetupError(Exception):
    """A step of the set-up failed: the program must not run half-confined."""


def _fail(message: str) -> None:
    os.write(2, f"lingma-mcp sandbox: {message}\n".encode(errors="replace"))
    os._exit(FAILED)


def _check(result: int, what: str) -> None:
    if result < 0:
        err = ctypes.get_errno()
        raise SetupError(f"{what}: {os.strerror(err)}")


def parse(argv: list[str]) -> tuple[Options, list[str]]:
    opts = Options()
    flags = {
        "-n": "no_network",
        "-s": "scope_signals",
        "-U": "user_ns",
        "-M": "mount_ns",
        "-P": "pid_ns",
        "-N": "net_ns",
        "-p": "fresh_proc",
        "-m": "private_shm",
        "-c": "contain",
    }
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            return opts, argv[i + 1 :]
        if arg in flags:
            setattr(opts, flags[arg], True)
        elif arg in ("-w", "-r", "-a") and i + 1 < len(argv):
            i += 1
            if arg == "-w":
                opts.writable.append(argv[i])
            elif arg == "-r":
                opts.read_only.append(argv[i])
            else:
                opts.abi = int(argv[i])
        else:
            raise SetupError(f"unknown launcher option {arg!r}")
        i += 1
    raise SetupError("no program given (expected `-- PROGRAM ARGS...`)")


def original_environment() -> dict[bytes, bytes]:
    """The environment this process was started with, exactly.

    Python coerces a C locale by setting LC_CTYPE in its own environment at start-up
    (PEP 538), which ``-I`` does not turn off; /proc/self/environ still holds the block the
    kernel was given, so the program gets what our caller passed, nothing added.
    """
    try:
        with open("/proc/self/environ", "rb") as f:
            block = f.read()
    except OSError:
        return {k: v for k, v in os.environb.items()}
    env = {}
    for entry in block.split(b"\0"):
        key, sep, value = entry.partition(b"=")
        if sep and key:
            env[key] = value
    return env


# -- namespaces and mounts --------------------------------------------------------------


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def enter_namespaces(opts: Options) -> None:
    flags = (
        (_CLONE_NEWUSER if opts.user_ns else 0)
        | (_CLONE_NEWNS if opts.mount_ns else 0)
        | (_CLONE_NEWPID if opts.pid_ns else 0)
        | (_CLONE_NEWNET if opts.net_ns else 0)
    )
    if not flags:
        return
    uid, gid = os.getuid(), os.getgid()
    _check(_libc.unshare(flags), "cannot make namespaces (unshare)")
    if opts.user_ns:
        # One id mapped to itself: the program keeps its uid and gains no privilege
        # outside; `setgroups` must be denied before an unprivileged gid_map.
        try:
            _write("/proc/self/setgroups", "deny")
            _write("/proc/self/uid_map", f"{uid} {uid} 1")
            _write("/proc/self/gid_map", f"{gid} {gid} 1")
        except OSError as exc:
            raise SetupError(f"cannot map the user id in the user namespace: {exc}") from None


def _mount(source: str | None, target: str, fstype: str | None, flags: int, what: str) -> None:
    _check(
        _libc.mount(
            source.encode() if source else None,
            target.encode(),
            fstype.encode() if fstype else None,
            ctypes.c_ulong(flags),
            None,
        ),
        f"{what} ({target})",
    )


def _keep_flags(path: str) -> int:
    # A remount inside a user namespace must keep the flags the outer mount locked
    # (nosuid, nodev, noexec, atime); statvfs tells which are set.
    f = os.statvfs(path).f_flag
    kept = f & (_MS_NOSUID | _MS_NODEV | _MS_NOEXEC | _MS_NOATIME | _MS_NODIRATIME)
    return kept | (_MS_RELATIME if f & _ST_RELATIME else 0)


def set_up_mounts(opts: Options) -> None:
    # Nothing mounted here may reach the outer namespace.
    _mount(None, "/", None, _MS_REC | _MS_PRIVATE, "cannot make the mounts private")
    for path in opts.read_only:
        if not os.path.lexists(path):
            continue  # nothing there to protect
        _mount(path, path, None, _MS_BIND | _MS_REC, "cannot bind-mount a read-only folder")
        flags = _MS_REMOUNT | _MS_BIND | _MS_RDONLY | _keep_flags(path)
        _mount(None, path, None, flags, "cannot make a folder read-only")
    if opts.private_shm and os.path.isdir("/dev/shm"):
        _mount("tmpfs", "/dev/shm", "tmpfs", _MS_NOSUID | _MS_NODEV, "cannot mount /dev/shm")
    # The working folder was looked up before the mounts: look it up again, or a program
    # started inside a read-only folder would still write through the old lookup.
    os.chdir(os.getcwd())


def mount_proc() -> None:
    # /proc of this PID namespace: `ps` shows the sandbox's processes only, and the
    # outer ones cannot be found by pid.
    _mount("proc", "/proc", "proc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC, "cannot mount /proc")


# -- running the program ----------------------------------------------------------------


def _confine(opts: Options) -> None:
    """Landlock for this process and everything it starts from now on."""
    if not opts.abi:
        return
    folders = list(opts.writable)
    if opts.private_shm and os.path.isdir("/dev/shm"):
        folders.append("/dev/shm")
    try:
        landlock.restrict(
            folders,
            list(DEVICES),
            abi=opts.abi,
            deny_tcp=opts.no_network,
            scope_signals=opts.scope_signals,
            scope_abstract_sockets=opts.no_network,
        )
    except OSError as exc:
        _fail(f"cannot confine the program: {exc}")


# Python changed these at start-up (SIGINT handled, SIGPIPE and SIGXFSZ ignored, and an
# ignored signal survives exec): the program gets the defaults, as subprocess gives them.
_RESET = (signal.SIGINT, signal.SIGPIPE, signal.SIGXFSZ)


def _cannot_run(program: str, exc: OSError) -> int:
    os.write(2, f"lingma-mcp sandbox: cannot run {program}: {exc.strerror}\n".encode())
    return 127 if isinstance(exc, FileNotFoundError) else 126  # as a shell says it


def _exec_program(
    opts: Options, command: list[str], env: dict[bytes, bytes], mask: set[int]
) -> None:
    """In the child that becomes the program: Landlock, the caller's signals, exec."""
    _confine(opts)
    for sig in _RESET:
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    try:
        os.execvpe(command[0], command, env)
    except OSError as exc:
        os._exit(_cannot_run(command[0], exc))


def _status_code(status: int) -> int:
    """A wait status as an exit code, negative for a signal (as subprocess does)."""
    return os.waitstatus_to_exitcode(status)


def _children() -> list[int]:
    pid = os.getpid()
    try:
        with open(f"/proc/self/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        found = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as f:
                        if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                            found.append(int(entry))
                except (OSError, IndexError, ValueError):
                    continue
        return found


def _kill_the_rest() -> None:
    """As a child subreaper: kill every process left behind, until none is left.

    Orphans of the program are re-parented to us, so our children are all of them; each
    one killed hands its own children to us, and the next round gets those.
    """
    while children := _children():
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for pid in children:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass


def _wait_for(pid: int) -> int:
    """Reap every child until ``pid`` ends; its wait status."""
    while True:
        reaped, status = os.waitpid(-1, 0)
        if reaped == pid:
            return status


def run_as_init(
    opts: Options, command: list[str], env: dict[bytes, bytes], mask: set[int], report: int
) -> None:
    """PID 1 of the new namespace: start the program, reap, and report its end."""
    try:
        _check(_libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl(PDEATHSIG)")
        if opts.fresh_proc:
            mount_proc()
    except SetupError as exc:
        _fail(str(exc))
    # A fork, not posix_spawn: glibc's posix_spawn leaves its two internal signals
    # ignored in the child, and an ignored signal survives exec.
    program = os.fork()
    if program == 0:
        os.close(report)
        _exec_program(opts, command, env, mask)
    code = _status_code(_wait_for(program))
    os.write(report, str(code).encode())
    # Our exit ends the namespace: the kernel kills whatever the program left running.
    os._exit(0)


def finish(code: int) -> None:
    """Leave the way the program left: its exit code, or death by its signal."""
    if code >= 0:
        os._exit(code)
    sig = -code
    if sig in (signal.SIGQUIT, signal.SIGILL, signal.SIGABRT, signal.SIGFPE, signal.SIGSEGV):
        import resource  # the program dumped its core if it could; we must not add ours

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # Pending signals we blocked are dropped (SIG_IGN discards them), so only this one
    # decides how we end.
    for other in signal.valid_signals():
        if other not in (signal.SIGKILL, signal.SIGSTOP, sig):
            try:
                signal.signal(other, signal.SIG_IGN)
            except (OSError, ValueError):
                pass
    if sig not in (signal.SIGKILL, signal.SIGSTOP):
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    os.kill(os.getpid(), sig)
    os._exit(128 + sig)  # a signal whose default is not to terminate


def main(argv: list[str]) -> None:
    try:
        opts, command = parse(argv)
    except (SetupError, ValueError) as exc:
        _fail(str(exc))
    if not command:
        _fail("no program given")
    env = original_environment()
    # Blocked, not ignored: a blocked signal stays pending for the program, and the
    # program's mask is restored before exec (an ignored one would be inherited).
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
    try:
        enter_namespaces(opts)
        if opts.mount_ns:
            set_up_mounts(opts)
        if opts.contain and not opts.pid_ns:
            _check(_libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), "prctl(SUBREAPER)")
    except (SetupError, OSError) as exc:
        _fail(str(exc))
    if opts.pid_ns:
        read_end, write_end = os.pipe()
        init = os.fork()
        if init == 0:
            os.close(read_end)
            run_as_init(opts, command, env, mask, write_end)
        os.close(write_end)
        status = _wait_for(init)
        with os.fdopen(read_end, "rb") as f:
            said = f.read()
        # Init reports the program's end; if init itself was killed, that is the end.
        finish(int(said) if said else _status_code(status))
    program = os.fork()
    if program == 0:
        if opts.contain:
            _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        _exec_program(opts, command, env, mask)
    status = _wait_for(program)
    if opts.contain:
        _kill_the_rest()
    finish(_status_code(status))


# -- probing what this machine allows (once per server, from support()) ----------------


def _in_child(step) -> str | None:  # type: ignore[no-untyped-def]
    """Run ``step`` in a child of its own; why it failed, or ``None`` when it worked."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        try:
            step()
        except BaseException as exc:  # any failure is the answer, not a crash
            os.write(write_end, str(exc).encode(errors="replace")[:300])
            os._exit(1)
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as f:
        why = f.read().decode(errors="replace").replace("\n", " ")
    if os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0:
        return None
    return why or "failed"


def _try(name: str, step) -> bool:  # type: ignore[no-untyped-def]
    """Print ``name=1`` or ``name=0 why`` for ``step``; whether it worked."""
    why = _in_child(step)
    print(f"{name}=1" if why is None else f"{name}=0 {why}", flush=True)
    return why is None


def probe(scratch: str) -> None:
    """Try each step this launcher can take, each in a child of its own, and print which
    work; ``scratch`` is an empty folder the caller removes afterwards."""
    abi = landlock.abi_version()
    print(f"abi={abi}", flush=True)

    def ns(**flags: bool) -> Options:
        opts = Options()
        for key, value in flags.items():
            setattr(opts, key, value)
        return opts

    def read_only_mount(user: bool) -> None:
        enter_namespaces(ns(user_ns=user, mount_ns=True))
        opts = Options()
        opts.read_only.append(scratch)
        set_up_mounts(opts)
        if not os.statvfs(scratch).f_flag & _MS_RDONLY:
            raise SetupError("the bind mount stayed writable")

    def pid_and_proc(user: bool) -> None:
        enter_namespaces(ns(user_ns=user, mount_ns=True, pid_ns=True))

        def init() -> None:
            if os.getpid() != 1:
                raise SetupError("the child is not PID 1")
            mount_proc()

        why = _in_child(init)  # only a child enters the new PID namespace
        if why is not None:
            raise SetupError(why)

    def private_shm(user: bool) -> None:
        enter_namespaces(ns(user_ns=user, mount_ns=True))
        set_up_mounts(ns(private_shm=True))

    def confined() -> None:
        landlock.restrict(
            [], [], abi=abi, deny_tcp=abi >= 4, scope_signals=False, scope_abstract_sockets=False
        )
        try:
            os.mkdir(os.path.join(scratch, "written"))
        except PermissionError:
            return
        raise SetupError("a write outside every writable folder was allowed")

    user = _try("user", lambda: enter_namespaces(ns(user_ns=True)))
    _try("mount", lambda: read_only_mount(user))
    _try("pid", lambda: enter_namespaces(ns(user_ns=user, pid_ns=True)))
    _try("proc", lambda: pid_and_proc(user))
    _try("net", lambda: enter_namespaces(ns(user_ns=user, net_ns=True)))
    _try("shm", lambda: private_shm(user))
    if abi:
        _try("landlock", confined)
