"""Forwarding against fake upstream servers on loopback (ephemeral ports, no root)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

from dnsd_fixtures import query
from dnslib import QTYPE, RCODE, RR, A, DNSRecord

from dnsd import wire
from dnsd.forward import forward
from dnsd.resolver import Forward
from dnsd.upstreams import Upstream, parse_upstream

Behaviour = Callable[[bytes], "bytes | list[bytes] | None"]


def answer_a(ip: str, rcode: int = 0, many: int = 1, tc: bool = False) -> Callable[[bytes], bytes]:
    def reply(data: bytes) -> bytes:
        msg = DNSRecord.parse(data).reply()
        msg.header.rcode = rcode
        msg.header.tc = int(tc)
        if rcode == 0 and not tc:
            for _ in range(many):
                msg.add_answer(RR(msg.q.qname, QTYPE.A, rdata=A(ip), ttl=60))
        return bytes(msg.pack())
    return reply


class FakeUpstream:
    """UDP (and TCP) DNS server on 127.0.0.1 with a scripted behaviour."""

    def __init__(self, udp: Behaviour | None, tcp: Behaviour | None = None) -> None:
        self.udp_behaviour, self.tcp_behaviour = udp, tcp
        self.udp_queries = 0
        self.tcp_queries = 0

    async def start(self) -> Upstream:
        loop = asyncio.get_running_loop()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        port = self.sock.getsockname()[1]
        loop.add_reader(self.sock.fileno(), self._on_udp)
        self.tcp = None
        if self.tcp_behaviour is not None:
            self.tcp = await asyncio.start_server(self._on_tcp, "127.0.0.1", port)
        return parse_upstream("127.0.0.1", port)

    def _on_udp(self) -> None:
        data, addr = self.sock.recvfrom(65535)
        self.udp_queries += 1
        reply = self.udp_behaviour(data) if self.udp_behaviour else None
        for r in [reply] if isinstance(reply, bytes) else reply or []:
            self.sock.sendto(r, addr)

    async def _on_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        size = int.from_bytes(await reader.readexactly(2), "big")
        data = await reader.readexactly(size)
        self.tcp_queries += 1
        assert self.tcp_behaviour is not None
        reply = self.tcp_behaviour(data)
        if isinstance(reply, bytes):
            writer.write(len(reply).to_bytes(2, "big") + reply)
            await writer.drain()
        writer.close()

    def close(self) -> None:
        asyncio.get_running_loop().remove_reader(self.sock.fileno())
        self.sock.close()
        if self.tcp is not None:
            self.tcp.close()


def dead_port() -> Upstream:
    """A loopback port nobody listens on (ICMP port unreachable: immediate failure)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return parse_upstream("127.0.0.1", port)


def run(fakes: list[FakeUpstream | None], packet: bytes, *, tcp: bool = False,
        timeout: float = 0.3) -> tuple[DNSRecord, list[FakeUpstream | None]]:
    async def main() -> bytes:
        ups = [await f.start() if f is not None else dead_port() for f in fakes]
        try:
            q = wire.parse_query(packet)
            assert q is not None
            limit = wire.TCP_MAX if tcp else q.udp_size
            return await forward(Forward(packet, q, tuple(ups), limit, tcp), timeout=timeout)
        finally:
            for f in fakes:
                if f is not None:
                    f.close()
    reply = asyncio.run(main())
    msg = DNSRecord.parse(reply)
    assert msg.header.id == DNSRecord.parse(packet).header.id  # client's ID restored
    return msg, fakes


def test_answer_is_relayed() -> None:
    msg, _ = run([FakeUpstream(answer_a("192.0.2.1"))], query("example.com", qid=4242))
    assert msg.header.rcode == RCODE.NOERROR and str(msg.rr[0].rdata) == "192.0.2.1"


def test_nxdomain_is_passed_through_without_failover() -> None:
    second = FakeUpstream(answer_a("192.0.2.2"))
    msg, _ = run([FakeUpstream(answer_a("", rcode=RCODE.NXDOMAIN)), second], query("nx.example"))
    assert msg.header.rcode == RCODE.NXDOMAIN and second.udp_queries == 0


def test_servfail_refused_timeout_and_dead_fail_over() -> None:
    for first in (FakeUpstream(answer_a("", rcode=RCODE.SERVFAIL)),
                  FakeUpstream(answer_a("", rcode=RCODE.REFUSED)),
                  FakeUpstream(None),  # silent: time-out
                  None):  # nobody there: ICMP error
        msg, _ = run([first, FakeUpstream(answer_a("192.0.2.9"))], query("example.com"))
        assert msg.header.rcode == RCODE.NOERROR and str(msg.rr[0].rdata) == "192.0.2.9"


def test_all_failing_gives_servfail() -> None:
    msg, _ = run([FakeUpstream(None), None, FakeUpstream(answer_a("", rcode=RCODE.REFUSED))],
                 query("example.com", edns=1232))
    assert msg.header.rcode == RCODE.SERVFAIL and len(msg.ar) == 1  # OPT kept for the client


def test_spoofed_reply_is_ignored() -> None:
    def spoof_then_answer(data: bytes) -> list[bytes]:
        wrong_id = bytes([data[0] ^ 0xFF, data[1]]) + data[2:]
        return [answer_a("192.0.2.66")(wrong_id), answer_a("192.0.2.7")(data)]
    msg, _ = run([FakeUpstream(spoof_then_answer)], query("example.com"))
    assert [str(rr.rdata) for rr in msg.rr] == ["192.0.2.7"]

    def other_question(data: bytes) -> bytes:
        reply = DNSRecord.parse(answer_a("192.0.2.66")(data))
        reply.q.qname = "evil.example"
        return bytes(reply.pack())
    msg, _ = run([FakeUpstream(other_question), FakeUpstream(answer_a("192.0.2.8"))], query("example.com"))
    assert str(msg.rr[0].rdata) == "192.0.2.8"


def test_truncated_reply_retried_over_tcp_for_tcp_clients() -> None:
    fake = FakeUpstream(answer_a("", tc=True), tcp=answer_a("192.0.2.3", many=60))
    msg, _ = run([fake], query("big.example"), tcp=True)
    assert msg.header.tc == 0 and len(msg.rr) == 60 and fake.tcp_queries == 1


def test_truncated_reply_passed_to_udp_clients() -> None:
    fake = FakeUpstream(answer_a("", tc=True), tcp=answer_a("192.0.2.3", many=60))
    msg, _ = run([fake], query("big.example"))
    assert msg.header.tc == 1 and fake.tcp_queries == 0


def test_oversized_reply_is_truncated_to_the_client_limit() -> None:
    # an upstream that ignores the client's 512-byte limit
    msg, _ = run([FakeUpstream(answer_a("192.0.2.4", many=60))], query("big.example"))
    assert msg.header.tc == 1 and msg.rr == [] and str(msg.q.qname) == "big.example."
    msg, _ = run([FakeUpstream(answer_a("192.0.2.4", many=60))], query("big.example", edns=4096))
    assert msg.header.tc == 0 and len(msg.rr) == 60
