"""The warm plugin daemon: runs CNI command functions for thin plugin executables.

A plugin process pays ~13 ms of Python start-up; importing pyroute2 and netaddr would add
~250 ms more on every container start. The daemon imports them once. Each call is served
by a forked worker that enters the caller's mount and network namespaces (passed as file
descriptors), sets the caller's environment and runs the same pure ``skel.run`` that a
plugin process would run. Fork isolates calls from each other (no shared state, a crash
kills one call) and makes ``setns`` safe (a single-threaded child).

Only root (or our own uid) may connect: SO_PEERCRED is checked on every connection.
"""

from __future__ import annotations

import argparse
import ctypes
import fcntl
import gc
import io
import logging
import os
import select
import signal
import socket
import struct
import sys
import time

from .cni.attlock import LockTimeout, attachment_lock
from .cni.errors import CniError
from .cni.shim import ACK, DEFAULT_SOCKET, REP_HDR, REQ_HDR, decode_env, recv_exact
from .cni.skel import error_outcome, log_level, run
from .firewall import libnft
from .nl.netns import _libc, setns
from .registry import available, load_funcs

log = logging.getLogger("netplugins.daemon")
CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000


def preload() -> list[str]:
    """Import every plugin module and the heavy libraries they use; return what loaded."""
    loaded = []
    for ptype in available():
        try:
            load_funcs(ptype)
            loaded.append(ptype)
        except Exception as exc:  # noqa: BLE001 - a broken optional plugin must not stop the rest
            log.warning("cannot preload plugin %s: %s", ptype, exc)
    for module in ("pyroute2", "netaddr", "sqlite3", "hashlib", "ctypes", "netplugins.nl.links",
                   "netplugins.nl.bridge", "netplugins.nl.pyroute", "netplugins.delivery",
                   "netplugins.firewall.nftables", "netplugins.firewall.iptables",
                   "netplugins.firewall.ports", "netplugins.firewall.ports_nft",
                   "netplugins.firewall.ports_ipt", "netplugins.firewall.ports_iptc",
                   "netplugins.firewall.iptables_driver", "netplugins.firewall.ports_ipt_driver",
                   "netplugins.meta.hostsockets", "netplugins.meta.localnet",
                   "netplugins.meta.conntrack", "netplugins.cni.attlock", "netplugins.cni.rollback",
                   "netplugins.cni.lastresort", "netplugins.firewall.libnft", "netplugins.firewall.driver",
                   "netplugins.firewall.desired", "dnsd.config",
                   "dnsd.control"):
        try:
            __import__(module)
        except ImportError:
            pass
    _libc()  # loaded once here instead of in every worker
    libnft.library()  # dlopen once; each call makes its own context after setns
    try:
        # python-iptables costs ~110 ms to import; importing is fork-safe (building rules is not)
        from .firewall.iptc_table import preload as preload_iptc

        preload_iptc()
    except Exception as exc:  # noqa: BLE001 - legacy iptables is optional on nft hosts
        log.info("python-iptables not preloaded: %s", exc)
    return loaded


