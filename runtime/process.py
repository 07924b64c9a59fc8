"""A container's first process: start it through ``runtime.launch``, watch it, stop it.

The launcher writes ``<dir>/pid`` once the command has been exec'd, or ``<dir>/pid.err``
(exit status and reason) when the exec failed. ``run`` holds ``<dir>/starting.lock`` from
the moment the container exists until its start is recorded; ``netctl gc`` uses that lock
to tell a start in progress from one whose netctl was killed.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import sys
import time

from . import caps
from .errors import NetctlError
from .models import Container

PIDFILE = "pid"
START_LOCK = "starting.lock"
#: how long the launcher may take to exec the command
START_TIMEOUT = 10.0


def check_command(prog: str) -> None:
    """Fail early, with Docker's wording and a shell's status, for a command that cannot
    run: containers see the host's file system (only /etc files and /proc differ).

    Raises:
        NetctlError: code 127 when it does not exist, 126 when it is not executable.
    """
    if "/" not in prog:
        if shutil.which(prog) is None:
            raise NetctlError(f"exec: {prog!r}: executable file not found in $PATH", code=127)
        return
    if not os.path.exists(prog):
        raise NetctlError(f"exec: {prog!r}: no such file or directory", code=127)
    if os.path.isdir(prog) or not os.access(prog, os.X_OK):
        raise NetctlError(f"exec: {prog!r}: permission denied", code=126)


def _stat(pid: int) -> list[str]:
    """Fields of /proc/PID/stat after the command name (state is [0], starttime [19])."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[-1].split()
    except OSError:
        return []


def start_time(pid: int) -> int:
    """When ``pid`` started (clock ticks after boot); 0 when it does not exist."""
    fields = _stat(pid)
    return int(fields[19]) if len(fields) > 19 else 0


def alive(c: Container) -> bool:
    """Whether the container's first process exists and is not a zombie. A PID that now
    belongs to another process (its start time differs) is not the container's."""
    if not c.pid:
        return False
    fields = _stat(c.pid)
    if len(fields) < 20 or fields[0] == "Z":
        return False
    return not c.pid_start or int(fields[19]) == c.pid_start


def adopt(c: Container, container_dir: str) -> bool:
    """Fill in the PID of a container whose start was interrupted (still "created", no PID)
    from the launcher's pidfile; whether its process runs."""
    if c.state == "created" and not c.pid:
        pid = read_pid(container_dir)
        if pid:
            c.pid, c.pid_start = pid, start_time(pid)
    return alive(c)


def read_pid(container_dir: str) -> int:
    """The PID the launcher recorded (0 when it recorded none)."""
    try:
        with open(os.path.join(container_dir, PIDFILE)) as fh:
            return int(fh.read().strip() or 0)
    except (OSError, ValueError):
        return 0


