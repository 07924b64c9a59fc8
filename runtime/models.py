"""What netctl stores about networks and containers (plain data, JSON on disk)."""

from __future__ import annotations

import ipaddress
from dataclasses import asdict, dataclass, field
from typing import Any

BUILTIN = ("bridge", "host", "none")


@dataclass
class Subnet:
    subnet: str
    gateway: str = ""
    ip_range: str = ""


@dataclass
class Network:
    """A network: stored as JSON and rendered to a CNI conflist."""

    id: str                       # 64 hex
    name: str
    driver: str                   # bridge | host | null
    created: str                  # RFC 3339
    bridge: str = ""              # Linux bridge name (bridge driver)
    subnets: list[Subnet] = field(default_factory=list)
    ipv6: bool = False
    internal: bool = False
    dns: bool = True              # embedded DNS (never on the default bridge)
    icc: bool = True
    masquerade: bool = True
    mtu: int = 0
    options: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    #: whether the user gave --subnet (Docker refuses --ip otherwise)
    user_subnet: bool = False
    builtin: bool = False
    #: extra CNI plugins (type names on CNI_PATH) appended to the chain
    extra_plugins: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def contains(self, address: str) -> bool:
        """True if ``address`` lies in one of the network's subnets (False for no address)."""
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in ipaddress.ip_network(s.subnet, strict=False) for s in self.subnets)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Network:
        d = dict(d)
        d["subnets"] = [Subnet(**s) for s in d.get("subnets", [])]
        return cls(**d)


@dataclass
class Endpoint:
    """A container's attachment to one network."""

    network: str
    ifname: str
    aliases: list[str] = field(default_factory=list)
    ip: str = ""                  # requested static address, if any
    result: dict[str, Any] = field(default_factory=dict)  # the final CNI result


@dataclass
class PortMapping:
    host_port: int
    container_port: int
    protocol: str = "tcp"
    host_ip: str = ""             # "" = every host address

    def text(self) -> str:
        """As ``docker ps`` shows it: ``0.0.0.0:8080->80/tcp``."""
        return f"{self.host_ip or '0.0.0.0'}:{self.host_port}->{self.container_port}/{self.protocol}"


@dataclass
class Container:
    id: str
    name: str
    created: str
    command: list[str]
    hostname: str
    network_mode: str             # network name, "host", "none" or "container:<id>"
    netns: str = ""               # path of the namespace (ours, the owner's, or the host's)
    pid: int = 0                  # the container's first process, as seen from the host
    #: that process's start time (clock ticks after boot): tells it from a reused PID
    pid_start: int = 0
    state: str = "created"        # created | running | exited
    exit_code: int = 0            # of a foreground run (a detached one's is not known)
    endpoints: list[Endpoint] = field(default_factory=list)
    ports: list[PortMapping] = field(default_factory=list)
    publish_all: bool = False
    #: --cap-add / --cap-drop as given, normalised (``CAP_NET_ADMIN``, ``ALL``)
    cap_add: list[str] = field(default_factory=list)
    cap_drop: list[str] = field(default_factory=list)
    #: --privileged: every capability, no ``no_new_privs``
    privileged: bool = False

    def endpoint(self, network: str) -> Endpoint | None:
        return next((e for e in self.endpoints if e.network == network), None)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Container:
        d = dict(d)
        d["endpoints"] = [Endpoint(**e) for e in d.get("endpoints", [])]
        d["ports"] = [PortMapping(**p) for p in d.get("ports", [])]
        return cls(**d)
