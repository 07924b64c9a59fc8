"""Read interfaces and addresses of the current namespace (pyroute2, imported lazily).

pyroute2 costs ~170 ms to import; it is imported inside the functions so that parsing,
VERSION and errors stay fast in a cold process (the plugin daemon keeps it warm).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyroute2 import IPRoute


@dataclass(frozen=True)
class LinkInfo:
    """One interface with its global and host-scope addresses."""

    index: int
    name: str
    mac: str
    mtu: int
    up: bool
    kind: str
    addresses: tuple[str, ...]  # CIDR strings


def iproute() -> IPRoute:
    """A netlink socket in the current network namespace."""
    from pyroute2 import IPRoute

    return IPRoute()


def _attr(msg: Any, name: str, default: Any = None) -> Any:
    value = msg.get_attr(name)
    return default if value is None else value


def list_links(ipr: IPRoute | None = None) -> list[LinkInfo]:
    """Every interface of the current namespace with its addresses, by index."""
    own = ipr is None
    ipr = ipr or iproute()
    try:
        addrs: dict[int, list[str]] = {}
        for msg in ipr.get_addr():
            addr = _attr(msg, "IFA_ADDRESS")
            if addr is None:
                continue
            addrs.setdefault(msg["index"], []).append(f"{addr}/{msg['prefixlen']}")
        out = []
        for msg in ipr.get_links():
            info = msg.get_attr("IFLA_LINKINFO")
            kind = info.get_attr("IFLA_INFO_KIND") if info is not None else ""
            out.append(LinkInfo(
                index=msg["index"],
                name=_attr(msg, "IFLA_IFNAME", ""),
                mac=_attr(msg, "IFLA_ADDRESS", ""),
                mtu=int(_attr(msg, "IFLA_MTU", 0)),
                up=bool(msg["flags"] & 1),
                kind=kind or "",
                addresses=tuple(addrs.get(msg["index"], ())),
            ))
        return sorted(out, key=lambda link: link.index)
    finally:
        if own:
            ipr.close()


def find_link(name: str, ipr: IPRoute | None = None) -> LinkInfo | None:
    """The interface called ``name`` in the current namespace, or None."""
    for link in list_links(ipr):
        if link.name == name:
            return link
    return None
