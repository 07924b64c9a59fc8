"""Where a published port answers, with both firewall drivers, in throwaway namespaces.

From another host (the client namespace) through the host's address; from the host through
127.0.0.1 and its own address; from the container itself and a neighbour (hairpin); from a
container on another network; and where it must not: a 127.0.0.1-only port from the
client, even when the client routes 127.0.0.1 to the host (moby#45610). After DEL nothing
answers and no rule is left.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from nsutil import Netns
from test_portmap_helpers import (
    CLIENT_IP,
    CLIENT_IP6,
    DRIVERS,
    HOST_IP,
    HOST_IP6,
    PortLab,
    ask_tcp,
    ask_udp,
    container_ip,
    make_lab,
    mapping,
    port_rules,
    route_localnet,
    said,
    serve_tcp,
    serve_udp,
    wait_ipv6_ready,
)

pytestmark = pytest.mark.netns

NET, SUBNET = "web", "10.71.0.0/24"
OTHER, OTHER_SUBNET = "other", "10.72.0.0/24"
MAPPINGS = [mapping(8080, 80), mapping(5353, 53, "udp"), mapping(9090, 90, host_ip="127.0.0.1")]


@pytest.fixture(params=DRIVERS)
def lab(request: pytest.FixtureRequest, host_ns: Netns, make_ns: Callable[..., Netns],
        tmp_path: Path) -> PortLab:
    return make_lab(host_ns, make_ns, tmp_path, request.param)


def route_loopback_to_host(client: Netns) -> None:
    """The moby#45610 attack: the client sends packets for 127.0.0.1 to the host's MAC.

    A namespace routes 127.0.0.1 to ``lo`` through the local table (rule 0); moving that
    rule behind one that sends 127.0.0.1 to the host, plus route_localnet, lets the
    client's kernel put 127.0.0.1 on the wire.
    """
    client.run(["sysctl", "-qw", "net.ipv4.conf.all.route_localnet=1"])
    client.run(["ip", "route", "add", "127.0.0.1/32", "via", HOST_IP, "dev", "eth0", "table", "100"])
    client.run(["ip", "rule", "add", "pref", "10", "to", "127.0.0.1", "lookup", "100"])
    client.run(["ip", "rule", "add", "pref", "100", "lookup", "local"])
    client.run(["ip", "rule", "del", "pref", "0", "lookup", "local"])
    assert "via 192.0.2.1" in client.run(["ip", "route", "get", "127.0.0.1"]).stdout


def test_published_port_answers_where_it_should(lab: PortLab) -> None:
    client = lab.add_client()
    web, neighbour, far = lab.make_ns(), lab.make_ns(), lab.make_ns()
    res = lab.attach(NET, SUBNET, web, "web1", MAPPINGS, name="web1")
    lab.attach(NET, SUBNET, neighbour, "nb1", [])
    lab.attach(OTHER, OTHER_SUBNET, far, "far1", [])
    serve_tcp(web, 80, "tcp-ok")
    serve_udp(web, 53, "udp-ok")
    serve_tcp(web, 90, "local-ok")
    gw = "10.71.0.1"

    # another host: through the host's address, with its own address visible (no SNAT)
    assert ask_tcp(client, HOST_IP, 8080) == f"tcp-ok {CLIENT_IP}"
    assert ask_udp(client, HOST_IP, 5353) == "udp-ok"
    # the host itself: 127.0.0.1 (masqueraded to the bridge address) and its own address
    assert ask_tcp(lab.host, "127.0.0.1", 8080) == f"tcp-ok {gw}"
    assert ask_tcp(lab.host, HOST_IP, 8080) == f"tcp-ok {HOST_IP}"
    assert ask_udp(lab.host, "127.0.0.1", 5353) == "udp-ok"
    # hairpin: the container itself and its neighbour through a host address
    assert ask_tcp(web, HOST_IP, 8080) == f"tcp-ok {gw}"
    assert ask_tcp(neighbour, HOST_IP, 8080) == f"tcp-ok {gw}"
    assert ask_udp(neighbour, HOST_IP, 5353) == "udp-ok"
    # a container on another (isolated) network, through a host address
    assert ask_tcp(far, HOST_IP, 8080).startswith("tcp-ok ")
    assert ask_tcp(far, gw, 8080).startswith("tcp-ok ")

    # the 127.0.0.1-only port: the host gets it, nobody else does
    assert ask_tcp(lab.host, "127.0.0.1", 9090) == f"local-ok {gw}"
    assert ask_tcp(lab.host, HOST_IP, 9090) == ""
    assert ask_tcp(client, HOST_IP, 9090) == ""
    assert ask_tcp(web, HOST_IP, 9090) == ""
    route_loopback_to_host(client)
    assert ask_tcp(client, "127.0.0.1", 9090, timeout=1) == ""
    assert ask_tcp(client, "127.0.0.1", 8080, timeout=1) == ""
    assert route_localnet(lab.host, "br-web") == "1"

    assert lab.portmap("CHECK", NET, web, "web1", MAPPINGS, res).rc == 0
    assert container_ip(res) == "10.71.0.2"

    lab.detach(NET, SUBNET, web, "web1", MAPPINGS, res)
    assert ask_tcp(lab.host, "127.0.0.1", 8080, timeout=1) == ""
    assert ask_tcp(neighbour, HOST_IP, 8080, timeout=1) == ""
    assert port_rules(lab.host) == []
    assert route_localnet(lab.host, "br-web") == "0"
    assert lab.records() == []
    lab.portmap("DEL", NET, web, "web1", MAPPINGS, res).ok()  # DEL twice


def test_attack_without_the_guard_would_work(lab: PortLab) -> None:
    """The guard is what stops moby#45610: remove it and the same packets get through."""
    client = lab.add_client()
    web = lab.make_ns()
    lab.attach(NET, SUBNET, web, "web1", [mapping(9090, 90, host_ip="127.0.0.1")])
    serve_tcp(web, 90, "local-ok")
    route_loopback_to_host(client)
    assert ask_tcp(client, "127.0.0.1", 9090, timeout=1) == ""
    lab.remove_loopback_guard()
    assert ask_tcp(client, "127.0.0.1", 9090).startswith("local-ok ")


