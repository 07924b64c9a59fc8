"""Every path netctl writes, under one root (NETCTL_ROOT for tests and demos).

Default: persistent state in /var/lib/netctl, runtime state (namespaces, sockets, dnsd)
in /run/netctl. With NETCTL_ROOT=R: R/lib and R/run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Paths:
    """Where netctl keeps things."""

    lib: str
    run: str

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Paths:
        env = dict(os.environ) if env is None else env
        root = env.get("NETCTL_ROOT")
        if root:
            root = os.path.abspath(root)
            return cls(lib=os.path.join(root, "lib"), run=os.path.join(root, "run"))
        return cls(lib="/var/lib/netctl", run="/run/netctl")

    # persistent
    @property
    def networks(self) -> str:
        return os.path.join(self.lib, "networks")

    @property
    def containers(self) -> str:
        return os.path.join(self.lib, "containers")

    @property
    def conf_dir(self) -> str:
        """CNI conflists, one per network (another CNI runtime can read them)."""
        return os.path.join(self.lib, "net.d")

    @property
    def ipam(self) -> str:
        """Leases live under /run: no container survives a reboot, so neither should its
        leases (leaked host-local leases after a reboot are the reference's most reported
        problem)."""
        return os.path.join(self.run, "ipam")

    @property
    def cni_cache(self) -> str:
        """libcni's cache layout: <cache>/results/<net>-<cid>-<ifname>."""
        return os.path.join(self.lib, "cni")

    @property
    def lock(self) -> str:
        return os.path.join(self.lib, "netctl.lock")

    # runtime
    @property
    def netns(self) -> str:
        return os.path.join(self.run, "netns")

    @property
    def bridge_state(self) -> str:
        return os.path.join(self.run, "bridge")

    @property
    def dnsd(self) -> str:
        return os.path.join(self.run, "dnsd")

    @property
    def overlay(self) -> str:
        """The overlay sync process's node file and this host's overlay endpoint records."""
        return os.path.join(self.run, "overlay")

    @property
    def joins(self) -> str:
        return os.path.join(self.run, "joins")

    @property
    def cni_versions(self) -> str:
        """Plugins' VERSION answers, per executable (a cache, see cnirun.CNI)."""
        return os.path.join(self.run, "cni-versions.json")

    @property
    def plugind_socket(self) -> str:
        return os.path.join(self.run, "plugind.sock")

    @property
    def locks(self) -> str:
        """One lock file per attachment being changed (netplugins.cni.attlock)."""
        return os.path.join(self.run, "locks")

    def container_dir(self, cid: str) -> str:
        return os.path.join(self.containers, cid)

    def ensure(self) -> None:
        for d in (self.networks, self.containers, self.conf_dir, self.ipam, self.cni_cache,
                  self.netns, self.bridge_state, self.dnsd, self.joins):
            os.makedirs(d, mode=0o755, exist_ok=True)
