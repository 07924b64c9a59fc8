"""The recording host of portmap's unit tests: a ``PortmapHost`` that touches nothing.

The commands take it as their ``host`` argument (``cmd_add(args, host)``), so nothing in
these tests can change (or depend on) the machine running them. The firewall is a
``FakePortDriver`` (the real conflict rules, in memory); route_localnet, conntrack and
the host's socket table are recorders.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from netplugins.firewall.fake import FakePortDriver
from netplugins.firewall.ports import Forward
from netplugins.meta.hostsockets import HostSocket


@dataclass
class Host:
    """What the plugin did to the (fake) host, and what the host shows it."""

    driver: FakePortDriver = field(default_factory=FakePortDriver)
    #: sockets the fake /proc/net shows
    sockets: list[HostSocket] = field(default_factory=list)
    #: inode -> "name (pid N)" of the process holding it (absent: unknown)
    owners: dict[int, str] = field(default_factory=dict)
    #: the addresses of the fake namespace
    addresses: set[str] = field(default_factory=lambda: {"127.0.0.1", "::1", "192.0.2.1"})
    #: the interface every container address is routed through (None: no on-link route)
    dev: str | None = "br-test"
    #: ("enable", dev) / ("restore", network) calls of localnet
    localnet: list[tuple[str, str]] = field(default_factory=list)
    #: how many forwards each conntrack flush was given
    flushed: list[int] = field(default_factory=list)
    #: the names port_driver() was asked for
    driver_names: list[str | None] = field(default_factory=list)

    def port_driver(self, name: str | None) -> FakePortDriver:
        self.driver_names.append(name)
        return self.driver

    def all_port_drivers(self) -> list[FakePortDriver]:
        return [self.driver]

    def host_sockets(self, protocols: set[str]) -> list[HostSocket]:
        return [s for s in self.sockets if s.protocol in protocols]

    def socket_owner(self, inode: int) -> str:
        return self.owners.get(inode, "")

    def is_local_address(self, address: str) -> bool:
        return address in self.addresses

    def route_dev(self, address: str) -> str | None:
        return self.dev

    def enable_localnet(self, state_dir: str, network: str, dev: str) -> None:
        self.localnet.append(("enable", dev))

    def restore_localnet(self, state_dir: str, network: str) -> None:
        self.localnet.append(("restore", network))

    def localnet_enabled(self, dev: str) -> bool:
        return ("enable", dev) in self.localnet

    def flush_udp(self, forwards: Iterable[Forward]) -> int:
        self.flushed.append(len(list(forwards)))
        return 0
