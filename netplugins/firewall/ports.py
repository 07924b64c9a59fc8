"""Published ports, pure: one attachment's port mappings in, DNAT entries out.

A mapping ``hostPort -> containerPort/proto`` on ``hostIP`` becomes one ``Forward`` per IP
family it applies to: ``hostIP`` empty means every local address of every family the
container has an address of; ``0.0.0.0`` / ``::`` mean every local address of one family;
any other address means that address only. ``Hairpin`` entries masquerade DNAT'ed traffic
that comes from the container's own subnet (the container itself or a neighbour calling a
host address), so that replies come back through the host.

Everything of one attachment carries the owner tag ``netctl net=<network> cid=<id>
if=<ifname>`` (:func:`attachment_tag`), so DEL, CHECK and GC find it in the live rules
without the runtime's configuration. The drivers (``ports_nft.py``, ``ports_ipt.py``)
render these values; conflicts are decided here (:func:`find_conflicts`), on what a
driver read back from the kernel (``Published``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .errors import FirewallError
from .plan import OWNER_PREFIX, parse_owner, validate_network_name

PROTOCOLS = ("tcp", "udp", "sctp")
#: nft refuses comments longer than this (iptables allows 256): every tag must fit
TAG_LIMIT = 128
#: longest network name kept verbatim in a tag; longer ones are abbreviated with a hash
_NET_FIELD_MAX = 40
#: wildcard host addresses that select one family ("" selects every family)
WILDCARDS = {"0.0.0.0": 4, "::": 6}
LOOPBACK = {4: "127.0.0.0/8", 6: "::1/128"}


def _abbreviate(value: str, size: int) -> str:
    """``value`` cut to ``size`` chars, the tail replaced by ``~`` and a hash of the whole."""
    import hashlib  # lazy: only long names and IDs need it, and it loads OpenSSL

    digest = hashlib.sha256(value.encode()).hexdigest()[:8]
    return value[: max(size - 9, 1)] + "~" + digest


def tag_network_field(network: str) -> str:
    """The ``net=`` value of ``network``'s tags: the name, or an abbreviation if long."""
    return network if len(network) <= _NET_FIELD_MAX else _abbreviate(network, _NET_FIELD_MAX)


def attachment_tag(network: str, container_id: str, ifname: str) -> str:
    """The owner tag of one attachment's port entries (at most ``TAG_LIMIT`` chars).

    Long container IDs (and networks over 40 chars) are abbreviated deterministically,
    so the same attachment always gets the same tag.

    Raises:
        FirewallError: an invalid network name, or an ID/ifname with blanks or quotes.
    """
    validate_network_name(network)
    for what, value in (("container ID", container_id), ("interface name", ifname)):
        if not value or any(c.isspace() or c in "\"'\\" for c in value):
            raise FirewallError(f"invalid {what} {value!r} for a firewall owner tag")
    net = tag_network_field(network)
    room = TAG_LIMIT - len(f"{OWNER_PREFIX} net={net} cid= if={ifname}")
    cid = container_id if len(container_id) <= room else _abbreviate(container_id, room)
    return f"{OWNER_PREFIX} net={net} cid={cid} if={ifname}"


def tag_in_network(tag: str | None, network: str) -> bool:
    """True when ``tag`` is an attachment tag (it has ``cid=``) of ``network``."""
    owner = parse_owner(tag)
    return owner is not None and owner.cid is not None and owner.network == tag_network_field(network)


