"""Published ports with nftables: rendering (pure) and the driver (``nft -f -``).

Our own table ``inet netctl-ports``, apart from the networks' ``inet netctl`` (whose base
chains are rewritten when they drift), holds every published port of the host::

    map pm-any4  { type inet_proto . inet_service : ipv4_addr . inet_service }   # 8080/tcp
    map pm-addr4 { type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service }
    map pm-any6, pm-addr6                                                        # the same, IPv6
    set pm-hairpin4/6 { type ipv4_addr . ipv4_addr; flags interval }             # cip . subnet
    chain prerouting (nat, dstnat)   fib daddr type local jump ports
    chain output     (nat, -100)     fib daddr type local jump ports
    chain ports      dnat ip to ip daddr . meta l4proto . th dport map @pm-addr4  (then any4, v6)
    chain postrouting (nat, srcnat)  masquerade DNAT'ed traffic from 127.0.0.0/8 and hairpins
    chain guard (filter, raw)        drop 127.0.0.0/8 arriving on anything but lo (moby#45610)

A container publishing N ports adds N map elements (one per port, whatever the range)
and one hairpin element per family; nothing else. Each element carries its owner tag as
comment, so DEL and GC remove exactly the attachment's elements. The rules are constant:
every ADD flushes and rewrites them in the same transaction (self-repairing), and the
table is deleted when the last element goes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Any

from .errors import FirewallError, PortConflict
from .lock import DEFAULT_NFT_LOCK, file_lock
from .nftcli import NftResult, find_nft, run_nft
from .ports import Forward, Hairpin, PortsPlan, Published, find_conflicts, tag_in_network

FAMILY, NAME = "inet", "netctl-ports"
TABLE = f"{FAMILY} {NAME}"
GUARD_COMMENT = "netctl: 127.0.0.0/8 is reachable from lo only"

#: map/set name -> its declaration
SETS: dict[str, str] = {
    "pm-addr4": "type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service ;",
    "pm-any4": "type inet_proto . inet_service : ipv4_addr . inet_service ;",
    "pm-addr6": "type ipv6_addr . inet_proto . inet_service : ipv6_addr . inet_service ;",
    "pm-any6": "type inet_proto . inet_service : ipv6_addr . inet_service ;",
    "pm-hairpin4": "type ipv4_addr . ipv4_addr ; flags interval ;",
    "pm-hairpin6": "type ipv6_addr . ipv6_addr ; flags interval ;",
}
#: chain -> (hook spec or "" for a regular chain, its rules as ``nft list`` prints them)
CHAINS: dict[str, tuple[str, tuple[str, ...]]] = {
    "ports": (
        "",
        (
            # a specific host address wins over the wildcard (both cannot coexist anyway)
            "dnat ip to ip daddr . meta l4proto . th dport map @pm-addr4",
            "dnat ip to meta l4proto . th dport map @pm-any4",
            # ::1 cannot leave lo (no route_localnet for IPv6): refuse fast instead of hanging
            "ip6 daddr != ::1 dnat ip6 to ip6 daddr . meta l4proto . th dport map @pm-addr6",
            "ip6 daddr != ::1 dnat ip6 to meta l4proto . th dport map @pm-any6",
        ),
    ),
    "prerouting": (
        "type nat hook prerouting priority dstnat ; policy accept ;",
        ("fib daddr type local jump ports",),
    ),
    # nft 1.0.6 accepts the name "dstnat" only on prerouting; -100 is its value
    "output": (
        "type nat hook output priority -100 ; policy accept ;",
        ("fib daddr type local jump ports",),
    ),
    "postrouting": (
        "type nat hook postrouting priority srcnat ; policy accept ;",
        (
            "ct status dnat ip saddr 127.0.0.0/8 masquerade",
            "ct status dnat ip daddr . ip saddr @pm-hairpin4 masquerade",
            "ct status dnat ip6 daddr . ip6 saddr @pm-hairpin6 masquerade",
        ),
    ),
    "guard": (
        "type filter hook prerouting priority raw ; policy accept ;",
        (f'iifname != "lo" ip daddr 127.0.0.0/8 drop comment "{GUARD_COMMENT}"',),
    ),
}


@dataclass(frozen=True)
class PortElement:
    """One element of our maps/sets as listed: key and data fields as strings."""

    set: str
    key: tuple[str, ...]
    data: tuple[str, ...] = ()
    comment: str | None = None


def forward_element(fwd: Forward, tag: str) -> PortElement:
    """The map element of one forward."""
    data = (fwd.container_ip, str(fwd.container_port))
    if fwd.host_ip is None:
        return PortElement(f"pm-any{fwd.family}", (fwd.protocol, str(fwd.host_port)), data, tag)
    key = (fwd.host_ip, fwd.protocol, str(fwd.host_port))
    return PortElement(f"pm-addr{fwd.family}", key, data, tag)


def hairpin_element(hp: Hairpin, tag: str) -> PortElement:
    """The set element that masquerades one container's hairpin traffic."""
    return PortElement(f"pm-hairpin{hp.family}", (hp.container_ip, hp.subnet), (), tag)


