"""Subnets for networks created without ``--subnet``, and overlap checks for explicit ones.

:func:`pick_subnet` and :func:`check_overlap` are pure: they look at the subnets of the
existing networks and at the prefixes present in the host namespace, which
:func:`probe_host_prefixes` reads (the only function here that touches the kernel).

Default pools, as Docker's (``libnetwork/ipamutils``): 172.17.0.0/16 ... 172.31.0.0/16 as
/16s, then 192.168.0.0/16 as /20s. For IPv6, as Docker since v27: a ULA /48 whose global
ID is derived from the host's identity (stable across restarts, different per host), cut
into /64s.

A candidate is skipped when it overlaps an existing network or a host address or route
(the classic case: a VPN pushes 172.17.0.0/16 and a new bridge would hijack it; moby's
"could not find an available, non-overlapping IPv4 address pool" is the other side of
this). Default routes (prefix length 0) overlap everything and are ignored.
"""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from netaddr import AddrFormatError, IPNetwork

from .errors import ConfigError, PoolExhausted, SubnetOverlap
from .ranges import parse_subnet


@dataclass(frozen=True)
class Pool:
    """A base prefix cut into subnets of ``size`` (a prefix length)."""

    base: str
    size: int


@dataclass(frozen=True)
class HostPrefix:
    """A prefix in use in the host namespace and where it comes from (for messages)."""

    prefix: str
    #: "host route 10.8.0.0/24 via 192.168.1.1 dev tun0", "host address 192.168.1.5/24 on eth0"
    source: str


DEFAULT_POOLS_V4: tuple[Pool, ...] = (
    Pool("172.17.0.0/16", 16),
    Pool("172.18.0.0/16", 16),
    Pool("172.19.0.0/16", 16),
    Pool("172.20.0.0/14", 16),
    Pool("172.24.0.0/14", 16),
    Pool("172.28.0.0/14", 16),
    Pool("192.168.0.0/16", 20),
)


def ula_pool(host_id: str) -> Pool:
    """A ULA /48 (RFC 4193: fd + 40-bit global ID) derived from ``host_id``, cut into /64s."""
    gid = hashlib.sha256(host_id.encode()).digest()[:5]
    words = [0xFD00 | gid[0], (gid[1] << 8) | gid[2], (gid[3] << 8) | gid[4]]
    return Pool(f"{words[0]:x}:{words[1]:x}:{words[2]:x}::/48", 64)


def host_id() -> str:
    """This machine's identity (/etc/machine-id, else the host name)."""
    try:
        with open("/etc/machine-id") as fh:
            ident = fh.read().strip()
        if ident:
            return ident
    except OSError:
        pass
    return socket.gethostname()


def default_pools(family: int) -> tuple[Pool, ...]:
    """The pools :func:`pick_subnet` uses when the caller gives none."""
    if family == 4:
        return DEFAULT_POOLS_V4
    if family == 6:
        return (ula_pool(host_id()),)
    raise ValueError(f"family must be 4 or 6, not {family!r}")


def _as_host_prefix(item: str | HostPrefix) -> HostPrefix:
    if isinstance(item, HostPrefix):
        return item
    return HostPrefix(item, f"host prefix {item}")


def _parse_any(text: str, owner: str) -> IPNetwork:
    try:
        return IPNetwork(text).cidr
    except (AddrFormatError, ValueError, TypeError):
        raise ConfigError(f"invalid subnet {text!r} of {owner}") from None


def _in_use(existing: Mapping[str, Sequence[str]],
            host_prefixes: Iterable[str | HostPrefix]) -> list[tuple[IPNetwork, str]]:
    """Every prefix a new subnet must not overlap, with a description for messages."""
    used: list[tuple[IPNetwork, str]] = []
    for name, subnets in existing.items():
        for text in subnets:
            used.append((_parse_any(text, f"network {name!r}"), f"network {name!r} ({text})"))
    for item in host_prefixes:
        hp = _as_host_prefix(item)
        net = _parse_any(hp.prefix, hp.source)
        if net.prefixlen == 0:
            continue  # a default route overlaps everything: it never blocks a subnet
        used.append((net, hp.source))
    return used


def _overlap(net: IPNetwork, used: list[tuple[IPNetwork, str]]) -> tuple[IPNetwork, str] | None:
    for other, what in used:
        if other.version == net.version and other.first <= net.last and net.first <= other.last:
            return other, what
    return None


