"""Immutable snapshot of everything dnsd answers locally, scoped by requester.

Modelled on aardvark-dns ``backend/mod.rs``: the asking container is identified by its
source address; it sees the union of the names on every network it is attached to. An
unknown source (the host, a container whose entry is not written yet) sees only the
networks of the listener that received the query, and only if its address lies in one
of their subnets; anything else gets no scope at all (REFUSED): dnsd is not an open
resolver even when the host routes foreign packets to a gateway address.

A ``Records`` is built once per reload and never mutated; the server swaps one
reference (style.md 4.3). Names are stored in lower-cased DNS wire form so that the fast
path looks them up straight from the packet bytes.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dnsd import wire
from dnsd.config import FileCache, read_config
from dnsd.upstreams import Upstream, parse_upstream

log = logging.getLogger(__name__)

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
#: (A records, AAAA records) of one name, each a complete answer RR in wire form
#: (owner = pointer to the question, TTL wire.LOCAL_TTL): the fast path joins them as
#: they are. The address is the RR's rdata, ``rr[12:]``.
Addrs = tuple[tuple[bytes, ...], tuple[bytes, ...]]


@dataclass(frozen=True)
class Network:
    """One DNS-enabled network and its names."""

    name: str
    #: the network name as a wire-format suffix, for ``name.<network>``; None if not a DNS name
    wire_name: bytes | None
    #: no forwarding for containers that are only on internal networks
    internal: bool
    #: gateway addresses dnsd listens on for this network
    listen: tuple[str, ...]
    subnets: tuple[IPNetwork, ...]
    #: the network's own upstream servers (empty: host resolv.conf)
    upstreams: tuple[Upstream, ...]
    #: wire name -> addresses; a shared alias maps to all its containers' addresses
    names: Mapping[bytes, Addrs]
    #: reverse (PTR) wire name -> PTR answer RRs (target ``<container name>.<network>.``)
    reverse: Mapping[bytes, tuple[bytes, ...]]


@dataclass(frozen=True)
class Scope:
    """What one requester may see, and where its other queries go."""

    networks: tuple[Network, ...]
    #: container or network upstreams for this requester; empty = host resolv.conf
    upstreams: tuple[Upstream, ...]
    #: False when every network in scope is internal: nothing is forwarded
    forward: bool


@dataclass(frozen=True)
class Records:
    """The snapshot. All mappings are built once and never mutated."""

    networks: Mapping[str, Network]
    #: container source address (as ``recvfrom`` prints it) -> its scope
    by_requester: Mapping[str, Scope]
    #: listen address -> scope of the networks listening there (for unknown sources)
    by_listener: Mapping[str, Scope]
    #: every address dnsd must listen on
    listen_ips: frozenset[str]
    #: what was skipped while building (invalid names, addresses, upstreams)
    problems: tuple[str, ...] = ()
    #: memo of unknown source -> allowed?, per (listener, source); bounded, see scope()
    _unknown: dict[tuple[str, str], bool] = field(default_factory=dict, compare=False, repr=False)

    def scope(self, requester: str, listener: str) -> Scope | None:
        """The requester's scope; None if it is neither a container nor in a listener subnet."""
        s = self.by_requester.get(requester)
        if s is not None:
            return s
        s = self.by_listener.get(listener)
        if s is None:
            return None
        key = (listener, requester)
        allowed = self._unknown.get(key)
        if allowed is None:
            allowed = _in_subnets(requester, s.networks)
            if len(self._unknown) > 4096:  # a memo, not a leak: flooders get recomputed
                self._unknown.clear()
            self._unknown[key] = allowed
        return s if allowed else None

    # --- text API (tests, tools); the server uses the wire-level functions below ---

    def lookup(self, requester_ip: str, listener_ip: str, qname: str, qtype: int) -> list[str] | None:
        """Addresses of ``qname`` for an A (1) or AAAA (28) query, as the requester sees them.

        Returns None if the name is unknown in the requester's scope (the server would
        forward it), ``[]`` if it is known but has no address of that family (the server
        answers an empty NOERROR). Order is configuration order, without rotation.
        """
        scope = self.scope(requester_ip, listener_ip)
        key = wire.encode_name(qname)
        if scope is None or key is None:
            return None
        addrs = find_name(scope, key)
        if addrs is None:
            return None
        if qtype == wire.T_A:
            return [str(ipaddress.IPv4Address(rr[12:])) for rr in addrs[0]]
        if qtype == wire.T_AAAA:
            return [str(ipaddress.IPv6Address(rr[12:])) for rr in addrs[1]]
        return []

    def reverse(self, requester_ip: str, listener_ip: str, ip: str) -> list[str]:
        """PTR names (``name.network.``) of ``ip`` visible to the requester; [] if none."""
        scope = self.scope(requester_ip, listener_ip)
        key = wire.encode_name(ipaddress.ip_address(ip).reverse_pointer)
        if scope is None or key is None:
            return []
        return [wire.decode_name(rr[12:]) for rr in find_reverse(scope, key)]


