"""iptables rendering (pure); ``iptables_driver.py`` applies it through python-iptables.

Layout, per IP family (IPv6 only for networks with an IPv6 subnet)::

    filter:  -A FORWARD -m comment --comment netctl -j NETCTL-FORWARD        (inserted first)
             -A NETCTL-FORWARD -i <br> ... -j NETCTL-GUARD-<hash8>   (internal networks)
             -A NETCTL-FORWARD -o <br> ... -j NETCTL-IN-<hash8>
             -A NETCTL-FORWARD -i <br> ... -j NETCTL-OUT-<hash8>     (other networks)
             -A NETCTL-FORWARD -m comment --comment "netctl forwarding" -j DROP
                                                     (the forwarding guard, see plan.py)
    nat:     -A POSTROUTING -m comment --comment netctl -j NETCTL-POSTROUTING
             -A NETCTL-POSTROUTING -s <subnet> ! -d 224.0.0.0/4 ! -o <br> ... -j MASQUERADE

The jumps in NETCTL-FORWARD are kept in guard / in / out groups (plan.py explains
why the order matters). python-iptables drives the LEGACY tables (libiptc): on an
nf_tables host these rules are visible with ``iptables-legacy-save`` only.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from .errors import FirewallError
from .plan import (
    GUARD_TAG,
    ChainRole,
    Rule,
    Ruleset,
)

FORWARD_CHAIN = "NETCTL-FORWARD"
POSTROUTING_CHAIN = "NETCTL-POSTROUTING"
#: comment of the two skeleton jumps (no ``net=``: they belong to no network)
SKELETON_TAG = "netctl"
#: skeleton chain -> (table, built-in chain that jumps to it, insert first?)
SKELETON = {
    FORWARD_CHAIN: ("filter", "FORWARD", True),
    POSTROUTING_CHAIN: ("nat", "POSTROUTING", False),
}
#: dispatch group of a per-network chain in NETCTL-FORWARD (the forwarding guard, a DROP,
#: comes last: group 3)
GROUPS: dict[str, int] = {"GUARD": 0, "IN": 1, "OUT": 2}
GUARD_GROUP = 3
_VERDICTS = {"accept": "ACCEPT", "drop": "DROP", "return": "RETURN", "masquerade": "MASQUERADE"}
_NO_QUOTE = set("_-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def ipt_chain(role: ChainRole, net_hash: str) -> str:
    """Per-network chain name, e.g. ``NETCTL-IN-1a2b3c4d`` (at most 21 of the 28 chars)."""
    return f"NETCTL-{role.upper()}-{net_hash}"


def dispatch_group(target: str) -> int:
    """Where a jump belongs in NETCTL-FORWARD: 0 guard, 1 in (and anything foreign), 2 out,
    3 the forwarding guard's DROP."""
    if target == "DROP":
        return GUARD_GROUP
    parts = target.split("-")
    if len(parts) == 3 and parts[0] == "NETCTL":
        return GROUPS.get(parts[1], 1)
    return 1


def save_string(value: str) -> str:
    """Quote like iptables-save (``xtables_save_string``): bare only for safe words."""
    if value and set(value) <= _NO_QUOTE:
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True)
class IptRule:
    """One iptables rule in normalised form; ``save_line()`` prints it as iptables-save does."""

    family: int
    table: str
    chain: str
    src: str | None = None  # "10.0.0.0/24" or "!10.0.0.0/24"
    dst: str | None = None
    in_if: str | None = None  # "br0" or "!br0"
    out_if: str | None = None
    proto: str | None = None
    #: (module, ((option, value), ...)) in order, e.g. ("conntrack", (("ctstate", "DNAT"),))
    matches: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()
    target: str = ""
    #: the target's options in order, e.g. (("to-destination", "10.0.0.2:80"),)
    target_opts: tuple[tuple[str, str], ...] = ()

    @property
    def comment(self) -> str | None:
        """The comment match's text (the owner tag), if any."""
        for name, opts in self.matches:
            if name == "comment":
                return dict(opts).get("comment")
        return None

    def save_line(self) -> str:
        """``-A CHAIN ...`` exactly as iptables-legacy-save prints it."""
        words = [f"-A {self.chain}"]
        for flag, val in (
            ("-s", self.src),
            ("-d", self.dst),
            ("-i", self.in_if),
            ("-o", self.out_if),
            ("-p", self.proto),
        ):
            if val:
                words.append(f"! {flag} {val[1:]}" if val.startswith("!") else f"{flag} {val}")
        for name, opts in self.matches:
            words.append(f"-m {name}")
            for key, val in opts:
                words.append(f"--{key} {save_string(val) if name == 'comment' else val}")
        words.append(f"-j {self.target}")
        words += [f"--{key} {val}" for key, val in self.target_opts]
        return " ".join(words)


@dataclass(frozen=True)
class IptablesPlan:
    """A network's chains and rules, for every family it needs."""

    #: (family, table, chain) of the per-network chains to create
    chains: tuple[tuple[int, str, str], ...]
    #: per-network chain rules, dispatch jumps (NETCTL-FORWARD) and NAT rules, in order
    rules: tuple[IptRule, ...]
    families: tuple[int, ...]