def plan_elements(plan: PortsPlan) -> list[PortElement]:
    """Every element an attachment needs."""
    return [forward_element(f, plan.tag) for f in plan.forwards] + [
        hairpin_element(h, plan.tag) for h in plan.hairpins
    ]


def _elem_text(e: PortElement, with_data: bool = True) -> str:
    text = " . ".join(e.key)
    if not with_data:
        return text
    if e.comment:
        text += f' comment "{e.comment}"'
    return text + (" : " + " . ".join(e.data) if e.data else "")


def _grouped(elements: Iterable[PortElement]) -> dict[str, list[PortElement]]:
    out: dict[str, list[PortElement]] = {}
    for e in elements:
        out.setdefault(e.set, []).append(e)
    return out


def _element_lines(verb: str, elements: Iterable[PortElement]) -> list[str]:
    """One ``add``/``delete element`` statement per set, in SETS order."""
    groups = _grouped(elements)
    return [
        f"{verb} element {TABLE} {name} {{ "
        + ", ".join(_elem_text(e, verb == "add") for e in groups[name])
        + " }"
        for name in SETS
        if name in groups
    ]


def skeleton_lines() -> list[str]:
    """Create (or keep) the table, sets and chains, and rewrite the constant rules."""
    lines = [f"add table {TABLE}"]
    lines += [f"add {'map' if ':' in d else 'set'} {TABLE} {n} {{ {d} }}" for n, d in SETS.items()]
    for name, (spec, _rules) in CHAINS.items():
        lines.append(f"add chain {TABLE} {name}" + (f" {{ {spec} }}" if spec else ""))
    for name, (_spec, rules) in CHAINS.items():
        lines.append(f"flush chain {TABLE} {name}")
        lines += [f"add rule {TABLE} {name} {rule}" for rule in rules]
    return lines


@dataclass(frozen=True)
class LivePorts:
    """Our table as ``nft -j list table`` showed it (``exists`` False when absent)."""

    exists: bool = False
    sets: frozenset[str] = frozenset()
    chains: frozenset[str] = frozenset()
    elements: tuple[PortElement, ...] = ()
    #: objects of kinds or names we never create (someone else's): the table then stays
    foreign: int = 0

    def published(self) -> list[Published]:
        """The forwards of every owner (map elements) in driver-neutral form."""
        out = []
        for e in self.elements:
            if not e.set.startswith(("pm-any", "pm-addr")) or len(e.data) != 2:
                continue
            fam = int(e.set[-1])
            host, (proto, port) = (None, e.key) if e.set.startswith("pm-any") else (e.key[0], e.key[1:])
            ip, cport = e.data
            target = f"[{ip}]:{cport}" if fam == 6 else f"{ip}:{cport}"
            out.append(Published(fam, proto, host, int(port), int(port), e.comment, target))
        return out


