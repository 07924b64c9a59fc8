"""DNS wire format: the hand-rolled fast path for the common query, and response builders.

The common query (one question, no answer/authority records, at most one OPT record,
uncompressed name) is parsed here straight from the bytes with bounds checks and
answered by concatenating bytes: header, the question copied verbatim (so the asker's
0x20 letter case is echoed), answer records whose owner is a compression pointer to the
question name (0xC00C), and an OPT record when the query had one. Everything else is
left to ``dnsd.slowpath`` (dnslib). Pure functions, no I/O.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

HEADER_LEN = 12

# rrtypes and classes used locally (RFC 1035, 3596, 6891)
T_A = 1
T_PTR = 12
T_AAAA = 28
T_OPT = 41
T_ANY = 255
C_IN = 1

# rcodes
NOERROR = 0
FORMERR = 1
SERVFAIL = 2
NXDOMAIN = 3
NOTIMP = 4
REFUSED = 5
BADVERS = 16  # extended rcode, carried in OPT (RFC 6891 6.1.3)

#: TTL of local answers. 0, as aardvark-dns since PR #511 (aardvark-dns#429: clients cached
#: the address of a restarted container): our answers change within 100 ms of a config
#: change, and any TTL > 0 lets a client cache defeat that. Answers come from a local
#: server over a bridge in microseconds, so caching buys almost nothing.
LOCAL_TTL = 0

#: UDP payload size we advertise in our OPT record (the DNS flag day 2020 value).
OUR_UDP_SIZE = 1232
#: Largest DNS message over TCP (two-byte length prefix).
TCP_MAX = 65535
#: Classic UDP limit when the query has no OPT record (RFC 1035 4.2.1).
UDP_MIN = 512

# header byte 2: QR | opcode(4) | AA | TC | RD ; byte 3: RA | Z | AD | CD | rcode(4)
_QR, _AA, _TC, _RD = 0x80, 0x04, 0x02, 0x01
_RA, _CD = 0x80, 0x10

_TTL = struct.pack("!I", LOCAL_TTL)
# owner = pointer to offset 12 (the question name), then type, class, TTL, rdlength
_RR_A = b"\xc0\x0c\x00\x01\x00\x01" + _TTL + b"\x00\x04"
_RR_AAAA = b"\xc0\x0c\x00\x1c\x00\x01" + _TTL + b"\x00\x10"
_RR_PTR = b"\xc0\x0c\x00\x0c\x00\x01" + _TTL
_OPT_PLAIN = b"\x00\x00\x29" + struct.pack("!H", OUR_UDP_SIZE) + b"\x00\x00\x00\x00\x00\x00"
_OPT_DO = b"\x00\x00\x29" + struct.pack("!H", OUR_UDP_SIZE) + b"\x00\x00\x80\x00\x00\x00"
_COUNTS = [struct.pack("!H", n) for n in range(256)]


class Query(NamedTuple):
    """The parts of a common query that the resolver needs (offsets into the packet)."""

    #: end of the question name (exclusive); the name is ``data[12:qname_end]``
    qname_end: int
    #: end of the question section (exclusive)
    qend: int
    qtype: int
    qclass: int
    #: largest UDP answer the client accepts (512 without OPT)
    udp_size: int
    #: our OPT record for the answer (b"" when the query had none); echoes the DO bit
    opt: bytes


def parse_query(data: bytes) -> Query | None:
    """Parse a common query; None means "not the common shape, use the slow path".

    Never raises on any input. Accepts: QR=0, opcode QUERY, TC=0, QDCOUNT=1,
    ANCOUNT=NSCOUNT=0, ARCOUNT 0 or 1 (an OPT with root owner and EDNS version 0,
    options skipped), an uncompressed question name of at most 255 bytes, and no
    trailing bytes.
    """
    n = len(data)
    if n < 17:  # header + root name + type + class
        return None
    # QR, opcode and TC must be zero; AA/RD are ignored in a query
    if data[2] & 0xFA or data[4] or data[5] != 1 or data[6] or data[7] or data[8] or data[9]:
        return None
    if data[10]:
        return None
    arcount = data[11]
    if arcount > 1:
        return None
    i = HEADER_LEN
    while True:
        length = data[i]
        if length == 0:
            break
        if length > 63:  # a compression pointer (0xC0) or a reserved label type
            return None
        i += length + 1
        if i >= n:
            return None
    qname_end = i + 1
    if qname_end - HEADER_LEN > 255:
        return None
    qend = qname_end + 4
    if qend > n:
        return None
    qtype = (data[qname_end] << 8) | data[qname_end + 1]
    qclass = (data[qname_end + 2] << 8) | data[qname_end + 3]
    if arcount == 0:
        if qend != n:
            return None
        return Query(qname_end, qend, qtype, qclass, UDP_MIN, b"")
    # OPT pseudo-RR: name 0, type 41, class = UDP size, TTL = ext-rcode, version, flags
    if n < qend + 11 or data[qend] or data[qend + 1] or data[qend + 2] != T_OPT:
        return None
    if data[qend + 6]:  # EDNS version > 0 needs BADVERS: slow path
        return None
    rdlen = (data[qend + 9] << 8) | data[qend + 10]
    if qend + 11 + rdlen != n:
        return None
    udp_size = max(UDP_MIN, (data[qend + 3] << 8) | data[qend + 4])
    opt = _OPT_DO if data[qend + 7] & 0x80 else _OPT_PLAIN
    return Query(qname_end, qend, qtype, qclass, udp_size, opt)


def rr_bytes(rtype: int, rdata: bytes) -> bytes:
    """One answer record owned by the question name (pointer 0xC00C), TTL LOCAL_TTL."""
    if rtype == T_A:
        return _RR_A + rdata
    if rtype == T_AAAA:
        return _RR_AAAA + rdata
    return b"\xc0\x0c" + struct.pack("!HH", rtype, C_IN) + _TTL + struct.pack("!H", len(rdata)) + rdata


def build_answer(
    data: bytes,
    q: Query,
    rcode: int,
    rrs: list[bytes] | tuple[bytes, ...],
    authoritative: bool,
    limit: int,
) -> bytes:
    """A response to ``data`` with the question copied and ``rrs`` (wire RRs) as answers.

    If the message would exceed ``limit`` bytes, the answers are dropped and TC is set
    (RFC 2181 9: the client must retry over TCP; a partial RRset is never sent).
    """
    flags2 = _QR | (data[2] & _RD) | (_AA if authoritative else 0)
    flags3 = _RA | (data[3] & _CD) | (rcode & 0x0F)
    body = b"".join(rrs)
    count = len(rrs)
    if q.qend + len(body) + len(q.opt) > limit:
        body = b""
        count = 0
        flags2 |= _TC
    return b"".join(
        (
            data[:2],
            bytes((flags2, flags3)),
            b"\x00\x01",
            _COUNTS[count] if count < 256 else struct.pack("!H", count),
            b"\x00\x00",
            b"\x00\x01" if q.opt else b"\x00\x00",
            data[HEADER_LEN : q.qend],
            body,
            q.opt,
        )
    )


#: response flag bytes of a local authoritative NOERROR answer, indexed by the query's
#: ``(byte2 & RD) | (byte3 & CD)``: QR AA RD? / RA CD?
AA_FLAGS = [bytes((_QR | _AA | (i & _RD), _RA | (i & _CD))) for i in range(_CD + 2)]


def build_error(data: bytes, q: Query | None, rcode: int) -> bytes:
    """An error response (FORMERR, SERVFAIL, REFUSED, ...), question echoed when parsed.

    ``data`` must be at least 12 bytes (the caller drops anything shorter).
    """
    flags2 = _QR | (data[2] & (_RD | 0x78))  # echo opcode too (RFC 1035 4.1.1)
    flags3 = _RA | (data[3] & _CD) | (rcode & 0x0F)
    if q is None:
        return data[:2] + bytes((flags2, flags3)) + b"\x00" * 8
    return b"".join(
        (
            data[:2],
            bytes((flags2, flags3)),
            b"\x00\x01\x00\x00\x00\x00",
            b"\x00\x01" if q.opt else b"\x00\x00",
            data[HEADER_LEN : q.qend],
            q.opt,
        )
    )


def truncate_reply(reply: bytes, query: bytes, q: Query) -> bytes:
    """Shrink a forwarded ``reply`` that is too large for the client's UDP limit.

    Keeps the reply's header flags and rcode, sets TC, keeps only the question (and
    our OPT when the client sent one), so the client retries over TCP.
    """
    flags2 = reply[2] | _TC
    return b"".join(
        (
            query[:2],
            bytes((flags2, reply[3])),
            b"\x00\x01\x00\x00\x00\x00",
            b"\x00\x01" if q.opt else b"\x00\x00",
            query[HEADER_LEN : q.qend],
            q.opt,
        )
    )


def rcode_of(message: bytes) -> int:
    """The header rcode of a message of at least 4 bytes."""
    return message[3] & 0x0F


def encode_name(name: str) -> bytes | None:
    """Lower-cased wire form of a domain name (``b"\\x03web\\x00"``); None if invalid.

    Invalid: an empty label (``a..b``), a label over 63 bytes, a name over 255 bytes.
    A trailing dot is accepted; the empty name or "." encodes the root.
    """
    name = name.strip().rstrip(".").lower()
    if not name:
        return b"\x00"
    out = bytearray()
    for label in name.split("."):
        raw = label.encode("utf-8", "surrogateescape")
        if not raw or len(raw) > 63:
            return None
        out.append(len(raw))
        out += raw
    out.append(0)
    if len(out) > 255:
        return None
    return bytes(out)


def decode_name(wire: bytes) -> str:
    """Text form of an uncompressed wire name, for logs and tests (``web.net1.``)."""
    labels = []
    i = 0
    while i < len(wire) and wire[i]:
        n = wire[i]
        labels.append(wire[i + 1 : i + 1 + n].decode("utf-8", "backslashreplace"))
        i += n + 1
    return ".".join(labels) + "."


def label_splits(key: bytes) -> list[tuple[bytes, bytes]]:
    """All ``(prefix, suffix)`` splits of a wire name at label boundaries.

    For ``\\x03web\\x04net1\\x00`` this is ``[(b"\\x03web\\x00", b"\\x04net1\\x00")]``:
    the prefix is re-terminated, the suffix is itself a wire name. Used for the
    ``name.<network>`` form (docker resolves it too).
    """
    out = []
    i = key[0] + 1 if key else 0
    while i < len(key) - 1:
        out.append((key[:i] + b"\x00", key[i:]))
        i += key[i] + 1
    return out
