"""Shared helpers of the bridge plugin's integration tests (this module holds no tests).

A :class:`BridgeLab` runs our ``bridge`` executable inside a throwaway host namespace, with
its state, IPAM data and DNS directories under the test's tmp_path, and reads back what the
plugin left: links, firewall rules (both drivers), leases, attachment records.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cniutil import PluginRun, plugin_dir, plugin_mode, run_plugin, start_daemon  # noqa: F401 - plugin_mode re-exported
from nsutil import Netns, wait_for

DRIVERS = ("nftables", "iptables")
#: (firewall driver, plugin mode) pairs for the expensive scenarios: both drivers, both
#: modes, without paying for every combination
DRIVER_MODES = [pytest.param("nftables", "inproc", id="nftables-inproc"),
                pytest.param("nftables", "daemon", id="nftables-daemon"),
                pytest.param("iptables", "daemon", id="iptables-daemon")]


@pytest.fixture(scope="session")
def shared_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A warm plugin daemon for many tests: it lives in its own throwaway namespace, and its
    workers enter the namespaces of each caller (the test's host namespace)."""
    ns = Netns.create("nctest-plugind")
    sock = str(tmp_path_factory.mktemp("plugind") / "plugind.sock")
    try:
        proc = start_daemon(ns, sock)
        yield {"NETCTL_PLUGIND": "1", "NETCTL_PLUGIND_SOCKET": sock}
        proc.terminate()
        proc.wait(5)
    finally:
        ns.delete()


def ping(ns: Netns, ip: str, timeout: float = 2.0) -> bool:
    """True when one echo to ``ip`` is answered (short timeout: failures are expected)."""
    return ns.run(["ping", "-n", "-q", "-c", "1", "-W", str(timeout), ip], check=False).returncode == 0


def blocked(ns: Netns, ip: str) -> bool:
    """True when ``ip`` does not answer (0.5 s: an allowed path answers within milliseconds)."""
    return not ping(ns, ip, timeout=0.5)


def tcp_ask(ns: Netns, ip: str, port: int) -> str:
    """Connect to ``ip:port`` from ``ns`` and return what the server says ('' on failure)."""
    res = ns.run(["socat", "-T", "2", "-", f"TCP:{ip}:{port},connect-timeout=2"], check=False,
                 input="", timeout=10)
    return res.stdout.strip() if res.returncode == 0 else ""


