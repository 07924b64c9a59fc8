"""nftables rendering (pure) and the driver that applies it with ``nft -f -``.

Everything lives in our own table ``inet netctl`` (IPv4 and IPv6 at once)::

    map forward-guard / forward-in / forward-out / postrouting-out { type ifname : verdict }
    chain forward     { type filter hook forward priority filter; policy accept;
                        iifname vmap @forward-guard; oifname vmap @forward-in;
                        iifname vmap @forward-out }
    chain postrouting { type nat hook postrouting priority srcnat; policy accept;
                        iifname vmap @postrouting-out }
    chain <role>-<hash8> { ... }            # per network, see plan.py

and, when netctl turned forwarding on (plan.py: the forwarding guard), at the end of
``forward``: ``meta nfproto ipv4 drop comment "netctl forwarding"`` (ipv6 likewise).
The guard only ever grows here; it goes with the table when the last network goes.

Per network, the jumps are map elements keyed by the bridge name (Docker 29 style),
so they are added and deleted by key, without rule handles. Each change is one
``nft -f -`` transaction built from what ``nft -j list table`` showed under our lock:
nft 1.0.6 has no ``destroy``, so deleting something absent would fail the batch.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import FirewallError
from .lock import DEFAULT_NFT_LOCK, file_lock
from .nft_state import ABSENT, LiveElement, LiveRule, LiveTable, parse_table
from .nftcli import NftResult, find_nft, run_nft
from .plan import (
    GUARD_TAG,
    ChainRole,
    Match,
    NetworkPolicy,
    Rule,
    Ruleset,
    network_hash,
    network_owner,
    parse_owner,
    plan_network,
    validate_network_name,
)

TABLE = "inet netctl"
#: role -> (verdict map, the packet field that keys it)
MAPS: dict[ChainRole, tuple[str, str]] = {
    "guard": ("forward-guard", "iifname"),
    "in": ("forward-in", "oifname"),
    "out": ("forward-out", "iifname"),
    "nat": ("postrouting-out", "iifname"),
}
#: base chain -> (its spec, its rules in order). The order of the forward vmaps is the
#: evaluation order of plan.py (guard, in, out).
BASE_CHAINS: dict[str, tuple[str, tuple[str, ...]]] = {
    "forward": (
        "type filter hook forward priority filter ; policy accept ;",
        ("iifname vmap @forward-guard", "oifname vmap @forward-in", "iifname vmap @forward-out"),
    ),
    "postrouting": (
        "type nat hook postrouting priority srcnat ; policy accept ;",
        ("iifname vmap @postrouting-out",),
    ),
}
ROLES: tuple[ChainRole, ...] = ("guard", "in", "out", "nat")
_NFPROTO = {4: "ipv4", 6: "ipv6"}


def guard_rule(family: int) -> str:
    """The forwarding guard's rule text for one family (as ``nft list`` prints it back)."""
    return f'meta nfproto {_NFPROTO[family]} drop comment "{GUARD_TAG}"'


def live_guard(live: LiveTable) -> set[int]:
    """Families whose forwarding guard the live ``forward`` chain holds."""
    texts = {r.text for r in live.chain_rules("forward")}
    return {f for f in _NFPROTO if guard_rule(f) in texts}


def base_rules(name: str, guard: set[int] | tuple[int, ...] = ()) -> tuple[str, ...]:
    """The rules a base chain must hold, the forwarding guard of ``guard`` included."""
    rules = BASE_CHAINS[name][1]
    if name == "forward":
        rules += tuple(guard_rule(f) for f in sorted(guard))
    return rules


def chain_name(role: ChainRole, net_hash: str) -> str:
    """Name of a per-network chain, e.g. ``in-1a2b3c4d``."""
    return f"{role}-{net_hash}"


def render_match(m: Match) -> str:
    """One match in nft syntax (the form ``nft list`` prints back)."""
    neg = "!= " if m.negate else ""
    if m.kind in ("iif", "oif"):
        return f'{m.kind}name {neg}"{m.value}"'
    if m.kind in ("saddr", "daddr"):
        proto = "ip" if m.family == 4 else "ip6"
        return f"{proto} {m.kind} {neg}{m.value}"
    if m.kind == "ct_state":
        return f"ct state {neg}{m.value}"
    if m.kind == "ct_dnat":
        return f"ct status {neg}dnat"
    raise FirewallError(f"nftables: unsupported match {m.kind!r}")


def render_rule(rule: Rule) -> str:
    """A rule's text without table/chain, e.g. ``iifname "br0" accept comment "netctl net=x"``."""
    words = [render_match(m) for m in rule.matches] + [rule.verdict]
    return " ".join(words) + f' comment "{rule.comment}"'


def render_chains(rs: Ruleset) -> dict[str, tuple[str, ...]]:
    """Per-network chain name -> rule texts, in order."""
    return {
        chain_name(ch.role, rs.hash): tuple(render_rule(r) for r in ch.rules) for ch in rs.chains
    }


def expected_elements(rs: Ruleset) -> list[LiveElement]:
    """The map elements that jump to a network's chains."""
    return [
        LiveElement(MAPS[ch.role][0], rs.bridge, f"jump {chain_name(ch.role, rs.hash)}", rs.tag)
        for ch in rs.chains
    ]


