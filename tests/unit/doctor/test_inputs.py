"""Parsing of what doctor reads and is given: ip -j output, TARGET, ping output, CNI results."""

from __future__ import annotations

import errno
import socket
import threading
from pathlib import Path

import pytest
from doctor_builders import WEB1, ctr
from fakenl import FakeHost, link

from netplugins.nl.host import Neighbour, Route
from netplugins.nl.types import RT_SCOPE_HOST, RT_SCOPE_LINK, Addr
from runtime.doctor.facts import NsView
from runtime.doctor.gather import sysctl
from runtime.doctor.probe import exchange, parse_ping
from runtime.doctor.state_facts import attachment, find_source, resolve_target
from runtime.doctor.target import TargetSpec, choose_proto, parse_target
from runtime.errors import NetctlError

DATA = Path(__file__).parent / "data"


def _container() -> FakeHost:
    """A container namespace as the kernel shows it: lo, eth0 with a link-local address too."""
    return FakeHost(
        links_=[link(1, "lo"), link(2, "eth0", "veth")],
        addrs=[Addr(1, "127.0.0.1/8", RT_SCOPE_HOST), Addr(2, "172.22.16.4/24", 0),
               Addr(2, "fe80::1/64", RT_SCOPE_LINK)],
        routes_=[Route("default", 2, "172.22.16.1"), Route("172.22.16.0/24", 2, prefsrc="172.22.16.4"),
                 Route("172.22.16.255", 2, type="broadcast")],
        neigh=[Neighbour(2, "172.22.16.1", "STALE", "8a:24:a5:ab:ae:00")],
        lookups={"10.99.0.2": Route("10.99.0.2", 2, "172.22.16.1", prefsrc="172.22.16.4"),
                 "10.99.0.9": errno.ENETUNREACH})


def test_links_of_a_container_and_the_host() -> None:
    view = NsView.read(_container())
    eth0 = view.link("eth0")
    assert eth0 is not None and eth0.up and eth0.lower_up and eth0.kind == "veth"
    assert view.addresses(eth0) == ("172.22.16.4/24",)  # link-local IPv6 left out
    assert view.name(eth0.master) == "" and eth0.isolated is None
    host = NsView.read(FakeHost(
        links_=[link(3, "br-6069690eae69", "bridge"),
                link(4, "veth16511c09", "veth", master=3, isolated=False, port_state="forwarding"),
                link(5, "vethbd6e7d97", "veth", master=3, isolated=True, port_state="forwarding"),
                link(6, "vethdown", "veth", up=False)],
        addrs=[Addr(3, "172.22.16.1/24", 0)]))
    br, port, iso, down = (host.link(n) for n in ("br-6069690eae69", "veth16511c09", "vethbd6e7d97", "vethdown"))
    assert br is not None and br.kind == "bridge" and host.addresses(br) == ("172.22.16.1/24",)
    assert port is not None and host.name(port.master) == "br-6069690eae69"
    assert port.isolated is False and port.port_state == "forwarding"
    assert iso is not None and iso.isolated is True  # a port of the icc=false network
    assert down is not None and not down.up and not down.lower_up


def test_routes_neighbours_lookups() -> None:
    view = NsView.read(_container(), ("10.99.0.2", "10.99.0.9"))
    # only unicast routes, printed with device names
    assert [view.route_text(r) for r in view.routes] == ["default via 172.22.16.1 dev eth0", "172.22.16.0/24 dev eth0"]
    neigh = view.neighbours[0]
    assert neigh.state == "STALE" and neigh.lladdr == "8a:24:a5:ab:ae:00" and view.name(neigh.index) == "eth0"
    ok, bad = view.lookups
    assert ok.ok and ok.gateway == "172.22.16.1" and ok.dev == "eth0" and ok.src == "172.22.16.4"
    assert not bad.ok and bad.error == "Network is unreachable"  # the kernel's words, as ip prints them
    assert sysctl("net/core/somaxconn") is None and sysctl("no/such/sysctl") is None  # not 0/1, missing


@pytest.mark.parametrize("text,expected", [
    ("web2", TargetSpec("ref", "web2")),
    ("db.my_net2", TargetSpec("ref", "db.my_net2")),
    ("10.99.0.2", TargetSpec("address", "10.99.0.2")),
    ("10.99.0.2:80", TargetSpec("address", "10.99.0.2", 80)),
    ("fd00::2", TargetSpec("address", "fd00::2")),
    ("[fd00::2]:53", TargetSpec("address", "fd00::2", 53)),
    ("host:8080", TargetSpec("hostport", "host", 8080)),
    ("HOST:1", TargetSpec("hostport", "host", 1)),
])
def test_parse_target(text: str, expected: TargetSpec) -> None:
    assert parse_target(text) == expected


