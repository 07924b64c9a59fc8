"""doctor's overlay hops and graph's tunnels, from facts (pure)."""

from __future__ import annotations

from typing import Any

from netplugins.overlay.inspect import OverlayFacts, Peer
from runtime.doctor.hops_overlay import check_overlay
from runtime.doctor.report import Findings
from runtime.graph.dot import render_dot
from runtime.graph.model import GNetwork, GraphModel, GRemote
from runtime.graph.text import render_text

PEER = Peer("10.0.0.5", "02:42:0a:00:00:05", "host3", "198.18.60.13", "web3")
GOOD = OverlayFacts("ov1", 4096, "ovvx4096", "ovbr4096", True, "ovbr4096", PEER,
                    fdb_dst="198.18.60.13", neigh_mac="02:42:0a:00:00:05", route_dev="ul0")


def walk(ov: OverlayFacts) -> Any:
    w = Findings()  # what check_overlay uses of a Walk
    check_overlay(w, ov)  # type: ignore[arg-type]
    return w


def test_healthy_tunnel_is_all_ok() -> None:
    found = walk(GOOD)
    assert [(h.name, h.status) for h in found.hops] == [
        ("vxlan", "ok"), ("tunnel entry", "ok"), ("peer neighbour", "ok"), ("tunnel route", "ok")]
    assert not found.ranked()


def test_each_missing_piece_is_named() -> None:
    from dataclasses import replace

    cases = {
        "vxlan-missing": replace(GOOD, device_up=None),
        "vxlan-down": replace(GOOD, device_master=""),
        "fdb-missing": replace(GOOD, fdb_dst="198.18.60.99"),
        "neigh-missing": replace(GOOD, neigh_mac=""),
        "underlay-route": replace(GOOD, route_dev="", route_error="Network is unreachable"),
    }
    for code, facts in cases.items():
        causes = walk(facts).ranked()
        assert [c.code for c in causes] == [code], code
    fdb = walk(cases["fdb-missing"]).ranked()[0]
    assert "web3 on host3 (198.18.60.13)" in fdb.message
    assert "bridge fdb replace 02:42:0a:00:00:05 dev ovvx4096 dst 198.18.60.13" in fdb.fix


def _model() -> GraphModel:
    net = GNetwork("ov1", driver="overlay", bridge="ovbr4096", subnets=("10.0.0.0/24",), gateways=("10.0.0.1",),
                   dns=True, bridge_state="up")
    return GraphModel((net,), (), None, "host1",
                      (GRemote("ov1", "host3", "198.18.60.13", "web3", "10.0.0.5"),
                       GRemote("ov1", "host2", "198.18.60.12", "web2", "10.0.0.4")))


def test_graph_text_lists_remote_containers_with_their_tunnel() -> None:
    text = render_text(_model())
    assert "on host1, 2 other hosts" in text
    assert "network ov1  (overlay)" in text
    assert "web3  10.0.0.5  on host3, through the VXLAN tunnel to 198.18.60.13" in text


def test_graph_dot_draws_hosts_and_tunnels() -> None:
    dot = render_dot(_model())
    assert 'subgraph "cluster_host_host2"' in dot and 'subgraph "cluster_host_host3"' in dot
    assert '"br:ov1" -> "rctr:host3:ov1:web3" [style="bold,dashed"' in dot


def test_device_facts_are_read_through_the_boundary() -> None:
    import errno

    from fakenl import FakeHost, link

    from netplugins.nl.host import FdbEntry, Neighbour, Route
    from netplugins.overlay.inspect import read_device

    host = FakeHost(links_=[link(4, "ovbr4096", "bridge"), link(5, "ovvx4096", "vxlan", master=4), link(6, "ul0")],
                    fdb_=[FdbEntry(5, "02:aa:00:00:00:05"), FdbEntry(5, "02:42:0A:00:00:05", "198.18.60.13")],
                    neigh=[Neighbour(5, "10.0.0.5", "PERMANENT", "02:42:0a:00:00:05")],
                    lookups={"198.18.60.13": Route("198.18.60.13", 6)})
    bare = OverlayFacts("ov1", 4096, "ovvx4096", "ovbr4096", peer=PEER)
    got = read_device(host, bare)
    assert got == GOOD  # the facts make a healthy tunnel
    assert [c.code for c in walk(got).ranked()] == []
    host.lookups = {"198.18.60.13": errno.ENETUNREACH}
    host.links_ = [lk for lk in host.links_ if lk.name != "ovvx4096"]
    gone = read_device(host, bare)
    assert gone.device_up is None and gone.fdb_dst == "" and gone.route_error == "Network is unreachable"

