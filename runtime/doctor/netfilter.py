"""A small netfilter evaluator: which rule or policy decides one packet (pure).

The live rulesets (nftables and iptables-legacy; ``nfparse`` reads them) become chains
of rules made of conditions and one action. ``evaluate`` runs a packet through every
base chain registered at a hook, in priority order, following jumps, gotos and verdict
maps. Across base chains an accept is not final and a drop is (nftables semantics; the
legacy tables are just more base chains at the same hook), so the packet passes only
when no base chain drops it.

Only what container firewalls use is understood: interface names (with ``*`` / ``+``
wildcards), addresses and prefixes, protocol and ports, conntrack state and status,
``fib daddr type local``. A rule with anything else is skipped and listed in
``Decision.unknown``, so the report can say what was not evaluated.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

#: conditions the evaluator understands
FIELDS = ("iifname", "oifname", "saddr", "daddr", "l4proto", "dport", "sport", "ct_state",
          "ct_status", "fib_daddr_type", "nfproto")
TERMINAL = ("accept", "drop", "reject", "dnat", "snat", "masquerade", "redirect")


@dataclass(frozen=True)
class Cond:
    """One condition: ``field op values`` (``values`` is any-of); ``field`` "unknown" = cannot tell."""

    field: str
    op: str = "=="
    values: tuple[str, ...] = ()
    text: str = ""


@dataclass(frozen=True)
class Lookup:
    """A nat target looked up in a data map (``dnat to ip daddr . th dport map @m``)."""

    #: the map's name, for display
    name: str
    #: packet fields forming the key, in order (daddr, saddr, l4proto, dport, sport, ...)
    fields: tuple[str, ...]
    #: key values (address, prefix, range, protocol or port, one per field) -> "addr:port"
    elements: tuple[tuple[tuple[str, ...], str], ...] = ()


@dataclass(frozen=True)
class Action:
    """What a matching rule does."""

    #: accept, drop, reject, return, jump, goto, vmap, dnat, snat, masquerade, continue
    kind: str
    #: chain for jump/goto, "addr:port" for dnat/snat
    target: str = ""
    #: vmap: the packet field that keys it ("iifname" / "oifname")
    key: str = ""
    #: vmap: key -> action
    mapping: tuple[tuple[str, Action], ...] = ()
    #: dnat/snat whose target comes from a map (no element for the packet = no match)
    lookup: Lookup | None = None


@dataclass(frozen=True)
class Rule:
    """Conditions (all must hold) and an action; ``text`` is how it is shown."""

    conds: tuple[Cond, ...]
    action: Action
    text: str
    comment: str | None = None


@dataclass(frozen=True)
class Chain:
    """A chain; base chains have a ``hook``."""

    backend: str  # "nftables" | "iptables-legacy"
    family: str  # inet, ip, ip6 (legacy: ip / ip6)
    table: str
    name: str
    rules: tuple[Rule, ...] = ()
    hook: str | None = None
    #: "filter", "nat", "raw", ...
    type: str | None = None
    priority: int = 0
    policy: str | None = None

    @property
    def where(self) -> str:
        """"table inet netctl chain forward" (or "iptables-legacy filter FORWARD")."""
        if self.backend == "nftables":
            return f"table {self.family} {self.table} chain {self.name}"
        return f"iptables-legacy {self.table} {self.name}"


@dataclass(frozen=True)
class Ruleset:
    """Every chain read from every backend."""

    chains: tuple[Chain, ...] = ()

    def find(self, backend: str, family: str, table: str, name: str) -> Chain | None:
        for ch in self.chains:
            if (ch.backend, ch.family, ch.table, ch.name) == (backend, family, table, name):
                return ch
        return None

    def base_chains(self, hook: str, type_: str, family: int) -> list[Chain]:
        """Base chains at ``hook`` of ``type_`` that see packets of ``family``, in order."""
        fams = {"inet", "ip"} if family == 4 else {"inet", "ip6"}
        found = [c for c in self.chains if c.hook == hook and c.type == type_ and c.family in fams]
        return sorted(found, key=lambda c: (c.priority, c.backend, c.table, c.name))


@dataclass(frozen=True)
class Packet:
    """The first packet of a connection, as a netfilter hook sees it."""

    family: int
    saddr: str
    daddr: str
    iifname: str = ""
    oifname: str = ""
    l4proto: str = "icmp"
    dport: int | None = None
    sport: int | None = None
    ct_state: str = "new"
    ct_status: tuple[str, ...] = ()
    #: the host's own addresses (for ``fib daddr type local`` / ``addrtype LOCAL``)
    local: tuple[str, ...] = ()


@dataclass(frozen=True)
class Step:
    """One base chain's verdict for the packet."""

    chain: Chain
    verdict: str  # accept, drop, dnat, masquerade, snat, none (nat chain without a match)
    #: the deciding rule; None = the chain policy (or no nat rule matched)
    rule: Rule | None = None
    #: the chain the deciding rule is in (a jump target), when not ``chain`` itself
    in_chain: Chain | None = None

    def describe(self) -> str:
        """"table inet netctl chain forward -> in-1a2b: drop (comment)" or "... policy drop"."""
        where = self.chain.where
        if self.rule is None:
            if self.verdict in ("accept", "drop"):
                return f"{where}: policy {self.verdict}"
            return f"{where}: no rule matched"
        inner = self.in_chain.name if self.in_chain is not None and self.in_chain is not self.chain else ""
        return f"{where}{' -> ' + inner if inner else ''}: {self.rule.text}"