ABSENT = LivePorts()


def _field(val: Any) -> str:
    if isinstance(val, dict) and "prefix" in val:
        return f"{val['prefix']['addr']}/{val['prefix']['len']}"
    return str(val)


def _fields(val: Any) -> tuple[str, ...]:
    if isinstance(val, dict) and "concat" in val:
        return tuple(_field(v) for v in val["concat"])
    return (_field(val),)


def _parse_elem(set_name: str, item: Any, is_map: bool) -> PortElement:
    key, data = (item[0], item[1]) if is_map else (item, None)
    comment = None
    if isinstance(key, dict) and "elem" in key:
        comment = key["elem"].get("comment")
        key = key["elem"]["val"]
    return PortElement(set_name, _fields(key), _fields(data) if is_map else (), comment)


def parse_live(text: str) -> LivePorts:
    """Parse ``nft -j list table inet netctl-ports``.

    Raises:
        FirewallError: the text is not nft's JSON.
    """
    try:
        items = json.loads(text)["nftables"]
        sets: set[str] = set()
        chains: set[str] = set()
        elements: list[PortElement] = []
        foreign = 0
        exists = False
        for item in items:
            kind, obj = next(iter(item.items()))
            if kind == "table":
                exists = True
            elif kind in ("set", "map") and obj["name"] in SETS:
                sets.add(obj["name"])
                elements += [_parse_elem(obj["name"], e, kind == "map") for e in obj.get("elem", [])]
            elif kind == "chain" and obj["name"] in CHAINS:
                chains.add(obj["name"])
            elif kind not in ("metainfo", "rule"):
                foreign += 1
    except (ValueError, KeyError, TypeError, IndexError, StopIteration) as exc:
        raise FirewallError(f"cannot parse the listing of table {TABLE}", repr(exc)) from None
    return LivePorts(exists, frozenset(sets), frozenset(chains), tuple(elements), foreign)


def parse_chain_rules(text: str) -> dict[str, list[str]]:
    """Chain name -> its lines (hook spec first, if any) from ``nft list table`` text."""
    chains: dict[str, list[str]] = {}
    current: list[str] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if current is None:
            if line.startswith("chain ") and line.endswith("{"):
                current = chains.setdefault(line.split()[1], [])
        elif line == "}":
            current = None
        elif line:
            current.append(line)
    return chains


def render_setup(plan: PortsPlan, live: LivePorts = ABSENT) -> str:
    """The transaction that publishes ``plan`` (replacing the attachment's earlier entries).

    The caller has checked for conflicts (:func:`ports.find_conflicts`).
    """
    lines = skeleton_lines()
    lines += _element_lines("delete", [e for e in live.elements if e.comment == plan.tag])
    lines += _element_lines("add", plan_elements(plan))
    return "\n".join(lines) + "\n"


def render_teardown(live: LivePorts, select: Callable[[str | None], bool]) -> str | None:
    """The transaction removing the elements whose tag ``select`` picks; ``None`` if none.

    When nothing else remains (and nobody else added objects) the table goes too.
    """
    if not live.exists:
        return None
    doomed = [e for e in live.elements if select(e.comment)]
    if len(doomed) == len(live.elements) and not live.foreign:
        return f"delete table {TABLE}\n"
    if not doomed:
        return None
    return "\n".join(_element_lines("delete", doomed)) + "\n"


def _norm_spec(spec: str) -> str:
    return spec.replace(" ;", ";").strip()