def find_name(scope: Scope, key: bytes) -> Addrs | None:
    """Addresses of a wire name in scope: union over networks, duplicates removed.

    Falls back to ``name.<network>`` when the full name is not found.
    """
    nets = scope.networks
    if len(nets) == 1:
        hit = nets[0].names.get(key)
    else:
        hit = _merge([n.names.get(key) for n in nets])
    if hit is not None:
        return hit
    for prefix, suffix in wire.label_splits(key):
        found = [n.names.get(prefix) for n in nets if n.wire_name == suffix]
        hit = _merge(found)
        if hit is not None:
            return hit
    return None


def find_reverse(scope: Scope, key: bytes) -> tuple[bytes, ...]:
    """PTR answer RRs of a reverse wire name in scope (empty if none)."""
    out: list[bytes] = []
    for n in scope.networks:
        for target in n.reverse.get(key, ()):
            if target not in out:
                out.append(target)
    return tuple(out)


def in_local_reverse_zone(scope: Scope, key: bytes) -> bool:
    """True if a reverse name is inside one of the scope's subnets.

    Such a name that has no PTR gets NXDOMAIN locally instead of being forwarded: the
    upstream cannot know our private addresses (RFC 6303 spirit), and it saves a
    round trip to the outside.
    """
    ip = _reverse_to_ip(key)
    return ip is not None and any(ip in s for n in scope.networks for s in n.subnets)


def _merge(found: list[Addrs | None]) -> Addrs | None:
    hits = [f for f in found if f is not None]
    if not hits:
        return None
    if len(hits) == 1:
        return hits[0]
    v4 = tuple(dict.fromkeys(a for h in hits for a in h[0]))  # aardvark-dns#120: no duplicates
    v6 = tuple(dict.fromkeys(a for h in hits for a in h[1]))
    return v4, v6


def _in_subnets(ip: str, networks: Iterable[Network]) -> bool:
    try:
        addr = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return False
    return any(addr in s for n in networks for s in n.subnets)


def _reverse_to_ip(key: bytes) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    labels = wire.decode_name(key).rstrip(".").split(".")
    try:
        if labels[-2:] == ["in-addr", "arpa"] and len(labels) == 6:
            return ipaddress.IPv4Address(".".join(reversed(labels[:4])))
        if labels[-2:] == ["ip6", "arpa"] and len(labels) == 34:
            nibbles = "".join(reversed(labels[:32]))
            return ipaddress.IPv6Address(int(nibbles, 16))
    except ValueError:
        return None
    return None


# --- building --------------------------------------------------------------------------


def _str_list(obj: dict[str, Any], key: str) -> list[str]:
    value = obj.get(key, [])
    if not isinstance(value, list):
        raise ValueError(f"{key!r} is not a list")
    return [v for v in value if isinstance(v, str)]


def _upstreams(values: Iterable[str], where: str, warn: Callable[[str], None]) -> tuple[Upstream, ...]:
    out = []
    for v in values:
        try:
            out.append(parse_upstream(v))
        except ValueError as exc:
            warn(f"{where}: {exc}")
    return tuple(dict.fromkeys(out))


@dataclass(frozen=True)
class _Compiled:
    """One entry file turned into wire-ready pieces (memoised across reloads)."""

    cid: str
    keys: tuple[bytes, ...] = ()
    a_rrs: tuple[bytes, ...] = ()
    aaaa_rrs: tuple[bytes, ...] = ()
    #: (reverse wire name, PTR answer RR)
    ptrs: tuple[tuple[bytes, bytes], ...] = ()
    #: addresses as recvfrom() reports a source: the compressed text form, on which
    #: ipaddress and inet_ntop agree (IPv4-mapped addresses aside, never used here)
    ips: tuple[str, ...] = ()
    upstreams: tuple[Upstream, ...] = ()
    problems: tuple[str, ...] = ()


