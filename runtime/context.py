"""What every netctl command needs: paths, state, the CNI runtime, the plugin daemon."""

from __future__ import annotations

import os
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
        # lazy: netctl start-up; only commands that attach containers need it
        from netplugins.delivery import ensure_default_dir

        plugin_path = [ensure_default_dir()]
        extra = env.get("NETCTL_CNI_PATH")
        if extra:
            plugin_path += [p for p in extra.split(":") if p]
        plugin_env = {"PATH": env.get("PATH", "/usr/local/sbin:/usr/sbin:/sbin:/usr/bin:/bin"),
                      "NETCTL_PLUGIND_SOCKET": paths.plugind_socket,
                      "NETCTL_LOCK_DIR": paths.locks}
        for key in PASSTHROUGH:
            if key in env:
                plugin_env[key] = env[key]
        ctx = cls(paths=paths, state=State(paths),
                  cni=CNI(plugin_path, paths.cni_cache, plugin_env, versions_file=paths.cni_versions))
        if env.get("NETCTL_PLUGIND", "1") not in ("0", "off"):
            ctx.ensure_plugin_daemon()
        return ctx

    def ensure_plugin_daemon(self) -> None:
        """Start the agent (netctl agent) if none runs; calls made before it listens run
        in-process. The agent started this way exits after 10 idle minutes once no network
        is left to own; one started by a service manager never does."""
        # lazy: netctl start-up; only commands that attach containers need it
        from .agent import control

        if control.listening(self.paths.plugind_socket):
            return
        try:
            control.start(self.paths, wait=False, exit_when_idle=600)
        except OSError:
            pass  # plugins still work in-process; `netctl agent status` shows why
