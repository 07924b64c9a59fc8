"""The container launcher: ``python -I -S runtime/launch.py [options] -- COMMAND...``.

It enters the container's network namespace, unshares mount, UTS and PID namespaces, makes
its mounts private, sets the hostname, bind-mounts the container's hosts / resolv.conf /
hostname files over /etc (visible only inside), then forks the container's first process
(PID 1 of its PID namespace, with its own /proc) and stays as its parent: it records that
PID, forwards SIGTERM/SIGINT to it, reaps it and exits with its status. When the exec
fails it writes the reason to ``<pidfile>.err`` instead and exits 126 or 127.

It runs on every container start, so it imports only what it must (no argparse, socket
or dataclasses: ~35 ms together) and netctl runs it as a script without ``site``.
"""

from __future__ import annotations

import ctypes
import errno
import os
import signal
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_NOSUID, MS_NODEV, MS_NOEXEC = 2, 4, 8

_libc = ctypes.CDLL(None, use_errno=True)


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(src: str, dst: str, fstype: str | None, flags: int) -> None:
    _check(_libc.mount(src.encode(), dst.encode(), fstype.encode() if fstype else None, flags, None),
           f"mount {dst}")


def _read_all(fd: int) -> bytes:
    chunks = []
    while True:
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks)


def _report_exec_failure(pidfile: str, prog: str, err: int, text: str) -> None:
    """Leave the reason in ``<pidfile>.err`` for netctl (which reports it as its one error
    line) and exit as a shell would: 126 found but not runnable, 127 not found."""
    code = 127 if err == errno.ENOENT else 126
    with open(f"{pidfile}.err", "w") as fh:
        fh.write(f"{code} exec {prog!r}: {text.lower()}\n")
    sys.exit(code)


class Options:
    """The launcher's command line (parsed by hand: see :func:`parse_args`). A plain class:
    ``dataclasses`` imports ``inspect``, ~14 ms on every container start."""

    def __init__(self) -> None:
        self.pidfile = ""
        self.netns = ""          # network namespace to enter (empty: stay)
        self.hostname = ""
        self.etc = ""            # directory holding hosts, resolv.conf, hostname
        self.share_uts = False   # keep the host's UTS namespace (host mode)
        self.lock_fd = -1        # netctl's start lock: held until the pidfile is written
        self.cmd: list[str] = []


def parse_args(argv: list[str]) -> Options:
    """``--pidfile P [--netns N] [--hostname H] [--etc D] [--share-uts] [--lock-fd FD] -- CMD...``.

    By hand rather than with argparse: importing argparse costs ~12 ms, paid on every
    container start (only netctl calls this).

    Raises:
        SystemExit: for an unknown option, a missing value or no command.
    """
    opts = Options()
    valued = {"--pidfile": "pidfile", "--netns": "netns", "--hostname": "hostname", "--etc": "etc",
              "--lock-fd": "lock_fd"}
    i = 0
    while i < len(argv) and argv[i] != "--":
        arg = argv[i]
        if arg == "--share-uts":
            opts.share_uts = True
        elif arg in valued and i + 1 < len(argv):
            i += 1
            setattr(opts, valued[arg], int(argv[i]) if arg == "--lock-fd" else argv[i])
        else:
            sys.exit(f"netctl-launch: bad argument {arg!r}")
        i += 1
    opts.cmd = argv[i + 1:]
    if not opts.pidfile or not opts.cmd:
        sys.exit("netctl-launch: usage: --pidfile PATH [options] -- COMMAND...")
    return opts


def main(argv: list[str] | None = None) -> None:
    opts = parse_args(sys.argv[1:] if argv is None else argv)
    cmd = opts.cmd
    if opts.lock_fd >= 0:
        # never into the container's process
        os.set_inheritable(opts.lock_fd, False)
    if opts.netns:
        fd = os.open(opts.netns, os.O_RDONLY)
        _check(_libc.setns(fd, CLONE_NEWNET), "setns net")
        os.close(fd)
    flags = CLONE_NEWNS | CLONE_NEWPID | (0 if opts.share_uts else CLONE_NEWUTS)
    _check(_libc.unshare(flags), "unshare")
    # nothing we mount may leak back to the host
    _mount("none", "/", None, MS_REC | MS_PRIVATE)
    if opts.hostname and not opts.share_uts:
        raw = opts.hostname.encode()
        # libc rather than socket.sethostname: the socket module costs ~10 ms to import
        _check(_libc.sethostname(raw, len(raw)), "sethostname")
    if opts.etc:
        for name in ("hosts", "resolv.conf", "hostname"):
            src = os.path.join(opts.etc, name)
            dst = os.path.join("/etc", name)
            if os.path.exists(src) and os.path.exists(dst):
                _mount(src, dst, None, MS_BIND)
    # exec failures come back through a close-on-exec pipe: EOF means the exec worked
    rfd, wfd = os.pipe2(os.O_CLOEXEC)
    child = os.fork()
    if child == 0:
        os.close(rfd)
        try:
            # PID 1 of the new PID namespace: a /proc of its own so ps shows the container
            _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
            os.execvp(cmd[0], cmd)
        except OSError as exc:
            os.write(wfd, f"{exc.errno or 0} {exc.strerror or exc}".encode())
            os._exit(127)
    os.close(wfd)
    failure = _read_all(rfd)
    if failure:
        os.waitpid(child, 0)
        err, _, text = failure.decode(errors="replace").partition(" ")
        _report_exec_failure(opts.pidfile, cmd[0], int(err or 0), text)
    tmp = f"{opts.pidfile}.tmp"
    with open(tmp, "w") as fh:
        fh.write(f"{child}\n")
    os.rename(tmp, opts.pidfile)
    if opts.lock_fd >= 0:
        os.close(opts.lock_fd)

    def forward(signo: int, _frame: object) -> None:
        try:
            os.kill(child, signo)
        except ProcessLookupError:
            pass

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)
    while True:
        try:
            _, status = os.waitpid(child, 0)
            break
        except InterruptedError:
            continue
        except ChildProcessError:
            status = 0
            break
    code = os.waitstatus_to_exitcode(status)
    sys.exit(code if code >= 0 else 128 - code)


if __name__ == "__main__":
    main()