def test_dual_stack(lab: PortLab) -> None:
    client = lab.add_client(ipv6=True)
    web = lab.make_ns()
    res = lab.attach(NET, SUBNET, web, "web1", [mapping(8080, 80), mapping(5353, 53, "udp")],
                     subnet6="fd71::/64")
    wait_ipv6_ready(lab.host, "br-web")
    serve_tcp(web, 80, "tcp-ok")
    serve_udp(web, 53, "udp-ok")
    assert ask_tcp(client, HOST_IP6, 8080) == said("tcp-ok", CLIENT_IP6)
    assert ask_udp(client, HOST_IP6, 5353) == "udp-ok"
    assert ask_tcp(client, HOST_IP, 8080) == f"tcp-ok {CLIENT_IP}"
    assert ask_tcp(lab.host, HOST_IP6, 8080) == said("tcp-ok", HOST_IP6)
    # ::1 is not forwarded (Linux cannot route it out of lo): refused, not hanging
    assert ask_tcp(lab.host, "::1", 8080, timeout=1) == ""
    assert ask_tcp(web, HOST_IP6, 8080) == said("tcp-ok", "fd71::1")  # hairpin: masqueraded
    assert lab.portmap("CHECK", NET, web, "web1", [mapping(8080, 80), mapping(5353, 53, "udp")],
                       res).rc == 0
    lab.portmap("DEL", NET, web, "web1", None, res).ok()
    assert ask_tcp(client, HOST_IP6, 8080, timeout=1) == ""
    assert port_rules(lab.host) == []


def test_port_range_of_a_hundred(lab: PortLab) -> None:
    client = lab.add_client()
    web = lab.make_ns()
    ports = [mapping(8000 + i, 100 + i) for i in range(100)]
    res = lab.attach(NET, SUBNET, web, "web1", ports)
    for port in (100, 150, 199):
        serve_tcp(web, port, f"p{port}")
    assert ask_tcp(client, HOST_IP, 8000) == f"p100 {CLIENT_IP}"
    assert ask_tcp(client, HOST_IP, 8050) == f"p150 {CLIENT_IP}"
    assert ask_tcp(client, HOST_IP, 8099) == f"p199 {CLIENT_IP}"
    rules = port_rules(lab.host)
    if lab.driver == "iptables":  # iptables only: nft has one map element per port
        # one DNAT rule for the whole run (shifted port range)
        assert sum("-j DNAT" in line for line in rules) == 1
    assert lab.portmap("CHECK", NET, web, "web1", ports, res).rc == 0
    lab.portmap("DEL", NET, web, "web1", None, res).ok()
    assert port_rules(lab.host) == []
