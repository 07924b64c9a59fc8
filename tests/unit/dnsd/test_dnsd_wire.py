"""The hand-rolled fast path against dnslib: same bytes for every common query."""

from __future__ import annotations

from dnsd_fixtures import query
from dnslib import DNSRecord
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dnsd import slowpath, wire
from dnsd.records import Records
from dnsd.resolver import Forward, Resolver

NAMES = ["c1", "c2", "web", "c3", "db", "c12", "ci", "c4", "host1", "111111111111",
         "c2.net1", "c3.net2", "nope", "example.com", "2.1.89.10.in-addr.arpa",
         "99.1.89.10.in-addr.arpa", "4.2.89.10.in-addr.arpa", "8.8.8.8.in-addr.arpa"]
SOURCES = [("10.89.1.2", "10.89.1.1"), ("10.89.1.3", "10.89.1.1"), ("10.89.1.4", "10.89.1.1"),
           ("10.89.2.2", "10.89.2.1"), ("10.89.3.2", "10.89.3.1"), ("10.89.1.77", "10.89.1.1"),
           ("fd10:89:1::2", "fd10:89:1::1"), ("192.168.1.1", "10.89.1.1")]


def random_case(draw: st.DrawFn, name: str) -> str:
    flips = draw(st.lists(st.booleans(), min_size=len(name), max_size=len(name)))
    return "".join(c.upper() if f else c for c, f in zip(name, flips, strict=True))


@st.composite
def common_queries(draw: st.DrawFn) -> tuple[bytes, str, str, bool]:
    name = random_case(draw, draw(st.sampled_from(NAMES)))
    qtype = draw(st.sampled_from(["A", "AAAA", "PTR", "MX", "TXT", "ANY"]))
    edns = draw(st.one_of(st.none(), st.integers(0, 65535)))
    packet = query(name, qtype, edns=edns, do=draw(st.booleans()), rd=draw(st.booleans()),
                   qid=draw(st.integers(0, 65535)))
    if draw(st.booleans()):  # CD bit
        packet = packet[:3] + bytes([packet[3] | 0x10]) + packet[4:]
    src, listener = draw(st.sampled_from(SOURCES))
    return packet, src, listener, draw(st.booleans())


@settings(max_examples=600, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=common_queries())
def test_fast_path_equals_dnslib(records: Records, case: tuple[bytes, str, str, bool]) -> None:
    packet, src, listener, tcp = case
    assert wire.parse_query(packet) is not None  # really a fast-path query
    fast = Resolver(records).handle(packet, src, listener, tcp)
    slow = slowpath.handle(Resolver(records), packet, src, listener, tcp)
    if isinstance(fast, Forward):
        assert isinstance(slow, Forward)
        assert (fast.upstreams, fast.limit, fast.tcp) == (slow.upstreams, slow.limit, slow.tcp)
        assert DNSRecord.parse(fast.query).q == DNSRecord.parse(slow.query).q
        return
    assert isinstance(fast, bytes) and isinstance(slow, bytes)
    assert fast == slow, (DNSRecord.parse(fast), DNSRecord.parse(slow))


def test_rotation_matches_between_paths(records: Records) -> None:
    fast, slow = Resolver(records), Resolver(records)
    for qid in range(5):
        packet = query("web", qid=qid)
        assert fast.handle(packet, "10.89.1.2", "10.89.1.1") == slowpath.handle(
            slow, packet, "10.89.1.2", "10.89.1.1", False
        )


def test_parse_query_fields() -> None:
    q = wire.parse_query(query("Web", "AAAA", edns=4096, do=True))
    assert q is not None
    assert (q.qtype, q.qclass, q.udp_size, q.qname_end) == (28, 1, 4096, 12 + 5)
    assert q.opt[7] & 0x80  # DO echoed
    q = wire.parse_query(query("web", edns=100))
    assert q is not None and q.udp_size == 512  # below 512 counts as 512 (RFC 6891 6.2.5)


def test_encode_and_split_names() -> None:
    assert wire.encode_name("Web.Net1.") == b"\x03web\x04net1\x00"
    assert wire.encode_name("a..b") is None
    assert wire.encode_name("x" * 64) is None
    assert wire.encode_name(".".join(["x" * 63] * 4)) is None  # 256 bytes
    assert wire.label_splits(b"\x01a\x01b\x01c\x00") == [
        (b"\x01a\x00", b"\x01b\x01c\x00"), (b"\x01a\x01b\x00", b"\x01c\x00")
    ]
    assert wire.label_splits(b"\x01a\x00") == []
    assert wire.decode_name(b"\x03web\x04net1\x00") == "web.net1."