def _ns_key(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return (st.st_dev, st.st_ino)


def _enter(fd: int, nstype: int, own: str) -> None:
    """Join the namespace behind ``fd`` unless we are already in it."""
    st = os.fstat(fd)
    if (st.st_dev, st.st_ino) != _ns_key(own):
        setns(fd, nstype)


def _read_request(conn: socket.socket) -> tuple[str, dict[str, str], bytes, list[int]]:
    """Read one request and its namespace fds (see netplugins.cni.shim for the format).

    Raises:
        ConnectionError: the caller went away before the whole request arrived.
    """
    hsize = struct.calcsize(REQ_HDR)
    data, ancdata, _, _ = conn.recvmsg(hsize, socket.CMSG_SPACE(4 * 4))
    fds: list[int] = []
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            usable = len(payload) - len(payload) % 4
            fds.extend(struct.unpack(f"{usable // 4}i", payload[:usable]))
    if len(data) < hsize:
        data += recv_exact(conn, hsize - len(data))
    ntype, nenv, nstdin = struct.unpack(REQ_HDR, data)
    body = recv_exact(conn, ntype + nenv + nstdin)
    ptype = body[:ntype].decode()
    env = decode_env(body[ntype:ntype + nenv])
    return ptype, env, body[ntype + nenv:], fds


def _log_level(value: str) -> int:
    """The level named by NETCTL_LOG_LEVEL; WARNING for anything else (never raises)."""
    level = logging.getLevelName(value.strip().upper() or "WARNING")
    return level if isinstance(level, int) else logging.WARNING


def _serve_one(conn: socket.socket) -> None:
    """Worker body: read a request with its namespace fds, run it, reply.

    The call holds its attachment's lock (netplugins.cni.attlock) until the reply is
    delivered. When the caller went away first (a runtime that timed out and killed the
    plugin process), a successful ADD is undone with a DEL before the lock is released:
    the runtime never learnt of the ADD, and its own DEL may already be waiting on the
    lock, after which nothing of the attachment must remain.
    """
    t0 = time.perf_counter()
    ptype, env, stdin, fds = _read_request(conn)
    # from here on the call counts as delivered: the shim will not run it again
    conn.sendall(ACK)
    if len(fds) >= 2:
        # mount first: setns(CLONE_NEWNS) needs a single-threaded process, which a fresh
        # fork is; it also makes CNI_NETNS and dataDir paths resolve as the caller sees them
        _enter(fds[1], CLONE_NEWNS, "/proc/self/ns/mnt")
        _enter(fds[0], CLONE_NEWNET, "/proc/self/ns/net")
    for fd in fds:
        os.close(fd)
    os.environ.clear()
    os.environ.update(env)
    errbuf = io.StringIO()
    handler = logging.StreamHandler(errbuf)
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    # an invalid level must not kill the worker (the caller would get code 11)
    level, complaint = log_level(env.get("NETCTL_LOG_LEVEL"))
    root.setLevel(level)
    if complaint:
        logging.getLogger("netplugins").warning("%s", complaint)

    funcs = load_funcs(ptype)
    try:
        with attachment_lock(env):
            outcome = run(funcs, env, stdin)
            stderr = errbuf.getvalue().encode() + (outcome.stderr if outcome.exit_code else b"")
            reply = (struct.pack(REP_HDR, outcome.exit_code, len(outcome.stdout), len(stderr))
                     + outcome.stdout + stderr)
            try:
                conn.sendall(reply)
            except OSError:
                if env.get("CNI_COMMAND") == "ADD" and outcome.exit_code == 0:
                    _undo_add(funcs, env, stdin)
                raise
    except (LockTimeout, OSError) as exc:
        if isinstance(exc, LockTimeout):
            outcome = error_outcome(CniError(11, "another plugin call on this attachment is still "
                                             "running", str(exc)), stdin)
        elif isinstance(exc, ConnectionError):
            raise  # the caller is gone (its ADD undone above): nobody to answer
        else:
            outcome = error_outcome(CniError(5, "cannot take the attachment lock", str(exc)), stdin)
        conn.sendall(struct.pack(REP_HDR, outcome.exit_code, len(outcome.stdout), 0) + outcome.stdout)
    log.debug("%s %s served in %.1f ms", ptype, env.get("CNI_COMMAND"),
              (time.perf_counter() - t0) * 1e3)


def _undo_add(funcs: object, env: dict[str, str], stdin: bytes) -> None:
    """DEL what an ADD made whose caller is gone (call with the attachment lock held)."""
    undo_env = dict(env, CNI_COMMAND="DEL")
    outcome = run(funcs, undo_env, stdin)  # type: ignore[arg-type]
    if outcome.exit_code:
        log.warning("undoing ADD of %s/%s after its caller went away failed: %s",
                    env.get("CNI_CONTAINERID"), env.get("CNI_IFNAME"),
                    outcome.stdout.decode(errors="replace").strip())


def _peer_allowed(conn: socket.socket) -> bool:
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _, uid, _ = struct.unpack("3i", creds)
    return uid in (0, os.getuid())


def code_stamp() -> float:
    """Newest modification time of the Python files of our packages that are loaded.

    A daemon serving old code after an upgrade (or an edit) would give answers the
    executables no longer mean; it compares this stamp every few seconds and exits on change.
    """
    newest = 0.0
    for name, module in list(sys.modules.items()):
        if name.split(".", 1)[0] not in ("netplugins", "ipam", "dnsd"):
            continue
        path = getattr(module, "__file__", None)
        if path:
            try:
                newest = max(newest, os.stat(path).st_mtime)
            except OSError:
                newest = max(newest, time.time())  # removed: treat as changed
    return newest


def single_instance(path: str) -> int:
    """Hold an exclusive flock on ``<socket>.lock`` for the daemon's lifetime.

    Two netctl commands may each start a daemon at the same moment; the second one must
    not unlink the first one's socket and leave it serving nobody.

    Raises:
        OSError: when another daemon holds the lock.
    """
    fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise OSError(f"a plugin daemon already serves {path}") from None
    return fd


_STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}
PR_SET_PDEATHSIG = 1


