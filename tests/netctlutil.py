"""Drive the real ``netctl`` inside a throwaway host namespace with a private NETCTL_ROOT.

``Netctl(host)`` is a callable: ``netctl("run", "-d", "--name", "a", "--", "sleep", "600")``
runs ``python -m runtime.cli ...`` through ``nsenter --net=<host>`` (the plugin daemon and
dnsd that netctl starts live in that namespace and die with it). ``cleanup()`` removes what
the test left: it force-removes every container, stops any process still inside one of the
container namespaces (by PID), lazily unmounts everything mounted under the root (the
container namespaces are nsfs bind mounts) and deletes the root directory.

The ``netctl`` fixture gives one such callable per test, in a fresh ``host_ns``; a test
module gets it with ``from netctlutil import netctl_fixture  # noqa: F401``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from nsutil import Netns, pids_in_netns

#: generous: a plugin call may wait for the global lock behind several others
TIMEOUT = 120


class NetctlFailed(AssertionError):
    """A netctl command that was expected to succeed did not."""


@dataclass
class Netctl:
    """``netctl`` bound to one throwaway host namespace and one NETCTL_ROOT."""

    host: Netns
    #: short on purpose: unix socket paths (plugind, dnsd control) are limited to 108 bytes
    root: str = field(default_factory=lambda: tempfile.mkdtemp(prefix="nctl-"))
    extra_env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # the containers' "host" resolv.conf: no nameserver, so a container without the
        # embedded DNS never sends a query towards the machine's real resolver (and a
        # failed lookup fails at once instead of after resolver timeouts)
        with open(self.path("host-resolv.conf"), "w") as fh:
            fh.write("search netctl.test\n")

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["NETCTL_ROOT"] = self.root
        env["NETCTL_HOST_RESOLV_CONF"] = self.path("host-resolv.conf")
        env.pop("NETCTL_PLUGIND_SOCKET", None)
        env.update(self.extra_env)
        return env

    def argv(self, *args: str) -> list[str]:
        """The full command line (through nsenter) of ``netctl args...``."""
        return self.host.cmd([sys.executable, "-m", "runtime.cli", *args])

    def __call__(self, *args: str, check: bool = True, timeout: float = TIMEOUT,
                 input: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run netctl; with ``check`` a non-zero exit fails the test with its stderr."""
        proc = subprocess.run(self.argv(*args), env=self.env, capture_output=True, text=True,
                              timeout=timeout, input=input)
        if check and proc.returncode != 0:
            raise NetctlFailed(f"netctl {' '.join(args)} exited {proc.returncode}:\n"
                               f"stdout: {proc.stdout}\nstderr: {proc.stderr}")
        return proc

    def popen(self, *args: str) -> subprocess.Popen[str]:
        """Start netctl without waiting (concurrency and kill tests)."""
        return subprocess.Popen(self.argv(*args), env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    # ---- conveniences
    def exec(self, ctr: str, *cmd: str, check: bool = True,
             timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
        """``netctl exec CTR -- cmd...``."""
        return self("exec", ctr, "--", *cmd, check=check, timeout=timeout)

    def run_d(self, name: str, *opts: str, cmd: tuple[str, ...] = ("sleep", "600")) -> str:
        """``netctl run -d --name NAME opts... -- cmd``; the container ID."""
        return self("run", "-d", "--name", name, *opts, "--", *cmd).stdout.strip()

    def inspect(self, ref: str) -> dict[str, Any]:
        """The (single) inspect object of a network or container."""
        out = json.loads(self("inspect", ref).stdout)
        assert isinstance(out, list) and len(out) == 1
        obj: dict[str, Any] = out[0]
        return obj

    def ip(self, ctr: str, network: str) -> str:
        """The container's IPv4 address on ``network`` (no prefix)."""
        addr: str = self.inspect(ctr)["NetworkSettings"]["Networks"][network]["IPAddress"]
        return addr

    def path(self, *parts: str) -> str:
        return os.path.join(self.root, *parts)

    # ---- teardown
    def container_ids(self) -> list[str]:
        """IDs of every container netctl knows, read from its state directory."""
        try:
            return sorted(os.listdir(self.path("lib", "containers")))
        except FileNotFoundError:
            return []

    def _joins(self, cid: str) -> bool:
        """Whether container ``cid`` joined another one's namespace (``container:`` mode)."""
        try:
            with open(self.path("lib", "containers", cid, "config.json")) as fh:
                return str(json.load(fh).get("network_mode", "")).startswith("container:")
        except (OSError, ValueError):
            return False

    def mounts(self) -> list[str]:
        """Mount points under the root, as this (test) mount namespace sees them."""
        with open("/proc/self/mountinfo") as fh:
            points = [line.split()[4] for line in fh]
        return [p for p in points if p == self.root or p.startswith(self.root + "/")]

    def snapshot(self) -> dict[str, Any]:
        """Everything netctl and its plugins keep, to show that a failed command left
        nothing behind: records, conflists, cached results, leases, namespaces, mounts,
        bridge attachment and DNS records, joins, and the host namespace's links."""
        def names(*parts: str) -> list[str]:
            out = []
            for dirpath, _dirs, files in os.walk(self.path(*parts)):
                rel = os.path.relpath(dirpath, self.path(*parts))
                out += [os.path.normpath(os.path.join(rel, f)) for f in files
                        if not f.endswith(".lock")]
            return sorted(out)

        links = json.loads(self.host.run(["ip", "-j", "link", "show"]).stdout)
        return {
            "containers": sorted(self.container_ids()),
            "networks": names("lib", "networks"),
            "conflists": names("lib", "net.d"),
            "cni-cache": names("lib", "cni"),
            "leases": self.leases(),
            "netns": names("run", "netns"),
            "mounts": sorted(self.mounts()),
            "bridge-records": names("run", "bridge"),
            "dns-records": names("run", "dnsd", "entries"),
            "joins": names("run", "joins"),
            "host-links": sorted(link["ifname"] for link in links),
        }

    def leases(self) -> list[tuple[str, str, str, str]]:
        """Every IPAM lease: (network, address, container ID, ifname)."""
        from ipam.sqlstore import SqliteStore

        out = []
        # where the conflists point IPAM (runtime.paths.Paths.ipam), so this never looks in
        # a directory nothing writes to
        from runtime.paths import Paths

        ipam = Paths.from_env({"NETCTL_ROOT": self.path()}).ipam
        assert os.path.dirname(ipam).startswith(self.path()), ipam
        for fname in sorted(os.listdir(ipam)) if os.path.isdir(ipam) else []:
            if not fname.endswith(".db"):
                continue
            store = SqliteStore.open_existing(os.path.join(ipam, fname))
            if store is None:
                continue
            with store:
                out += [(fname[:-3], str(le.address), le.container_id, le.ifname) for le in store.leases()]
        return sorted(out)

    def cleanup(self) -> list[str]:
        """Remove everything this Netctl made; the problems met on the way (for the report)."""
        problems: list[str] = []
        # a few passes: a container whose namespace another one joined goes after it
        for _ in range(3):
            ids = sorted(self.container_ids(), key=lambda cid: not self._joins(cid))
            if not ids:
                break
            try:
                proc = self("container", "rm", "-f", *ids, check=False, timeout=120)
            except subprocess.TimeoutExpired:
                problems.append("container rm -f timed out")
                continue
            if proc.returncode != 0:
                problems.append(f"container rm -f: {proc.stderr.strip()}")
        ns_dir = self.path("run", "netns")
        for name in os.listdir(ns_dir) if os.path.isdir(ns_dir) else []:
            # container processes live in their own namespaces, not in the host one that
            # Netns.delete() sweeps: stop any left over, by PID
            for pid in pids_in_netns(os.path.join(ns_dir, name)):
                problems.append(f"process {pid} still in container namespace {name[:12]}")
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for mnt in sorted(self.mounts(), reverse=True):
            subprocess.run(["umount", "-l", mnt], capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)
        return problems


@pytest.fixture(name="netctl")
def netctl_fixture(host_ns: Netns) -> Iterator[Netctl]:
    """A ``netctl`` callable inside a fresh throwaway host namespace; everything removed after."""
    n = Netctl(host_ns)
    try:
        yield n
    finally:
        n.cleanup()


def ping(n: Netctl, ctr: str, target: str, count: int = 1, wait: float = 2) -> bool:
    """Whether ``ctr`` gets an answer from ``target`` (an address or a name)."""
    proc = n.exec(ctr, "ping", "-c", str(count), "-W", str(wait), target, check=False)
    return proc.returncode == 0


def no_answer(n: Netctl, ctr: str, target: str) -> bool:
    """Whether ``ctr`` gets no answer from ``target``. Between namespaces on one machine an
    answer takes well under a millisecond, so half a second of silence is a drop."""
    return not ping(n, ctr, target, wait=0.5)
