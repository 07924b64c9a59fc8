"""Start, signal and stop the one dnsd of a configuration directory.

Imported by the DNS registration plugin (netplugins/meta/dnsreg.py) on every container
start: stdlib only, and subprocess is imported only when a dnsd really has to be started.

Who starts dnsd: a supervisor (netctl's agent) that watches a directory records itself in
``dnsd.supervisor`` (:func:`claim_supervision`); :func:`serve` then leaves the start to it
(it is nudged with SIGUSR1 and waited for), so dnsd is always a child the supervisor
restarts. Without a live supervisor, :func:`serve` starts dnsd itself
(:func:`ensure_running`).

Files in ``dns_dir``: ``dnsd.pid`` (the running dnsd), ``dnsd.lock`` (flock held while
the pid file is checked and changed: by ``ensure_running``, ``stop``, and by dnsd itself
when it claims the pid file at start or gives it up before exiting), ``dnsd.log`` (its
stdout/stderr). A recorded pid counts only if that process is alive, not a zombie, and
its command line is a dnsd for this same directory (pids are recycled).

Readiness: dnsd installs its SIGHUP handler only after it has bound its sockets, and
then reloads once more; "SIGHUP is caught" (``SigCgt`` in /proc/<pid>/status) therefore
means "serving". ``reload`` never signals a dnsd before that point (the default action
of SIGHUP would kill it), which is safe because the start-up load happens later than
any write that preceded the check.
"""

from __future__ import annotations

import fcntl
import os
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import subprocess

PID_FILE = "dnsd.pid"
LOCK_FILE = "dnsd.lock"
LOG_FILE = "dnsd.log"
#: options of the last start (--resolv-conf, --port), reused by restarts
ARGS_FILE = "dnsd.args"
#: the supervisor (agent) of this directory: {"pid": ..., "start": <its start time>}
SUPERVISOR_FILE = "dnsd.supervisor"
#: what a supervisor handles as "look at dnsd now" (the agent's loop ticks every 0.2 s anyway)
NUDGE = signal.SIGUSR1
#: seconds ensure_running waits for a starting dnsd to bind its sockets
READY_TIMEOUT = 10.0


class DnsdError(RuntimeError):
    """dnsd could not be started, or a dnsd for this directory runs elsewhere."""


@contextmanager
def control_lock(dns_dir: str) -> Iterator[None]:
    """Exclusive flock on ``dns_dir/dnsd.lock`` (creates the directory if needed)."""
    os.makedirs(dns_dir, exist_ok=True)
    fd = os.open(os.path.join(dns_dir, LOCK_FILE), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def read_pid(dns_dir: str) -> int | None:
    """The pid recorded in ``dns_dir/dnsd.pid``, or None (absent or garbage)."""
    try:
        with open(os.path.join(dns_dir, PID_FILE)) as fh:
            text = fh.read().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() and int(text) > 0 else None


def write_pid(dns_dir: str, pid: int) -> None:
    """Record ``pid`` atomically (temp + rename). Caller holds ``control_lock``."""
    path = os.path.join(dns_dir, PID_FILE)
    tmp = os.path.join(dns_dir, f".{PID_FILE}.{os.getpid()}")
    with open(tmp, "w") as fh:
        fh.write(f"{pid}\n")
    os.replace(tmp, path)


def remove_pid(dns_dir: str, pid: int | None = None) -> None:
    """Remove the pid file (only if it records ``pid``, when given). Caller holds the lock."""
    if pid is not None and read_pid(dns_dir) != pid:
        return
    try:
        os.unlink(os.path.join(dns_dir, PID_FILE))
    except FileNotFoundError:
        pass


def _alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return False
    # the state follows the ")" that closes the command name (which may contain spaces)
    return stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3] not in (b"Z", b"X")


