"""Network → CNI conflist (runtime/conflist.py), compared with golden files.

The goldens in tests/golden/runtime/ are what another CNI runtime would read from
``<lib>/net.d``. Rewrite them only on purpose:
``UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/unit/runtime`` (then review the diff).
"""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from goldenutil import assert_golden

from runtime import conflist
from runtime.models import Network, Subnet
from runtime.paths import Paths

PATHS = Paths(lib="/var/lib/netctl", run="/run/netctl")
CREATED = "2026-01-01T00:00:00Z"


def golden(name: str, obj: Any) -> None:
    """Compare ``obj`` with tests/golden/runtime/``name``.conflist as sorted JSON (goldenutil)."""
    assert_golden(f"runtime/{name}.conflist", obj, sort_keys=True)


def net(name: str, *subnets: Subnet, **kw: Any) -> Network:
    return Network(id="0" * 64, name=name, driver=kw.pop("driver", "bridge"), created=CREATED,
                   bridge=kw.pop("bridge", f"br-{name}"[:15]), subnets=list(subnets), **kw)


NETWORKS = {
    "default-bridge": net("bridge", Subnet("172.17.0.0/16", "172.17.0.1"), bridge="netctl0",
                          dns=False, builtin=True),
    "user-subnet": net("my_net2", Subnet("172.22.16.0/24", "172.22.16.1"), user_subnet=True),
    "ip-range": net("ranged", Subnet("10.10.0.0/16", "10.10.0.1", "10.10.5.0/24"), user_subnet=True),
    "ip-range-at-start": net("ranged0", Subnet("10.11.0.0/24", "10.11.0.1", "10.11.0.0/25")),
    "ip-range-at-end": net("ranged1", Subnet("10.12.0.0/24", "10.12.0.1", "10.12.0.128/25")),
    "internal": net("inner", Subnet("172.22.17.0/24", "172.22.17.1"), internal=True),
    "dual-stack": net("dual", Subnet("172.22.18.0/24", "172.22.18.1"), Subnet("fd00:18::/64", "fd00:18::1"),
                      ipv6=True),
    "options": net("tuned", Subnet("172.22.19.0/24", "172.22.19.1"), icc=False, masquerade=False, mtu=1400,
                   dns=False),
    "extra-plugins": net("extra", Subnet("172.22.20.0/24", "172.22.20.1"),
                         extra_plugins=[{"type": "tuning", "sysctl": {"net.core.somaxconn": "512"}}]),
    "overlay": net("ov1", Subnet("10.200.0.0/24", "10.200.0.1"), driver="overlay", internal=True),
    "host": net("host", driver="host", bridge="", builtin=True, dns=False),
    "none": net("none", driver="null", bridge="", builtin=True, dns=False),
}


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_render_matches_golden(name: str) -> None:
    golden(name, conflist.render(NETWORKS[name], PATHS))


def test_without_portmap() -> None:
    conf = conflist.render(NETWORKS["user-subnet"], PATHS, portmap=False)
    assert [p["type"] for p in conf["plugins"]] == ["bridge", "netctl-dns"]


@pytest.mark.parametrize("name", ["user-subnet", "internal", "overlay", "extra-plugins"])
def test_dns_plugin_follows_the_main_plugin(name: str) -> None:
    """DNS after the plugin that gives the addresses (it reads prevResult), before portmap
    and the user's plugins: DEL runs backwards, so ports go before names."""
    network = NETWORKS[name]
    types = [p["type"] for p in conflist.render(network, PATHS)["plugins"]]
    assert types[:3] == [types[0], "netctl-dns", "portmap"]
    dns = conflist.render(network, PATHS)["plugins"][1]
    assert dns["dir"] == PATHS.dnsd and dns["capabilities"] == {"aliases": True}
    assert dns.get("internal", False) is network.internal
    # the main plugin knows nothing of dnsd
    assert "embeddedDNS" not in conflist.render(network, PATHS)["plugins"][0]


def test_outdated_conflists_are_recognised() -> None:
    old = {"name": "n", "plugins": [{"type": "bridge", "embeddedDNS": {"dir": "/run/netctl/dnsd"}},
                                    {"type": "portmap"}]}
    assert conflist.outdated(old)
    assert not any(conflist.outdated(conflist.render(n, PATHS)) for n in NETWORKS.values())
    assert not conflist.outdated({"plugins": "garbage"})


def test_loopback() -> None:
    golden("loopback", conflist.loopback())


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_shape(name: str) -> None:
    """What every conflist must satisfy whatever its golden says (CNI spec section 1)."""
    network = NETWORKS[name]
    conf = conflist.render(network, PATHS)
    assert conf["name"] == network.name and conf["cniVersion"] == conflist.CNI_VERSION
    assert all(isinstance(p.get("type"), str) for p in conf["plugins"])
    if network.driver != "bridge":
        return
    bridge = conf["plugins"][0]
    ranges = bridge["ipam"]["ranges"]
    assert [r[0]["subnet"] for r in ranges] == [s.subnet for s in network.subnets]
    assert bridge["isDefaultGateway"] is not network.internal
    assert bridge["ipMasq"] is (network.masquerade and not network.internal)
    assert "embeddedDNS" not in bridge
    assert ("netctl-dns" in [p["type"] for p in conf["plugins"]]) is network.dns
    for rng, sub in zip(ranges, network.subnets, strict=True):
        if sub.ip_range:
            start, end = ipaddress.ip_address(rng[0]["rangeStart"]), ipaddress.ip_address(rng[0]["rangeEnd"])
            inside = ipaddress.ip_network(sub.ip_range)
            subnet = ipaddress.ip_network(sub.subnet)
            assert start in inside and end in inside and int(start) <= int(end)
            assert start != subnet.network_address and end != subnet.broadcast_address


def test_a_network_contains_the_addresses_of_its_subnets() -> None:
    net = Network("a" * 64, "two", "bridge", "2026-01-01T00:00:00Z", "br-two",
                  [Subnet("172.30.1.0/24", "172.30.1.1"), Subnet("fd00:30::/64", "fd00:30::1")])
    assert net.contains("172.30.1.77") and net.contains("fd00:30::5")
    assert not net.contains("172.30.2.1") and not net.contains("not an address") and not net.contains("")
