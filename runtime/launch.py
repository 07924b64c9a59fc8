"""The container launcher: ``python -m runtime.launch [options] -- COMMAND...``.

It enters the container's network namespace, unshares mount, UTS and PID namespaces, makes
its mounts private, sets the hostname, bind-mounts the container's hosts / resolv.conf /
hostname files over /etc (visible only inside), then forks the container's first process
(PID 1 of its PID namespace, with its own /proc) and stays as its parent: it records that
PID, forwards SIGTERM/SIGINT to it, reaps it and exits with its status.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import socket
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


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="netctl-launch")
    p.add_argument("--netns", default="", help="network namespace to enter (empty: stay)")
    p.add_argument("--hostname", default="")
    p.add_argument("--etc", default="", help="directory holding hosts, resolv.conf, hostname")
    p.add_argument("--pidfile", required=True)
    p.add_argument("--share-uts", action="store_true", help="keep the host's UTS namespace (host mode)")
    p.add_argument("cmd", nargs=argparse.REMAINDER)
    opts = p.parse_args(argv)
    cmd = opts.cmd[1:] if opts.cmd and opts.cmd[0] == "--" else opts.cmd
    if not cmd:
        sys.exit("netctl-launch: no command")
    if opts.netns:
        fd = os.open(opts.netns, os.O_RDONLY)
        _check(_libc.setns(fd, CLONE_NEWNET), "setns net")
        os.close(fd)
    flags = CLONE_NEWNS | CLONE_NEWPID | (0 if opts.share_uts else CLONE_NEWUTS)
    _check(_libc.unshare(flags), "unshare")
    # nothing we mount may leak back to the host
    _mount("none", "/", None, MS_REC | MS_PRIVATE)
    if opts.hostname and not opts.share_uts:
        socket.sethostname(opts.hostname)
    if opts.etc:
        for name in ("hosts", "resolv.conf", "hostname"):
            src = os.path.join(opts.etc, name)
            dst = os.path.join("/etc", name)
            if os.path.exists(src) and os.path.exists(dst):
                _mount(src, dst, None, MS_BIND)
    child = os.fork()
    if child == 0:
        try:
            # PID 1 of the new PID namespace: a /proc of its own so ps shows the container
            _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
            os.execvp(cmd[0], cmd)
        except OSError as exc:
            sys.stderr.write(f"netctl: cannot run {cmd[0]!r}: {exc.strerror}\n")
            os._exit(127)
    tmp = f"{opts.pidfile}.tmp"
    with open(tmp, "w") as fh:
        fh.write(f"{child}\n")
    os.rename(tmp, opts.pidfile)

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