def _ip(text: str, what: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise FirewallError(f"invalid {what} {text!r}") from None


@dataclass(frozen=True)
class PortMapping:
    """One ``runtimeConfig.portMappings`` entry, validated and normalised."""

    host_port: int
    container_port: int
    protocol: str = "tcp"
    #: "" = every host address; otherwise a normalised address (``0.0.0.0``/``::`` = one family)
    host_ip: str = ""

    def __post_init__(self) -> None:
        for what in ("host_port", "container_port"):
            value = getattr(self, what)
            # bool is an int in Python; a JSON true is not a port
            if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
                raise FirewallError(f"invalid {what.replace('_', ' ')} {value!r}: use 1-65535")
        if self.protocol not in PROTOCOLS:
            raise FirewallError(f"invalid protocol {self.protocol!r}: use tcp, udp or sctp")
        if self.host_ip:
            object.__setattr__(self, "host_ip", str(_ip(self.host_ip, "host IP")))

    def __str__(self) -> str:
        host = f"[{self.host_ip}]" if ":" in self.host_ip else self.host_ip
        return f"{host + ':' if host else ''}{self.host_port}->{self.container_port}/{self.protocol}"


@dataclass(frozen=True)
class Forward:
    """One DNAT entry of one family: a host port (on one address or all) to the container."""

    family: int
    protocol: str
    #: ``None`` = every local address of the family
    host_ip: str | None
    host_port: int
    container_ip: str
    container_port: int

    def describe(self) -> str:
        """``8080/tcp`` or ``127.0.0.1:8080/tcp`` (for messages)."""
        if self.host_ip is None:
            return f"{self.host_port}/{self.protocol}"
        host = f"[{self.host_ip}]" if self.family == 6 else self.host_ip
        return f"{host}:{self.host_port}/{self.protocol}"


@dataclass(frozen=True)
class Hairpin:
    """Masquerade DNAT'ed traffic from ``subnet`` to ``container_ip`` (hairpin, neighbours)."""

    family: int
    container_ip: str
    subnet: str


@dataclass(frozen=True)
class PortsPlan:
    """What one attachment publishes, in both families, with its owner tag."""

    network: str
    container_id: str
    ifname: str
    tag: str
    forwards: tuple[Forward, ...]
    hairpins: tuple[Hairpin, ...] = ()
    #: masquerade where replies would otherwise bypass the host (hairpin, 127.0.0.1)
    snat: bool = True

    @property
    def families(self) -> tuple[int, ...]:
        """IP families with at least one forward."""
        return tuple(f for f in (4, 6) if any(fw.family == f for fw in self.forwards))

    @property
    def localnet(self) -> bool:
        """Whether an IPv4 forward answers on 127.0.0.1 (then the bridge needs route_localnet)."""
        return self.snat and any(
            fw.family == 4
            and (fw.host_ip is None or ipaddress.ip_address(fw.host_ip).is_loopback)
            for fw in self.forwards
        )


@dataclass(frozen=True)
class Published:
    """A forward read back from the live rules: a host port range with its owner tag."""

    family: int
    protocol: str
    host_ip: str | None
    port_lo: int
    port_hi: int
    #: the owner tag; ``None`` for an entry someone else wrote
    tag: str | None
    #: where it goes, "addr:port" (for messages and CHECK)
    target: str = ""


def plan_ports(
    network: str,
    container_id: str,
    ifname: str,
    mappings: Sequence[PortMapping],
    addresses: Sequence[str],
    *,
    snat: bool = True,
) -> PortsPlan:
    """The forwards and hairpin entries of one attachment.

    ``addresses`` are the container's addresses in CIDR form (the first of each family
    is used). A mapping whose ``hostIP`` is of a family the container has no address of
    is refused; an empty ``hostIP`` covers the families the container has.

    Raises:
        FirewallError: bad names, no container address, or a family mismatch.
    """
    tag = attachment_tag(network, container_id, ifname)
    ips: dict[int, ipaddress.IPv4Interface | ipaddress.IPv6Interface] = {}
    for cidr in addresses:
        try:
            iface = ipaddress.ip_interface(cidr)
        except ValueError:
            raise FirewallError(f"invalid container address {cidr!r}") from None
        ips.setdefault(iface.version, iface)
    if not ips:
        raise FirewallError(f"container {container_id} has no IP address on {ifname}")
    forwards: list[Forward] = []
    for m in mappings:
        if not m.host_ip:
            fams: tuple[int, ...] = tuple(sorted(ips))
            host: str | None = None
        elif m.host_ip in WILDCARDS:
            fams, host = (WILDCARDS[m.host_ip],), None
        else:
            fams, host = (ipaddress.ip_address(m.host_ip).version,), m.host_ip
        for fam in fams:
            if fam not in ips:
                raise FirewallError(
                    f"cannot publish {m}: the container has no IPv{fam} address on {ifname}"
                )
            if host is not None and fam == 6 and ipaddress.ip_address(host).is_loopback:
                # Linux never routes ::1 to another interface (no route_localnet for IPv6)
                raise FirewallError(f"cannot publish {m}: ::1 cannot be forwarded to a container")
            fwd = Forward(fam, m.protocol, host, m.host_port, str(ips[fam].ip), m.container_port)
            if fwd not in forwards:
                forwards.append(fwd)
    used = {f.family for f in forwards}
    hairpins = tuple(
        Hairpin(fam, str(ips[fam].ip), str(ips[fam].network)) for fam in sorted(used) if snat
    )
    return PortsPlan(network, container_id, ifname, tag, tuple(forwards), hairpins, snat)


def _overlap(fwd: Forward, family: int, proto: str, host_ip: str | None, lo: int, hi: int) -> bool:
    if fwd.family != family or fwd.protocol != proto or not lo <= fwd.host_port <= hi:
        return False
    return fwd.host_ip is None or host_ip is None or fwd.host_ip == host_ip


def duplicate_forwards(plan: PortsPlan) -> list[tuple[Forward, Forward]]:
    """Pairs of the plan's own forwards that claim the same host port (asked twice)."""
    out = []
    for i, a in enumerate(plan.forwards):
        for b in plan.forwards[i + 1 :]:
            if _overlap(a, b.family, b.protocol, b.host_ip, b.host_port, b.host_port):
                out.append((a, b))
    return out


def find_conflicts(plan: PortsPlan, live: Iterable[Published]) -> list[tuple[Forward, Published]]:
    """Forwards of ``plan`` whose host port another owner already publishes.

    Entries carrying the plan's own tag are its earlier version (a repeated ADD) and
    are replaced, not conflicts. A wildcard and a specific address of the same family
    conflict, as two binds would.
    """
    out = []
    for pub in live:
        if pub.tag == plan.tag:
            continue
        for fwd in plan.forwards:
            if _overlap(fwd, pub.family, pub.protocol, pub.host_ip, pub.port_lo, pub.port_hi):
                out.append((fwd, pub))
    return out