@dataclass(frozen=True)
class Owned:
    """What the live table holds for one network."""

    elements: tuple[LiveElement, ...]
    #: tagged rules in chains that are not the network's own (deleted by handle)
    rules: tuple[LiveRule, ...]
    chains: tuple[str, ...]

    def __bool__(self) -> bool:
        return bool(self.elements or self.rules or self.chains)


def find_owned(live: LiveTable, network: str) -> Owned:
    """Objects of ``network``: tagged elements, our chain names, chains of only its rules."""

    def mine(comment: str | None) -> bool:
        return network_owner(comment) == network

    h = network_hash(network)
    chains = {chain_name(role, h) for role in ROLES} & set(live.chains)
    for name in live.chains:
        body = live.chain_rules(name)
        # a chain whose rules all carry the tag is ours even under an older naming scheme
        if name not in BASE_CHAINS and body and all(mine(r.comment) for r in body):
            chains.add(name)
    rules = tuple(r for r in live.rules if r.chain not in chains and mine(r.comment))
    elements = tuple(e for e in live.elements if mine(e.comment))
    return Owned(elements, rules, tuple(sorted(chains)))


def _skeleton_lines() -> list[str]:
    lines = [f"add table {TABLE}"]
    for map_name, _key in MAPS.values():
        lines.append(f"add map {TABLE} {map_name} {{ type ifname : verdict ; }}")
    for name, (spec, _rules) in BASE_CHAINS.items():
        lines.append(f"add chain {TABLE} {name} {{ {spec} }}")
    return lines


def _base_ok(live: LiveTable, name: str, guard: set[int] | tuple[int, ...] = ()) -> bool:
    return name in live.chains and [r.text for r in live.chain_rules(name)] == list(
        base_rules(name, guard)
    )


def _delete_lines(live: LiveTable, owned: Owned, skip_chains: set[str]) -> list[str]:
    lines = [f'delete element {TABLE} {e.map} {{ "{e.key}" }}' for e in owned.elements]
    lines += [
        f"delete rule {TABLE} {r.chain} handle {r.handle}"
        for r in owned.rules
        if r.chain not in skip_chains
    ]
    for name in owned.chains:
        if name in skip_chains:
            continue
        lines += [f"flush chain {TABLE} {name}", f"delete chain {TABLE} {name}"]
    return lines


def render_setup(rs: Ruleset, live: LiveTable = ABSENT) -> str:
    """The one transaction that makes the live table hold exactly ``rs`` for its network.

    Stale objects of the network (other bridge, chains it no longer needs) are deleted,
    planned chains are flushed and refilled, and the skeleton is created or repaired.

    Raises:
        FirewallError: another network already owns a jump for the same bridge.
    """
    for elem in live.elements:
        owner = parse_owner(elem.comment)
        if elem.key == rs.bridge and (owner is None or owner.network != rs.network):
            who = f"network {owner.network!r}" if owner else "an untagged element"
            raise FirewallError(
                f"bridge {rs.bridge!r} of network {rs.network!r} is already used by {who}"
                f" in map {elem.map} of table {TABLE}; tear that network down first"
            )
    planned = render_chains(rs)
    # the guard only grows: another network may need what this one does not
    guard = live_guard(live) | set(rs.guard_forwarding)
    repair = {name for name in BASE_CHAINS if not _base_ok(live, name, guard)}
    lines = _skeleton_lines()
    owned = find_owned(live, rs.network)
    stale = Owned(owned.elements, owned.rules, tuple(c for c in owned.chains if c not in planned))
    lines += _delete_lines(live, stale, skip_chains=repair)
    for name in sorted(repair):
        if name in live.chains and live.chain_rules(name):
            lines.append(f"flush chain {TABLE} {name}")
        lines += [f"add rule {TABLE} {name} {text}" for text in base_rules(name, guard)]
    for name, rules in planned.items():
        lines.append(f'add chain {TABLE} {name} {{ comment "{rs.tag}" ; }}')
        lines.append(f"flush chain {TABLE} {name}")
        lines += [f"add rule {TABLE} {name} {text}" for text in rules]
    for elem in expected_elements(rs):
        lines.append(
            f'add element {TABLE} {elem.map} {{ "{elem.key}" comment "{elem.comment}" : {elem.verdict} }}'
        )
    return "\n".join(lines) + "\n"


def _bare_after(live: LiveTable, owned: Owned) -> bool:
    """True when removing ``owned`` leaves only our skeleton (then the table goes)."""
    if live.foreign_objects or not live.maps <= {m for m, _k in MAPS.values()}:
        return False
    if set(live.chains) - set(BASE_CHAINS) - set(owned.chains):
        return False
    if set(live.elements) - set(owned.elements):
        return False
    for name in BASE_CHAINS:
        rest = [r.text for r in live.chain_rules(name) if r not in owned.rules]
        if rest and rest != list(base_rules(name, live_guard(live))):
            return False
    return True


