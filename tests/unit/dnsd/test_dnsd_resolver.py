"""Resolver.handle on real packets: local answers, empty NOERROR, PTR, TC, forwarding choice."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from dnsd_fixtures import answers, query
from dnslib import EDNS0, QTYPE, RCODE, DNSRecord

from dnsd import config, wire
from dnsd.records import Records, load_records
from dnsd.resolver import Forward, Resolver
from dnsd.upstreams import ResolvConf

C1, C2, C3, C12, CI = "10.89.1.2", "10.89.1.3", "10.89.2.2", "10.89.1.4", "10.89.3.2"
GW1, GW2, GW3 = "10.89.1.1", "10.89.2.1", "10.89.3.1"


@pytest.fixture
def resolver(records: Records, tmp_path: Path) -> Resolver:
    rc = tmp_path / "resolv.conf"
    rc.write_text("nameserver 192.0.2.53\nnameserver 10.89.1.1\nnameserver 192.0.2.54\n"
                  "nameserver 192.0.2.55\nnameserver 192.0.2.56\n")
    return Resolver(records, ResolvConf(str(rc)))


def ask(r: Resolver, packet: bytes, src: str, listener: str, tcp: bool = False) -> DNSRecord:
    reply = r.handle(packet, src, listener, tcp)
    assert isinstance(reply, bytes), reply
    msg = DNSRecord.parse(reply)
    assert msg.header.id == DNSRecord.parse(packet).header.id and msg.header.qr == 1
    return msg


def test_local_a_answer_is_authoritative_with_ttl_zero(resolver: Resolver) -> None:
    msg = ask(resolver, query("c2"), C1, GW1)
    assert msg.header.rcode == RCODE.NOERROR and msg.header.aa == 1 and msg.header.ra == 1
    assert [(str(rr.rdata), rr.ttl, QTYPE[rr.rtype]) for rr in msg.rr] == [("10.89.1.3", 0, "A")]


def test_question_is_echoed_with_the_askers_case(resolver: Resolver) -> None:
    msg = ask(resolver, query("cTr.C2".split(".")[1]), C1, GW1)
    assert str(msg.q.qname) == "C2." and msg.rr[0].rname == "C2."


def test_aaaa_for_v4_only_container_is_empty_noerror(resolver: Resolver) -> None:
    for packet in (query("c2", "AAAA"), query("c2", "AAAA", edns=1232)):
        msg = ask(resolver, packet, C1, GW1)
        assert msg.header.rcode == RCODE.NOERROR and msg.rr == [] and msg.header.aa == 1
    msg = ask(resolver, query("c2", "MX"), C1, GW1)
    assert msg.header.rcode == RCODE.NOERROR and msg.rr == []
    assert answers(resolver.handle(query("c1", "AAAA"), C2, GW1)) == [("c1.", "AAAA", "fd10:89:1::2")]  # type: ignore[arg-type]


def test_shared_alias_rotates(resolver: Resolver) -> None:
    seen = set()
    for qid in range(6):
        got = [a[2] for a in answers(resolver.handle(query("web", qid=qid), C1, GW1))]  # type: ignore[arg-type]
        assert sorted(got) == ["10.89.1.2", "10.89.1.3"]
        seen.add(got[0])
    assert seen == {"10.89.1.2", "10.89.1.3"}


def test_any_returns_both_families(resolver: Resolver) -> None:
    got = answers(resolver.handle(query("c1", "ANY"), C2, GW1))  # type: ignore[arg-type]
    assert sorted(t for _, t, _ in got) == ["A", "AAAA"]


def test_ptr_scoped_and_local_reverse_nxdomain(resolver: Resolver) -> None:
    assert answers(resolver.handle(query("2.1.89.10.in-addr.arpa", "PTR"), C2, GW1)) == [  # type: ignore[arg-type]
        ("2.1.89.10.in-addr.arpa.", "PTR", "c1.net1.")
    ]
    v6 = ipaddress.ip_address("fd10:89:1::2").reverse_pointer
    assert answers(resolver.handle(query(v6, "PTR"), C2, GW1))[0][2] == "c1.net1."  # type: ignore[arg-type]
    # an unused address of our own subnet: NXDOMAIN here, never asked upstream
    msg = ask(resolver, query("99.1.89.10.in-addr.arpa", "PTR"), C2, GW1)
    assert msg.header.rcode == RCODE.NXDOMAIN
    # c3 (net2) may not learn net1's names, nor that net1's subnet is ours
    assert isinstance(resolver.handle(query("2.1.89.10.in-addr.arpa", "PTR"), C3, GW2), Forward)
    # a foreign address is somebody else's business
    assert isinstance(resolver.handle(query("8.8.8.8.in-addr.arpa", "PTR"), C2, GW1), Forward)


def test_unknown_names_are_forwarded_to_the_right_servers(resolver: Resolver) -> None:
    fwd = resolver.handle(query("example.com"), C1, GW1)
    assert isinstance(fwd, Forward)
    # host resolv.conf: our own gateway dropped (would loop), at most three kept
    assert [str(u) for u in fwd.upstreams] == ["192.0.2.53", "192.0.2.54", "192.0.2.55"]
    assert fwd.limit == 512 and not fwd.tcp
    fwd = resolver.handle(query("example.com", edns=4096), C3, GW2, tcp=True)
    assert isinstance(fwd, Forward) and [str(u) for u in fwd.upstreams] == ["10.2.2.53"]
    assert fwd.limit == 65535 and fwd.tcp
    fwd = resolver.handle(query("example.com"), "10.89.2.5", GW2)
    assert isinstance(fwd, Forward) and [str(u) for u in fwd.upstreams] == ["10.1.1.53"]
    # a name of a network the requester is not on is just another unknown name
    assert isinstance(resolver.handle(query("c3"), C1, GW1), Forward)


def test_internal_only_gets_nxdomain_not_forwarding(resolver: Resolver) -> None:
    msg = ask(resolver, query("example.com"), CI, GW3)
    assert msg.header.rcode == RCODE.NXDOMAIN and msg.auth == []
    # an unknown source on the internal network's listener: the same
    msg = ask(resolver, query("example.com"), "10.89.3.77", GW3)
    assert msg.header.rcode == RCODE.NXDOMAIN


def test_strangers_are_refused(resolver: Resolver) -> None:
    msg = ask(resolver, query("c1"), "192.168.9.9", GW1)
    assert msg.header.rcode == RCODE.REFUSED and msg.rr == []
    msg = ask(resolver, query("example.com"), "192.168.9.9", GW1)
    assert msg.header.rcode == RCODE.REFUSED


def test_no_upstream_at_all_is_servfail(records: Records) -> None:
    msg = ask(Resolver(records, None), query("example.com"), C1, GW1)
    assert msg.header.rcode == RCODE.SERVFAIL


def test_other_class_is_refused(resolver: Resolver) -> None:
    msg = DNSRecord.question("version.bind", "TXT", "CH")
    reply = resolver.handle(bytes(msg.pack()), C1, GW1)
    assert isinstance(reply, bytes) and DNSRecord.parse(reply).header.rcode == RCODE.REFUSED


def test_edns_is_echoed_with_do_bit(resolver: Resolver) -> None:
    msg = ask(resolver, query("c2", edns=1400, do=True), C1, GW1)
    assert len(msg.ar) == 1 and msg.ar[0].rtype == QTYPE.OPT
    assert msg.ar[0].edns_do and msg.ar[0].rclass == wire.OUR_UDP_SIZE
    msg = ask(resolver, query("c2", edns=1400), C1, GW1)
    assert not msg.ar[0].edns_do
    assert ask(resolver, query("c2"), C1, GW1).ar == []


def many(tmp_path: Path, n: int) -> Records:
    d = str(tmp_path / "many")
    config.write_network(d, "big", ["10.50.0.1"], ["10.50.0.0/16"])
    for i in range(n):
        config.write_entry(d, "big", f"{i:064x}", "eth0", [f"m{i}", "pool"], [f"10.50.{i // 200}.{i % 200 + 2}"], [])
    return load_records(d)


def test_udp_truncation_and_full_tcp_answer(tmp_path: Path) -> None:
    r = Resolver(many(tmp_path, 40))  # 40 A records: 12 + 9 + 40*16 = 661 bytes
    msg = ask(r, query("pool"), "10.50.0.2", "10.50.0.1")
    assert msg.header.tc == 1 and msg.rr == [] and msg.header.rcode == RCODE.NOERROR
    msg = ask(r, query("pool", edns=1232), "10.50.0.2", "10.50.0.1")
    assert msg.header.tc == 0 and len(msg.rr) == 40  # fits the EDNS size
    msg = ask(r, query("pool"), "10.50.0.2", "10.50.0.1", tcp=True)
    assert msg.header.tc == 0 and len(msg.rr) == 40
    r = Resolver(many(tmp_path, 100))
    msg = ask(r, query("pool", edns=1232), "10.50.0.2", "10.50.0.1")
    assert msg.header.tc == 1 and msg.rr == [] and len(msg.ar) == 1
    msg = ask(r, query("pool", edns=1232), "10.50.0.2", "10.50.0.1", tcp=True)
    assert len(msg.rr) == 100


def test_snapshot_swap_changes_answers(topo_dir: str, resolver: Resolver) -> None:
    assert isinstance(resolver.handle(query("late"), C1, GW1), Forward)
    config.write_entry(topo_dir, "net1", "9" * 64, "eth0", ["late"], ["10.89.1.9"], [])
    resolver.records = load_records(topo_dir)
    assert answers(resolver.handle(query("late"), C1, GW1)) == [("late.", "A", "10.89.1.9")]  # type: ignore[arg-type]


def test_badvers_for_edns1(resolver: Resolver) -> None:
    msg = DNSRecord.question("c2")
    msg.add_ar(EDNS0(udp_len=1232, version=1))
    reply = resolver.handle(bytes(msg.pack()), C1, GW1)
    assert isinstance(reply, bytes)
    parsed = DNSRecord.parse(reply)
    assert parsed.header.rcode == 0 and (parsed.ar[0].ttl >> 24) == 1  # extended rcode 16
