"""What the cluster stores in etcd (plain data, JSON values) and where (pure).

Layout under ``/netctl/v1/``::

    networks/<name>            OverlayNet: subnet, gateway, VNI, internal
    nodes/<node>               NodeRec (under the node's lease): underlay address
    endpoints/<net>/<ip>       EndpointRec (under the node's lease): one per container address

One key per address is the lease itself *and* everything the other hosts need (MAC, VTEP,
names), so a container start is one write (a transaction "create if absent") and a stop one
delete; a dead node's keys go with its etcd lease.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import asdict, dataclass, field
from typing import Any

PREFIX = "/netctl/v1/"
NETWORKS = PREFIX + "networks/"
NODES = PREFIX + "nodes/"
ENDPOINTS = PREFIX + "endpoints/"
#: VXLAN network identifiers we hand out (Docker swarm starts at 4096 too)
VNI_FIRST = 4096
VNI_LAST = 16_777_215
VXLAN_PORT = 4789
#: VXLAN over IPv4: outer IP 20 + UDP 8 + VXLAN 8 + inner Ethernet 14
VXLAN_OVERHEAD = 50


class RecordError(ValueError):
    """A stored value that is not what we write (another writer, or a newer version)."""


@dataclass(frozen=True)
class OverlayNet:
    """A cluster-wide overlay network."""

    name: str
    id: str                 # 64 hex, as local networks
    subnet: str             # IPv4 CIDR
    gateway: str            # the same gateway address on every host's bridge
    vni: int
    internal: bool = False
    created: str = ""
    #: whether the user gave --subnet (then --ip is allowed, as Docker)
    user_subnet: bool = False

    @property
    def bridge(self) -> str:
        return bridge_name(self.vni)

    @property
    def vxlan(self) -> str:
        return vxlan_name(self.vni)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, raw: bytes | str) -> OverlayNet:
        """Raises: RecordError."""
        d = _load(raw)
        try:
            net = cls(name=str(d["name"]), id=str(d["id"]), subnet=str(d["subnet"]),
                      gateway=str(d["gateway"]), vni=int(d["vni"]), internal=bool(d.get("internal")),
                      created=str(d.get("created", "")), user_subnet=bool(d.get("user_subnet")))
            ipaddress.ip_network(net.subnet)
            ipaddress.ip_address(net.gateway)
        except (KeyError, TypeError, ValueError) as exc:
            raise RecordError(f"bad network record: {exc}") from None
        return net


@dataclass(frozen=True)
class NodeRec:
    """A live host (its key lives as long as its etcd lease)."""

    name: str
    advertise: str          # underlay address: the VXLAN tunnel end point

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, raw: bytes | str) -> NodeRec:
        d = _load(raw)
        try:
            return cls(name=str(d["name"]), advertise=str(ipaddress.ip_address(d["advertise"])))
        except (KeyError, TypeError, ValueError) as exc:
            raise RecordError(f"bad node record: {exc}") from None


@dataclass(frozen=True)
class EndpointRec:
    """One container address on an overlay: the lease and what peers program from it."""

    network: str
    ip: str                 # plain address, no prefix
    mac: str                # the container interface's MAC (derived from ip)
    node: str
    vtep: str               # the node's underlay address at the time of the ADD
    container_id: str
    ifname: str
    names: tuple[str, ...] = field(default_factory=tuple)

    @property
    def key(self) -> str:
        return endpoint_key(self.network, self.ip)

    def to_json(self) -> str:
        d = asdict(self)
        d["names"] = list(self.names)
        return json.dumps(d, sort_keys=True)

    @classmethod
    def from_json(cls, raw: bytes | str) -> EndpointRec:
        d = _load(raw)
        try:
            return cls(network=str(d["network"]), ip=str(ipaddress.ip_address(d["ip"])),
                       mac=str(d["mac"]), node=str(d["node"]), vtep=str(ipaddress.ip_address(d["vtep"])),
                       container_id=str(d["container_id"]), ifname=str(d["ifname"]),
                       names=tuple(str(n) for n in d.get("names", ())))
        except (KeyError, TypeError, ValueError) as exc:
            raise RecordError(f"bad endpoint record: {exc}") from None


def _load(raw: bytes | str) -> dict[str, Any]:
    try:
        d = json.loads(raw)
    except ValueError as exc:
        raise RecordError(f"not JSON: {exc}") from None
    if not isinstance(d, dict):
        raise RecordError("not a JSON object")
    return d


def network_key(name: str) -> str:
    return NETWORKS + name


def node_key(name: str) -> str:
    return NODES + name


def endpoints_prefix(network: str) -> str:
    return f"{ENDPOINTS}{network}/"


def endpoint_key(network: str, ip: str) -> str:
    return f"{ENDPOINTS}{network}/{ip}"


def bridge_name(vni: int) -> str:
    """The local bridge of an overlay (IFNAMSIZ: 15 chars; VNIs have at most 8 digits)."""
    return f"ovbr{vni}"


def vxlan_name(vni: int) -> str:
    return f"ovvx{vni}"


def mac_for(ip: str) -> str:
    """A locally administered MAC derived from the address (as Docker's 02:42:ip): peers
    can program the neighbour entry from the lease alone, and a reused address on another
    host gets the same MAC, so stale caches point at the right place."""
    b = ipaddress.IPv4Address(ip).packed
    return "02:42:" + ":".join(f"{x:02x}" for x in b)