def render_teardown(network: str, live: LiveTable) -> str | None:
    """The transaction removing everything tagged for ``network``; ``None`` if nothing is.

    When nothing else is left the whole table is deleted, so a host without networks
    has no ``inet netctl`` table at all.
    """
    if not live.exists:
        return None
    owned = find_owned(live, network)
    if _bare_after(live, owned):
        return f"delete table {TABLE}\n"
    if not owned:
        return None
    return "\n".join(_delete_lines(live, owned, skip_chains=set())) + "\n"


def check_ruleset(rs: Ruleset, live: LiveTable) -> list[str]:
    """Differences between the live table and ``rs``, as sentences; ``[]`` when in sync."""
    if not live.exists:
        return [f"table {TABLE} is missing"]
    problems = [f"map {m} is missing" for m, _k in MAPS.values() if m not in live.maps]
    guard = live_guard(live) | set(rs.guard_forwarding)
    for name in BASE_CHAINS:
        if name not in live.chains:
            problems.append(f"base chain {name} is missing")
        elif not _base_ok(live, name, guard):
            got = [r.text for r in live.chain_rules(name)]
            problems.append(f"base chain {name} has rules {got}, expected {list(base_rules(name, guard))}")
    planned = render_chains(rs)
    for name, rules in planned.items():
        if name not in live.chains:
            problems.append(f"chain {name} of network {rs.network!r} is missing")
            continue
        got = [r.text for r in live.chain_rules(name)]
        problems += [f"chain {name}: rule missing: {t}" for t in rules if t not in got]
        problems += [f"chain {name}: unexpected rule: {t}" for t in got if t not in rules]
        if sorted(got) == sorted(rules) and got != list(rules):
            problems.append(f"chain {name}: rules are out of order")
    want = expected_elements(rs)
    for elem in want:
        if elem not in live.elements:
            problems.append(
                f"map {elem.map}: element {elem.key!r} : {elem.verdict} of network {rs.network!r} is missing"
            )
    owned = find_owned(live, rs.network)
    problems += [
        f"map {e.map}: stale element {e.key!r} : {e.verdict}"
        for e in owned.elements
        if e not in want
    ]
    problems += [f"stale chain {c}" for c in owned.chains if c not in planned]
    return problems


class NftablesDriver:
    """Applies rulesets to ``inet netctl`` with ``nft`` in the current network namespace."""

    name = "nftables"

    def __init__(self, lock_path: str = DEFAULT_NFT_LOCK, nft: str | None = None) -> None:
        self.lock_path = lock_path
        self._nft = nft

    def setup_network(self, policy: NetworkPolicy) -> None:
        """Install (or replace) the rules of one network in one transaction; idempotent.

        Raises:
            FirewallError: nft is missing or refused the transaction (stderr in ``details``).
        """
        rs = plan_network(policy)
        with file_lock(self.lock_path):
            live = self.read()
            # every ADD of a network's container asks for its rules: when they are all in
            # place, a transaction would only replace them with themselves, and wake every
            # listener of nftables events (the agent's reconciler among them) for nothing
            if check_ruleset(rs, live):
                self._apply(render_setup(rs, live), f"set up firewall for network {policy.name!r}")

    def teardown_network(self, network: str) -> None:
        """Remove every object tagged for ``network``; absent is success.

        Raises:
            FirewallError: bad name, or nft refused the transaction.
        """
        validate_network_name(network)
        if self._binary(required=False) is None:
            return  # without nft nothing can have been installed by this driver
        with file_lock(self.lock_path):
            script = render_teardown(network, self.read())
            if script:
                self._apply(script, f"tear down firewall for network {network!r}")

    def check_network(self, policy: NetworkPolicy) -> list[str]:
        """What differs from the policy's rules (``[]`` = in sync).

        Raises:
            FirewallError: nft is missing or cannot list the table.
        """
        return check_ruleset(plan_network(policy), self.read())

    def list_networks(self) -> set[str]:
        """Names of networks that have objects in our table (for GC).

        Raises:
            FirewallError: nft cannot list the table.
        """
        if self._binary(required=False) is None:
            return set()
        return self.read().networks()

    def read(self) -> LiveTable:
        """The live table (``ABSENT`` when it does not exist).

        Raises:
            FirewallError: nft failed for another reason.
        """
        res = self._run(["-j", "list", "table", *TABLE.split()])
        if res.returncode != 0:
            if "No such file or directory" in res.stderr:
                return ABSENT
            raise FirewallError(f"nft cannot list table {TABLE}", res.stderr)
        return parse_table(res.stdout)

    def _apply(self, script: str, what: str) -> None:
        res = self._run(["-f", "-"], script)
        if res.returncode != 0:
            raise FirewallError(f"failed to {what}: nft rejected the transaction", res.stderr)

    def _binary(self, required: bool = True) -> str | None:
        if self._nft is None:
            self._nft = find_nft()
        if self._nft is None and required:
            raise FirewallError("nftables driver: the 'nft' command is not installed")
        return self._nft

    def _run(self, args: list[str], stdin: str | None = None) -> NftResult:
        nft = self._binary()
        assert nft is not None
        return run_nft(nft, args, stdin)
