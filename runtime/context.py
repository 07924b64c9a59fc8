"""What every netctl command needs: paths, state, the CNI runtime, the plugin daemon."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass

from .cnirun import CNI
from .paths import Paths
from .state import State

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
        ctx = cls(paths=paths, state=State(paths), cni=CNI(plugin_path, paths.cni_cache, plugin_env))
        if env.get("NETCTL_PLUGIND", "1") not in ("0", "off"):
            ctx.ensure_plugin_daemon()
        return ctx

    def ensure_plugin_daemon(self) -> None:
        """Start the warm plugin daemon if none listens (first calls run in-process meanwhile)."""
        sock = self.paths.plugind_socket
        if os.path.exists(sock):
            import socket as _s

            probe = _s.socket(_s.AF_UNIX, _s.SOCK_STREAM)
            try:
                probe.connect(sock)
                return
            except OSError:
                pass
            finally:
                probe.close()
        log = open(os.path.join(self.paths.run, "plugind.log"), "ab")
        subprocess.Popen([sys.executable, "-m", "netplugins.daemon", "--socket", sock,
                          "--idle-timeout", "600"], stdin=subprocess.DEVNULL, stdout=log,
                         stderr=log, start_new_session=True, close_fds=True)
        log.close()
