"""What to answer: local names, local NXDOMAIN, REFUSED, or "forward upstream".

``Resolver.handle`` is the per-packet entry point of the server. It runs the wire fast
path (``dnsd.wire``) for the common query and hands anything else to ``dnsd.slowpath``
(dnslib). Both share ``decide``, so they give the same answers; only the encoding
differs. Pure apart from reading the current snapshot and the resolv.conf cache: no
sockets here (forwarding is ``dnsd.forward``).
"""

from __future__ import annotations

from dnsd import slowpath, wire
from dnsd.records import EMPTY, Records, Scope, find_name, find_reverse, in_local_reverse_zone
from dnsd.upstreams import MAX_UPSTREAMS, ResolvConf, Upstream
from dnsd.verdict import FORWARD, Forward, Reply

__all__ = ["FORWARD", "Forward", "Reply", "Resolver"]

_ARPA_V4 = b"\x07in-addr\x04arpa\x00"
_ONE_QUESTION = b"\x00\x01\x00\x00\x00\x00\x00\x00"  # QD=1, AN=NS=AR=0
_A_IN = b"\x00\x01\x00\x01"
_AAAA_IN = b"\x00\x1c\x00\x01"
_COUNTS = [n.to_bytes(2, "big") for n in range(32)]
_ARPA_V6 = b"\x03ip6\x04arpa\x00"


class Resolver:
    """Answers queries from the current ``Records`` snapshot.

    The server replaces ``records`` whole on reload; every query reads the attribute
    exactly once, so it is answered from one consistent snapshot.
    """

    def __init__(self, records: Records = EMPTY, resolv_conf: ResolvConf | None = None) -> None:
        self.records = records
        self.resolv_conf = resolv_conf
        #: advances once per multi-address answer; see ``_rotate``
        self.rotation = 0

    def handle(self, data: bytes, src: str, listener: str, tcp: bool = False) -> Reply:
        """Answer one DNS message from ``src`` received on ``listener``.

        Returns the reply bytes, a ``Forward`` instruction, or None to drop the packet
        (not DNS, a response, shorter than a header). Never raises for any input.
        """
        # Hot path, inlined because it is most of the traffic and every call and tuple
        # counts in Python: a plain query (no OPT) for A/AAAA from a known container on
        # one network, for a name on that network. Anything else falls through to the
        # general code below, which gives the same answer (tests hold the two together).
        n = len(data)
        if n > 16 and data[4:12] == _ONE_QUESTION and not data[2] & 0xFA:
            end = n - 5  # where the root label must be
            i = 12
            while i < end:
                length = data[i]
                if length == 0 or length > 63:
                    break
                i += length + 1
            qtail = data[n - 4 :]
            if i == end and not data[i] and (qtail == _A_IN or qtail == _AAAA_IN) and i < 267:
                scope = self.records.by_requester.get(src)
                if scope is not None and len(scope.networks) == 1:
                    hit = scope.networks[0].names.get(data[12 : n - 4].lower())
                    if hit is not None:
                        rrs = hit[0] if qtail == _A_IN else hit[1]
                        count = len(rrs)
                        if count < 32:  # _COUNTS size; the length check below decides TC
                            if count > 1:
                                rrs = self._rotate(rrs)
                            reply = b"".join(
                                (
                                    data[:2],
                                    wire.AA_FLAGS[(data[2] & 0x01) | (data[3] & 0x10)],
                                    b"\x00\x01",
                                    _COUNTS[count],
                                    b"\x00\x00\x00\x00",
                                    data[12:],
                                    *rrs,
                                )
                            )
                            if len(reply) <= wire.UDP_MIN or tcp:
                                return reply
        return self._handle(data, src, listener, tcp)

    def _handle(self, data: bytes, src: str, listener: str, tcp: bool) -> Reply:
        """The general path: any query the fast parser accepts, else the dnslib slow path."""
        q = wire.parse_query(data)
        if q is None:
            return slowpath.handle(self, data, src, listener, tcp)
        records = self.records
        scope = records.scope(src, listener)
        if scope is None:
            return wire.build_error(data, q, wire.REFUSED)
        verdict, rrs, authoritative = self.decide(
            scope, data[wire.HEADER_LEN : q.qname_end].lower(), q.qtype, q.qclass
        )
        limit = wire.TCP_MAX if tcp else q.udp_size
        if verdict == FORWARD:
            ups = self.upstreams_for(records, scope)
            if not ups:
                return wire.build_error(data, q, wire.SERVFAIL)
            return Forward(data, q, ups, limit, tcp)
        return wire.build_answer(data, q, verdict, rrs, authoritative, limit)

    def decide(
        self, scope: Scope, key: bytes, qtype: int, qclass: int
    ) -> tuple[int, tuple[bytes, ...], bool]:
        """``(rcode or FORWARD, answer RRs, authoritative)`` for a lower-cased wire name.

        Known name: its addresses of the asked family, or an empty NOERROR for a family
        (or any other type) it lacks: never forwarded, never NXDOMAIN (moby#20335).
        """
        if qclass != wire.C_IN and qclass != wire.T_ANY:
            return wire.REFUSED, (), False
        addrs = find_name(scope, key)
        if addrs is not None:
            if qtype == wire.T_A:
                return wire.NOERROR, self._rotate(addrs[0]), True
            if qtype == wire.T_AAAA:
                return wire.NOERROR, self._rotate(addrs[1]), True
            if qtype == wire.T_ANY:
                return wire.NOERROR, self._rotate(addrs[0]) + self._rotate(addrs[1]), True
            return wire.NOERROR, (), True
        if qtype == wire.T_PTR and (key.endswith(_ARPA_V4) or key.endswith(_ARPA_V6)):
            targets = find_reverse(scope, key)
            if targets:
                return wire.NOERROR, targets, True
            if in_local_reverse_zone(scope, key):
                return wire.NXDOMAIN, (), True
        if not scope.forward:
            # only internal networks: no way out. NXDOMAIN (as aardvark-dns) rather than
            # REFUSED: the client fails fast with "unknown host" instead of retrying
            # other servers and reporting a temporary failure. No SOA is added, so no
            # resolver caches this negative answer.
            return wire.NXDOMAIN, (), False
        return FORWARD, (), False

    def _rotate(self, addrs: tuple[bytes, ...]) -> tuple[bytes, ...]:
        """Round robin: each multi-address answer starts one further along the list."""
        n = len(addrs)
        if n < 2:
            return addrs
        self.rotation += 1
        k = self.rotation % n
        return addrs[k:] + addrs[:k]

    def upstreams_for(self, records: Records, scope: Scope) -> tuple[Upstream, ...]:
        """Servers to try, in order: container's, else its networks', else the host's.

        Our own listen addresses are removed (a host resolv.conf pointing at a gateway
        would make dnsd ask itself forever), and at most MAX_UPSTREAMS are kept.
        """
        ups: tuple[Upstream, ...] | list[Upstream] = scope.upstreams
        if not ups and self.resolv_conf is not None:
            ups = self.resolv_conf.servers
        listen = records.listen_ips
        return tuple(u for u in ups if u.ip not in listen)[:MAX_UPSTREAMS]
