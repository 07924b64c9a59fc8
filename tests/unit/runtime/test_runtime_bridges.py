"""Which bridges netctl deletes (runtime/bridges.py, pure)."""

from __future__ import annotations

from runtime.bridges import gateway_cidrs, orphans, plan_removal
from runtime.models import Network, Subnet

NET = Network(id="a" * 64, name="web", driver="bridge", created="", bridge="br0",
              subnets=[Subnet("10.1.0.0/24", "10.1.0.1"), Subnet("fd01::/64", "fd01::1")])


def test_marked_bridge_is_deleted() -> None:
    assert plan_removal(NET, "netctl net=web", ["10.1.0.1/24"]).delete


def test_unmarked_or_foreign_mark_keeps_the_bridge_and_drops_only_our_addresses() -> None:
    for alias in ("", "uplink", "netctl net=other", "netctl net=web2"):
        plan = plan_removal(NET, alias, ["10.1.0.1/24", "192.0.2.1/24", "fd01:0::1/64"])
        assert not plan.delete
        assert plan.addresses == ("10.1.0.1/24", "fd01::1/64")
    assert plan_removal(NET, "", ["192.0.2.1/24"]).addresses == ()


def test_gateway_cidrs() -> None:
    assert gateway_cidrs(NET) == ["10.1.0.1/24", "fd01::1/64"]


def test_orphans_are_marked_unused_and_of_unknown_networks() -> None:
    links = [("br-a", "netctl net=gone", False), ("br-b", "netctl net=web", False),
             ("br-c", "", False), ("br-d", "netctl net=gone2", True), ("eth0", "uplink", False)]
    assert orphans(links, {"web"}) == ["br-a"]
