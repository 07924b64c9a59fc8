"""Which bridges the bridge plugin's GC deletes (netplugins/main/bridge_gc.py, pure)."""

from __future__ import annotations

import json
from typing import Any

from netplugins.main.bridge_conf import parse_bridge_conf
from netplugins.main.bridge_gc import BridgeLink, gateway_cidrs, plan_bridges

GW = ["10.1.0.1/24", "fd01::1/64"]


def conf(**extra: Any) -> Any:
    obj = {"cniVersion": "1.1.0", "name": "web", "type": "bridge", "bridge": "br0", "isGateway": True,
           "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.1.0.0/24"}],
                                                     [{"subnet": "fd01::/64", "gateway": "fd01::1"}]]}}
    obj.update(extra)
    return parse_bridge_conf(json.dumps(obj).encode())


def test_gateway_cidrs_follow_the_ipam_ranges() -> None:
    assert gateway_cidrs(conf()) == GW
    assert gateway_cidrs(conf(ipam={"type": "host-local", "subnet": "10.2.0.0/16", "gateway": "10.2.0.9"})) == \
        ["10.2.0.9/16"]
    assert gateway_cidrs(conf(isGateway=False)) == []
    assert gateway_cidrs(conf(ipam={"type": "dhcp"})) == []


def test_marked_idle_bridge_is_deleted() -> None:
    plan = plan_bridges("web", "br0", GW, [BridgeLink("br0", "netctl net=web", 0, ("10.1.0.1/24",))], set())
    assert plan.delete == ("br0",) and plan.unaddress == ()
    assert plan.notes == ("removed bridge br0 of network web: no attachment left",)


def test_a_bridge_in_use_is_left_alone() -> None:
    # records of the network remain (another runtime's containers through the same stateDir)
    assert plan_bridges("web", "br0", GW, [BridgeLink("br0", "netctl net=web", 2)], {"web"}).delete == ()
    # no record, but ports: links this plugin did not attach
    plan = plan_bridges("web", "br0", GW, [BridgeLink("br0", "netctl net=web", 1)], set())
    assert plan.delete == () and "kept bridge br0 of network web" in plan.notes[0]


def test_unmarked_or_foreign_mark_keeps_the_bridge_and_drops_only_our_addresses() -> None:
    for alias in ("", "uplink", "netctl net=other", "netctl net=web2"):
        link = BridgeLink("br0", alias, 1, ("10.1.0.1/24", "192.0.2.1/24", "fd01:0::1/64"))
        plan = plan_bridges("web", "br0", GW, [link], {"other", "web2"})
        assert plan.delete == ()
        assert plan.unaddress == ("10.1.0.1/24", "fd01::1/64")
        assert plan.notes[0].startswith("kept bridge br0: netctl did not create it (it has no 'netctl net=web' "
                                        "alias); removed only netctl's addresses (10.1.0.1/24, fd01::1/64)")
    nothing = plan_bridges("web", "br0", GW, [BridgeLink("br0", "", 0, ("192.0.2.1/24",))], set())
    assert nothing == type(nothing)()


def test_orphans_are_marked_idle_and_without_ports() -> None:
    links = [BridgeLink("br-a", "netctl net=gone", 0), BridgeLink("br-b", "netctl net=live", 0),
             BridgeLink("br-c", "", 0), BridgeLink("br-d", "netctl net=gone2", 1), BridgeLink("eth0", "uplink", 0),
             BridgeLink("br-e", "netctl net=../../etc", 0)]  # not a network name: never a path
    plan = plan_bridges("web", "br0", GW, links, {"live"})
    assert plan.delete == ("br-a",)
    assert plan.notes == ("removed bridge br-a of network gone: no attachment left",)
