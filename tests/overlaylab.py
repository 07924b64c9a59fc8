"""The multi-host lab for overlay tests: etcd and "hosts" in throwaway namespaces.

An underlay namespace holds one bridge (``ulbr``); the etcd namespace and every host
namespace hang off it with a veth on 198.18.60.0/24 (the benchmarking range: nothing on
this machine routes it). etcd (Debian's etcd-server) runs in its own namespace on a random
port with its data in a temp dir, stopped by PID. Each host has its own NETCTL_ROOT and
runs the overlay sync process itself (until the agent supervises it). Nothing runs in,
or is added to, the machine's own namespace.
"""

from __future__ import annotations

import ctypes
import os
import pickle
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from netctlutil import Netctl
from nsutil import Netns, connect, wait_for

UNDERLAY = "198.18.60"
CLONE_NEWNET = 0x40000000


def in_netns(path: str, fn: Callable[..., Any], *args: Any, timeout: float = 60) -> Any:
    """Run ``fn(*args)`` in a forked child inside the namespace at ``path``; its result or
    its exception comes back pickled. The test process itself never changes namespace."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(rfd)
        code = 0
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(path, os.O_RDONLY)
            if libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns failed")
            try:
                payload = pickle.dumps(("ok", fn(*args)))
            except BaseException as exc:  # noqa: BLE001
                try:
                    payload = pickle.dumps(("err", exc))
                except Exception:  # noqa: BLE001
                    payload = pickle.dumps(("err", RuntimeError(traceback.format_exc())))
            with os.fdopen(wfd, "wb") as fh:
                fh.write(payload)
        except BaseException:  # noqa: BLE001
            code = 1
        os._exit(code)
    os.close(wfd)
    with os.fdopen(rfd, "rb") as fh:
        data = fh.read()
    os.waitpid(pid, 0)
    if not data:
        raise RuntimeError("in_netns child died")
    kind, value = pickle.loads(data)
    if kind == "err":
        raise value
    return value


def _answers(url: str) -> bool:
    from netplugins.overlay.store import Store, StoreUnavailable

    try:
        Store(url, timeout=0.5).snapshot()
        return True
    except StoreUnavailable:
        return False


@dataclass
class Etcd:
    """etcd in its own namespace, reachable on the underlay."""

    ns: Netns
    addr: str
    port: int = field(default_factory=lambda: random.randrange(20000, 40000))
    data: str = field(default_factory=lambda: tempfile.mkdtemp(prefix="nctl-etcd-"))
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.addr}:{self.port}"

    def start(self) -> None:
        """Start etcd and wait until it answers. Raises: RuntimeError."""
        peer = self.port + 1
        log = open(os.path.join(self.data, "etcd.log"), "ab")  # noqa: SIM115
        self.proc = self.ns.spawn(
            ["etcd", "--name", "lab", "--data-dir", os.path.join(self.data, "d"),
             "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
             "--listen-peer-urls", f"http://{self.addr}:{peer}",
             "--initial-advertise-peer-urls", f"http://{self.addr}:{peer}",
             "--initial-cluster", f"lab=http://{self.addr}:{peer}"],
            stdout=log, stderr=log, cwd="/")
        ok = wait_for(lambda: in_netns(self.ns.path, _answers, self.url), timeout=20, interval=0.1)
        if not ok:
            raise RuntimeError("etcd did not start: " + open(os.path.join(self.data, "etcd.log")).read()[-2000:])

    def stop(self) -> None:
        """Stop by PID (a stopped etcd keeps its data; ``start`` brings it back)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.data, ignore_errors=True)


