"""Unit tests of the portmap plugin never reach the kernel: fakes for every side effect.

The firewall is a ``FakePortDriver`` (the real conflict rules, in memory); route_localnet,
conntrack and the host's socket table are recorders. So nothing here can change (or
depend on) the machine running the tests.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import pytest
from portmap_fakes import Host

from netplugins.firewall.fake import FakePortDriver
from netplugins.firewall.ports import Forward


@pytest.fixture(autouse=True)
def host(monkeypatch: pytest.MonkeyPatch) -> Iterator[Host]:
    from netplugins.firewall import driver as fwdriver
    from netplugins.meta import conntrack, hostsockets, localnet

    h = Host()

    def get_port_driver(name: str | None = None, **_kw: object) -> FakePortDriver:
        h.driver_names.append(name)
        return h.driver

    monkeypatch.setattr(fwdriver, "get_port_driver", get_port_driver)
    monkeypatch.setattr(fwdriver, "all_port_drivers", lambda: [h.driver])
    monkeypatch.setattr(hostsockets, "read_sockets", lambda protos: list(h.sockets))
    monkeypatch.setattr(localnet, "route_dev", lambda ip: "br-test")
    monkeypatch.setattr(localnet, "enable", lambda d, net, dev: h.localnet.append(("enable", dev)))
    monkeypatch.setattr(localnet, "restore", lambda d, net: h.localnet.append(("restore", net)))
    monkeypatch.setattr(localnet, "is_enabled", lambda dev: ("enable", dev) in h.localnet)
    def flush_udp(fwds: Iterable[Forward]) -> int:
        h.flushed.append(len(list(fwds)))
        return 0

    monkeypatch.setattr(conntrack, "flush_udp", flush_udp)
    yield h
