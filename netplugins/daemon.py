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

import io
import logging
import os
import signal
import socket
import struct
import sys
import time

from .cni.shim import ACK, REP_HDR, REQ_HDR, decode_env, recv_exact
from .nl.netns import setns
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
                   "netplugins.nl.bridge", "netplugins.nl.ioctl", "netplugins.delivery",
                   "netplugins.firewall.nftables", "netplugins.firewall.iptables",
                   "netplugins.firewall.ports", "netplugins.firewall.ports_nft",
                   "netplugins.firewall.ports_ipt", "netplugins.firewall.ports_iptc",
                   "netplugins.meta.hostsockets", "netplugins.meta.localnet",
                   "netplugins.meta.conntrack", "dnsd.config", "dnsd.control"):
        try:
            __import__(module)
        except ImportError:
            pass
    from .nl.netns import _libc

    _libc()  # loaded once here instead of in every worker
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


def _serve_one(conn: socket.socket) -> None:
    """Worker body: read a request with its namespace fds, run it, reply."""
    t0 = time.perf_counter()
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
    stdin = body[ntype + nenv:]
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
    from .cni.skel import log_level, run

    # an invalid level must not kill the worker (the caller would get code 11)
    level, complaint = log_level(env.get("NETCTL_LOG_LEVEL"))
    root.setLevel(level)
    if complaint:
        logging.getLogger("netplugins").warning("%s", complaint)

    outcome = run(load_funcs(ptype), env, stdin)
    stderr = errbuf.getvalue().encode() + (outcome.stderr if outcome.exit_code else b"")
    conn.sendall(struct.pack(REP_HDR, outcome.exit_code, len(outcome.stdout), len(stderr))
                 + outcome.stdout + stderr)
    log.debug("%s %s served in %.1f ms", ptype, env.get("CNI_COMMAND"),
              (time.perf_counter() - t0) * 1e3)


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


def _single_instance(path: str) -> int:
    """Hold an exclusive flock on ``<socket>.lock`` for the daemon's lifetime.

    Two netctl commands may each start a daemon at the same moment; the second one must
    not unlink the first one's socket and leave it serving nobody.

    Raises:
        OSError: when another daemon holds the lock.
    """
    import fcntl

    fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise OSError(f"a plugin daemon already serves {path}") from None
    return fd


_STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}
PR_SET_PDEATHSIG = 1


def _worker(srv: socket.socket, parent: int) -> None:
    """A pre-forked worker: wait for one connection, serve it, exit.

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
        signal.signal(signal.SIGTERM, on_term)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        except (OSError, AttributeError):
            pass
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
        _serve_one(conn)
    except BaseException:  # noqa: BLE001 - the worker must exit, never return to the loop
        code = 1
    finally:
        os._exit(code)


def _spawn(srv: socket.socket) -> int:
    """Fork a worker; 0 when fork failed (the caller retries later).

    The stop signals are blocked across fork: one arriving before the child has its own
    handler would otherwise run the daemon's handler in the child and leave it in accept().
    """
    parent = os.getpid()
    signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        pid = os.fork()
    except OSError as exc:
        log.warning("cannot fork a worker: %s", exc)
        pid = 0
    if pid == 0 and os.getpid() != parent:
        _worker(srv, parent)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
    return pid


def serve(path: str, idle_timeout: float = 0.0, spare: int = 4) -> None:
    """Listen on ``path`` and serve plugin calls until SIGTERM (or ``idle_timeout`` seconds idle).

    ``spare`` workers are forked ahead of time and block in accept(), so a call does not wait
    for a fork (~2-5 ms of a process this size); each serves one call and exits, and the
    parent forks a replacement.

    Raises:
        OSError: when the socket cannot be bound (e.g. another daemon is live there).
    """
    os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
    lock_fd = _single_instance(path)
    preload()
    stamp = code_stamp()
    next_stamp_check = time.monotonic() + 2.0
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
    import gc

    # keep the preloaded heap out of the collector so forked workers don't copy its pages
    gc.freeze()
    stopping = False

    def stop(_signo: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    workers: set[int] = set()
    last = time.monotonic()
    try:
        while not stopping:
            while len(workers) < spare:
                pid = _spawn(srv)
                if not pid:
                    time.sleep(0.1)
                    break
                workers.add(pid)
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                pid = 0
            if pid:
                workers.discard(pid)
                last = time.monotonic()
                continue
            if idle_timeout and time.monotonic() - last > idle_timeout:
                break
            if time.monotonic() > next_stamp_check:
                next_stamp_check = time.monotonic() + 2.0
                if code_stamp() != stamp:
                    log.info("our code changed on disk: exiting so that a fresh daemon serves it")
                    break
            time.sleep(0.002 if len(workers) < spare else 0.05)
    finally:
        # no new connections; idle workers exit on SIGTERM, busy ones finish their call
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        srv.close()
        _stop_workers(workers)
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
    import argparse

    from .cni.shim import DEFAULT_SOCKET

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