@dataclass
class Host:
    """One "host": a namespace on the underlay, a NETCTL_ROOT, a sync process."""

    name: str
    ns: Netns
    addr: str
    netctl: Netctl
    store: str
    ttl: int
    syncd: subprocess.Popen[bytes] | None = None

    def syncd_argv(self) -> list[str]:
        return [sys.executable, "-I", "-m", "runtime.overlay.syncd", "--root", self.netctl.root,
                "--store", self.store, "--node", self.name, "--advertise", self.addr,
                "--ttl", str(self.ttl)]

    def node_file(self) -> str:
        return self.netctl.path("run", "overlay", "node.json")

    def start_syncd(self) -> None:
        """Start the host's agent, which runs the sync process (NETCTL_STORE is in the
        environment), and wait for the sync process's readiness (node file with its PID)."""
        import json

        self.netctl.extra_env.pop("NETCTL_PLUGIND", None)
        self.netctl("agent", "start")

        def ready() -> bool:
            try:
                with open(self.netctl.path("run", "agent.json")) as fh:
                    pid = (json.load(fh).get("overlay") or {}).get("pid")
                with open(self.node_file()) as fh:
                    return pid is not None and bool(json.load(fh).get("pid") == pid)
            except (OSError, ValueError):
                return False

        if not wait_for(ready, timeout=30, interval=0.05):
            raise RuntimeError(f"syncd on {self.name} not ready: " + self.log()[-3000:])
        self.syncd = None

    def kill_syncd(self) -> None:
        """SIGKILL the agent and its sync process by PID: a crash, no goodbye to etcd.
        Until :meth:`start_syncd`, netctl on this host starts no new agent."""
        import json

        self.netctl.extra_env["NETCTL_PLUGIND"] = "0"
        try:
            with open(self.netctl.path("run", "agent.json")) as fh:
                st = json.load(fh)
        except (OSError, ValueError):
            return
        for pid in (st.get("pid"), (st.get("overlay") or {}).get("pid")):
            if pid:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for name in ("agent.json", "agent.pid"):
            try:
                os.unlink(self.netctl.path("run", name))
            except FileNotFoundError:
                pass

    def log(self) -> str:
        try:
            with open(self.netctl.path("run", "overlay-sync.log")) as fh:
                return fh.read()
        except OSError:
            return ""

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.netctl(*args, check=check)


def _child_pid(pid: int) -> int:
    """``nsenter`` execs its command in a child: the PID that is the sync process."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            kids = fh.read().split()
        return int(kids[0]) if kids else pid
    except OSError:
        return pid


class Lab:
    """Underlay bridge, etcd, N hosts. ``close()`` removes everything, also on failure."""

    def __init__(self, hosts: int = 3, ttl: int = 4) -> None:
        self.namespaces: list[Netns] = []
        self.hosts: list[Host] = []
        self.etcd: Etcd | None = None
        try:
            self.underlay = self._ns("nctest-ul")
            self.underlay.run(["ip", "link", "add", "ulbr", "type", "bridge"])
            self.underlay.run(["ip", "link", "set", "ulbr", "up"])
            ens = self._ns("nctest-etcd")
            self._plug(ens, 100)
            self.etcd = Etcd(ens, f"{UNDERLAY}.100")
            self.etcd.start()
            for i in range(1, hosts + 1):
                hns = self._ns(f"nctest-h{i}")
                addr = self._plug(hns, 10 + i)
                # the default route gives NETCTL_ADVERTISE's default; nothing answers there
                hns.run(["ip", "route", "add", "default", "via", f"{UNDERLAY}.254"])
                n = Netctl(hns)
                host = Host(f"host{i}", hns, addr, n, self.etcd.url, ttl)
                n.extra_env.update({"NETCTL_STORE": self.etcd.url, "NETCTL_NODE": host.name,
                                    "NETCTL_ADVERTISE": addr, "NETCTL_STORE_TTL": str(ttl)})
                self.hosts.append(host)
            for host in self.hosts:
                host.start_syncd()
        except BaseException:
            self.close()
            raise

    def _ns(self, prefix: str) -> Netns:
        ns = Netns.create(prefix)
        self.namespaces.append(ns)
        return ns

    def _plug(self, ns: Netns, last: int) -> str:
        port = f"ulp{last}"
        connect(self.underlay, ns, port, "ul0")
        self.underlay.run(["ip", "link", "set", port, "master", "ulbr"])
        addr = f"{UNDERLAY}.{last}"
        ns.run(["ip", "addr", "add", f"{addr}/24", "dev", "ul0"])
        return addr

    def close(self) -> list[str]:
        problems: list[str] = []
        for host in self.hosts:
            host.kill_syncd()
            problems += host.netctl.cleanup()
        if self.etcd is not None:
            self.etcd.remove()
        for ns in reversed(self.namespaces):
            ns.delete()
        # a dnsd that was still exiting during cleanup may have recreated its lock file
        for host in self.hosts:
            shutil.rmtree(host.netctl.root, ignore_errors=True)
        return problems
