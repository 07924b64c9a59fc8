"""Overlay planning code without store or kernel: records, allocation, FDB/neighbour plans."""

from __future__ import annotations

import ipaddress

import pytest
from fakenl import FakeHost, link

from netplugins.nl.host import FdbEntry, Neighbour
from netplugins.overlay import alloc
from netplugins.overlay.model import EndpointRec, NodeRec, OverlayNet, RecordError, mac_for
from netplugins.overlay.vxlan import Peer, Vxlan, diff, plan_peers


def ep(ip: str, node: str, vtep: str = "198.18.60.1", net: str = "ov1") -> EndpointRec:
    return EndpointRec(network=net, ip=ip, mac=mac_for(ip), node=node, vtep=vtep,
                       container_id=ip.replace(".", "") * 4, ifname="eth0", names=("n" + ip[-1],))


def test_records_round_trip_and_reject_garbage() -> None:
    net = OverlayNet("ov1", "a" * 64, "10.0.0.0/24", "10.0.0.1", 4096, internal=True)
    assert OverlayNet.from_json(net.to_json()) == net
    assert net.bridge == "ovbr4096" and net.vxlan == "ovvx4096"
    e = ep("10.0.0.7", "h1")
    assert EndpointRec.from_json(e.to_json()) == e
    assert NodeRec.from_json(NodeRec("h1", "198.18.60.11").to_json()).advertise == "198.18.60.11"
    for bad in (b"not json", b"[]", b'{"name": "x"}', b'{"network":"o","ip":"nope"}'):
        with pytest.raises(RecordError):
            EndpointRec.from_json(bad)


def test_mac_is_derived_from_the_address() -> None:
    assert mac_for("10.0.0.229") == "02:42:0a:00:00:e5"


def test_candidates_skip_gateway_network_broadcast_and_taken() -> None:
    got = list(alloc.candidates("10.0.0.0/29", "10.0.0.1", ["10.0.0.3"], "seed"))
    assert sorted(got, key=ipaddress.ip_address) == ["10.0.0.2", "10.0.0.4", "10.0.0.5", "10.0.0.6"]
    # different containers start at different places (fewer lost transactions)
    starts = {next(alloc.candidates("10.0.0.0/24", "10.0.0.1", [], f"c{i}")) for i in range(20)}
    assert len(starts) > 10
    assert list(alloc.candidates("10.0.0.0/30", "10.0.0.1", ["10.0.0.2"], "x")) == []


def test_vni_and_subnet_choice() -> None:
    assert alloc.next_vni([]) == 4096
    assert alloc.next_vni([4096, 4098]) == 4097
    assert alloc.pick_subnet(["10.0.0.0/24", "10.0.1.0/25"]) == "10.0.2.0/24"
    assert alloc.pick_subnet(["10.0.0.0/16"]) == "10.1.0.0/24"
    assert alloc.overlapping("10.0.0.128/25", {"a": "10.1.0.0/24", "b": "10.0.0.0/24"}) == "b"
    assert alloc.overlapping("10.2.0.0/24", {"a": "10.1.0.0/24"}) is None
    with pytest.raises(alloc.Exhausted):
        alloc.pick_subnet(["10.0.0.0/8"])


def test_peers_leave_out_own_node_other_networks_and_dead_nodes() -> None:
    eps = [ep("10.0.0.2", "h1"), ep("10.0.0.3", "h2", "198.18.60.12"), ep("10.0.0.4", "h3", "198.18.60.13"),
           ep("10.0.0.5", "h2", net="ov2")]
    assert [p.ip for p in plan_peers(eps, "ov1", "h1")] == ["10.0.0.3", "10.0.0.4"]
    live = {"h1": "198.18.60.11", "h3": "198.18.60.99"}
    assert plan_peers(eps, "ov1", "h1", live) == [Peer("10.0.0.4", mac_for("10.0.0.4"), "198.18.60.99")]


def test_diff_and_sync_through_the_boundary() -> None:
    want = [Peer("10.0.0.3", "02:42:0a:00:00:03", "198.18.60.12"),
            Peer("10.0.0.4", "02:42:0a:00:00:04", "198.18.60.13")]
    fdb = [("02:42:0a:00:00:03", "198.18.60.12"), ("02:42:0a:00:00:09", "198.18.60.12"),
           ("02:42:0a:00:00:04", "198.18.60.99")]   # moved host
    neigh = [("10.0.0.3", "02:42:0A:00:00:03"), ("10.0.0.9", "02:42:0a:00:00:09")]
    ch = diff(want, fdb, neigh)
    host = FakeHost(links_=[link(7, "ovvx4096", "vxlan")],
                    fdb_=[FdbEntry(7, "02:aa:00:00:00:07")] + [FdbEntry(7, m, d) for m, d in fdb],
                    neigh=[Neighbour(7, i, "PERMANENT", m) for i, m in neigh]
                    + [Neighbour(7, "10.0.0.8", "REACHABLE", "02:42:0a:00:00:08")])  # not ours: kept
    assert Vxlan("ovvx4096", 4096).sync(want, host) == ch
    # deletions first: a MAC that moved host is replaced
    assert host.calls == [
        ("del_fdb", "02:42:0a:00:00:04", "198.18.60.99"),
        ("del_fdb", "02:42:0a:00:00:09", "198.18.60.12"),
        ("replace_fdb", "02:42:0a:00:00:04", "198.18.60.13"),
        ("del_neigh", "10.0.0.9"),
        ("replace_neigh", "10.0.0.4", "02:42:0a:00:00:04")]
    assert sorted((e.mac, e.dst) for e in host.fdb(7) if e.dst) == sorted((p.mac, p.vtep) for p in want)
    host.calls.clear()
    assert not Vxlan("ovvx4096", 4096).sync(want, host) and host.calls == []  # nothing left to change
    assert not diff(want, [(p.mac, p.vtep) for p in want], [(p.ip, p.mac) for p in want])
