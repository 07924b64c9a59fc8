"""CNI result types, and their JSON shapes per spec version.

The only place where camelCase JSON meets our snake_case fields. Addresses are kept as
strings ("10.1.0.5/24") so this module imports nothing heavy; planning code turns them
into netaddr/ipaddress objects where it computes with them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .errors import DECODE_FAILURE, CniError
from .version import CURRENT, at_least

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs every plugin process ~3 ms; annotations are strings here
    from typing import Any


@dataclass(frozen=True)
class Interface:
    """An interface a plugin created or configured (``sandbox`` empty for host interfaces)."""

    name: str
    mac: str = ""
    sandbox: str = ""
    mtu: int = 0            # 1.1.0
    socket_path: str = ""   # 1.1.0
    pci_id: str = ""        # 1.1.0

    def to_dict(self, version: str) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        if self.mac:
            out["mac"] = self.mac
        if at_least(version, "1.1.0"):
            if self.mtu:
                out["mtu"] = self.mtu
        if self.sandbox:
            out["sandbox"] = self.sandbox
        if at_least(version, "1.1.0"):
            if self.socket_path:
                out["socketPath"] = self.socket_path
            if self.pci_id:
                out["pciID"] = self.pci_id
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Interface:
        return cls(
            name=str(d["name"]),
            mac=str(d.get("mac", "") or ""),
            sandbox=str(d.get("sandbox", "") or ""),
            mtu=int(d.get("mtu", 0) or 0),
            socket_path=str(d.get("socketPath", "") or ""),
            pci_id=str(d.get("pciID", "") or ""),
        )


@dataclass(frozen=True)
class IPConfig:
    """An address given to an interface: ``address`` is CIDR notation ("10.1.0.5/24")."""

    address: str
    gateway: str | None = None
    interface: int | None = None   # index into Result.interfaces; absent in IPAM results

    @property
    def ip(self) -> str:
        return self.address.split("/", 1)[0]

    @property
    def family(self) -> int:
        return 6 if ":" in self.address else 4

    def to_dict(self, version: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if not at_least(version, "1.0.0"):
            # 0.3.x / 0.4.0 carry the address family (pkg/types/040)
            out["version"] = str(self.family)
        if self.interface is not None:
            out["interface"] = self.interface
        out["address"] = self.address
        if self.gateway:
            out["gateway"] = self.gateway
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> IPConfig:
        iface = d.get("interface")
        if not isinstance(d["address"], str):  # str(None) would pass as "None"
            raise TypeError(f"address {d['address']!r} is not a string")
        return cls(
            address=d["address"],
            gateway=(str(d["gateway"]) if d.get("gateway") else None),
            interface=(int(iface) if iface is not None else None),
        )


@dataclass(frozen=True)
class Route:
    """A route to add in the container ("0.0.0.0/0" via ``gw``)."""

    dst: str
    gw: str | None = None
    mtu: int = 0        # 1.1.0 fields below
    advmss: int = 0
    priority: int = 0
    table: int | None = None
    scope: int | None = None

    def to_dict(self, version: str) -> dict[str, Any]:
        out: dict[str, Any] = {"dst": self.dst}
        if self.gw:
            out["gw"] = self.gw
        if at_least(version, "1.1.0"):
            if self.mtu:
                out["mtu"] = self.mtu
            if self.advmss:
                out["advmss"] = self.advmss
            if self.priority:
                out["priority"] = self.priority
            if self.table is not None:
                out["table"] = self.table
            if self.scope is not None:
                out["scope"] = self.scope
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Route:
        return cls(
            dst=str(d["dst"]),
            gw=(str(d["gw"]) if d.get("gw") else None),
            mtu=int(d.get("mtu", 0) or 0),
            advmss=int(d.get("advmss", 0) or 0),
            priority=int(d.get("priority", 0) or 0),
            table=(int(d["table"]) if d.get("table") is not None else None),
            scope=(int(d["scope"]) if d.get("scope") is not None else None),
        )


@dataclass(frozen=True)
class DNS:
    """Resolver settings for the container (the result's ``dns`` key)."""

    nameservers: tuple[str, ...] = ()
    domain: str = ""
    search: tuple[str, ...] = ()
    options: tuple[str, ...] = ()

    def is_empty(self) -> bool:
        return not (self.nameservers or self.domain or self.search or self.options)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.nameservers:
            out["nameservers"] = list(self.nameservers)
        if self.domain:
            out["domain"] = self.domain
        if self.search:
            out["search"] = list(self.search)
        if self.options:
            out["options"] = list(self.options)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> DNS:
        d = d or {}
        return cls(
            nameservers=tuple(str(x) for x in d.get("nameservers") or ()),
            domain=str(d.get("domain", "") or ""),
            search=tuple(str(x) for x in d.get("search") or ()),
            options=tuple(str(x) for x in d.get("options") or ()),
        )


@dataclass(frozen=True)
class Result:
    """A plugin's success result, independent of the version it is printed in."""

    interfaces: tuple[Interface, ...] = ()
    ips: tuple[IPConfig, ...] = ()
    routes: tuple[Route, ...] = ()
    dns: DNS = field(default_factory=DNS)

    def to_dict(self, version: str = CURRENT) -> dict[str, Any]:
        """The JSON object for ``version`` (0.3.x/0.4.0 add ``ips[].version``)."""
        out: dict[str, Any] = {"cniVersion": version}
        if self.interfaces:
            out["interfaces"] = [i.to_dict(version) for i in self.interfaces]
        if self.ips:
            out["ips"] = [ip.to_dict(version) for ip in self.ips]
        if self.routes:
            out["routes"] = [r.to_dict(version) for r in self.routes]
        out["dns"] = self.dns.to_dict()
        return out

    @classmethod
    def from_dict(cls, d: Any) -> Result:
        """Parse a result of any supported version (a prevResult or a delegate's output).

        Raises:
            CniError: code 6 when the object is not a result.
        """
        if not isinstance(d, dict):
            raise CniError(DECODE_FAILURE, "result is not a JSON object")
        try:
            return cls(
                interfaces=tuple(Interface.from_dict(i) for i in d.get("interfaces") or ()),
                ips=tuple(IPConfig.from_dict(i) for i in d.get("ips") or ()),
                routes=tuple(Route.from_dict(r) for r in d.get("routes") or ()),
                dns=DNS.from_dict(d.get("dns")),
            )
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            # OverflowError: int() of an infinite float ("interface": 1e999)
            raise CniError(DECODE_FAILURE, "failed to decode result", repr(exc)) from None

    def with_changes(self, **kw: Any) -> Result:
        return replace(self, **kw)
