"""The recording host of portmap's unit tests (see conftest.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

from netplugins.firewall.fake import FakePortDriver
from netplugins.meta.hostsockets import HostSocket


@dataclass
class Host:
    """What the plugin did to the (fake) host."""

    driver: FakePortDriver = field(default_factory=FakePortDriver)
    #: sockets the fake /proc/net shows
    sockets: list[HostSocket] = field(default_factory=list)
    #: ("enable", dev) / ("restore", network) calls of localnet
    localnet: list[tuple[str, str]] = field(default_factory=list)
    flushed: list[int] = field(default_factory=list)
    driver_names: list[str | None] = field(default_factory=list)