def serve_peer_address(ns: Netns, port: int) -> None:
    """A TCP server in ``ns`` that answers every connection with the client's address."""
    ns.spawn(["socat", f"TCP-LISTEN:{port},fork,reuseaddr", "SYSTEM:echo $SOCAT_PEERADDR"],
             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert wait_for(lambda: f":{port:04X} " in ns.run(["cat", "/proc/net/tcp"]).stdout, timeout=5)


def add_outside(host: Netns, make_ns: Callable[..., Netns]) -> Netns:
    """An 'outside' namespace joined to the host: host 192.0.2.1/24, outside 192.0.2.2/24."""
    from nsutil import connect

    outside = make_ns("nctest-out")
    connect(host, outside, "uplink", "eth0")
    host.run(["ip", "addr", "add", "192.0.2.1/24", "dev", "uplink"])
    outside.run(["ip", "addr", "add", "192.0.2.2/24", "dev", "eth0"])
    return outside


def link_names(ns: Netns) -> set[str]:
    return {link["ifname"] for link in json.loads(ns.run(["ip", "-j", "link", "show"]).stdout)}


def link_info(ns: Netns, name: str) -> dict[str, Any] | None:
    res = ns.run(["ip", "-d", "-j", "link", "show", "dev", name], check=False)
    return json.loads(res.stdout)[0] if res.returncode == 0 else None


def addrs_of(ns: Netns, name: str) -> set[str]:
    res = ns.run(["ip", "-j", "addr", "show", "dev", name], check=False)
    if res.returncode != 0:
        return set()
    info = json.loads(res.stdout)[0].get("addr_info", [])
    return {f"{a['local']}/{a['prefixlen']}" for a in info if a.get("scope") == "global"}


def firewall_text(ns: Netns) -> str:
    """Everything firewall-shaped in ``ns``: the nft ruleset and the legacy iptables tables."""
    out = ns.run(["nft", "list", "ruleset"], check=False).stdout
    for tool in ("iptables-legacy-save", "ip6tables-legacy-save"):
        out += ns.run([tool], check=False).stdout
    return out


def our_rules(ns: Netns) -> list[str]:
    """Lines of our rules/chains/tables (nft table ``inet netctl``, iptables ``NETCTL-*``)."""
    return [line for line in firewall_text(ns).splitlines()
            if "netctl" in line.lower() and not line.startswith("#")]


@dataclass
class BridgeLab:
    """Runs our bridge plugin in ``host`` with every directory under ``tmp``."""

    host: Netns
    tmp: Path
    env: dict[str, str] = field(default_factory=dict)
    path: str | None = None

    @property
    def state_dir(self) -> Path:
        return self.tmp / "state"

    @property
    def ipam_dir(self) -> Path:
        return self.tmp / "ipam"

    @property
    def dns_dir(self) -> Path:
        return self.tmp / "dns"

    def conf(self, name: str, subnet: str | None = "10.61.0.0/24", *, version: str = "1.0.0",
             bridge: str | None = None, driver: str | None = "nftables", ipam: dict[str, Any] | None = None,
             **extra: Any) -> dict[str, Any]:
        """A network config; ``subnet=None`` leaves IPAM out (L2 only) unless ``ipam`` is
        the whole section."""
        conf: dict[str, Any] = {"cniVersion": version, "name": name, "type": "bridge",
                                "bridge": bridge or f"br-{name}"[:15], "isGateway": True,
                                "stateDir": str(self.state_dir)}
        if driver is not None:
            conf["firewallDriver"] = driver
        if subnet is not None:
            conf["ipam"] = {"type": "host-local", "ranges": [[{"subnet": subnet}]],
                            "dataDir": str(self.ipam_dir)}
            conf["ipam"].update(ipam or {})
        elif ipam is not None:
            conf["ipam"] = ipam
        conf.update(extra)
        return conf

    def run(self, command: str, conf: Mapping[str, Any], ctr: Netns | None, cid: str,
            ifname: str = "eth0", netns: str | None = None, **kw: Any) -> PluginRun:
        env = dict(self.env) | dict(kw.pop("env", {}) or {})
        return run_plugin(self.host, "bridge", command, dict(conf), container_id=cid,
                          netns=netns if netns is not None else (ctr.path if ctr else ""),
                          ifname=ifname, env=env, path=kw.pop("path", self.path), **kw)

    def add(self, conf: Mapping[str, Any], ctr: Netns, cid: str, **kw: Any) -> dict[str, Any]:
        """ADD that must succeed; returns the result."""
        res = self.run("ADD", conf, ctr, cid, **kw).ok().json
        assert isinstance(res, dict)
        return res

    def delete(self, conf: Mapping[str, Any], ctr: Netns | None, cid: str, **kw: Any) -> None:
        self.run("DEL", conf, ctr, cid, **kw).ok()

    def check(self, conf: Mapping[str, Any], result: Mapping[str, Any], ctr: Netns, cid: str,
              **kw: Any) -> PluginRun:
        return self.run("CHECK", dict(conf, prevResult=result), ctr, cid, **kw)

    # --- what the plugin left behind ------------------------------------------------------

    def leases(self, network: str) -> list[tuple[str, str, str]]:
        """(address, container ID, ifname) of our host-local's leases on ``network``."""
        db = self.ipam_dir / f"{network}.db"
        if not db.exists():
            return []
        with sqlite3.connect(db) as con:
            rows = con.execute("SELECT address, container_id, ifname FROM leases").fetchall()
        con.close()
        return sorted(rows)

    def records(self, network: str) -> list[str]:
        d = self.state_dir / network
        return sorted(os.listdir(d)) if d.exists() else []

    def assert_clean(self, network: str, expect_links: set[str] | None = None) -> None:
        """Nothing of ``network`` is left: no veth, no rule, no lease, no record."""
        names = link_names(self.host)
        vets = {n for n in names if n.startswith("veth")}
        assert not vets, f"host veths left: {vets}"
        if expect_links is not None:
            assert names == expect_links, names
        assert our_rules(self.host) == [], our_rules(self.host)
        assert self.leases(network) == []
        assert self.records(network) == []


def make_lab(host: Netns, tmp: Path, env: Mapping[str, str] | None = None) -> BridgeLab:
    plugin_dir()  # the executables exist before the first call
    return BridgeLab(host, tmp, dict(env or {}))


@pytest.fixture(name="lab")
def lab_fixture(host_ns: Netns, tmp_path: Path, shared_daemon: dict[str, str]) -> BridgeLab:
    """A bridge lab whose calls go through the shared warm daemon: the same code as
    in-process (which the version tests cover), faster."""
    return make_lab(host_ns, tmp_path, shared_daemon)