def is_dnsd_for(pid: int, dns_dir: str) -> bool:
    """True if ``pid`` is a live dnsd serving ``dns_dir`` (by its command line)."""
    if not _alive(pid):
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            argv = [a.decode(errors="replace") for a in fh.read().split(b"\0") if a]
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return False
    module = any(argv[i : i + 2] == ["-m", "dnsd"] for i in range(len(argv)))
    script = any(os.path.basename(a) == "dnsd" for a in argv[:2])
    if not (module or script):
        return False
    target = None
    for i, arg in enumerate(argv):
        if arg == "--dir" and i + 1 < len(argv):
            target = argv[i + 1]
        elif arg.startswith("--dir="):
            target = arg[len("--dir=") :]
    if target is None:
        return False
    return os.path.realpath(os.path.join(cwd, target)) == os.path.realpath(dns_dir)


def find_running(dns_dir: str) -> int | None:
    """The pid of the live dnsd recorded for ``dns_dir``; None if none (or stale)."""
    pid = read_pid(dns_dir)
    return pid if pid is not None and is_dnsd_for(pid, dns_dir) else None


def hup_handled(pid: int) -> bool:
    """True once ``pid`` catches SIGHUP, i.e. dnsd has bound its sockets (see module doc)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("SigCgt:"):
                    return bool(int(line.split()[1], 16) & (1 << (signal.SIGHUP - 1)))
    except (OSError, ValueError):
        pass
    return False


def _same_netns(pid: int) -> bool:
    try:
        a, b = os.stat(f"/proc/{pid}/ns/net"), os.stat("/proc/self/ns/net")
    except OSError:
        return True  # cannot tell (process gone): let the caller's checks decide
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _spawn(dns_dir: str, resolv_conf: str | None, port: int | None) -> subprocess.Popen[bytes]:
    import subprocess  # only when a dnsd is actually started (plugin hot path stays lean)

    # -I: isolated, so a module planted in the caller's directory or PYTHONPATH is never
    # imported by a process running as root (the cwd is / as well)
    argv = [sys.executable, "-I", "-m", "dnsd", "--dir", dns_dir]
    if resolv_conf is not None:
        argv += ["--resolv-conf", os.path.abspath(resolv_conf)]
    if port is not None:
        argv += ["--port", str(port)]
    _write_args(dns_dir, resolv_conf, port)
    log_fd = os.open(
        os.path.join(dns_dir, LOG_FILE), os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644
    )
    try:
        # new session: the plugin's exit (or a signal to its process group) must not
        # take dnsd down; stdio to the log so no caller waits on an inherited pipe
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log_fd,
            stderr=log_fd,
            cwd="/",
            start_new_session=True,
            close_fds=True,
        )
    finally:
        os.close(log_fd)


def _write_args(dns_dir: str, resolv_conf: str | None, port: int | None) -> None:
    """Remember the options of the last start, so that a restart (by the agent) uses them."""
    # lazy: plugin start-up; only the commands that need it load it
    import json

    tmp = os.path.join(dns_dir, f".{ARGS_FILE}.{os.getpid()}")
    with open(tmp, "w") as fh:
        json.dump({"resolv_conf": os.path.abspath(resolv_conf) if resolv_conf else None,
                   "port": port}, fh)
    os.replace(tmp, os.path.join(dns_dir, ARGS_FILE))


def _read_args(dns_dir: str) -> tuple[str | None, int | None]:
    # lazy: plugin start-up; only the commands that need it load it
    import json

    try:
        with open(os.path.join(dns_dir, ARGS_FILE)) as fh:
            data = json.load(fh)
        rc, port = data.get("resolv_conf"), data.get("port")
        return (rc if isinstance(rc, str) else None,
                port if isinstance(port, int) and not isinstance(port, bool) else None)
    except (OSError, ValueError, AttributeError):
        return None, None


def wanted(dns_dir: str) -> bool:
    """Whether any DNS-enabled network is configured in ``dns_dir`` (dnsd should run)."""
    try:
        return any(n.endswith(".json") and not n.startswith(".")
                   for n in os.listdir(os.path.join(dns_dir, "networks")))
    except OSError:
        return False


def start_if_down(dns_dir: str) -> int | None:
    """Start dnsd for ``dns_dir`` with the options of its last start unless one runs;
    return the new pid, or None when one was running. Does not wait for readiness (the
    agent's supervision loop must not block).

    Raises:
        DnsdError: the recorded dnsd runs in another network namespace.
        OSError: dnsd cannot be started.
    """
    dns_dir = os.path.abspath(dns_dir)
    with control_lock(dns_dir):
        pid = find_running(dns_dir)
        if pid is not None:
            if not _same_netns(pid):
                raise DnsdError(f"dnsd (pid {pid}) for {dns_dir} runs in another network namespace")
            return None
        resolv_conf, port = _read_args(dns_dir)
        proc = _spawn(dns_dir, resolv_conf, port)
        write_pid(dns_dir, proc.pid)
        return proc.pid


def _log_tail(dns_dir: str, lines: int = 5) -> str:
    try:
        with open(os.path.join(dns_dir, LOG_FILE), errors="replace") as fh:
            return " | ".join(fh.read().splitlines()[-lines:])
    except OSError:
        return "(no log)"


def ensure_running(
    dns_dir: str,
    *,
    resolv_conf: str | None = None,
    port: int | None = None,
    timeout: float = READY_TIMEOUT,
) -> int:
    """Start dnsd for ``dns_dir`` in the current network namespace, or reload the running one.

    Race-safe across processes (flock). Returns once dnsd serves (its sockets are bound
    and it has read the configuration as it was when this function was called).
    ``resolv_conf`` and ``port`` only apply when a new dnsd is started.

    Raises:
        DnsdError: the recorded dnsd runs in another network namespace, or a new one
            exited with an error or did not become ready within ``timeout``.
    """
    dns_dir = os.path.abspath(dns_dir)
    for _attempt in range(3):
        proc = None
        with control_lock(dns_dir):
            pid = find_running(dns_dir)
            if pid is not None and not _same_netns(pid):
                raise DnsdError(
                    f"dnsd (pid {pid}) for {dns_dir} runs in another network namespace; "
                    "it cannot listen on this namespace's gateways"
                )
            if pid is None:
                proc = _spawn(dns_dir, resolv_conf, port)
                pid = proc.pid
                write_pid(dns_dir, pid)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                with control_lock(dns_dir):
                    crashed = read_pid(dns_dir) == pid
                    if crashed:
                        remove_pid(dns_dir, pid)
                if crashed:
                    raise DnsdError(f"dnsd exited during start-up: {_log_tail(dns_dir)}")
                return pid  # exited cleanly: nothing left to serve
            if proc is None and not is_dnsd_for(pid, dns_dir):
                break  # it stopped meanwhile: take the lock again and start a new one
            if hup_handled(pid):
                if proc is None:
                    os.kill(pid, signal.SIGHUP)
                return pid
            time.sleep(0.005)
        else:
            raise DnsdError(f"dnsd (pid {pid}) not ready after {timeout:.0f}s: {_log_tail(dns_dir)}")
    raise DnsdError(f"dnsd for {dns_dir} keeps stopping: {_log_tail(dns_dir)}")


def reload(dns_dir: str) -> bool:
    """Ask the running dnsd to re-read ``dns_dir`` (SIGHUP); no-op if none runs.

    Returns True if a signal was sent.
    """
    pid = find_running(os.path.abspath(dns_dir))
    if pid is None or not hup_handled(pid):
        return False
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        return False
    return True


def stop(dns_dir: str, timeout: float = 5.0) -> bool:
    """Stop the dnsd of ``dns_dir`` (SIGTERM, SIGKILL after ``timeout``).

    Returns True if a dnsd was running. A stale pid file is removed either way.
    """
    dns_dir = os.path.abspath(dns_dir)
    with control_lock(dns_dir):
        pid = find_running(dns_dir)
        if pid is None:
            remove_pid(dns_dir)
            return False
        os.kill(pid, signal.SIGTERM)
    # wait without the lock: a dnsd that is just giving up its pid file takes it too
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    if _alive(pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    with control_lock(dns_dir):
        remove_pid(dns_dir, pid)
    return True


# --- the supervisor (netctl's agent) -----------------------------------------------------


def _start_time(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat (start time in clock ticks): with the pid, it names one
    process even after the pid is recycled."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
        return int(stat[stat.rfind(b")") + 2 :].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def claim_supervision(dns_dir: str, pid: int) -> None:
    """Record ``pid`` (a process that handles :data:`NUDGE` by starting dnsd when needed)
    as the supervisor of ``dns_dir``. Written atomically.

    Raises:
        OSError: the directory cannot be written.
    """
    # lazy: plugin start-up; only the commands that need it load it
    import json

    dns_dir = os.path.abspath(dns_dir)
    os.makedirs(dns_dir, exist_ok=True)
    tmp = os.path.join(dns_dir, f".{SUPERVISOR_FILE}.{os.getpid()}")
    with open(tmp, "w") as fh:
        json.dump({"pid": pid, "start": _start_time(pid)}, fh)
    os.replace(tmp, os.path.join(dns_dir, SUPERVISOR_FILE))


def release_supervision(dns_dir: str, pid: int) -> None:
    """Remove the supervisor record if it names ``pid`` (absent = nothing to do)."""
    if _read_supervisor(dns_dir)[0] != pid:
        return
    try:
        os.unlink(os.path.join(os.path.abspath(dns_dir), SUPERVISOR_FILE))
    except FileNotFoundError:
        pass


def _read_supervisor(dns_dir: str) -> tuple[int | None, int | None]:
    # lazy: plugin start-up; only the commands that need it load it
    import json

    try:
        with open(os.path.join(os.path.abspath(dns_dir), SUPERVISOR_FILE)) as fh:
            data = json.load(fh)
        pid, start = data.get("pid"), data.get("start")
    except (OSError, ValueError, AttributeError):
        return None, None
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return None, None
    return pid, start if isinstance(start, int) else None


def find_supervisor(dns_dir: str) -> int | None:
    """The pid of the live supervisor of ``dns_dir`` in this network namespace, or None
    (none recorded, it died, its pid was recycled, or it serves another namespace: dnsd
    must listen where the gateways are)."""
    pid, start = _read_supervisor(dns_dir)
    if pid is None or not _alive(pid) or _start_time(pid) != start:
        return None
    return pid if _same_netns(pid) else None


def _wait_ready(dns_dir: str, timeout: float) -> int | None:
    """The pid of the recorded dnsd once it serves, or None after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        pid = find_running(dns_dir)
        if pid is not None and hup_handled(pid):
            return pid
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.005)


