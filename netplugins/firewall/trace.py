"""The kernel's own record of what the firewall did with some packets: nftables tracing,
pure part (``netctl doctor`` traces its probe with it).

Nothing here evaluates rules. A temporary table whose chains, hooked before every other
chain (priority -350, before raw and conntrack), set ``meta nftrace set 1`` on the
matching packets only (addresses, protocol and ports, both directions) makes the kernel
report every rule and policy those packets meet, in every table (ours, Docker's,
firewalld's, iptables-nft's, an admin's). ``tracer`` adds and removes the table and reads
the reports; this module renders the table and reads ``nft -a monitor`` text into
packets and their events. It lives with the firewall drivers because it is one more
conversation with nft (``nftcli``), and the firewall package is where netctl talks to it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

#: our temporary tables are called ``netctl_doctor_<hex>``; their own events are skipped
OWN_PREFIX = "netctl_doctor_"
#: before raw (-300) and conntrack (-200): every other chain sees the flag
PRIORITY = -350

EventKind = Literal["rule", "verdict", "policy"]
_LINE = re.compile(r"^trace id (\S+) (\S+) (\S+) (\S+) (.*)$")
_RULE = re.compile(r"^(?:unknown )?rule (.*?)\s*\(verdict ([^)]*)\)\s*$")
_HANDLE = re.compile(r"\s*# handle (\d+)\s*$")
_UNKNOWN = re.compile(r"^handle (\d+)$")
_COUNTER = re.compile(r"counter packets \d+ bytes \d+")


@dataclass(frozen=True)
class TraceSpec:
    """The probe's packets, as the trace rules match them."""

    #: 4 or 6
    family: int
    saddr: str
    daddr: str
    #: "icmp", "tcp" or "udp"
    proto: str
    dport: int | None = None
    #: a published port: where DNAT sends it (replies come from there)
    final: str | None = None
    final_port: int | None = None


def _l4(spec: TraceSpec, port: int | None, direction: str) -> str:
    if spec.proto == "icmp":
        return f"meta l4proto {'icmp' if spec.family == 4 else 'ipv6-icmp'}"
    if port is None:
        return f"meta l4proto {spec.proto}"
    return f"{spec.proto} {direction} {port}"


def trace_rules(spec: TraceSpec) -> list[str]:
    """The matches of the probe's packets: out, back (from the address or, after DNAT,
    from the container), and ICMP errors sent to the source."""
    ip = "ip" if spec.family == 4 else "ip6"
    rules = [f"{ip} saddr {spec.saddr} {ip} daddr {spec.daddr} {_l4(spec, spec.dport, 'dport')}"]
    ends = [(spec.daddr, spec.dport)]
    if spec.final is not None and (spec.final, spec.final_port) not in ends:
        ends.append((spec.final, spec.final_port))
    for addr, port in ends:
        rules.append(f"{ip} saddr {addr} {ip} daddr {spec.saddr} {_l4(spec, port, 'sport')}")
    if spec.proto != "icmp":
        rules.append(f"{ip} daddr {spec.saddr} meta l4proto {'icmp' if spec.family == 4 else 'ipv6-icmp'}")
    return rules


def render_table(name: str, spec: TraceSpec) -> str:
    """The ``nft -f`` script that adds ``table inet NAME`` (prerouting: packets that come
    in, forwarded ones included; output: packets the host itself answers with)."""
    body = "".join(f"\t\t{r} meta nftrace set 1\n" for r in trace_rules(spec))
    chains = "".join(
        f"\tchain {chain} {{\n\t\ttype filter hook {hook} priority {PRIORITY}; policy accept;\n{body}\t}}\n"
        for chain, hook in (("pre", "prerouting"), ("out", "output")))
    return f"table inet {name} {{\n{chains}}}\n"


@dataclass(frozen=True)
class TraceEvent:
    """One rule, end of chain or policy a traced packet met."""

    family: str
    table: str
    chain: str
    kind: EventKind
    #: "accept", "drop", "continue", "jump NAME", "goto NAME", "return"
    verdict: str
    #: the rule as nft prints it (counters dropped); "" for verdict/policy events
    text: str = ""
    handle: int | None = None

    @property
    def action(self) -> str:
        return self.verdict.split()[0] if self.verdict else ""

    def where(self, path: tuple[str, ...] = ()) -> str:
        return f"table {self.family} {self.table} chain {' -> '.join(path or (self.chain,))}"

    def describe(self, path: tuple[str, ...] = ()) -> str:
        """``table ip filter chain FORWARD: ip saddr 1.2.3.4 drop (handle 7)`` or ``...: policy drop``."""
        if self.kind == "policy":
            return f"{self.where(path)}: policy {self.verdict}"
        handle = f" (handle {self.handle})" if self.handle is not None else ""
        return f"{self.where(path)}: {self.text or self.verdict}{handle}"


@dataclass(frozen=True)
class TracedPacket:
    """One packet the kernel traced (one trace id)."""

    id: str
    saddr: str = ""
    daddr: str = ""
    iif: str = ""
    oif: str = ""
    events: tuple[TraceEvent, ...] = ()
    #: the destination the last hook saw (differs from ``daddr`` after DNAT)
    to: str = ""

    def what(self) -> str:
        """``10.0.0.2 → 10.0.0.1 (DNAT to 10.1.0.2, in br0, out br1)``."""
        notes = [f"DNAT to {self.to}" if self.to and self.to != self.daddr else "",
                 f"in {self.iif}" if self.iif else "", f"out {self.oif}" if self.oif else ""]
        ifs = ", ".join(x for x in notes if x)
        return f"{self.saddr} → {self.daddr}{f' ({ifs})' if ifs else ''}"