def _worker(srv: socket.socket, parent: int, taken_w: int) -> None:
    """A pre-forked worker: wait for one connection, say so on ``taken_w`` (the owner forks
    a replacement at once, not when this call ends), serve it, exit.

    Entered with SIGTERM/SIGINT blocked (see :func:`_spawn`). SIGTERM ends an idle worker
    at once; a busy one finishes its call first, so stopping the daemon never cuts a plugin
    command in half. The worker also gets SIGTERM when the daemon dies (PR_SET_PDEATHSIG),
    so a killed daemon leaves no worker waiting in accept().
    """
    code = 0
    busy = False

    def on_term(_signo: int, _frame: object) -> None:
        if not busy:
            os._exit(0)

    try:
        _child_setup()
        signal.signal(signal.SIGTERM, on_term)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        _die_with_parent(signal.SIGTERM)
        if os.getppid() != parent:
            os._exit(0)  # the daemon died before we could ask to be told
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
        while True:
            conn, _ = srv.accept()
            busy = True
            if _peer_allowed(conn):
                break
            conn.close()
            busy = False
        srv.close()
        try:
            os.write(taken_w, os.getpid().to_bytes(4, "little"))
        except OSError:
            pass  # the owner is gone or its pipe is full: it learns of us when we exit
        os.close(taken_w)
        _serve_one(conn)
    except BaseException:  # noqa: BLE001 - the worker must exit, never return to the loop
        code = 1
    finally:
        os._exit(code)


#: the owner's descriptors a forked child must not keep: the single-instance lock above all
#: (a worker finishing its call after the agent died must not keep a new agent out)
CLOSE_IN_CHILDREN: set[int] = set()


def _child_setup() -> None:
    """In a fresh child: drop the owner's descriptors, signal wake-up and handlers."""
    signal.set_wakeup_fd(-1)
    for signo in (signal.SIGCHLD, signal.SIGHUP):
        signal.signal(signo, signal.SIG_DFL)
    for fd in CLOSE_IN_CHILDREN:
        try:
            os.close(fd)
        except OSError:
            pass


def _die_with_parent(signo: int) -> None:
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signo), 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _fork(what: str) -> int:
    """fork() with the stop signals blocked across it: one arriving before the child has
    its own handlers would otherwise run the owner's handler in the child. The parent gets
    them unblocked again; the child unblocks them once its handlers are set. -1 if fork
    failed."""
    signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        pid = os.fork()
    except OSError as exc:
        log.warning("cannot fork %s: %s", what, exc)
        pid = -1
    if pid != 0:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
    return pid


