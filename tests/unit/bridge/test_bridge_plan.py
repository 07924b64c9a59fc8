"""bridge plugin planning: names, gateways, routes, result shape (pure, no root).

Result shapes are compared with golden JSON in tests/golden/bridge/. Rewrite them only on
purpose: ``UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/unit/bridge`` (then review the diff).
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from goldenutil import assert_golden

from netplugins.cni.types import DNS, IPConfig, Route
from netplugins.main.bridge_conf import BridgeConf, parse_bridge_conf
from netplugins.main.bridge_plan import (
    Gateway,
    host_veth_name,
    plan_gateways,
    plan_result,
    plan_routes,
    random_mac,
    route_gateway,
)

ALL_VERSIONS = ("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")


def conf(**kw: Any) -> BridgeConf:
    obj: dict[str, Any] = {"cniVersion": "1.0.0", "name": "net1", "type": "bridge", "bridge": "br-net1"}
    obj.update(kw)
    return parse_bridge_conf(json.dumps(obj).encode())


# --- names --------------------------------------------------------------------------------

def test_host_veth_name_is_stable_short_and_distinct() -> None:
    name = host_veth_name("ctr1", "eth0")
    assert re.fullmatch(r"veth[0-9a-f]{8}", name)
    assert len(name) <= 15
    assert host_veth_name("ctr1", "eth0") == name  # DEL derives it again without any state
    assert host_veth_name("ctr1", "eth1") != name
    assert host_veth_name("ctr2", "eth0") != name
    # the separator keeps ("ab", "c") and ("a", "bc") apart
    assert host_veth_name("ab", "c") != host_veth_name("a", "bc")


def test_host_veth_name_golden() -> None:
    # DEL of an attachment made by an earlier release finds its veth only if this never changes
    assert host_veth_name("c1", "eth0") == "vethec43057c"


def test_random_mac_is_unicast_locally_administered() -> None:
    macs = {random_mac() for _ in range(50)}
    assert len(macs) == 50
    for mac in macs:
        assert re.fullmatch(r"([0-9a-f]{2}:){5}[0-9a-f]{2}", mac)
        first = int(mac[:2], 16)
        assert first & 0x02 and not first & 0x01


# --- gateways -----------------------------------------------------------------------------

def test_gateway_from_ipam_goes_on_the_bridge() -> None:
    ips, gws = plan_gateways(conf(isGateway=True), (IPConfig("10.1.0.5/24", "10.1.0.254"),))
    assert ips == (IPConfig("10.1.0.5/24", "10.1.0.254", interface=2),)
    assert gws == (Gateway("10.1.0.254/24"),)
    assert gws[0].ip == "10.1.0.254" and gws[0].family == 4


def test_gateway_defaults_to_the_first_address() -> None:
    ips, gws = plan_gateways(conf(isGateway=True),
                             (IPConfig("10.1.0.5/24"), IPConfig("fd00:1::5/64")))
    assert [ip.gateway for ip in ips] == ["10.1.0.1", "fd00:1::1"]
    assert gws == (Gateway("10.1.0.1/24"), Gateway("fd00:1::1/64"))
    assert [g.family for g in gws] == [4, 6]


def test_without_is_gateway_the_bridge_gets_no_address() -> None:
    ips, gws = plan_gateways(conf(), (IPConfig("10.1.0.5/24", "10.1.0.1"), IPConfig("10.2.0.5/24")))
    assert gws == ()
    assert [ip.gateway for ip in ips] == ["10.1.0.1", None]
    assert all(ip.interface == 2 for ip in ips)


def test_same_gateway_twice_is_planned_once() -> None:
    _, gws = plan_gateways(conf(isGateway=True),
                           (IPConfig("10.1.0.5/24", "10.1.0.1"), IPConfig("10.1.0.6/24", "10.1.0.1")))
    assert gws == (Gateway("10.1.0.1/24"),)


# --- routes -------------------------------------------------------------------------------

V4 = IPConfig("10.1.0.5/24", "10.1.0.1", 2)
V6 = IPConfig("fd00:1::5/64", "fd00:1::1", 2)


def test_default_gateway_adds_a_default_route_per_family() -> None:
    routes = plan_routes(conf(isDefaultGateway=True), (V4, V6), ())
    assert routes == (Route("0.0.0.0/0", "10.1.0.1"), Route("::/0", "fd00:1::1"))


def test_ipam_routes_are_kept() -> None:
    ipam = (Route("192.168.0.0/16"), Route("0.0.0.0/0", "10.1.0.254"))
    assert plan_routes(conf(), (V4,), ipam) == ipam
    # a default route with a gateway from IPAM wins over isDefaultGateway
    assert plan_routes(conf(isDefaultGateway=True), (V4,), ipam) == ipam


def test_ipam_default_route_without_gateway_gets_ours() -> None:
    routes = plan_routes(conf(isDefaultGateway=True), (V4,), (Route("0.0.0.0/0"), Route("10.9.0.0/16")))
    assert routes == (Route("10.9.0.0/16"), Route("0.0.0.0/0", "10.1.0.1"))


def test_no_default_route_without_is_default_gateway() -> None:
    assert plan_routes(conf(isGateway=True), (V4, V6), ()) == ()


def test_route_gateway() -> None:
    assert route_gateway(Route("10.9.0.0/16", "10.1.0.254"), (V4,)) == "10.1.0.254"
    assert route_gateway(Route("10.9.0.0/16"), (V4, V6)) == "10.1.0.1"
    assert route_gateway(Route("fd09::/64"), (V4, V6)) == "fd00:1::1"
    assert route_gateway(Route("fd09::/64"), (V4,)) is None


# --- results ------------------------------------------------------------------------------

MACS = {"bridge_mac": "02:00:00:00:00:aa", "host_mac": "02:00:00:00:00:bb", "cont_mac": "02:00:00:00:00:cc"}


def result_for(c: BridgeConf, ipam_ips: tuple[IPConfig, ...], ipam_routes: tuple[Route, ...] = (),
               ipam_dns: DNS | None = None, mtu: int = 1500) -> Any:
    ips, _gws = plan_gateways(c, ipam_ips)
    routes = plan_routes(c, ips, ipam_routes)
    return plan_result(c, MACS["bridge_mac"], host_veth_name("ctr1", "eth0"), MACS["host_mac"],
                       "eth0", MACS["cont_mac"], "/run/netns/ctr1", ips, routes, ipam_dns or DNS(), mtu)


SCENARIOS: dict[str, Any] = {
    # isGateway, host-local's gateway, no routes
    "gateway-v4": lambda: result_for(conf(isGateway=True), (IPConfig("10.1.0.2/24", "10.1.0.1"),)),
    # dual stack with default routes, IPAM routes and IPAM DNS
    "dual-stack-default-gw": lambda: result_for(
        conf(isDefaultGateway=True),
        (IPConfig("10.1.0.2/24", "10.1.0.1"), IPConfig("fd00:1::2/64", "fd00:1::1")),
        (Route("192.168.0.0/16"),), DNS(nameservers=("10.1.0.53",), search=("ipam.test",))),
    # the config's dns replaces IPAM's
    "config-dns": lambda: result_for(
        conf(isGateway=True, dns={"nameservers": ["192.0.2.53"], "domain": "conf.test"}),
        (IPConfig("10.1.0.2/24", "10.1.0.1"),), (), DNS(nameservers=("10.1.0.53",))),
    # no IPAM: only interfaces
    "l2-only": lambda: result_for(conf(), ()),
}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_result_golden(scenario: str) -> None:
    assert_golden(f"bridge/{scenario}.json", SCENARIOS[scenario]().to_dict("1.0.0"))


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_result_golden_per_version(version: str) -> None:
    result = result_for(conf(isDefaultGateway=True, mtu=1400),
                        (IPConfig("10.1.0.2/24", "10.1.0.1"), IPConfig("fd00:1::2/64", "fd00:1::1")),
                        mtu=1400)
    assert_golden(f"bridge/result-{version}.json", result.to_dict(version))


def test_result_shape() -> None:
    res = SCENARIOS["dual-stack-default-gw"]()
    assert [i.name for i in res.interfaces] == ["br-net1", host_veth_name("ctr1", "eth0"), "eth0"]
    assert [i.sandbox for i in res.interfaces] == ["", "", "/run/netns/ctr1"]
    assert all(ip.interface == 2 for ip in res.ips)