def pick_subnet(
    existing: Mapping[str, Sequence[str]],
    host_prefixes: Iterable[str | HostPrefix],
    family: int = 4,
    pools: Sequence[Pool] | None = None,
) -> str:
    """The first subnet of the pools that overlaps no network and no host prefix.

    ``existing`` maps network names to their subnets; ``host_prefixes`` are CIDR strings or
    :class:`HostPrefix` (what :func:`probe_host_prefixes` returns).

    Raises:
        PoolExhausted: every candidate is taken (code 110).
        ConfigError: an existing subnet or host prefix is not a CIDR.
    """
    used = _in_use(existing, host_prefixes)
    for pool in pools if pools is not None else default_pools(family):
        base = IPNetwork(pool.base)
        if base.version != family:
            continue
        step = 1 << ((32 if family == 4 else 128) - pool.size)
        first = base.first
        while first + step - 1 <= base.last:
            cand = IPNetwork((first, pool.size), version=family)
            hit = _overlap(cand, used)
            if hit is None:
                return str(cand)
            # jump past whatever blocked us (a /8 VPN route skips a whole pool at once)
            after = max(first + step, hit[0].last + 1)
            first = base.first + -(-(after - base.first) // step) * step
    raise PoolExhausted(
        f"could not find an available, non-overlapping IPv{family} address pool among "
        "the defaults to assign to the network",
        f"{len(used)} subnets and host prefixes in use; pass an explicit subnet")


def check_overlap(
    subnet: str,
    existing: Mapping[str, Sequence[str]],
    host_prefixes: Iterable[str | HostPrefix],
) -> None:
    """Refuse an explicit subnet that overlaps another network or a host address or route.

    Raises:
        ConfigError: ``subnet`` is not a CIDR network address.
        SubnetOverlap: naming the network or the host route/address it overlaps (code 7).
    """
    net = IPNetwork(str(parse_subnet(subnet)))
    hit = _overlap(net, _in_use(existing, host_prefixes))
    if hit is not None:
        raise SubnetOverlap(f"subnet {subnet} overlaps with {hit[1]}")


# route types (rtnetlink.h) that make a prefix "in use"; local/broadcast/multicast do not
_ROUTE_TYPES = {1: "", 6: "blackhole ", 7: "unreachable ", 8: "prohibit "}
_LOCAL_TABLE = 255


def probe_host_prefixes(netns: str | None = None) -> list[HostPrefix]:
    """The addresses and routes of the current namespace (or of ``netns``, a path).

    Reads every routing table but the local one, so policy-routed VPN routes count
    (WireGuard's and Tailscale's own tables). Link-local and loopback prefixes are left
    out: they never collide with a pool.

    Raises:
        OSError: when the namespace cannot be opened.
    """
    # pyroute2 costs ~200 ms to import: only `netctl network create` without --subnet
    # pays for it, never a plugin call
    from pyroute2 import IPRoute

    found: list[HostPrefix] = []
    ipr = IPRoute(netns=netns) if netns else IPRoute()
    with ipr:
        names = {link["index"]: link.get("ifname") or str(link["index"]) for link in ipr.get_links()}
        for msg in ipr.get_addr():
            addr, plen = msg.get("address"), msg["prefixlen"]
            if not addr:
                continue
            net = IPNetwork(f"{addr}/{plen}")
            if net.is_loopback() or net.is_link_local():
                continue
            found.append(HostPrefix(str(net.cidr),
                                    f"host address {addr}/{plen} on {names.get(msg['index'], '?')}"))
        for fam in (socket.AF_INET, socket.AF_INET6):
            for msg in ipr.route("dump", family=fam):
                table = msg.get("table")
                kind = _ROUTE_TYPES.get(msg["type"])
                if kind is None or table == _LOCAL_TABLE or not msg.get("dst"):
                    continue
                net = IPNetwork(f"{msg.get('dst')}/{msg['dst_len']}")
                if net.prefixlen == 0 or net.is_link_local() or net.is_loopback():
                    continue
                desc = f"host route {kind}{net}"
                if msg.get("gateway"):
                    desc += f" via {msg.get('gateway')}"
                if msg.get("oif"):
                    desc += f" dev {names.get(msg.get('oif'), msg.get('oif'))}"
                if table not in (None, 254):
                    desc += f" table {table}"
                found.append(HostPrefix(str(net), desc))
    return found
