"""End-to-end (issue 13): netctl does not turn a host into a router.

The throwaway host namespace is joined to two other namespaces, ``left`` and ``right``
(its "other interfaces"). With forwarding off, nothing crosses it. After the first
network, forwarding is on for the containers only: ``left`` still does not reach
``right``; when the last container goes, forwarding is off again and netctl's rules are
gone. A host that forwarded already keeps forwarding. Both firewall drivers.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest
from netctlutil import Netctl
from nsutil import Netns, connect

pytestmark = pytest.mark.netns

SUBNET = "172.22.42.0/24"
GATEWAY = "172.22.42.1"


@pytest.fixture(params=["nftables", "iptables"])
def netctl(request: pytest.FixtureRequest, host_ns: Netns) -> Iterator[Netctl]:
    n = Netctl(host_ns, extra_env={"NETCTL_FIREWALL_DRIVER": request.param})
    try:
        yield n
    finally:
        n.cleanup()


@pytest.fixture
def sides(host_ns: Netns, make_ns: Callable[..., Netns]) -> tuple[Netns, Netns]:
    """``left`` 198.51.100.2 and ``right`` 203.0.113.2, each routed through the host."""
    left, right = make_ns("nctest-left"), make_ns("nctest-right")
    for ns, side, net in ((left, "left0", "198.51.100"), (right, "right0", "203.0.113")):
        connect(host_ns, ns, side, "eth0")
        host_ns.run(["ip", "addr", "add", f"{net}.1/24", "dev", side])
        ns.run(["ip", "addr", "add", f"{net}.2/24", "dev", "eth0"])
        ns.run(["ip", "route", "add", "default", "via", f"{net}.1"])
    return left, right


def forwarding(host: Netns) -> str:
    return host.run(["sysctl", "-n", "net.ipv4.ip_forward"]).stdout.strip()


def crosses(left: Netns, right: Netns) -> bool:
    """Whether ``left`` reaches ``right`` through the host."""
    return left.run(["ping", "-c", "1", "-W", "1", "203.0.113.2"], check=False).returncode == 0


def netctl_rules(n: Netctl) -> str:
    nft = n.host.run(["nft", "list", "ruleset"]).stdout
    legacy = n.host.run(["iptables-legacy-save"], check=False).stdout
    return "\n".join(line for line in (nft + legacy).splitlines() if "netctl" in line)


def test_host_that_did_not_forward_still_does_not(netctl: Netctl, sides: tuple[Netns, Netns]) -> None:
    left, right = sides
    host = netctl.host
    host.run(["sysctl", "-qw", "net.ipv4.ip_forward=0"])  # the throwaway host only
    assert not crosses(left, right)
    netctl("create", "--subnet", SUBNET, "--gateway", GATEWAY, "net1")
    netctl.run_d("c1", "--network", "net1")
    assert forwarding(host) == "1"  # the containers need it ...
    assert not crosses(left, right)  # ... the host's other interfaces do not get it
    # the containers do: out through the host (masqueraded) and back
    assert netctl.exec("c1", "ping", "-c", "1", "-W", "2", "198.51.100.2", check=False).returncode == 0
    assert "netctl forwarding" in netctl_rules(netctl)
    record = json.loads(open(netctl.path("run", "bridge", "forwarding.record")).read())
    assert record == {"enabledByNetctl": [4]}
    # a second network shares the guard; the last container gone, all is as it was
    netctl("create", "--subnet", "172.22.43.0/24", "net2")
    netctl.run_d("c2", "--network", "net2")
    assert not crosses(left, right)
    netctl("container", "rm", "-f", "c1")
    assert forwarding(host) == "1" and not crosses(left, right)
    netctl("container", "rm", "-f", "c2")
    assert forwarding(host) == "0"
    assert netctl_rules(netctl) == ""


def test_host_that_forwarded_keeps_forwarding(netctl: Netctl, sides: tuple[Netns, Netns]) -> None:
    left, right = sides
    host = netctl.host
    host.run(["sysctl", "-qw", "net.ipv4.ip_forward=1"])
    assert crosses(left, right)
    netctl("create", "--subnet", SUBNET, "--gateway", GATEWAY, "net1")
    netctl.run_d("c1", "--network", "net1")
    assert crosses(left, right)
    assert "netctl forwarding" not in netctl_rules(netctl)
    netctl("container", "rm", "-f", "c1")
    assert forwarding(host) == "1" and crosses(left, right)