def hold_start_lock(container_dir: str) -> int:
    """Take the container's start lock; the fd to pass to :func:`release_start_lock`."""
    fd = os.open(os.path.join(container_dir, START_LOCK), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def release_start_lock(fd: int) -> None:
    os.close(fd)


def start_abandoned(container_dir: str) -> bool:
    """True when no netctl is starting this container (its start lock is free): a container
    still "created" then belongs to a netctl that died."""
    try:
        fd = os.open(os.path.join(container_dir, START_LOCK), os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def caps_arg(c: Container) -> str:
    """The launcher's ``--caps`` for ``c``: capability numbers, or ``all`` when privileged.

    Raises:
        NetctlError: an unknown capability name in the record.
    """
    if c.privileged:
        return "all"
    return ",".join(str(n) for n in caps.numbers(caps.effective(c.cap_add, c.cap_drop)))


#: hidden behind a writable tmpfs of the container's own: programs write pid files there
PRIVATE_DIRS = ("/run", "/var/run")


def hidden_dirs(state_dirs: list[str]) -> list[tuple[str, bool]]:
    """What a container must not see, as (directory, gets a writable tmpfs): the host's /run
    (every daemon's socket, netctl's runtime state, the plugin daemon's and the agent's
    sockets; writable, private) and netctl's state directories (``state_dirs`` plus the
    default; read-only), parents first, symlinks resolved."""
    out: list[tuple[str, bool]] = []
    seen: set[str] = set()
    for d in [*PRIVATE_DIRS, "/var/lib/netctl", *state_dirs]:
        real = os.path.realpath(d)
        if real not in seen:
            seen.add(real)
            out.append((real, d in PRIVATE_DIRS))
    return sorted(out, key=lambda item: len(item[0]))


def launch_argv(c: Container, kind: str, container_dir: str, etc_dir: str, lock_fd: int = -1,
                hide: list[tuple[str, bool]] | None = None) -> list[str]:
    """The launcher's command line for ``c`` (``kind``: its network mode's kind; ``lock_fd``:
    the start lock it inherits, see :func:`launch`; ``hide``: see :func:`hidden_dirs`).

    Raises:
        NetctlError: an unknown capability name in the record.
    """
    # launch.py needs the standard library only: run it as a script, isolated and without
    # site (the editable install's import hooks alone cost ~25 ms on every start)
    argv = [_launcher(), "--pidfile", os.path.join(container_dir, PIDFILE), "--hostname", c.hostname,
            "--lock-fd", str(lock_fd), "--caps", caps_arg(c)]
    argv = [sys.executable, "-I", "-S", *argv]
    for d, writable in hide or []:
        argv += ["--hide-rw" if writable else "--hide", d]
    if kind == "host":
        argv += ["--share-uts", "--etc", ""]
    else:
        argv += ["--netns", c.netns, "--etc", etc_dir]
    return [*argv, "--", *c.command]


def exec_argv(c: Container, cmd: list[str]) -> list[str]:
    """The launcher's command line running ``cmd`` in the running container ``c``, with
    the container's capabilities (``docker exec`` gets the container's set too).

    Raises:
        NetctlError: an unknown capability name in the record.
    """
    return [sys.executable, "-I", "-S", _launcher(), "--enter", str(c.pid), "--caps", caps_arg(c),
            "--", *cmd]


def _launcher() -> str:
    return os.path.join(_pkg_root(), "runtime", "launch.py")


def launch(argv: list[str], container_dir: str, detach: bool,
           lock_fd: int = -1) -> tuple[subprocess.Popen[bytes], int]:
    """Start the launcher and wait until the command runs; (launcher, container PID).

    ``lock_fd`` (the start lock) is shared with the launcher until it has written the
    pidfile, so that a netctl killed meanwhile does not make the start look abandoned.

    Raises:
        NetctlError: the exec failed (code 126/127 as a shell's) or the launcher died or hung.
    """
    env = dict(os.environ)
    fds = (lock_fd,) if lock_fd >= 0 else ()
    if detach:
        with open(os.path.join(container_dir, "log"), "ab") as log:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                    start_new_session=True, close_fds=True, pass_fds=fds, env=env)
    else:
        proc = subprocess.Popen(argv, env=env, pass_fds=fds)
    pidfile = os.path.join(container_dir, PIDFILE)
    deadline = time.monotonic() + START_TIMEOUT
    while not os.path.exists(pidfile):
        if proc.poll() is not None:
            raise _start_error(container_dir, proc.returncode)
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise NetctlError("the container did not start in time")
        time.sleep(0.002)
    return proc, read_pid(container_dir)


def _start_error(container_dir: str, status: int) -> NetctlError:
    try:
        with open(os.path.join(container_dir, f"{PIDFILE}.err")) as fh:
            code, _, reason = fh.read().strip().partition(" ")
        return NetctlError(f"failed to start the container: {reason}", code=int(code))
    except (OSError, ValueError):
        return NetctlError(f"the container failed to start (status {status}): "
                           + _tail(os.path.join(container_dir, "log")))


def terminate(c: Container, timeout: float) -> None:
    """SIGTERM, then SIGKILL after ``timeout`` seconds (at once when ``timeout`` is 0); wait
    until the process is gone. PID 1 of a PID namespace ignores signals it has no handler
    for, so a plain ``sleep`` only goes with SIGKILL (``docker stop`` waits the same way)."""
    if not alive(c):
        return
    if timeout > 0:
        try:
            os.kill(c.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while alive(c) and time.monotonic() < deadline:
            time.sleep(0.02)
    if alive(c):
        try:
            os.kill(c.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        while alive(c):
            time.sleep(0.005)


def wait_foreground(proc: subprocess.Popen[bytes]) -> int:
    """Wait for a foreground container; its exit status (the launcher passes it on).

    The first Ctrl-C reaches the container through the launcher (same process group), so
    keep waiting for it to exit; a second one gives up waiting (``netctl gc`` detaches the
    container once it has gone).

    Raises:
        KeyboardInterrupt: on the second Ctrl-C.
    """
    try:
        return proc.wait()
    except KeyboardInterrupt:
        return proc.wait()


def _pkg_root() -> str:
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _tail(path: str) -> str:
    try:
        with open(path, errors="replace") as fh:
            return fh.read()[-400:].strip()
    except OSError:
        return ""
