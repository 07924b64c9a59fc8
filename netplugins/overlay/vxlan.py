"""The VXLAN data plane of one overlay on one host.

Per network: a VXLAN device (``ovvx<VNI>``, UDP 4789, ``nolearning``, ``proxy``: it answers
ARP for addresses in its neighbour table) enslaved to the overlay's bridge (``ovbr<VNI>``),
which the containers' veths join. For every container on another host: a permanent FDB
entry (its MAC → that host's underlay address) and a permanent neighbour entry (its IP →
its MAC) on the VXLAN device. No all-zero FDB entry, so broadcasts and unknown MACs are
never flooded to other hosts: what is not in the store is not reachable.

``plan_peers``/``diff``/``render_*`` are pure; ``Vxlan`` applies them with ``ip -batch`` and
``bridge -batch`` (one process each, however many entries change).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass

from .model import VXLAN_PORT, EndpointRec


class DataplaneError(Exception):
    """iproute2 refused a change (message has its stderr)."""


@dataclass(frozen=True, order=True)
class Peer:
    """A remote container as the VXLAN device must know it."""

    ip: str
    mac: str
    vtep: str


@dataclass(frozen=True)
class Changes:
    fdb_add: tuple[Peer, ...] = ()
    fdb_del: tuple[tuple[str, str], ...] = ()      # (mac, dst)
    neigh_add: tuple[Peer, ...] = ()
    neigh_del: tuple[str, ...] = ()                # ip

    def __bool__(self) -> bool:
        return bool(self.fdb_add or self.fdb_del or self.neigh_add or self.neigh_del)


def plan_peers(endpoints: Iterable[EndpointRec], network: str, node: str,
               live_nodes: dict[str, str] | None = None) -> list[Peer]:
    """The peers of ``network`` that live on other nodes. With ``live_nodes`` (name →
    underlay address), an endpoint whose node is not live is left out and the node's
    current address wins over the one recorded at ADD time."""
    out = []
    for ep in endpoints:
        if ep.network != network or ep.node == node:
            continue
        vtep = ep.vtep
        if live_nodes is not None:
            if ep.node not in live_nodes:
                continue
            vtep = live_nodes[ep.node]
        out.append(Peer(ip=ep.ip, mac=ep.mac.lower(), vtep=vtep))
    return sorted(out)


def diff(desired: Iterable[Peer], fdb: Iterable[tuple[str, str]], neigh: Iterable[tuple[str, str]]) -> Changes:
    """What to change so that the device holds exactly ``desired``.

    ``fdb`` is the device's current (mac, dst) remote entries, ``neigh`` its (ip, mac)
    permanent neighbours.
    """
    want = list(desired)
    want_fdb = {(p.mac, p.vtep) for p in want}
    want_neigh = {(p.ip, p.mac) for p in want}
    have_fdb = {(m.lower(), d) for m, d in fdb}
    have_neigh = {(i, m.lower()) for i, m in neigh}
    want_ips = {p.ip for p in want}
    return Changes(
        fdb_add=tuple(p for p in want if (p.mac, p.vtep) not in have_fdb),
        fdb_del=tuple(sorted(have_fdb - want_fdb)),
        neigh_add=tuple(p for p in want if (p.ip, p.mac) not in have_neigh),
        neigh_del=tuple(sorted(i for i, _m in have_neigh - want_neigh if i not in want_ips)),
    )


def render_bridge(dev: str, ch: Changes) -> str:
    """``bridge -batch`` text. Deletions first: a MAC that moved host is replaced."""
    lines = [f"fdb del {mac} dev {dev} dst {dst} self" for mac, dst in ch.fdb_del]
    lines += [f"fdb replace {p.mac} dev {dev} dst {p.vtep} self permanent" for p in ch.fdb_add]
    return "".join(line + "\n" for line in lines)


def render_ip(dev: str, ch: Changes) -> str:
    """``ip -batch`` text for the neighbour entries."""
    lines = [f"neigh del {ip} dev {dev}" for ip in ch.neigh_del]
    lines += [f"neigh replace {p.ip} lladdr {p.mac} dev {dev} nud permanent" for p in ch.neigh_add]
    return "".join(line + "\n" for line in lines)


# --- driver ---------------------------------------------------------------------------

def _run(argv: list[str], stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=30)
    if check and proc.returncode != 0:
        raise DataplaneError(f"{' '.join(argv[:4])}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def link_exists(name: str) -> bool:
    return _run(["ip", "link", "show", "dev", name], check=False).returncode == 0


def vxlan_devices() -> list[str]:
    """Names of the VXLAN devices in this namespace (not /sys: sysfs shows the namespace
    it was mounted in, which need not be ours)."""
    out = json.loads(_run(["ip", "-j", "link", "show", "type", "vxlan"], check=False).stdout or "[]")
    return [str(link["ifname"]) for link in out]


class Vxlan:
    """The VXLAN device ``name`` in the namespace we run in."""

    def __init__(self, name: str, vni: int) -> None:
        self.name = name
        self.vni = vni

    def ensure(self, local: str, mtu: int, bridge: str) -> None:
        """Create (or fix) the device: VNI, local address, port 4789, no learning, ARP
        proxy, MTU, enslaved to ``bridge`` and up. Idempotent; a concurrent ADD creating
        it at the same time is fine.

        Raises: DataplaneError.
        """
        if self._ready(mtu, bridge):
            return  # the common case: one netlink dump, no process
        if not link_exists(self.name):
            proc = _run(["ip", "link", "add", self.name, "type", "vxlan", "id", str(self.vni),
                         "local", local, "dstport", str(VXLAN_PORT), "nolearning", "proxy"], check=False)
            if proc.returncode != 0 and not link_exists(self.name):
                raise DataplaneError(f"cannot create VXLAN device {self.name}: {proc.stderr.strip()}")
        _run(["ip", "link", "set", self.name, "mtu", str(mtu), "master", bridge, "up"])

    def _ready(self, mtu: int, bridge: str) -> bool:
        """Whether the device exists, is up, has ``mtu`` and is a port of ``bridge``
        (read with our own rtnetlink client: no ``ip`` process on the hot path)."""
        from ..nl.rtnl import NetlinkError, Rtnl

        try:
            with Rtnl() as nl:
                link, br = nl.get_link(self.name), nl.get_link(bridge)
        except (NetlinkError, OSError):
            return False
        return (link is not None and br is not None and link.kind == "vxlan" and link.mtu == mtu
                and link.master == br.index and bool(link.flags & 1))

    def delete(self) -> None:
        _run(["ip", "link", "del", self.name], check=False)

    def current(self) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """(fdb (mac, dst), neigh (ip, mac)) as the kernel has them. Raises: DataplaneError."""
        fdb_out = _run(["bridge", "-j", "fdb", "show", "dev", self.name]).stdout
        fdb = [(e["mac"], e["dst"]) for e in json.loads(fdb_out or "[]") if e.get("dst")]
        neigh_out = _run(["ip", "-j", "neigh", "show", "dev", self.name]).stdout
        neigh = [(e["dst"], e["lladdr"]) for e in json.loads(neigh_out or "[]")
                 if e.get("lladdr") and "PERMANENT" in e.get("state", [])]
        return fdb, neigh

    def sync(self, peers: Iterable[Peer]) -> Changes:
        """Make the device's entries exactly ``peers``; what changed. Raises: DataplaneError."""
        peers = list(peers)
        fdb, neigh = self.current()
        ch = diff(peers, fdb, neigh)
        if ch.fdb_add or ch.fdb_del:
            _run(["bridge", "-force", "-batch", "-"], render_bridge(self.name, ch))
        if ch.neigh_add or ch.neigh_del:
            _run(["ip", "-force", "-batch", "-"], render_ip(self.name, ch))
        return ch


def underlay_mtu(address: str) -> int:
    """MTU of the interface that holds ``address``. Raises: DataplaneError."""
    out = json.loads(_run(["ip", "-j", "addr", "show"]).stdout or "[]")
    for link in out:
        for a in link.get("addr_info", []):
            if a.get("local") == address:
                return int(link.get("mtu", 1500))
    raise DataplaneError(f"no interface holds the advertise address {address}")


def default_source() -> str:
    """The source address of the default route (NETCTL_ADVERTISE's default).
    Raises: DataplaneError."""
    out = json.loads(_run(["ip", "-j", "route", "get", "1.1.1.1"], check=False).stdout or "[]")
    if out and out[0].get("prefsrc"):
        return str(out[0]["prefsrc"])
    raise DataplaneError("no default route to take the advertise address from: set NETCTL_ADVERTISE")