def _addr(value: str, negate: bool) -> str:
    net = ipaddress.ip_network(value)
    return ("!" if negate else "") + f"{net.network_address}/{net.prefixlen}"


def convert_rule(rule: Rule, family: int, table: str, chain: str) -> IptRule:
    """A plan rule as an iptables rule of one family.

    Raises:
        FirewallError: the rule needs two conditions on the same field (one iptables rule
            holds one ``-s``/``-d``/``-i``/``-o``).
    """
    fields: dict[str, str] = {}
    matches: list[tuple[str, tuple[tuple[str, str], ...]]] = []

    def put(key: str, val: str) -> None:
        if key in fields:
            raise FirewallError(f"iptables: rule needs two {key} conditions: {rule}")
        fields[key] = val

    for m in rule.matches:
        neg = "!" if m.negate else ""
        if m.kind == "iif":
            put("in_if", neg + m.value)
        elif m.kind == "oif":
            put("out_if", neg + m.value)
        elif m.kind == "saddr":
            put("src", _addr(m.value, m.negate))
        elif m.kind == "daddr":
            put("dst", _addr(m.value, m.negate))
        elif m.kind == "ct_state" and not m.negate:
            # iptables-save prints states in kernel bit order, RELATED before ESTABLISHED
            states = {s.upper() for s in m.value.split(",")}
            order = ["INVALID", "NEW", "RELATED", "ESTABLISHED", "UNTRACKED", "SNAT", "DNAT"]
            matches.append(("conntrack", (("ctstate", ",".join(s for s in order if s in states)),)))
        elif m.kind == "ct_dnat" and not m.negate:
            matches.append(("conntrack", (("ctstate", "DNAT"),)))
        else:
            raise FirewallError(f"iptables: unsupported match {m}")
    matches.append(("comment", (("comment", rule.comment),)))
    return IptRule(
        family,
        table,
        chain,
        src=fields.get("src"),
        dst=fields.get("dst"),
        in_if=fields.get("in_if"),
        out_if=fields.get("out_if"),
        matches=tuple(matches),
        target=_VERDICTS[rule.verdict],
    )


def render_iptables(rs: Ruleset) -> IptablesPlan:
    """The iptables form of a ruleset (pure)."""
    chains: list[tuple[int, str, str]] = []
    rules: list[IptRule] = []
    for fam in rs.families:
        for ch in rs.chains:
            body = [r for r in ch.rules if r.family in (None, fam)]
            if ch.role == "nat":
                rules += [convert_rule(r, fam, "nat", POSTROUTING_CHAIN) for r in body]
                continue
            name = ipt_chain(ch.role, rs.hash)
            chains.append((fam, "filter", name))
            rules += [convert_rule(r, fam, "filter", name) for r in body]
            rules.append(
                IptRule(
                    fam,
                    "filter",
                    FORWARD_CHAIN,
                    in_if=None if ch.role == "in" else rs.bridge,
                    out_if=rs.bridge if ch.role == "in" else None,
                    matches=(("comment", (("comment", rs.tag),)),),
                    target=name,
                )
            )
    for fam in rs.guard_forwarding:
        if fam in rs.families:
            rules.append(guard_rule(fam))
    return IptablesPlan(tuple(chains), tuple(rules), rs.families)


def guard_rule(family: int) -> IptRule:
    """The forwarding guard of one family: the last rule of NETCTL-FORWARD."""
    return IptRule(family, "filter", FORWARD_CHAIN, matches=(("comment", (("comment", GUARD_TAG),)),),
                   target="DROP")


def is_guard(rule: IptRule) -> bool:
    """Whether ``rule`` is a forwarding guard (shared: it belongs to no network)."""
    return rule.chain == FORWARD_CHAIN and rule.target == "DROP" and rule.comment == GUARD_TAG


def skeleton_rules(plan: IptablesPlan) -> list[IptRule]:
    """The jumps from the built-in chains that a plan needs."""
    out = []
    for fam in plan.families:
        for chain, (table, builtin, _first) in SKELETON.items():
            if any(r.family == fam and r.chain == chain for r in plan.rules):
                tag = (("comment", (("comment", SKELETON_TAG),)),)
                out.append(IptRule(fam, table, builtin, matches=tag, target=chain))
    return out


def render_save(plan: IptablesPlan) -> str:
    """iptables-save style text of a plan, one section per family and table (golden files)."""
    lines: list[str] = []
    for fam in plan.families:
        for table in ("filter", "nat"):
            rules = [
                r
                for r in skeleton_rules(plan) + list(plan.rules)
                if r.family == fam and r.table == table
            ]
            if not rules:
                continue
            lines.append(f"*ipv{fam} {table}")
            names = [c for f, t, c in plan.chains if f == fam and t == table]
            skel = [c for c, (t, _b, _f) in SKELETON.items() if t == table]
            lines += [f":{c}" for c in skel + names]
            # grouped by chain like iptables-save: built-in jumps, dispatch, per-network
            order = {c: i for i, c in enumerate(["FORWARD", "POSTROUTING", *skel, *names])}
            rules.sort(
                key=lambda r: (
                    order.get(r.chain, len(order)),
                    dispatch_group(r.target) if r.chain == FORWARD_CHAIN else 0,
                )
            )
            lines += [r.save_line() for r in rules]
    return "\n".join(lines) + "\n"