def check_plan(plan: PortsPlan, live: LivePorts, chain_text: dict[str, list[str]]) -> list[str]:
    """Differences between the live table and ``plan``; ``[]`` when in sync."""
    if not live.exists:
        return [f"table {TABLE} is missing"]
    problems = [f"set {n} is missing" for n in SETS if n not in live.sets]
    for name, (spec, rules) in CHAINS.items():
        if name not in live.chains:
            problems.append(f"chain {name} is missing")
            continue
        got = chain_text.get(name, [])
        if spec and (not got or _norm_spec(got[0]) != _norm_spec(spec)):
            problems.append(f"chain {name} is not hooked as {_norm_spec(spec)!r}")
        body = got[1:] if spec else got
        if body != list(rules):
            problems.append(f"chain {name} has rules {body}, expected {list(rules)}")
    have = {e for e in live.elements if e.comment == plan.tag}
    want = set(plan_elements(plan))
    problems += [f"{e.set}: element {_elem_text(e)} is missing" for e in sorted(want - have, key=str)]
    problems += [f"{e.set}: stale element {_elem_text(e)}" for e in sorted(have - want, key=str)]
    return problems


class NftPortsDriver:
    """Publishes ports in ``inet netctl-ports`` with ``nft`` in the current namespace."""

    name = "nftables"

    def __init__(self, lock_path: str = DEFAULT_NFT_LOCK, nft: str | None = None) -> None:
        self.lock_path = lock_path
        self._nft = nft or find_nft()

    def setup_ports(self, plan: PortsPlan) -> None:
        """Publish ``plan`` (replacing the attachment's earlier entries) in one transaction.

        Raises:
            PortConflict: another owner publishes one of the host ports (nothing changed).
            FirewallError: nft is missing or refused the transaction.
        """
        with file_lock(self.lock_path):
            live = self.read()
            conflicts = find_conflicts(plan, live.published())
            if conflicts:
                raise PortConflict(conflicts)
            self._apply(render_setup(plan, live), f"publish the ports of {plan.tag!r}")

    def teardown_ports(self, tags: Collection[str]) -> int:
        """Remove the entries carrying one of ``tags``; the number removed (absent is 0).

        Raises:
            FirewallError: nft refused the transaction.
        """
        return self._remove(lambda c: c in tags)

    def gc_ports(self, network: str, keep: Collection[str]) -> int:
        """Remove the entries of ``network`` whose tag is not in ``keep``; the number removed.

        Raises:
            FirewallError: nft refused the transaction.
        """
        return self._remove(lambda c: tag_in_network(c, network) and c not in keep)

    def check_ports(self, plan: PortsPlan) -> list[str]:
        """What differs from ``plan`` (``[]`` = in sync).

        Raises:
            FirewallError: nft is missing or cannot list the table.
        """
        live = self.read()
        if not live.exists:
            return [f"table {TABLE} is missing"]
        text = self._run(["list", "table", FAMILY, NAME])
        return check_plan(plan, live, parse_chain_rules(text.stdout))

    def published(self) -> list[Published]:
        """Every published port in the table (all owners).

        Raises:
            FirewallError: nft cannot list the table.
        """
        return self.read().published() if self._nft else []

    def read(self) -> LivePorts:
        """The live table (``ABSENT`` when it does not exist).

        Raises:
            FirewallError: nft is missing or failed for another reason.
        """
        res = self._run(["-j", "list", "table", FAMILY, NAME])
        if res.returncode != 0:
            if "No such file or directory" in res.stderr:
                return ABSENT
            raise FirewallError(f"nft cannot list table {TABLE}", res.stderr)
        return parse_live(res.stdout)

    def _remove(self, select: Callable[[str | None], bool]) -> int:
        if self._nft is None:
            return 0  # without nft nothing can have been published by this driver
        with file_lock(self.lock_path):
            live = self.read()
            script = render_teardown(live, select)
            if script:
                self._apply(script, f"remove published ports from table {TABLE}")
        return sum(1 for e in live.elements if select(e.comment))

    def _apply(self, script: str, what: str) -> None:
        res = self._run(["-f", "-"], script)
        if res.returncode != 0:
            raise FirewallError(f"failed to {what}: nft rejected the transaction", res.stderr)

    def _run(self, args: list[str], stdin: str | None = None) -> NftResult:
        if self._nft is None:
            raise FirewallError("nftables driver: the 'nft' command is not installed")
        return run_nft(self._nft, args, stdin)
