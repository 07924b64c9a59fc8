"""Choosing addresses and subnets for overlays (pure: no store, no kernel)."""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable, Iterator

from .model import VNI_FIRST, VNI_LAST

#: overlays get /24s out of 10.0.0.0/8 when created without --subnet (Docker swarm's
#: default address pool), skipping every subnet in use here or in the cluster
DEFAULT_POOL = "10.0.0.0/8"
DEFAULT_PREFIX = 24


class Exhausted(Exception):
    """No address (or VNI, or subnet) is left."""


def candidates(subnet: str, gateway: str, taken: Iterable[str], seed: str) -> Iterator[str]:
    """Free host addresses of ``subnet``, starting at a point derived from ``seed`` (the
    container ID) and wrapping around: concurrent ADDs on several hosts mostly try
    different addresses first, so a transaction rarely loses and has to retry. The
    network, broadcast and gateway addresses are never offered."""
    net = ipaddress.ip_network(subnet)
    used = {ipaddress.ip_address(a) for a in taken}
    used.add(ipaddress.ip_address(gateway))
    first, last = int(net.network_address) + 1, int(net.broadcast_address) - 1
    size = last - first + 1
    if size <= 0:
        return
    start = int.from_bytes(hashlib.sha256(seed.encode()).digest()[:8], "big") % size
    for i in range(size):
        addr = ipaddress.ip_address(first + (start + i) % size)
        if addr not in used:
            yield str(addr)


def next_vni(used: Iterable[int]) -> int:
    """The lowest free VNI from 4096. Raises: Exhausted."""
    taken = set(used)
    for vni in range(VNI_FIRST, VNI_LAST + 1):
        if vni not in taken:
            return vni
    raise Exhausted("no free VXLAN network identifier")


def pick_subnet(in_use: Iterable[str], pool: str = DEFAULT_POOL, prefix: int = DEFAULT_PREFIX) -> str:
    """The first /24 of the pool that overlaps nothing in ``in_use``. Raises: Exhausted."""
    used = [ipaddress.ip_network(s, strict=False) for s in in_use]
    for cand in ipaddress.ip_network(pool).subnets(new_prefix=prefix):
        if not any(cand.overlaps(u) for u in used):
            return str(cand)
    raise Exhausted(f"could not find an available, non-overlapping subnet for an overlay in {pool}")


def overlapping(subnet: str, others: dict[str, str]) -> str | None:
    """The name of the first network in ``others`` (name → subnet) overlapping ``subnet``."""
    net = ipaddress.ip_network(subnet)
    for name, other in sorted(others.items()):
        if net.overlaps(ipaddress.ip_network(other)):
            return name
    return None