def fork_child(death_signal: int = signal.SIGKILL) -> int:
    """Fork a helper child (not a worker): 0 in the child, which has default signal
    handlers and gets ``death_signal`` when we die; the child's PID in the parent; -1 if
    fork failed."""
    parent = os.getpid()
    pid = _fork("a helper")
    if pid == 0:
        _child_setup()
        for signo in _STOP_SIGNALS:
            signal.signal(signo, signal.SIG_DFL)
        _die_with_parent(death_signal)
        if os.getppid() != parent:
            os._exit(0)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
    return pid


def _spawn(srv: socket.socket, taken_r: int, taken_w: int) -> int:
    """Fork a worker (which never returns here); its PID, 0 when fork failed (the caller
    retries later)."""
    parent = os.getpid()
    pid = _fork("a worker")
    if pid == 0:
        _worker(srv, parent, taken_w)  # taken_r is closed there (CLOSE_IN_CHILDREN)
    return max(pid, 0)


class WorkerPool:
    """Pre-forked workers blocked in accept() on one listening socket.

    Idle workers wait ahead of time, so a call does not wait for a fork (~2-5 ms of a
    process this size); each serves one call and exits. A worker that accepted a call
    writes its PID to a pipe (:attr:`notify_fd`, for the owner's select): :meth:`taken`
    marks it busy, and when fewer than half the target wait idle :meth:`fill` forks
    replacements while the calls still run (see :meth:`wanted`).

    ``spare`` idle workers are kept; when a burst takes every idle worker (a runtime
    starting many containers at once), the target grows by ``spare`` up to ``burst`` and
    falls back to ``spare`` after ``BURST_HOLD`` seconds without such a burst. At most
    ``limit`` workers (idle and busy) exist at once. The owner's loop reaps children and
    hands their PIDs to :meth:`reaped`.
    """

    BURST_HOLD = 5.0
    #: how idle workers are told to go (a test gives a recorder)
    kill = staticmethod(os.kill)

    def __init__(self, srv: socket.socket, spare: int = 4, burst: int = 16, limit: int = 64) -> None:
        self.srv = srv
        self.spare = spare
        self.burst = max(burst, spare)
        self.limit = max(limit, self.burst)
        self.target = spare
        self.idle: set[int] = set()
        self.workers: set[int] = set()  # idle and busy
        self.served = 0
        self._drained_at = 0.0
        self._taken_r, self._taken_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        CLOSE_IN_CHILDREN.add(self._taken_r)

    @property
    def notify_fd(self) -> int:
        """Readable when a worker took a call: select on it, then call :meth:`taken`."""
        return self._taken_r

    def wanted(self) -> bool:
        """Whether :meth:`fill` has workers to fork now.

        A busy worker counts as a coming replacement (forked when it exits) while at least
        half the target waits idle: a fork during a call competes with that call for the
        CPU, which on a small host costs more than it saves. Below that, replacements are
        forked at once (a burst of calls).
        """
        if len(self.workers) >= self.limit:
            return False
        if len(self.workers) < self.target:
            return True
        return len(self.idle) < max(1, self.target // 2)

    def fill(self) -> bool:
        """Fork workers while :meth:`wanted`; False when a fork failed (retry later)."""
        self._settle()
        while self.wanted():
            pid = _spawn(self.srv, self._taken_r, self._taken_w)
            if not pid:
                return False
            self.workers.add(pid)
            self.idle.add(pid)
        return True

    def taken(self) -> None:
        """Read which workers accepted a call since the last look; grow on a burst."""
        try:
            data = os.read(self._taken_r, 4096)
        except BlockingIOError:
            return
        for at in range(0, len(data) - len(data) % 4, 4):
            self.idle.discard(int.from_bytes(data[at:at + 4], "little"))
        if not self.idle:
            self.target = min(self.burst, self.target + self.spare)
            self._drained_at = time.monotonic()

    def _settle(self) -> None:
        """After a quiet spell, back to ``spare`` idle workers: the extra ones exit."""
        if self.target > self.spare and time.monotonic() - self._drained_at > self.BURST_HOLD:
            self.target = self.spare
            for pid in sorted(self.idle)[self.spare:]:
                try:
                    self.kill(pid, signal.SIGTERM)  # idle: exits at once (see _worker)
                except ProcessLookupError:
                    pass
                self.idle.discard(pid)

    def reaped(self, pid: int) -> bool:
        """Forget a worker that exited; False when ``pid`` was not one of ours."""
        if pid in self.workers:
            self.workers.discard(pid)
            if pid not in self.idle:
                self.served += 1
            self.idle.discard(pid)
            return True
        return False

    def stop(self, grace: float = 30.0, wait: bool = True) -> None:
        """End every worker: idle ones at once, busy ones after their call (killed after
        ``grace`` seconds). ``wait=False`` only asks them (a re-exec'd owner reaps them)."""
        if wait:
            _stop_workers(self.workers, grace)
        else:
            for pid in self.workers:
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        self.workers.clear()


def bind_socket(path: str) -> socket.socket:
    """A listening Unix socket at ``path`` that only root can connect to (mode 0600).

    Raises:
        OSError: when it cannot be bound.
    """
    os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)
    try:
        srv.bind(path)
    finally:
        os.umask(old_umask)
    srv.listen(256)
    return srv