def _packet_fields(text: str) -> dict[str, str]:
    found = {}
    for key, pattern in (("iif", r'\biif "([^"]+)"'), ("oif", r'\boif "([^"]+)"'),
                         ("saddr", r"\bip6? saddr (\S+)"), ("daddr", r"\bip6? daddr (\S+)")):
        m = re.search(pattern, text)
        if m:
            found[key] = m.group(1)
    return found


def _event(fam: str, table: str, chain: str, rest: str) -> TraceEvent | None:
    m = _RULE.match(rest)
    if m:
        text, verdict = m.group(1), m.group(2).strip()
        handle = None
        h = _HANDLE.search(text) or _UNKNOWN.match(text)
        if h:
            handle = int(h.group(1))
            text = "" if _UNKNOWN.match(text) else text[:h.start()]
        return TraceEvent(fam, table, chain, "rule", verdict, _COUNTER.sub("counter", text).strip(), handle)
    word, _, arg = rest.strip().partition(" ")
    if word in ("verdict", "policy") and arg:
        return TraceEvent(fam, table, chain, word, arg.strip())  # type: ignore[arg-type]
    return None


def parse_trace(lines: list[str]) -> tuple[TracedPacket, ...]:
    """``nft -a monitor`` lines -> the traced packets in order (other lines are skipped;
    a packet's addresses and interfaces come from its ``packet:`` lines)."""
    order: list[str] = []
    fields: dict[str, dict[str, str]] = {}
    events: dict[str, list[TraceEvent]] = {}
    for line in lines:
        m = _LINE.match(line.rstrip("\n"))
        if not m:
            continue
        tid, fam, table, chain, rest = m.groups()
        if tid not in fields:
            order.append(tid)
            fields[tid], events[tid] = {}, []
        if rest.startswith("packet:"):
            for key, value in _packet_fields(rest).items():
                # the first packet line has the addresses as sent; oif is known from forward on
                if key == "oif" or key not in fields[tid]:
                    fields[tid][key] = value
                if key == "daddr":
                    fields[tid]["to"] = value
            continue
        ev = _event(fam, table, chain, rest)
        if ev is not None:
            events[tid].append(ev)
    return tuple(TracedPacket(tid, events=tuple(events[tid]), **fields[tid]) for tid in order)


@dataclass(frozen=True)
class LegacyHit:
    """An iptables-legacy rule or policy whose packet counter rose while the probe ran.

    The nftables trace cannot see legacy tables, and doctor does not evaluate rules, so
    for them the kernel's counters are the evidence (other traffic may add to them)."""

    #: "ip filter", "ip6 filter"
    table: str
    #: the save line without counters: "-A FORWARD -s 10.0.0.2/32 -j DROP", ":FORWARD DROP"
    text: str
    packets: int

    @property
    def drops(self) -> bool:
        return bool(re.search(r"-j (DROP|REJECT)\b|^:\S+ DROP$", self.text))

    def describe(self) -> str:
        return f"iptables-legacy table {self.table}: {self.text} ({self.packets} packet{'s' * (self.packets != 1)})"


def _counters(save: str, family: str) -> dict[tuple[str, str, int], int]:
    """``iptables-legacy-save -c`` -> (table, line, n-th equal line) -> packets."""
    out: dict[tuple[str, str, int], int] = {}
    table = ""
    for line in save.splitlines():
        if line.startswith("*"):
            table = f"{family} {line[1:].strip()}"
            continue
        m = re.match(r"^\[(\d+):\d+\] (-A .*)$", line) or re.match(r"^(:\S+ \S+) \[(\d+):\d+\]$", line)
        if not m:
            continue
        packets, text = (m.group(1), m.group(2)) if line.startswith("[") else (m.group(2), m.group(1))
        n = sum(1 for t, x, _ in out if t == table and x == text)
        out[(table, text, n)] = int(packets)
    return out


def legacy_hits(before: str, after: str, family: str = "ip") -> tuple[LegacyHit, ...]:
    """The rules and policies whose packet counters rose between two ``-save -c`` texts."""
    old = _counters(before, family)
    return tuple(LegacyHit(t, x, n - old.get((t, x, i), 0)) for (t, x, i), n in _counters(after, family).items()
                 if n > old.get((t, x, i), 0))


@dataclass(frozen=True)
class TraceResult:
    """The kernel's reports on the probe's packets, or why there are none."""

    #: our temporary table (removed again)
    table: str = ""
    packets: tuple[TracedPacket, ...] = ()
    #: why the probe could not be traced (no nft, monitor did not start, ...)
    error: str | None = None
    #: iptables-legacy tables exist: their rules run too but cannot be traced
    legacy_tables: tuple[str, ...] = ()
    #: in those tables: what the probe's time raised the counters of
    legacy: tuple[LegacyHit, ...] = ()

    def journeys(self) -> tuple[TracedPacket, ...]:
        """The traced packets merged per sender, in order. The kernel gives a packet a new
        trace id where it copies it (forwarding does) and DNAT changes its destination, so
        neither ties the parts of one way together: the sender does (the probe's source
        one way, the answering end the other)."""
        merged: dict[str, TracedPacket] = {}
        for p in self.packets:
            m = merged.get(p.saddr)
            merged[p.saddr] = p if m is None else TracedPacket(
                f"{m.id},{p.id}", m.saddr, m.daddr, m.iif or p.iif, p.oif or m.oif, m.events + p.events, p.to or m.to)
        return tuple(merged.values())

    def outgoing(self, saddr: str) -> tuple[TracedPacket, ...]:
        """The way from ``saddr`` (the probe itself, not the answers): one journey or none."""
        return tuple(p for p in self.journeys() if p.saddr == saddr)