@dataclass(frozen=True)
class Decision:
    """The outcome of one hook for the packet."""

    #: "accept", "drop", or for nat hooks "dnat" / "masquerade" / "snat" / "none"
    verdict: str
    #: the step that decided (the drop, the nat rule, or the last accept)
    decisive: Step | None = None
    steps: tuple[Step, ...] = ()
    #: rules that were skipped because they hold something the evaluator cannot judge
    unknown: tuple[str, ...] = field(default_factory=tuple)
    #: dnat: the new destination "addr:port"
    target: str = ""


# --- conditions ---------------------------------------------------------------------------

def _ifname_match(pattern: str, name: str) -> bool:
    if pattern.endswith(("*", "+")):
        return name.startswith(pattern[:-1])
    return pattern == name


def _addr_in(value: str, addr: str) -> bool | None:
    """True/False; None when ``value`` is of the other family (the match cannot apply)."""
    ip = ipaddress.ip_address(addr)
    try:
        if "-" in value:
            lo, hi = (ipaddress.ip_address(v) for v in value.split("-", 1))
            if lo.version != ip.version:
                return None
            return lo <= ip <= hi  # type: ignore[operator]
        net = ipaddress.ip_network(value, strict=False)
    except ValueError:
        return None
    if net.version != ip.version:
        return None
    return ip in net


def _port_in(value: str, port: int) -> bool:
    if "-" in value:
        lo, hi = value.split("-", 1)
        return int(lo) <= port <= int(hi)
    return int(value) == port


def cond_matches(cond: Cond, pkt: Packet) -> bool | None:
    """Whether ``cond`` holds for ``pkt``; None when the evaluator cannot tell."""
    neg = cond.op == "!="
    f = cond.field
    if f in ("iifname", "oifname"):
        name = pkt.iifname if f == "iifname" else pkt.oifname
        hit = any(_ifname_match(v, name) for v in cond.values)
    elif f in ("saddr", "daddr"):
        addr = pkt.saddr if f == "saddr" else pkt.daddr
        results = [_addr_in(v, addr) for v in cond.values]
        if all(r is None for r in results):
            return False  # an ip6 match never holds for an IPv4 packet, negated or not
        hit = any(r for r in results)
    elif f == "nfproto":
        hit = f"ipv{pkt.family}" in cond.values
    elif f == "l4proto":
        hit = pkt.l4proto in cond.values or (pkt.l4proto == "icmp" and "icmpv6" in cond.values and pkt.family == 6)
    elif f in ("dport", "sport"):
        port = pkt.dport if f == "dport" else pkt.sport
        if port is None:
            return False  # a port match implies a protocol with ports
        hit = any(_port_in(v, port) for v in cond.values)
    elif f == "ct_state":
        hit = pkt.ct_state in cond.values
    elif f == "ct_status":
        hit = any(v in pkt.ct_status for v in cond.values)
    elif f == "fib_daddr_type":
        if cond.values != ("local",):
            return None
        hit = pkt.daddr in pkt.local
    else:
        return None
    return hit != neg


# --- chains -------------------------------------------------------------------------------

@dataclass
class _Walk:
    ruleset: Ruleset
    pkt: Packet
    unknown: list[str]
    depth: int = 0


def _field(pkt: Packet, field: str) -> str | None:
    value = {"saddr": pkt.saddr, "daddr": pkt.daddr, "l4proto": pkt.l4proto, "iifname": pkt.iifname,
             "oifname": pkt.oifname, "dport": pkt.dport, "sport": pkt.sport}.get(field)
    return None if value is None else str(value)


def _key_matches(field: str, want: str, have: str) -> bool:
    if field in ("saddr", "daddr"):
        return bool(_addr_in(want, have))
    if field in ("dport", "sport"):
        return _port_in(want, int(have))
    if field in ("iifname", "oifname"):
        return _ifname_match(want, have)
    return want == have


