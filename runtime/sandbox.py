"""A throwaway host for netctl: a new network namespace plays the machine, a temporary
NETCTL_ROOT holds netctl's state, and everything goes when it closes.

``netctl sandbox`` opens a shell in one (the README's walkthrough happens there);
``netctl demo`` runs its script in one. Nothing touches the real host's links, addresses,
routes or firewall: the bridges, veths, NAT rules, the plugin daemon and dnsd all live in
the sandbox's namespace, and the containers in namespaces of their own under its root.

Closing removes, in this order and also after a failure or Ctrl-C: every container
(``netctl container rm -f``, so plugins tear down what they set up), any process still in
a container namespace or in the sandbox namespace (by PID), the mounts under the root
(container namespaces are nsfs bind mounts), the namespace and the root directory.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from types import TracebackType

from netplugins.nl.pyroute import open_host
from netplugins.nl.types import IFF_UP, NetlinkError

from . import netns
from .errors import NetctlError
from .paths import Paths

#: how long the final ``container rm -f`` may take before the sandbox kills what is left
RM_TIMEOUT = 120


def loopback_up(ns_path: str) -> None:
    """Set ``lo`` up in the namespace at ``ns_path`` (through the netlink boundary).

    Raises:
        NetctlError: the namespace has no ``lo`` or netlink refused.
    """
    try:
        with open_host(ns_path) as nl:
            lo = nl.get_link("lo")
            if lo is None:
                raise NetctlError(f"the namespace {ns_path} has no loopback interface")
            nl.set_link(lo.index, flags=IFF_UP, change=IFF_UP)
    except NetlinkError as exc:
        raise NetctlError(f"cannot set lo up in {ns_path}: {exc}") from None


def pids_in(ns_path: str) -> list[int]:
    """Processes whose network namespace is the one at ``ns_path`` (not this process)."""
    target = os.stat(ns_path)
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                st = os.stat(f"/proc/{entry}/ns/net")
            except OSError:
                continue
            if (st.st_dev, st.st_ino) == (target.st_dev, target.st_ino):
                out.append(int(entry))
    return out


class Sandbox:
    """One throwaway host: use as a context manager (``with Sandbox() as sb: ...``)."""

    def __init__(self, prefix: str = "netctl-sandbox") -> None:
        self.ns = f"{prefix}-{secrets.token_hex(3)}"
        #: short: unix socket paths (plugin daemon, dnsd control) must fit in 108 bytes
        self.root = tempfile.mkdtemp(prefix="netctl-sb-")
        #: under /run/netns, as ``ip netns add`` makes them: ``ip netns identify`` and
        #: ``ip netns exec`` work with the sandbox's name (the README and tests use that)
        self.ns_path = f"/run/netns/{self.ns}"

    @property
    def env(self) -> dict[str, str]:
        """The environment of commands in the sandbox: its NETCTL_ROOT, and this netctl
        first on PATH and importable (a checkout works without being installed)."""
        env = dict(os.environ, NETCTL_ROOT=self.root)
        pkg = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [pkg, env.get("PYTHONPATH")]))
        bindir = os.path.dirname(sys.executable)
        env["PATH"] = os.pathsep.join(filter(None, [bindir, env.get("PATH")]))
        return env

    def argv(self, cmd: Sequence[str]) -> list[str]:
        """``cmd`` run inside the sandbox's network namespace."""
        return ["nsenter", f"--net={self.ns_path}", "--", *cmd]

    def netctl_argv(self, *args: str) -> list[str]:
        return self.argv([sys.executable, "-m", "runtime.cli", *args])

    def __enter__(self) -> Sandbox:
        """Raises: NetctlError when the namespace cannot be made (not root, no netns)."""
        if os.geteuid() != 0:
            shutil.rmtree(self.root, ignore_errors=True)
            raise NetctlError("the sandbox needs root (it makes a network namespace)")
        if os.path.lexists(self.ns_path):
            shutil.rmtree(self.root, ignore_errors=True)
            raise NetctlError(f"cannot make the sandbox namespace: {self.ns_path} exists")
        try:
            netns.create(self.ns_path)
        except NetctlError as exc:
            shutil.rmtree(self.root, ignore_errors=True)
            raise NetctlError(f"cannot make the sandbox namespace: {exc.msg}") from None
        try:
            loopback_up(self.ns_path)  # dnsd and the plugin daemon's clients use 127.0.0.1
        except NetctlError:
            self.close()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _container_ids(self) -> list[str]:
        try:
            return sorted(os.listdir(Paths.from_env({"NETCTL_ROOT": self.root}).containers))
        except FileNotFoundError:
            return []

    def close(self) -> None:
        """Remove everything the sandbox holds (see the module doc); never raises."""
        ids = self._container_ids()
        if ids and os.path.exists(self.ns_path):
            try:
                # twice: a container that joined another's namespace must go before it
                for _ in range(2):
                    if not self._container_ids():
                        break
                    subprocess.run(self.netctl_argv("container", "rm", "-f", *self._container_ids()),
                                   env=self.env, capture_output=True, timeout=RM_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass  # what is left is killed below
        namespaces = [os.path.join(Paths.from_env({"NETCTL_ROOT": self.root}).netns, n)
                      for n in self._listdir(Paths.from_env({"NETCTL_ROOT": self.root}).netns)]
        if os.path.exists(self.ns_path):
            namespaces.append(self.ns_path)
        for path in namespaces:
            try:
                victims = pids_in(path)
            except OSError:
                continue
            for pid in victims:
                try:
                    os.kill(pid, signal.SIGKILL)  # started inside the sandbox: ours to stop
                except ProcessLookupError:
                    pass
        with open("/proc/self/mountinfo") as fh:
            mounts = [line.split()[4] for line in fh]
        for mnt in sorted((m for m in mounts if m == self.root or m.startswith(self.root + "/")),
                          reverse=True):
            subprocess.run(["umount", "-l", mnt], capture_output=True)
        netns.remove(self.ns_path)
        shutil.rmtree(self.root, ignore_errors=True)

    @staticmethod
    def _listdir(path: str) -> list[str]:
        try:
            return os.listdir(path)
        except OSError:
            return []


BANNER = """\
netctl sandbox: a throwaway host ({ns}, state in {root}).
Everything you do here stays here: exit the shell (Ctrl-D) and it is all removed.
Try:  netctl create --subnet 172.22.16.0/24 my_net2
      netctl run -d --name web1 --network my_net2 -- sleep 600
      netctl exec web1 -- ip addr
"""


def main(cmd: Sequence[str]) -> int:
    """Open a shell in a new sandbox (or run ``cmd`` there); its exit status.

    Raises:
        NetctlError: the sandbox cannot be made.
    """
    with Sandbox() as sb:
        env = sb.env
        if cmd:
            argv = list(cmd)
        else:
            print(BANNER.format(ns=sb.ns, root=sb.root), file=sys.stderr, flush=True)
            shell = env.get("SHELL") or "/bin/bash"
            if not os.path.exists(shell):
                shell = "/bin/sh"
            env["PS1"] = "(netctl sandbox) \\w# "
            # --norc for bash: a user's rc file would reset PS1 (the reminder of where you are)
            argv = [shell, "--norc"] if os.path.basename(shell) == "bash" else [shell]
            if sys.stdin.isatty():
                argv.append("-i")  # a prompt; commands piped in run without one
        proc = subprocess.Popen(sb.argv(argv), env=env)
        try:
            code = proc.wait()
        except KeyboardInterrupt:
            code = proc.wait()
        if not cmd:
            print(f"netctl sandbox: removing {sb.ns} and {sb.root}", file=sys.stderr, flush=True)
        return code
