"""Forwarding to upstream servers, with fail-over, on the asyncio loop.

Each forwarded query gets its own socket (a fresh ephemeral port) and a random ID, so
a spoofed reply must guess both; replies are also checked against the question. One
upstream at a time, in order: SERVFAIL, REFUSED, a time-out or a socket error moves on
to the next; any other answer (NXDOMAIN included) goes back to the client as it is. The
per-server time-out (1 s by default, at most 3 servers) keeps the worst case well under
a client's 5 s (aardvark-dns#482: with 5 s per server, clients gave up before the
fail-over). A reply with TC set is retried over TCP when the client itself asked over
TCP; a UDP client gets the TC reply and retries over TCP itself.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket

from dnsd import wire
from dnsd.resolver import Forward
from dnsd.upstreams import Upstream

log = logging.getLogger(__name__)

#: per-server time-out in seconds
DEFAULT_TIMEOUT = 1.0
_FAILOVER_RCODES = (wire.SERVFAIL, wire.REFUSED)


class BadReply(Exception):
    """An upstream's reply that is not an answer to our question (ignored)."""


async def forward(fwd: Forward, *, timeout: float = DEFAULT_TIMEOUT) -> bytes:
    """The reply to relay to the client for ``fwd``: upstream answer or SERVFAIL.

    The client's ID is restored and the reply is truncated (TC) if it exceeds the
    client's limit. Never raises (cancellation aside).
    """
    query, q = fwd.query, fwd.q
    question = query[wire.HEADER_LEN : q.qend].lower()
    for up in fwd.upstreams:
        msg = os.urandom(2) + query[2:]
        try:
            reply = await exchange_udp(msg, up, timeout, question)
            if reply[2] & 0x02 and fwd.tcp:
                reply = await exchange_tcp(msg, up, timeout, question)
        except TimeoutError:
            log.info("upstream %s timed out for %s", up, wire.decode_name(question[:-4]))
            continue
        except (OSError, BadReply, asyncio.IncompleteReadError) as exc:
            log.info("upstream %s failed: %s", up, exc)
            continue
        if wire.rcode_of(reply) in _FAILOVER_RCODES:
            log.info("upstream %s answered rcode %d, trying next", up, wire.rcode_of(reply))
            continue
        reply = query[:2] + reply[2:]
        if len(reply) > fwd.limit:
            reply = wire.truncate_reply(reply, query, q)
        return reply
    return wire.build_error(query, q, wire.SERVFAIL)


def _check(reply: bytes, msg: bytes, question: bytes) -> bool:
    """True if ``reply`` answers ``msg``: same ID, QR set, same question (any case)."""
    if len(reply) < wire.HEADER_LEN or reply[:2] != msg[:2] or not reply[2] & 0x80:
        return False
    qdcount = reply[4:6]
    if qdcount == b"\x00\x00":  # some servers drop the question from error replies
        return wire.rcode_of(reply) != wire.NOERROR
    return qdcount == b"\x00\x01" and reply[12 : 12 + len(question)].lower() == question


async def exchange_udp(msg: bytes, up: Upstream, timeout: float, question: bytes) -> bytes:
    """Send ``msg`` to ``up`` over UDP and wait for a matching reply.

    Raises:
        TimeoutError: no matching reply within ``timeout``.
        OSError: the socket failed (e.g. ICMP port unreachable, no route).
    """
    loop = asyncio.get_running_loop()
    sock = socket.socket(up.family, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        # connect() makes the kernel drop datagrams from other sources and report ICMP
        # errors (a dead server fails over at once instead of after the time-out)
        sock.connect(up.sockaddr)
        sock.send(msg)
        async with asyncio.timeout(timeout):
            while True:
                reply = await loop.sock_recv(sock, 65535)
                if _check(reply, msg, question):
                    return reply
                log.debug("upstream %s: ignoring a mismatched reply", up)
    finally:
        sock.close()


async def exchange_tcp(msg: bytes, up: Upstream, timeout: float, question: bytes) -> bytes:
    """Send ``msg`` to ``up`` over TCP (RFC 7766 length prefix) and read the reply.

    Raises:
        TimeoutError: connect + exchange took longer than ``timeout``.
        OSError, asyncio.IncompleteReadError: the connection failed.
        BadReply: the reply does not match the question.
    """
    loop = asyncio.get_running_loop()
    sock = socket.socket(up.family, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        async with asyncio.timeout(timeout):
            await loop.sock_connect(sock, up.sockaddr)
            await loop.sock_sendall(sock, len(msg).to_bytes(2, "big") + msg)
            size = int.from_bytes(await recv_exactly(loop, sock, 2), "big")
            reply = await recv_exactly(loop, sock, size)
    finally:
        sock.close()
    if not _check(reply, msg, question):
        raise BadReply("reply over TCP does not match the query")
    return reply


async def recv_exactly(loop: asyncio.AbstractEventLoop, sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = await loop.sock_recv(sock, n - len(buf))
        if not chunk:
            raise asyncio.IncompleteReadError(bytes(buf), n)
        buf += chunk
    return bytes(buf)