@pytest.mark.parametrize("text,msg", [
    ("", "empty target"), ("host:", "is not a port"), ("host:70000", "out of range"),
    ("web:80", "is not an IP address"), ("[fd00::2]", "use [IPv6]:PORT"),
])
def test_parse_target_errors(text: str, msg: str) -> None:
    with pytest.raises(NetctlError, match=msg.replace("[", r"\[").replace("]", r"\]")):
        parse_target(text)


def test_choose_proto() -> None:
    ref = TargetSpec("ref", "web2")
    assert choose_proto(ref, None, None) == ("icmp", None)
    assert choose_proto(ref, None, 80) == ("tcp", 80)
    assert choose_proto(ref, "udp", 53) == ("udp", 53)
    assert choose_proto(TargetSpec("address", "10.0.0.1", 443), None, None) == ("tcp", 443)
    with pytest.raises(NetctlError, match="needs a port"):
        choose_proto(ref, "tcp", None)
    with pytest.raises(NetctlError, match="icmp has no ports"):
        choose_proto(ref, "icmp", 80)
    published = TargetSpec("hostport", "host", 8053)
    assert choose_proto(published, None, None, "udp") == ("udp", 8053)  # as the port is published
    assert choose_proto(published, "tcp", None, "udp") == ("tcp", 8053)
    assert choose_proto(published, None, None) == ("tcp", 8053)  # nothing publishes it
    for bad in (("icmp", None), (None, 53)):
        with pytest.raises(NetctlError, match="host:PORT names the port already"):
            choose_proto(published, *bad)


def test_parse_ping() -> None:
    ok = parse_ping("10.0.0.2", "64 bytes from 10.0.0.2: icmp_seq=1 ttl=64 time=0.104 ms\n", "", 0, 1)
    assert ok.ok and ok.rtt_ms == 0.104 and ok.detail == "reply in 0.104 ms"
    lost = parse_ping("10.0.0.2", "1 packets transmitted, 0 received, 100% packet loss\n", "", 1, 1)
    assert lost.outcome == "timeout" and lost.detail == "no reply within 1 s"
    unreach = parse_ping("10.0.0.2", "", "ping: connect: Network is unreachable\n", 2, 1)
    assert unreach.outcome == "unreachable" and unreach.detail == "Network is unreachable"
    host = parse_ping("10.0.0.2", "From 10.0.0.1 icmp_seq=1 Destination Host Unreachable\n", "", 1, 1)
    assert host.outcome == "unreachable"


def test_tcp_probe_on_loopback() -> None:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    t = threading.Thread(target=lambda: srv.accept()[0].close(), daemon=True)
    t.start()
    assert exchange("tcp", "127.0.0.1", port, 1).outcome == "ok"
    t.join(2)
    srv.close()
    gone = exchange("tcp", "127.0.0.1", port, 1)  # nobody listens any more
    assert gone.outcome == "refused" and gone.detail == "Connection refused"


def test_attachment_from_a_cni_result() -> None:
    result = {"interfaces": [{"name": "br0"}, {"name": "veth1"}, {"name": "eth0", "sandbox": "/run/x"}],
              "ips": [{"interface": 2, "address": "172.22.16.2/24", "gateway": "172.22.16.1"},
                      {"interface": 0, "address": "172.22.16.1/24"}],
              "routes": [{"dst": "0.0.0.0/0", "gw": "172.22.16.1"}],
              "dns": {"nameservers": ["172.22.16.1"]}}
    a = attachment("my_net2", "eth0", result, ["db"])
    assert a.host_veth == "veth1"  # the host end, as the bridge result lists it
    assert a.addresses == ("172.22.16.2/24",)
    assert a.gateway == "172.22.16.1"
    assert a.routes == (Route("0.0.0.0/0", 0, "172.22.16.1"),)
    assert a.nameservers == ("172.22.16.1",) and a.aliases == ("db",)
    # a result without a host end (macvlan: only the container's interface)
    macvlan = {"interfaces": [{"name": "eth0", "sandbox": "/run/x"}], "ips": result["ips"][:1]}
    assert attachment("mv", "eth0", macvlan, []).host_veth == ""


def test_resolve_target_and_source() -> None:
    web1 = ctr("web1", WEB1)
    aliased = ctr("web2", WEB1.__class__(**{**WEB1.__dict__, "addresses": ("172.22.16.3/24",),
                                           "aliases": ("db",)}))
    ctrs = [web1, aliased]
    assert resolve_target(TargetSpec("ref", "web2"), ctrs, None, "web2").container is aliased
    by_alias = resolve_target(TargetSpec("ref", "db"), ctrs, None, "db")
    assert by_alias.kind == "name" and by_alias.container is aliased
    by_addr = resolve_target(TargetSpec("address", "172.22.16.3"), ctrs, None, "172.22.16.3")
    assert by_addr.container is aliased and by_addr.address == "172.22.16.3"
    unknown = resolve_target(TargetSpec("ref", "example.org"), ctrs, None, "example.org")
    assert unknown.kind == "name" and unknown.container is None
    assert find_source(web1.id[:8], ctrs) is web1
    assert find_source("nope", ctrs) is None