#: memo of compiled entries: (network, internal, id(entry object)) -> (entry, compiled).
#: The entry object is kept so its id cannot be reused while the memo holds it.
Memo = dict[tuple[str, bool, int], tuple[dict[str, Any], _Compiled]]


def build_records(
    networks: Mapping[str, dict[str, Any]],
    entries: Mapping[str, list[dict[str, Any]]],
    memo: Memo | None = None,
) -> Records:
    """Build a snapshot from raw network and entry objects (see ``config.read_config``).

    Invalid values are skipped, never raised: one bad file must not take DNS away from
    every other container. The problems are in ``Records.problems``. With ``memo``
    (kept by ``Loader``), entries whose JSON object is unchanged since the last build
    (``FileCache`` returns the same object) are not recompiled: a reload with 1000
    containers then costs a few milliseconds instead of ~100.
    """
    problems: list[str] = []
    new_memo: Memo = {}
    nets: dict[str, Network] = {}
    containers: dict[str, _Container] = {}
    for name, obj in networks.items():
        try:
            listen = tuple(str(ipaddress.ip_address(a)) for a in _str_list(obj, "listen"))
            subnets = tuple(ipaddress.ip_network(s, strict=False) for s in _str_list(obj, "subnets"))
        except ValueError as exc:
            problems.append(f"network {name}: skipped: {exc}")
            continue
        internal = bool(obj.get("internal", False))
        ups = _upstreams(_str_list(obj, "upstreams"), f"network {name}", problems.append)
        net_wire = wire.encode_name(name)
        names: dict[bytes, tuple[list[bytes], list[bytes]]] = {}
        reverse: dict[bytes, list[bytes]] = {}
        for entry in entries.get(name, []):
            mkey = (name, internal, id(entry))
            hit = memo.get(mkey) if memo is not None else None
            if hit is not None and hit[0] is entry:
                compiled = hit[1]
            else:
                compiled = _compile_entry(name, net_wire, internal, entry)
            new_memo[mkey] = (entry, compiled)
            problems.extend(compiled.problems)
            for key in compiled.keys:
                slot = names.setdefault(key, ([], []))
                slot[0].extend(compiled.a_rrs)
                slot[1].extend(compiled.aaaa_rrs)
            for rkey, ptr in compiled.ptrs:
                reverse.setdefault(rkey, []).append(ptr)
            if compiled.ips:
                ctr = containers.setdefault(compiled.cid, _Container())
                ctr.networks.append(name)
                ctr.ips.extend(compiled.ips)
                ctr.upstreams.extend(compiled.upstreams)
        nets[name] = Network(
            name=name,
            wire_name=net_wire if net_wire != b"\x00" else None,
            internal=internal,
            listen=listen,
            subnets=subnets,
            upstreams=ups,
            names={k: (_unique(a), _unique(aaaa)) for k, (a, aaaa) in names.items()},
            reverse={k: _unique(v) for k, v in reverse.items()},
        )
    if memo is not None:
        memo.clear()
        memo.update(new_memo)

    scopes: dict[tuple[tuple[str, ...], tuple[Upstream, ...]], Scope] = {}

    def make_scope(members: list[Network], container_ups: Iterable[Upstream] = ()) -> Scope:
        """One shared Scope per distinct (networks, container upstreams)."""
        key = (tuple(n.name for n in members), tuple(dict.fromkeys(container_ups)))
        scope = scopes.get(key)
        if scope is None:
            external = [n for n in members if not n.internal]
            ups = key[1] or tuple(dict.fromkeys(u for n in external for u in n.upstreams))
            scope = scopes[key] = Scope(tuple(members), ups, bool(external))
        return scope

    # aardvark-dns config/mod.rs: every address of a container maps to *all* networks of
    # that container (by container ID), so a container on net1 and net2 sees both
    # whichever of its addresses it asks from
    ip_nets: dict[str, list[str]] = {}
    ip_ups: dict[str, list[Upstream]] = {}
    for ctr in containers.values():
        for ip in ctr.ips:
            ip_nets.setdefault(ip, []).extend(ctr.networks)
            ip_ups.setdefault(ip, []).extend(ctr.upstreams)
    by_requester = {
        ip: make_scope([nets[n] for n in dict.fromkeys(names)], ip_ups[ip])
        for ip, names in ip_nets.items()
    }
    listeners: dict[str, list[Network]] = {}
    for net in nets.values():
        for ip in net.listen:
            listeners.setdefault(ip, []).append(net)
    by_listener = {ip: make_scope(members) for ip, members in listeners.items()}
    return Records(
        networks=nets,
        by_requester=by_requester,
        by_listener=by_listener,
        listen_ips=frozenset(listeners),
        problems=tuple(problems),
    )


