"""Shared test data for the dnsd unit tests: a small three-network configuration."""

from __future__ import annotations

from pathlib import Path

from dnslib import EDNS0, QTYPE, DNSHeader, DNSQuestion, DNSRecord

from dnsd import config

ID1 = "1" * 64
ID2 = "2" * 64
ID3 = "3" * 64
ID12 = "c" * 64
IDI = "e" * 64
ID4 = "4" * 64


def write_topology(d: Path) -> str:
    """net1 (v4+v6), net2 (own upstream), net3 (internal) and six containers."""
    s = str(d)
    config.write_network(s, "net1", ["10.89.1.1", "fd10:89:1::1"], ["10.89.1.0/24", "fd10:89:1::/64"])
    config.write_network(s, "net2", ["10.89.2.1"], ["10.89.2.0/24"], upstreams=["10.1.1.53"])
    config.write_network(s, "net3", ["10.89.3.1"], ["10.89.3.0/24"], internal=True)
    config.write_entry(s, "net1", ID1, "eth0", ["c1", "web", ID1[:12], "host1"], ["10.89.1.2"], ["fd10:89:1::2"])
    config.write_entry(s, "net1", ID2, "eth0", ["c2", "web"], ["10.89.1.3"], [])
    config.write_entry(s, "net2", ID3, "eth0", ["c3", "db"], ["10.89.2.2"], [], upstreams=["10.2.2.53"])
    config.write_entry(s, "net1", ID12, "eth0", ["c12"], ["10.89.1.4"], [])
    config.write_entry(s, "net2", ID12, "eth1", ["c12"], ["10.89.2.4"], [])
    config.write_entry(s, "net3", IDI, "eth0", ["ci"], ["10.89.3.2"], [])
    config.write_entry(s, "net2", ID4, "eth0", ["c4"], ["10.89.2.5"], [])
    return s


def query(name: str, qtype: str = "A", *, edns: int | None = None, do: bool = False,
          rd: bool = True, qid: int = 0x1234) -> bytes:
    """A query as a stub resolver sends it (dnslib-built)."""
    # built from parts: DNSRecord.question() would draw a random ID
    msg = DNSRecord(DNSHeader(id=qid, rd=int(rd)), q=DNSQuestion(name, getattr(QTYPE, qtype)))
    if edns is not None:
        msg.add_ar(EDNS0(udp_len=edns, flags="do" if do else ""))
    return bytes(msg.pack())


def answers(reply: bytes) -> list[tuple[str, str, str]]:
    """(name, type, rdata) of each answer record of a reply."""
    msg = DNSRecord.parse(reply)
    return [(str(rr.rname), QTYPE[rr.rtype], str(rr.rdata)) for rr in msg.rr]