def serve(path: str, idle_timeout: float = 0.0, spare: int = 4) -> None:
    """Only the worker pool, no supervision (the agent, runtime.agent, adds that): listen on
    ``path`` and serve plugin calls until SIGTERM (or ``idle_timeout`` seconds idle).

    Raises:
        OSError: when the socket cannot be bound (e.g. another daemon is live there).
    """
    lock_fd = single_instance(path)
    preload()
    stamp = code_stamp()
    next_stamp_check = time.monotonic() + 2.0
    srv = bind_socket(path)
    # keep the preloaded heap out of the collector so forked workers don't copy its pages
    gc.freeze()
    stopping = False

    def stop(_signo: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    pool = WorkerPool(srv, spare)
    last = time.monotonic()
    try:
        while not stopping:
            pool.taken()
            if not pool.fill():
                time.sleep(0.1)
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                pid = 0
            if pid:
                pool.reaped(pid)
                last = time.monotonic()
                continue
            if idle_timeout and time.monotonic() - last > idle_timeout:
                break
            if time.monotonic() > next_stamp_check:
                next_stamp_check = time.monotonic() + 2.0
                if code_stamp() != stamp:
                    log.info("our code changed on disk: exiting so that a fresh daemon serves it")
                    break
            select.select([pool.notify_fd], [], [], 0.002 if pool.wanted() else 0.05)
    finally:
        # no new connections; idle workers exit on SIGTERM, busy ones finish their call
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        srv.close()
        pool.stop()
        os.close(lock_fd)


def _stop_workers(workers: set[int], grace: float = 30.0) -> None:
    """SIGTERM every worker (idle ones exit, busy ones finish their call); SIGKILL what is
    left after ``grace`` seconds, so a stuck call cannot keep the daemon from exiting."""
    for pid in workers:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    left = set(workers)
    while left:
        for pid in list(left):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                left.discard(pid)
        if left and time.monotonic() > deadline:
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            grace = 0
            deadline = time.monotonic() + 5
        if left:
            time.sleep(0.01)


def main(argv: list[str] | None = None) -> None:
    """``python -m netplugins.daemon [--socket PATH] [--idle-timeout S]``."""
    parser = argparse.ArgumentParser(prog="netplugind", description=__doc__.splitlines()[0])
    parser.add_argument("--socket", default=os.environ.get("NETCTL_PLUGIND_SOCKET", DEFAULT_SOCKET))
    parser.add_argument("--idle-timeout", type=float, default=0.0)
    opts = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="netplugind: %(message)s")
    try:
        serve(opts.socket, opts.idle_timeout)
    except OSError as exc:
        sys.stderr.write(f"netplugind: {exc}\n")
        sys.exit(1)


if __name__ == "__main__":
    main()
