"""The host probe of ipam.pools, read from a throwaway namespace dressed up as a VPN'd host."""

from __future__ import annotations

import pytest
from nsutil import Netns

from ipam.errors import SubnetOverlap
from ipam.pools import check_overlap, pick_subnet, probe_host_prefixes

pytestmark = pytest.mark.netns


def test_probe_sees_addresses_and_routes_of_every_table(host_ns: Netns) -> None:
    host_ns.sh(
        "ip link add up0 type veth peer name up1 && ip link set up0 up && ip link set up1 up && "
        "ip addr add 172.17.0.5/16 dev up0 && "            # a LAN that happens to use Docker's first pool
        "ip route add default via 172.17.0.1 && "          # default routes never count
        "ip route add 172.18.0.0/16 via 172.17.0.1 && "    # a VPN route in the main table
        "ip route add 172.19.0.0/16 dev up0 table 100 && "  # a policy-routed one (wg-quick style)
        "ip route add blackhole 172.20.0.0/16 && "
        "ip -6 addr add fd77::5/64 dev up0 nodad"
    )
    found = probe_host_prefixes(host_ns.path)
    by_prefix = {hp.prefix: hp.source for hp in found}
    assert by_prefix["172.17.0.0/16"].startswith("host")
    assert "host address 172.17.0.5/16 on up0" in {hp.source for hp in found}
    assert by_prefix["172.18.0.0/16"] == "host route 172.18.0.0/16 via 172.17.0.1 dev up0"
    assert by_prefix["172.19.0.0/16"] == "host route 172.19.0.0/16 dev up0 table 100"
    assert by_prefix["172.20.0.0/16"] == "host route blackhole 172.20.0.0/16"
    assert "fd77::/64" in by_prefix
    assert not any(p.startswith(("0.0.0.0/", "::/", "127.", "fe80")) for p in by_prefix)
    assert pick_subnet({}, found) == "172.21.0.0/16"
    assert pick_subnet({"mine": ["172.21.0.0/16"]}, found) == "172.22.0.0/16"
    with pytest.raises(SubnetOverlap, match=r"overlaps with host route 172.18.0.0/16 via 172.17.0.1 dev up0"):
        check_overlap("172.18.128.0/24", {}, found)


def test_probe_of_a_bare_namespace(host_ns: Netns) -> None:
    assert probe_host_prefixes(host_ns.path) == []
    assert pick_subnet({}, probe_host_prefixes(host_ns.path)) == "172.17.0.0/16"
