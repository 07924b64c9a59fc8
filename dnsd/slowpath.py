"""The slow path: queries the wire fast path declines, parsed and built with dnslib.

Reached for malformed packets (FORMERR or drop), other opcodes (NOTIMP), EDNS versions
above 0 (BADVERS), compressed question names, extra records, and 0 or several
questions. It shares ``Resolver.decide`` with the fast path, so answers are the same;
the unit tests also force common queries through here to check the fast path's bytes
against dnslib's.

dnsd imports it at start-up (dnslib ~30 ms, once per dnsd process, not per query).
"""

from __future__ import annotations

import ipaddress
import logging

from dnslib import AAAA, EDNS0, PTR, QTYPE, RR, A, DNSHeader, DNSLabel, DNSRecord

from dnsd import wire
from dnsd.verdict import FORWARD, Decider, Forward, Reply

log = logging.getLogger(__name__)

_OPCODE_QUERY = 0


def handle(resolver: Decider, data: bytes, src: str, listener: str, tcp: bool) -> Reply:
    """Answer any message the fast path did not take; never raises."""
    try:
        return _handle(resolver, data, src, listener, tcp)
    except Exception:  # a bug here must cost one answer, not the server
        log.exception("slow path failed on %d-byte packet from %s", len(data), src)
        return wire.build_error(data, None, wire.SERVFAIL) if _is_query(data) else None


def _is_query(data: bytes) -> bool:
    return len(data) >= wire.HEADER_LEN and not data[2] & 0x80


def _handle(resolver: Decider, data: bytes, src: str, listener: str, tcp: bool) -> Reply:
    if not _is_query(data):
        return None  # shorter than a header, or a response: never answer those (no loops)
    if (data[2] >> 3) & 0x0F != _OPCODE_QUERY:
        return wire.build_error(data, None, wire.NOTIMP)
    try:
        msg = DNSRecord.parse(data)
    except Exception:  # dnslib raises DNSError, BufferError, RecursionError...: all FORMERR
        return wire.build_error(data, None, wire.FORMERR)
    if len(msg.questions) != 1:
        return wire.build_error(data, None, wire.FORMERR)
    question = msg.questions[0]
    key = _wire_key(question.qname)
    if key is None:  # dnslib accepts 64-byte labels and long names; DNS does not
        return wire.build_error(data, None, wire.FORMERR)
    opts = [r for r in msg.ar if r.rtype == QTYPE.OPT]
    if len(opts) > 1:  # RFC 6891 6.1.1
        return wire.build_error(data, None, wire.FORMERR)
    opt = opts[0] if opts else None
    do_bit = bool(opt is not None and opt.ttl & 0x8000)
    udp_size = max(wire.UDP_MIN, opt.rclass) if opt is not None else wire.UDP_MIN
    limit = wire.TCP_MAX if tcp else udp_size
    reply = DNSRecord(
        DNSHeader(id=msg.header.id, qr=1, ra=1, rd=msg.header.rd, cd=msg.header.cd),
        q=question,
    )
    if opt is not None:
        # RFC 6891 6.1.3: we speak EDNS version 0 only; anything else gets BADVERS,
        # whose upper rcode bits travel in our OPT record
        bad_version = (opt.ttl >> 16) & 0xFF != 0
        ext_rcode = wire.BADVERS >> 4 if bad_version else 0
        reply.add_ar(
            EDNS0(udp_len=wire.OUR_UDP_SIZE, flags="do" if do_bit else "", ext_rcode=ext_rcode)
        )
        if bad_version:
            return bytes(reply.pack())
    records = resolver.records
    scope = records.scope(src, listener)
    if scope is None:
        reply.header.rcode = wire.REFUSED
        return bytes(reply.pack())
    verdict, answers, authoritative = resolver.decide(scope, key, question.qtype, question.qclass)
    if verdict == FORWARD:
        ups = resolver.upstreams_for(records, scope)
        if not ups:
            reply.header.rcode = wire.SERVFAIL
            return bytes(reply.pack())
        # forward a clean re-encoding: one question, the client's EDNS size and DO bit
        clean = DNSRecord(
            DNSHeader(id=msg.header.id, rd=msg.header.rd, cd=msg.header.cd), q=question
        )
        if opt is not None:
            clean.add_ar(EDNS0(udp_len=udp_size, flags="do" if do_bit else ""))
        packed = bytes(clean.pack())
        q = wire.parse_query(packed)
        if q is None:  # cannot happen for a dnslib-encoded single question; be safe
            reply.header.rcode = wire.SERVFAIL
            return bytes(reply.pack())
        return Forward(packed, q, ups, limit, tcp)
    reply.header.rcode = verdict
    reply.header.aa = int(authoritative)
    for rr in answers:
        # our answer RRs are wire bytes: type at [2:4], rdata from [12:]
        rtype = int.from_bytes(rr[2:4], "big")
        reply.add_answer(
            RR(rname=question.qname, rtype=rtype, rclass=1, ttl=wire.LOCAL_TTL, rdata=_rdata(rtype, rr[12:]))
        )
    packed = bytes(reply.pack())
    if len(packed) > limit:
        reply.rr = []
        reply.header.tc = 1
        packed = bytes(reply.pack())
    return packed


def _wire_key(qname: DNSLabel) -> bytes | None:
    """Lower-cased wire form of a parsed name; None if a label exceeds 63 bytes or the
    name 255 (RFC 1035 2.3.4)."""
    if any(len(label) > 63 for label in qname.label):
        return None
    out = b"".join(bytes((len(label),)) + label for label in qname.label) + b"\x00"
    return out.lower() if len(out) <= 255 else None


def _rdata(rtype: int, rdata: bytes) -> A | AAAA | PTR:
    if rtype == wire.T_A:
        return A(str(ipaddress.IPv4Address(rdata)))
    if rtype == wire.T_AAAA:
        return AAAA(str(ipaddress.IPv6Address(rdata)))
    return PTR(wire.decode_name(rdata))

