"""Malformed input: every packet gets FORMERR/NOTIMP/an answer or is dropped; nothing raises.

Bounded for CI: a few thousand examples, a few seconds in all.
"""

from __future__ import annotations

import struct

import pytest
from dnsd_fixtures import query
from dnslib import RCODE, DNSRecord
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dnsd import wire
from dnsd.records import Records
from dnsd.resolver import Forward, Resolver

SRC, GW = "10.89.1.2", "10.89.1.1"
FUZZ = settings(max_examples=1500, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def check(resolver: Resolver, data: bytes, tcp: bool = False) -> bytes | Forward | None:
    """The invariants every reply must keep, whatever came in."""
    reply = resolver.handle(data, SRC, GW, tcp)
    if reply is None:
        return None
    if isinstance(reply, Forward):
        assert wire.parse_query(reply.query) is not None  # we forward only clean queries
        return reply
    assert isinstance(reply, bytes)
    assert len(data) >= 12 and not data[2] & 0x80  # never answer a response or a runt
    assert len(reply) >= 12 and reply[:2] == data[:2] and reply[2] & 0x80
    if not tcp and not reply[11]:  # without OPT the classic UDP limit holds
        assert len(reply) <= 512
    assert well_formed(reply)
    return reply


def _skip_name(msg: bytes, i: int) -> int:
    """Offset after the (possibly compressed) name at ``i``; raises on malformed names."""
    while True:
        length = msg[i]
        if length & 0xC0 == 0xC0:
            assert (((length & 0x3F) << 8) | msg[i + 1]) < i  # backward pointers only
            return i + 2
        assert length < 64
        if length == 0:
            return i + 1
        i += length + 1


def well_formed(msg: bytes) -> bool:
    """An independent check (not dnslib, which rejects binary labels) of our replies:
    the counts match the sections and the sections end exactly at the end."""
    qd, an, ns, ar = struct.unpack("!HHHH", msg[4:12])
    i = 12
    for _ in range(qd):
        i = _skip_name(msg, i) + 4
    for _ in range(an + ns + ar):
        i = _skip_name(msg, i)
        (rdlen,) = struct.unpack("!H", msg[i + 8 : i + 10])
        i += 10 + rdlen
    return i == len(msg)


@FUZZ
@given(data=st.binary(max_size=700), tcp=st.booleans())
def test_random_bytes(records: Records, data: bytes, tcp: bool) -> None:
    check(Resolver(records), data, tcp)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    base = bytearray(query(draw(st.sampled_from(["c1", "web", "x.example", "c2.net1"])),
                           draw(st.sampled_from(["A", "AAAA", "PTR", "TXT"])),
                           edns=draw(st.one_of(st.none(), st.integers(0, 5000)))))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "set", "cut", "insert", "count"]))
        if op == "flip" and base:
            i = draw(st.integers(0, len(base) - 1))
            base[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and base:
            base[draw(st.integers(0, len(base) - 1))] = draw(st.integers(0, 255))
        elif op == "cut":
            del base[draw(st.integers(0, len(base))):]
        elif op == "insert":
            i = draw(st.integers(0, len(base)))
            base[i:i] = draw(st.binary(min_size=1, max_size=8))
        elif op == "count" and len(base) >= 12:
            i = draw(st.sampled_from([4, 6, 8, 10]))
            base[i : i + 2] = struct.pack("!H", draw(st.integers(0, 6)))
    return bytes(base)


@settings(FUZZ, max_examples=700)
@given(data=mutated(), tcp=st.booleans())
def test_mutated_queries(records: Records, data: bytes, tcp: bool) -> None:
    check(Resolver(records), data, tcp)


HDR = struct.pack("!HHHHHH", 0xBEEF, 0x0100, 1, 0, 0, 0)


def rcode(reply: object) -> int:
    assert isinstance(reply, bytes)
    ext = reply[-7] << 4 if reply[11] and reply[-11:-8] == b"\x00\x00\x29" else 0
    return ext | (reply[3] & 0x0F)


@pytest.mark.parametrize(
    ("name", "data", "expect"),
    [
        ("empty", b"", None),
        ("one byte", b"\x00", None),
        ("truncated header", HDR[:11], None),
        # "GE" is the ID, "T" makes opcode 10: not a query we implement
        ("http", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", RCODE.NOTIMP),
        ("header only", HDR, RCODE.FORMERR),
        ("zero questions", struct.pack("!HHHHHH", 1, 0x0100, 0, 0, 0, 0), RCODE.FORMERR),
        ("five questions", struct.pack("!HHHHHH", 1, 0x0100, 5, 0, 0, 0)
         + b"\x02c1\x00\x00\x01\x00\x01" * 5, RCODE.FORMERR),
        ("compression loop", HDR + b"\xc0\x0c\x00\x01\x00\x01", RCODE.FORMERR),
        ("forward pointer", HDR + b"\xc0\x20\x00\x01\x00\x01", RCODE.FORMERR),
        ("label overruns packet", HDR + b"\x3fabc", RCODE.FORMERR),
        ("huge label", HDR + b"\x40" + b"a" * 64 + b"\x00\x00\x01\x00\x01", RCODE.FORMERR),
        ("name over 255", HDR + (b"\x3f" + b"a" * 63) * 4 + b"\x00\x00\x01\x00\x01", RCODE.FORMERR),
        ("missing type", HDR + b"\x02c1\x00\x00", RCODE.FORMERR),
        ("a response", struct.pack("!HHHHHH", 1, 0x8180, 1, 0, 0, 0) + b"\x02c1\x00\x00\x01\x00\x01", None),
        ("opcode status", struct.pack("!HHHHHH", 1, 0x1000, 1, 0, 0, 0) + b"\x02c1\x00\x00\x01\x00\x01",
         RCODE.NOTIMP),
        ("two OPT", struct.pack("!HHHHHH", 1, 0x0100, 1, 0, 0, 2) + b"\x02c1\x00\x00\x01\x00\x01"
         + b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x00" * 2, RCODE.FORMERR),
        ("binary label", HDR + b"\x03\x00\xff\x80\x00\x00\x01\x00\x01", "forward"),
        ("trailing garbage", query("c2") + b"junk", RCODE.NOERROR),
    ],
)
def test_crafted_packets(records: Records, name: str, data: bytes, expect: object) -> None:
    reply = check(Resolver(records), data)
    if expect is None:
        assert reply is None
    elif expect == "forward":
        assert isinstance(reply, Forward | bytes)
    else:
        assert rcode(reply) == expect


def test_pointer_chain_bomb_over_tcp(records: Records) -> None:
    """A name made of ~32000 chained backward pointers (a 64 KiB TCP message).

    The chain hides in the opaque rdata of an answer record; an additional record's
    name points at its end. A recursive decoder would recurse 32000 deep: FORMERR,
    not a hang or a crash.
    """
    msg = bytearray(struct.pack("!HHHHHH", 7, 0x0100, 1, 1, 0, 1) + b"\x01a\x00\x00\x01\x00\x01")
    rdata_at = len(msg) + 1 + 10  # after the answer's root name and fixed fields
    chain = bytearray(struct.pack("!H", 0xC000 | 12))  # first link points at the question name
    while rdata_at + len(chain) < 65000:
        chain += struct.pack("!H", 0xC000 | (rdata_at + len(chain) - 2))
    msg += b"\x00" + struct.pack("!HHIH", 999, 1, 0, len(chain)) + chain
    msg += struct.pack("!H", 0xC000 | (rdata_at + len(chain) - 2)) + struct.pack("!HHIH", 1, 1, 0, 4) + b"\x01\x02\x03\x04"
    assert rcode(check(Resolver(records), bytes(msg), tcp=True)) == RCODE.FORMERR


def test_known_answer_still_right_after_fuzz(records: Records) -> None:
    r = Resolver(records)
    for junk in (b"\xff" * 40, HDR + b"\xc0\x0c", b""):
        r.handle(junk, SRC, GW)
    reply = r.handle(query("c2"), SRC, GW)
    assert isinstance(reply, bytes) and DNSRecord.parse(reply).rr[0].rdata.__str__() == "10.89.1.3"
