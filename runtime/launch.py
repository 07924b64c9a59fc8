"""The container launcher: ``python -I -S runtime/launch.py [options] -- COMMAND...``.

It enters the container's network namespace, unshares mount, UTS and PID namespaces, makes
its mounts private, sets the hostname, then forks the container's first process (PID 1 of
its PID namespace) and stays as its parent: it records that PID, forwards SIGTERM/SIGINT
to it, reaps it and exits with its status. When the exec fails it writes the reason to
``<pidfile>.err`` instead and exits 126 or 127.

The first process gets a mount namespace of its own (nested in the launcher's, so the
launcher can still write the pidfile): its own /proc, a read-only empty tmpfs over every
``--hide`` directory (netctl's state and sockets), a writable empty one of its own over every
``--hide-rw`` directory (the host's /run: programs expect to write there), the container's hosts /
resolv.conf / hostname bind-mounted over /etc, and then only the capabilities of ``--caps``
(bounding, permitted and effective sets; inheritable and ambient empty) with
``no_new_privs``: see docs/security.md.

``--enter PID`` (``netctl exec``) instead joins the namespaces of the container whose first
process is PID and runs the command there with the same capabilities.

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
MS_RDONLY, MS_REMOUNT = 1, 32
PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 24, 38, 47, 4
_LINUX_CAPABILITY_VERSION_3 = 0x20080522

_libc = ctypes.CDLL(None, use_errno=True)


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(src: str, dst: str, fstype: str | None, flags: int) -> None:
    _check(_libc.mount(src.encode(), dst.encode(), fstype.encode() if fstype else None, flags, None),
           f"mount {dst}")


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def _last_cap() -> int:
    with open("/proc/sys/kernel/cap_last_cap") as fh:
        return int(fh.read().strip())


def drop_capabilities(keep: set[int] | None) -> None:
    """Leave only ``keep`` in the bounding, permitted and effective sets (``None``: keep all,
    ``--privileged``), empty the inheritable and ambient sets, and set ``no_new_privs``
    unless privileged. The bounding set goes first: dropping from it needs CAP_SETPCAP,
    which capset may take away.

    Raises:
        OSError: the kernel refused (the container must not start with more than asked).
    """
    if keep is None:
        return
    for cap in range(_last_cap() + 1):
        if cap not in keep:
            _check(_libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), f"drop capability {cap}")
    if _libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0:
        if ctypes.get_errno() != errno.EINVAL:  # EINVAL: a kernel without ambient sets
            _check(-1, "clear ambient capabilities")
    # no setuid binary or file capability can give back what was dropped
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "set no_new_privs")
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    for cap in keep:
        data[cap // 32].effective |= 1 << (cap % 32)
        data[cap // 32].permitted |= 1 << (cap % 32)
    _check(_libc.capset(ctypes.byref(header), data), "capset")


def _under(path: str, dirs: list[str]) -> bool:
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in dirs)


def isolate_mounts(hide: list[str], etc: str, etc_root: str = "/etc",
                   hide_rw: tuple[str, ...] | list[str] = ()) -> None:
    """In a new mount namespace of the calling process: hide ``hide`` under read-only empty
    tmpfs mounts, ``hide_rw`` under writable ones (private to the container), and bind-mount
    the container's /etc files (from ``etc``) over the image's.

    A /etc file may be a symlink into a hidden directory (resolv.conf into /run/systemd):
    its target is recreated, empty, in the tmpfs and the file bind-mounted there. In host
    mode (no ``etc``) the host's own file is kept visible that way. ``etc_root``: /etc
    (tests point it at a directory of their own).

    Raises:
        OSError: a mount failed.
    """
    _check(_libc.unshare(CLONE_NEWNS), "unshare mount")
    # the files to show, opened before their directories may be hidden
    shown: list[tuple[int, str]] = []
    for name in ("hosts", "resolv.conf", "hostname"):
        dst = os.path.realpath(os.path.join(etc_root, name))
        src = os.path.join(etc, name) if etc else dst
        if not os.path.exists(src) or not os.path.exists(dst):
            continue
        if not etc and not _under(dst, [*hide, *hide_rw]):
            continue  # host mode: the host's file, visible as it is
        shown.append((os.open(src, os.O_PATH | os.O_CLOEXEC), dst))
    hidden: list[str] = []
    # parents first: a directory inside one hidden already is gone with it
    for d in sorted([*hide, *hide_rw], key=len):
        if os.path.isdir(d) and not _under(d, hidden):
            _mount("tmpfs", d, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC)
            hidden.append(d)
    for fd, dst in shown:
        if _under(dst, hidden) and not os.path.exists(dst):
            os.makedirs(os.path.dirname(dst), mode=0o755, exist_ok=True)
            os.close(os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644))
        _mount(f"/proc/self/fd/{fd}", dst, None, MS_BIND)
        os.close(fd)
    for d in hidden:
        if d in hide_rw:
            continue
        _check(_libc.mount(b"tmpfs", d.encode(), None,
                           MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, None),
               f"remount {d} read-only")


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
        #: capability numbers to keep; None = all (--caps all, i.e. --privileged)
        self.caps: set[int] | None = set()
        self.hide: list[str] = []  # directories the container must not see
        self.hide_rw: list[str] = []  # the same, but with a writable tmpfs of its own
        self.enter = 0           # exec mode: the PID of the container's first process
        self.cmd: list[str] = []


def parse_args(argv: list[str]) -> Options:
    """``--pidfile P [--netns N] [--hostname H] [--etc D] [--share-uts] [--lock-fd FD]
    [--caps N,N,...|all] [--hide DIR]... [--hide-rw DIR]... -- CMD...``, or ``--enter PID --caps ... -- CMD...``.
    Without ``--caps`` the command keeps no capability at all.

    By hand rather than with argparse: importing argparse costs ~12 ms, paid on every
    container start (only netctl calls this).

    Raises:
        SystemExit: for an unknown option, a missing value or no command.
    """
    opts = Options()
    valued = {"--pidfile": "pidfile", "--netns": "netns", "--hostname": "hostname", "--etc": "etc",
              "--lock-fd": "lock_fd", "--enter": "enter"}
    i = 0
    while i < len(argv) and argv[i] != "--":
        arg = argv[i]
        if arg == "--share-uts":
            opts.share_uts = True
        elif arg in valued and i + 1 < len(argv):
            i += 1
            setattr(opts, valued[arg], int(argv[i]) if arg in ("--lock-fd", "--enter") else argv[i])
        elif arg == "--caps" and i + 1 < len(argv):
            i += 1
            try:
                opts.caps = None if argv[i] == "all" else {int(c) for c in argv[i].split(",") if c}
            except ValueError:
                sys.exit(f"netctl-launch: bad --caps {argv[i]!r}")
        elif arg in ("--hide", "--hide-rw") and i + 1 < len(argv):
            i += 1
            (opts.hide if arg == "--hide" else opts.hide_rw).append(argv[i])
        else:
            sys.exit(f"netctl-launch: bad argument {arg!r}")
        i += 1
    opts.cmd = argv[i + 1:]
    if not (opts.pidfile or opts.enter) or not opts.cmd:
        sys.exit("netctl-launch: usage: --pidfile PATH [options] -- COMMAND...")
    return opts


def main(argv: list[str] | None = None) -> None:
    opts = parse_args(sys.argv[1:] if argv is None else argv)
    if opts.enter:
        sys.exit(enter(opts))
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
    # exec failures come back through a close-on-exec pipe: EOF means the exec worked
    rfd, wfd = os.pipe2(os.O_CLOEXEC)
    child = os.fork()
    if child == 0:
        os.close(rfd)
        try:
            isolate_mounts(opts.hide, opts.etc, hide_rw=opts.hide_rw)
            # PID 1 of the new PID namespace: a /proc of its own so ps shows the container
            _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
            drop_capabilities(opts.caps)
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

    sys.exit(_supervise(child))


def _supervise(child: int) -> int:
    """Pass SIGTERM/SIGINT/SIGHUP on to ``child``, reap it; its status as a shell's."""

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
    return code if code >= 0 else 128 - code


def enter(opts: Options) -> int:
    """``netctl exec``: join the net, UTS, PID and mount namespaces of the container whose
    first process is ``opts.enter``, run the command there with the container's
    capabilities; its exit status (126/127 with a message when it cannot run).

    Raises:
        OSError: a namespace cannot be opened or joined.
    """
    fds = [(os.open(f"/proc/{opts.enter}/ns/{ns}", os.O_RDONLY | os.O_CLOEXEC), flag)
           for ns, flag in (("net", CLONE_NEWNET), ("uts", CLONE_NEWUTS), ("pid", CLONE_NEWPID),
                            ("mnt", CLONE_NEWNS))]
    for fd, flag in fds:
        _check(_libc.setns(fd, flag), "setns")
        os.close(fd)
    # joining a PID namespace applies to children only
    child = os.fork()
    if child == 0:
        try:
            drop_capabilities(opts.caps)
            os.execvp(opts.cmd[0], opts.cmd)
        except OSError as exc:
            sys.stderr.write(f"netctl exec: {opts.cmd[0]!r}: {(exc.strerror or str(exc)).lower()}\n")
            os._exit(127 if exc.errno == errno.ENOENT else 126)
    return _supervise(child)


if __name__ == "__main__":
    main()
