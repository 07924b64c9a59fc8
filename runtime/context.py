"""What every netctl command needs: paths, state, the CNI runtime, the plugin daemon."""

from __future__ import annotations

import fcntl
import os
import socket
import subprocess
import sys
from dataclasses import dataclass

from .cnirun import CNI
from .paths import Paths
from .state import State, write_json

#: environment variables passed on to plugins when set
PASSTHROUGH = ("NETCTL_FIREWALL_DRIVER", "NETCTL_LOG_LEVEL", "NETCTL_PLUGIND")


@dataclass
class Context:
    paths: Paths
    state: State
    cni: CNI

    @classmethod
    def create(cls, env: dict[str, str] | None = None) -> Context:
        env = dict(os.environ) if env is None else env
        paths = Paths.from_env(env)
        paths.ensure()
        from netplugins.delivery import ensure_default_dir

        plugin_path = [ensure_default_dir()]
        extra = env.get("NETCTL_CNI_PATH")
        if extra:
            plugin_path += [p for p in extra.split(":") if p]
        plugin_env = {"PATH": env.get("PATH", "/usr/local/sbin:/usr/sbin:/sbin:/usr/bin:/bin"),
                      "NETCTL_PLUGIND_SOCKET": paths.plugind_socket}
        for key in PASSTHROUGH:
            if key in env:
                plugin_env[key] = env[key]
        ctx = cls(paths=paths, state=State(paths),
                  cni=CNI(plugin_path, paths.cni_cache, plugin_env, versions_file=paths.cni_versions))
        if env.get("NETCTL_PLUGIND", "1") not in ("0", "off"):
            ctx.ensure_plugin_daemon()
        return ctx

    def ensure_plugin_daemon(self) -> None:
        """Start the warm plugin daemon if none listens (first calls run in-process meanwhile).

        The check and the start happen under ``plugind.lock``, and the started daemon's PID
        is kept in ``plugind.pid``: netctl commands started together see that a daemon is
        already on its way (it needs a moment to preload before it listens) instead of each
        starting one, of which all but one would then exit or, in a close race, be left
        listening on a socket file that the winner replaced.
        """
        sock = self.paths.plugind_socket
        if _listening(sock):
            return
        fd = os.open(os.path.join(self.paths.run, "plugind.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            pidfile = os.path.join(self.paths.run, "plugind.pid")
            if _listening(sock) or _is_daemon(_read_pid(pidfile), sock):
                return
            with open(os.path.join(self.paths.run, "plugind.log"), "ab") as log:
                proc = subprocess.Popen([sys.executable, "-m", "netplugins.daemon", "--socket", sock,
                                         "--idle-timeout", "600"], stdin=subprocess.DEVNULL, stdout=log,
                                        stderr=log, start_new_session=True, close_fds=True)
            write_json(pidfile, proc.pid, durable=False)
        finally:
            os.close(fd)


def _listening(sock: str) -> bool:
    if not os.path.exists(sock):
        return False
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(sock)
        return True
    except OSError:
        return False
    finally:
        probe.close()


def _read_pid(path: str) -> int:
    try:
        with open(path) as fh:
            return int(fh.read().strip() or 0)
    except (OSError, ValueError):
        return 0


def _is_daemon(pid: int, sock: str) -> bool:
    """Whether ``pid`` is a plugin daemon for ``sock`` (a PID may have been reused)."""
    if not pid:
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            argv = fh.read().split(b"\0")
        with open(f"/proc/{pid}/stat") as fh:
            zombie = fh.read().rsplit(")", 1)[-1].split()[0] == "Z"
    except OSError:
        return False
    return not zombie and b"netplugins.daemon" in argv and sock.encode() in argv
