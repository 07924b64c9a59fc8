"""Every interface of the current namespace with its addresses (the host and container
plugins' results), through the netlink boundary's pyroute2 implementation.

Imported inside the plugins' functions, so that parsing, VERSION and errors stay fast in
a cold process; the agent preloads this module, and with it pyroute2.
"""

from __future__ import annotations

from dataclasses import dataclass

from .pyroute import Pyroute


@dataclass(frozen=True)
class LinkInfo:
    """One interface with its addresses."""

    index: int
    name: str
    mac: str
    mtu: int
    up: bool
    kind: str
    addresses: tuple[str, ...]  # CIDR strings, in the kernel's order


def list_links() -> list[LinkInfo]:
    """Every interface of the current namespace with its addresses, by index.

    Raises:
        NetlinkError: the kernel refused a dump.
    """
    with Pyroute() as nl:
        addrs: dict[int, list[str]] = {}
        for a in nl.addresses():
            addrs.setdefault(a.index, []).append(a.cidr)
        return [LinkInfo(index=lk.index, name=lk.name, mac=lk.mac, mtu=lk.mtu, up=lk.up, kind=lk.kind,
                         addresses=tuple(addrs.get(lk.index, ()))) for lk in nl.links()]
