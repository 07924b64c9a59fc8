"""Integration fixtures: plugins run for real inside throwaway namespaces."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cniutil import plugin_mode
from nsutil import Netns, connect
from test_doctor_support import NetctlHost
from test_portmap_helpers import CLIENT_IP, HOST_IP


@pytest.fixture(params=["inproc", "daemon"])
def plugin_env(request: pytest.FixtureRequest, host_ns: Netns, tmp_path: Path) -> Iterator[dict[str, str]]:
    """Environment for plugin calls: once running in-process, once through the warm daemon."""
    with plugin_mode(request.param, host_ns, tmp_path) as env:
        yield env


@pytest.fixture
def client(host_ns: Netns, make_ns: Callable[..., Netns]) -> Netns:
    """An outside machine on the host's uplink (host HOST_IP, client CLIENT_IP), for
    published ports reached from another host."""
    out = make_ns("nctest-cli")
    connect(host_ns, out, "uplink", "eth0")
    host_ns.run(["ip", "addr", "add", f"{HOST_IP}/24", "dev", "uplink"])
    out.run(["ip", "addr", "add", f"{CLIENT_IP}/24", "dev", "eth0"])
    out.run(["ip", "route", "add", "default", "via", HOST_IP])
    return out


@pytest.fixture
def host(host_ns: Netns, tmp_path: Path) -> Iterator[NetctlHost]:
    """netctl with a private root in ``host_ns``, for the doctor tests; torn down after."""
    h = NetctlHost(host_ns, tmp_path / "root")
    try:
        yield h
    finally:
        h.teardown()
