"""Which rule or policy decided a traced packet (pure): doctor's reading of the kernel's
trace (``netplugins.firewall.trace``), with nftables' semantics and nothing else.

A drop (rule or policy) is final; an accept ends one base chain only, and the next base
chain or hook may still drop. Jumps and gotos are followed to name the chain a rule sits
in as the path from its base chain.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from netplugins.firewall.trace import OWN_PREFIX, TracedPacket, TraceEvent, TraceResult

#: a NAT statement (not a match such as ``ct status dnat``)
_NAT = re.compile(r"\b(?:dnat|snat)(?: ip6?)? to\b|\bmasquerade\b")


@dataclass(frozen=True)
class Fate:
    """What the firewall did with one packet."""

    #: "drop" or "accept" (nothing dropped it)
    verdict: str
    #: the rule or policy that dropped it; None when accepted
    decisive: TraceEvent | None = None
    #: chains from the base chain to the decisive one (jumps and gotos)
    path: tuple[str, ...] = ()
    #: every accept (rule or policy) on the way, described
    accepts: tuple[str, ...] = ()
    #: NAT rules that matched (dnat, snat, masquerade), described
    nats: tuple[str, ...] = ()
    #: the first rule that accepted it (else the last policy that did), described
    accepted_by: str = ""


def fate(packet: TracedPacket) -> Fate:
    """Follow ``packet``'s events to the rule or policy that decided it."""
    stack: list[str] = []
    table: tuple[str, str] | None = None
    jumped: str | None = None
    accepts: list[str] = []
    nats: list[str] = []
    first_rule = ""
    for ev in packet.events:
        if ev.table.startswith(OWN_PREFIX):
            continue
        if (ev.family, ev.table) != table:
            table, stack = (ev.family, ev.table), []
        if jumped == ev.chain:
            stack.append(ev.chain)
        elif ev.chain in stack:
            del stack[stack.index(ev.chain) + 1:]
        else:
            stack = [ev.chain]
        jumped = ev.verdict.split()[1] if ev.action in ("jump", "goto") and " " in ev.verdict else None
        path = tuple(stack)
        if ev.kind in ("rule", "policy") and ev.action in ("drop", "reject"):
            return Fate("drop", ev, path, tuple(accepts), tuple(nats))
        if ev.kind == "rule" and _NAT.search(ev.text):
            nats.append(ev.describe(path))
        elif ev.kind in ("rule", "policy") and ev.action == "accept":
            accepts.append(ev.describe(path))
            if ev.kind == "rule" and not first_rule:
                first_rule = accepts[-1]
    return Fate("accept", None, (), tuple(dict.fromkeys(accepts)), tuple(dict.fromkeys(nats)),
                first_rule or (accepts[-1] if accepts else ""))


def dropped(result: TraceResult) -> tuple[TracedPacket, Fate] | None:
    """The first direction something dropped, with its fate."""
    for p in result.journeys():
        f = fate(p)
        if f.verdict == "drop":
            return p, f
    return None