def _unique(items: list[bytes]) -> tuple[bytes, ...]:
    """Duplicates removed (aardvark-dns#120: nginx rejects doubled A records), order kept."""
    return tuple(items) if len(items) < 2 else tuple(dict.fromkeys(items))


@dataclass
class _Container:
    """Build-time accumulator: one container across all its networks."""

    networks: list[str] = field(default_factory=list)
    ips: list[str] = field(default_factory=list)
    upstreams: list[Upstream] = field(default_factory=list)


def _compile_entry(net: str, net_wire: bytes | None, internal: bool, entry: dict[str, Any]) -> _Compiled:
    """Wire-ready pieces of one entry; problems are recorded, never raised."""
    cid = entry.get("id")
    # without an ID the entry stands alone (cannot be joined with its other networks)
    cid = cid if isinstance(cid, str) and cid else f"\0{id(entry)}"
    problems: list[str] = []
    try:
        v4 = [ipaddress.IPv4Address(a.split("/", 1)[0]) for a in _str_list(entry, "ipv4")]
        v6 = [ipaddress.IPv6Address(a.split("/", 1)[0]) for a in _str_list(entry, "ipv6")]
        texts = _str_list(entry, "names")
    except ValueError as exc:
        return _Compiled(cid, problems=(f"network {net}: entry {entry.get('id')} skipped: {exc}",))
    keys = []
    for text in texts:
        key = wire.encode_name(text)
        if key is None or key == b"\x00" or any(c.isspace() for c in text):
            problems.append(f"network {net}: invalid name {text!r} ignored")
        elif key not in keys:
            keys.append(key)
    ptrs = []
    if keys:
        # docker: PTR -> "<first DNS name>.<network>"; that name resolves forward too
        target = keys[0][:-1] + net_wire if net_wire and net_wire != b"\x00" else keys[0]
        if len(target) > 255:
            target = keys[0]
        ptr_rr = wire.rr_bytes(wire.T_PTR, target)
        for addr in (*v4, *v6):
            rkey = wire.encode_name(addr.reverse_pointer)
            if rkey is not None:
                ptrs.append((rkey, ptr_rr))
    ups: tuple[Upstream, ...] = ()
    if not internal:  # as aardvark: no custom servers through internal networks
        ups = _upstreams(_str_list(entry, "upstreams"), f"network {net} entry {cid}", problems.append)
    return _Compiled(
        cid=cid,
        keys=tuple(keys),
        a_rrs=tuple(wire.rr_bytes(wire.T_A, a.packed) for a in v4),
        aaaa_rrs=tuple(wire.rr_bytes(wire.T_AAAA, a.packed) for a in v6),
        ptrs=tuple(ptrs),
        ips=tuple(str(a) for a in (*v4, *v6)),
        upstreams=ups,
        problems=tuple(problems),
    )


class Loader:
    """Builds snapshots from a directory, re-reading only changed files."""

    def __init__(self, dns_dir: str) -> None:
        self.dns_dir = dns_dir
        self.cache = FileCache()
        self.memo: Memo = {}
        self._reported: set[str] = set()

    def load(self) -> Records:
        """Read the directory and build a fresh snapshot; never raises on bad files."""
        networks, entries = read_config(self.dns_dir, self.cache)
        records = build_records(networks, entries, self.memo)
        problems = {f"{path}: ignored: {err}" for path, err in self.cache.errors.items()}
        problems.update(records.problems)
        for msg in sorted(problems - self._reported):  # once per problem, not per reload
            log.warning("%s", msg)
        self._reported = problems
        return records


def load_records(dns_dir: str) -> Records:
    """One-shot snapshot of ``dns_dir`` (the server keeps a ``Loader`` instead)."""
    return Loader(dns_dir).load()


EMPTY = build_records({}, {})