def serve(dns_dir: str, *, timeout: float = READY_TIMEOUT) -> int:
    """Make dnsd serve the configuration ``dns_dir`` holds now; return its pid.

    With a live supervisor (netctl's agent), the supervisor starts dnsd (nudged with
    :data:`NUDGE`) and this waits until it serves; else :func:`ensure_running` starts it
    here. Either way a ready dnsd is told to reload (SIGHUP), so what the caller wrote
    before this call is in its answers on return.

    Raises:
        DnsdError: dnsd did not serve within ``timeout`` (the message says who should have
            started it), or it runs in another network namespace.
    """
    dns_dir = os.path.abspath(dns_dir)
    sup = find_supervisor(dns_dir)
    if sup is None:
        return ensure_running(dns_dir, timeout=timeout)
    pid = find_running(dns_dir)
    if pid is not None and not _same_netns(pid):
        raise DnsdError(f"dnsd (pid {pid}) for {dns_dir} runs in another network namespace; "
                        "it cannot listen on this namespace's gateways")
    if pid is None:
        try:
            os.kill(sup, NUDGE)
        except ProcessLookupError:
            return ensure_running(dns_dir, timeout=timeout)  # it died just now
    ready = _wait_ready(dns_dir, timeout)
    if ready is None:
        raise DnsdError(f"the supervisor (pid {sup}) of {dns_dir} did not start dnsd within "
                        f"{timeout:.0f}s (see 'netctl agent status' and {LOG_FILE}): {_log_tail(dns_dir)}")
    try:
        os.kill(ready, signal.SIGHUP)
    except ProcessLookupError:
        pass  # it stopped meanwhile: the supervisor starts a new one, which reads everything
    return ready