def _look_up(lookup: Lookup, pkt: Packet) -> str | None:
    """The map's target for the packet; None when no element matches (the rule does not apply)."""
    have = [_field(pkt, f) for f in lookup.fields]
    if any(h is None for h in have):
        return None
    for key, target in lookup.elements:
        if len(key) == len(have) and all(_key_matches(f, k, str(h))
                                         for f, k, h in zip(lookup.fields, key, have, strict=True)):
            return target
    return None


def _resolve(action: Action, pkt: Packet) -> Action | None:
    """A vmap's action or a map-looked-up nat target for the packet (None = no element
    matches: carry on with the next rule, as nft does when a map lookup fails)."""
    if action.lookup is not None:
        target = _look_up(action.lookup, pkt)
        return None if target is None else Action(action.kind, target=target)
    if action.kind != "vmap":
        return action
    key = pkt.iifname if action.key == "iifname" else pkt.oifname if action.key == "oifname" else None
    if key is None:
        return None
    for k, act in action.mapping:
        if _ifname_match(k, key):
            return act
    return None


def _run(walk: _Walk, chain: Chain) -> tuple[str, Rule, Chain] | None:
    """Run ``chain``; a terminal (verdict, rule, chain) or None when it falls through/returns."""
    if walk.depth > 32:  # loops cannot be built in nft, but iptables-save text is just text
        return None
    for rule in chain.rules:
        results = [cond_matches(c, walk.pkt) for c in rule.conds]
        if any(r is False for r in results):
            continue
        if any(r is None for r in results):
            walk.unknown.append(f"{chain.where}: {rule.text}")
            continue
        action = _resolve(rule.action, walk.pkt)
        if action is None or action.kind == "continue":
            continue
        if action.kind in TERMINAL:
            return action.kind, Rule(rule.conds, action, rule.text, rule.comment), chain
        if action.kind == "return":
            return None
        if action.kind in ("jump", "goto"):
            callee = walk.ruleset.find(chain.backend, chain.family, chain.table, action.target)
            if callee is None:
                walk.unknown.append(f"{chain.where}: {rule.text} (no chain {action.target})")
                continue
            walk.depth += 1
            res = _run(walk, callee)
            walk.depth -= 1
            if res is not None or action.kind == "goto":
                return res
    return None


def evaluate(ruleset: Ruleset, hook: str, pkt: Packet, type_: str = "filter") -> Decision:
    """Run ``pkt`` through every base chain of ``type_`` at ``hook``.

    Filter hooks: the first drop (or reject) decides; otherwise the packet is accepted
    and the decisive step is the last accepting one (a rule, when any accepted by rule).
    Nat hooks: the first dnat / snat / masquerade decides; ``verdict="none"`` if none.
    """
    walk = _Walk(ruleset, pkt, [])
    steps: list[Step] = []
    for base in ruleset.base_chains(hook, type_, pkt.family):
        res = _run(walk, base)
        if res is None:
            verdict = (base.policy or "accept") if type_ == "filter" else "none"
            step = Step(base, verdict)
        else:
            verdict, rule, inner = res
            verdict = "drop" if verdict == "reject" else verdict
            step = Step(base, verdict, rule, inner)
        steps.append(step)
        if type_ == "filter" and step.verdict == "drop":
            return Decision("drop", step, tuple(steps), tuple(walk.unknown))
        if type_ != "filter" and step.verdict != "none" and step.verdict != "accept":
            target = step.rule.action.target if step.rule is not None else ""
            return Decision(step.verdict, step, tuple(steps), tuple(walk.unknown), target)
    if type_ != "filter":
        return Decision("none", None, tuple(steps), tuple(walk.unknown))
    by_rule = [s for s in steps if s.rule is not None]
    decisive = by_rule[-1] if by_rule else (steps[-1] if steps else None)
    return Decision("accept", decisive, tuple(steps), tuple(walk.unknown))


def target_address(target: str) -> str:
    """The address of a nat target: "10.0.0.2:80" / "[fd00::2]:80" / "10.0.0.2" -> address."""
    if target.startswith("["):
        return target[1:].split("]", 1)[0]
    if target.count(":") == 1:
        return target.split(":", 1)[0]
    return target


def find_dnat_to(ruleset: Ruleset, address: str) -> tuple[tuple[Chain, Rule], ...]:
    """Every rule (in any chain) that DNATs to ``address`` (a published-port rule)."""
    out = []
    for chain in ruleset.chains:
        for rule in chain.rules:
            act = rule.action
            if act.kind == "dnat" and act.lookup is not None:
                hits = [(k, t) for k, t in act.lookup.elements if target_address(t) == address]
                for key, target in hits:
                    # one line per map element, so the evidence shows which port goes where
                    text = f"{rule.text}: element {' . '.join(key)} : {target}"
                    out.append((chain, Rule(rule.conds, Action("dnat", target=target), text, rule.comment)))
            elif act.kind == "dnat" and target_address(act.target) == address:
                out.append((chain, rule))
    return tuple(out)
