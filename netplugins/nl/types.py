"""What the netlink boundary returns and raises (plain data, standard library only).

Kept apart from :mod:`netplugins.nl.host` (the Protocols and the pyroute2 implementation's
factory) because the bridge plugin imports this module in every cold plugin process: only
the two types its hot path needs live here, each a dataclass costs ~0.8 ms to create.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

IFF_UP = 0x1
IFF_PROMISC = 0x100
IFF_LOWER_UP = 0x10000
RT_SCOPE_UNIVERSE, RT_SCOPE_LINK, RT_SCOPE_HOST = 0, 253, 254


class NetlinkError(OSError):
    """The kernel refused a request; ``code`` is the errno (as pyroute2's NetlinkError).

    Both implementations raise this one class, so callers never import pyroute2 to catch.
    """

    def __init__(self, code: int, msg: str = "") -> None:
        super().__init__(code, msg or os.strerror(code))
        self.code = code


@dataclass(frozen=True)
class Link:
    """One network interface."""

    index: int
    name: str
    flags: int    # IFF_* (IFF_UP: administratively up, IFF_LOWER_UP: carrier)
    mac: str      # "aa:bb:..", "" for a link without one
    mtu: int
    kind: str     # "bridge", "veth", "vxlan", "" for a device without rtnl_link_ops
    master: int   # index of the bridge it is a port of, 0 if none
    peer: int     # IFLA_LINK: a veth's peer index (in the peer's namespace)
    alias: str = ""  # IFLA_IFALIAS: netctl marks the bridges it creates there
    #: bridge port isolation flag (what icc=false sets); None when not a bridge port
    isolated: bool | None = None
    #: bridge port STP state ("forwarding", "disabled", ...); None when not a bridge port
    port_state: str | None = None

    @property
    def up(self) -> bool:
        return bool(self.flags & IFF_UP)

    @property
    def lower_up(self) -> bool:
        return bool(self.flags & IFF_LOWER_UP)


@dataclass(frozen=True)
class Addr:
    """An address on a link."""

    index: int   # the link's index
    cidr: str    # "10.0.0.1/24"
    scope: int   # RT_SCOPE_*: universe (global), link (fe80::), host (127.0.0.1)


#: IFLA_BRPORT_STATE values (linux/if_bridge.h BR_STATE_*), as iproute2 names them
PORT_STATES = ("disabled", "listening", "learning", "forwarding", "blocking")

#: ndm_state bits in the order ``ip neigh`` prints them (it shows the lowest set one first)
NUD_NAMES = ((0x01, "INCOMPLETE"), (0x02, "REACHABLE"), (0x04, "STALE"), (0x08, "DELAY"),
             (0x10, "PROBE"), (0x20, "FAILED"), (0x40, "NOARP"), (0x80, "PERMANENT"))


def nud_name(state: int) -> str:
    """A neighbour's state as ``ip neigh`` names it (the lowest set bit), "NONE" for 0."""
    return next((name for bit, name in NUD_NAMES if state & bit), "NONE")
