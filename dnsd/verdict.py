"""What the resolver decides for one query, shared by the fast path (dnsd.resolver) and the
slow path (dnsd.slowpath) without either importing the other."""

from __future__ import annotations

from typing import NamedTuple, Protocol

from dnsd import wire
from dnsd.records import Records, Scope
from dnsd.upstreams import Upstream

#: ``decide`` verdict meaning "not ours: forward it" (real rcodes are 0..15)
FORWARD = -1


class Forward(NamedTuple):
    """Instruction to the server: send ``query`` to ``upstreams`` and relay the reply."""

    query: bytes
    q: wire.Query
    upstreams: tuple[Upstream, ...]
    #: largest reply the client accepts (its UDP size, or 65535 over TCP)
    limit: int
    #: the client asked over TCP (a truncated upstream reply is then retried over TCP)
    tcp: bool


Reply = bytes | Forward | None


class Decider(Protocol):
    """What the slow path needs of the resolver."""

    records: Records

    def decide(self, scope: Scope, key: bytes, qtype: int,
               qclass: int) -> tuple[int, tuple[bytes, ...], bool]: ...

    def upstreams_for(self, records: Records, scope: Scope) -> tuple[Upstream, ...]: ...
