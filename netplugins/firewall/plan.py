"""Pure firewall planning: a network's policy in, a backend-neutral ``Ruleset`` out.

Model (Docker 28+/29 without isolation chains, see docker-podman.md section 3a/3e):
every network gets a few chains, each entered from a fixed dispatch point, and the
dispatch points are evaluated in this order for a forwarded packet:

1. ``guard`` (internal networks only), entered when the packet comes FROM the bridge:
   drop it unless it stays on the bridge or goes to one of the network's subnets.
   It runs first so that no other network's ``in`` chain can accept (DNAT,
   established) a packet that an internal network must not send.
2. ``in``, entered when the packet goes TO the bridge: accept established/related,
   DNAT'ed (published ports, added later by portmap) and same-bridge traffic
   (br_netfilter sends bridged frames through FORWARD with iif = oif = bridge);
   drop the rest when the network is isolated. Internal networks accept only
   same-bridge traffic. With icc off, same-bridge traffic is dropped instead (Docker's
   ``-i br -o br -j DROP``): bridge port isolation stops frames between the ports, this
   rule stops a container that routes to a peer through the gateway (a /32 route via
   the gateway, or frames sent to the gateway's MAC), which the host would otherwise
   route straight back onto the bridge.
3. ``out`` (non-internal networks), entered when the packet comes FROM the bridge:
   accept (egress).
4. ``nat`` (masquerading networks): in NAT postrouting, masquerade packets from a
   subnet that leave through another interface, except to multicast.
5. the forwarding guard (``NetworkPolicy.guard_forwarding``): when netctl was the one
   that turned forwarding on for a family, a drop at the very end of the dispatch, for
   that family. Every ``in`` chain ends in a verdict and every ``out`` chain accepts, so
   only packets that neither enter nor leave a netctl bridge get there: the host keeps
   not routing between its other interfaces (Docker sets FORWARD's policy to DROP for
   the same reason). It is shared by all networks, tagged ``netctl forwarding`` (no
   ``net=``), and goes with our table/chains when the last network goes.

Everything here is per network, never per container, and every object carries the
owner tag ``netctl net=<network>`` so teardown, CHECK and GC find it after a config
change. The renderers (``nftables.py``, ``iptables.py``) name and wire the chains.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Literal

from .errors import FirewallError

#: CNI network names: alphanumerics, ``-``, ``_``, ``.``; 100 chars keeps our owner tag
#: inside nft's 128-byte comment limit (portmap's per-attachment tag abbreviates long
#: names and IDs to fit, see ports.attachment_tag).
NETWORK_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
#: Interface names: IFNAMSIZ leaves 15 chars; no quotes or blanks (they end up in nft strings).
IFNAME_RE = re.compile(r"^[A-Za-z0-9_.:@+-]{1,15}$")

OWNER_PREFIX = "netctl"
#: the comment of the forwarding guard (no ``net=``: it belongs to no one network)
GUARD_TAG = "netctl forwarding"
MULTICAST = {4: "224.0.0.0/4", 6: "ff00::/8"}

MatchKind = Literal["iif", "oif", "saddr", "daddr", "ct_state", "ct_dnat"]
Verdict = Literal["accept", "drop", "return", "masquerade"]
ChainRole = Literal["guard", "in", "out", "nat"]
#: evaluation order of the dispatch points (see the module docstring)
ROLE_ORDER: tuple[ChainRole, ...] = ("guard", "in", "out", "nat")


def network_hash(network: str) -> str:
    """8 hex chars naming a network's chains (iptables chain names are limited to 28 chars)."""
    from ..cni.digest import sha256  # the builtin one: hashlib would load OpenSSL (~2.5 ms)

    return sha256(network.encode()).hexdigest()[:8]


def owner_tag(network: str, cid: str | None = None, ifname: str | None = None) -> str:
    """The comment every object of ``network`` carries (portmap adds ``cid``/``if``)."""
    tag = f"{OWNER_PREFIX} net={network}"
    if cid is not None:
        tag += f" cid={cid}"
    if ifname is not None:
        tag += f" if={ifname}"
    return tag


@dataclass(frozen=True)
class Owner:
    """An owner tag read back from a rule, chain or map element."""

    network: str
    cid: str | None = None
    ifname: str | None = None


def parse_owner(comment: str | None) -> Owner | None:
    """Read an owner tag; ``None`` for a foreign comment or our bare skeleton tag ``netctl``."""
    if not comment:
        return None
    words = comment.split()
    if len(words) < 2 or words[0] != OWNER_PREFIX:
        return None
    fields = dict(w.split("=", 1) for w in words[1:] if "=" in w)
    net = fields.get("net")
    if not net:
        return None
    return Owner(net, fields.get("cid"), fields.get("if"))


def network_owner(comment: str | None) -> str | None:
    """The network a NETWORK-level object belongs to; ``None`` for foreign objects and for
    per-attachment ones (published ports: tag with ``cid=``), which only portmap manages."""
    owner = parse_owner(comment)
    return owner.network if owner is not None and owner.cid is None else None


def validate_network_name(name: object) -> str:
    """Return ``name`` if it is a valid network name.

    Raises:
        FirewallError: it is not a string of the allowed characters.
    """
    if not isinstance(name, str) or not NETWORK_NAME_RE.fullmatch(name):
        raise FirewallError(
            f"invalid network name {name!r}: use 1-100 letters, digits, '-', '_' or '.',"
            " starting with a letter or digit"
        )
    return name


@dataclass(frozen=True)
class NetworkPolicy:
    """What the firewall must do for one network (one bridge)."""

    #: network name (owner tag, chain name hash)
    name: str
    #: the Linux bridge the network's containers are attached to
    bridge: str
    #: the network's IPv4/IPv6 subnets; host bits are cleared, duplicates dropped
    subnets: tuple[str, ...] = ()
    #: masquerade egress from the subnets (CNI ``ipMasq``); ignored for internal networks
    masquerade: bool = True
    #: no traffic leaves the subnets, no masquerade (Docker ``--internal``)
    internal: bool = False
    #: drop traffic forwarded into the bridge from other interfaces (not established/DNAT)
    isolate: bool = True
    #: inter-container communication: when false, traffic routed from the bridge back onto
    #: it (container -> gateway -> peer) is dropped, unless established or DNAT'ed
    icc: bool = True
    #: IP families (4, 6) whose forwarding netctl turned on: forwarded packets of those
    #: families that neither enter nor leave a netctl bridge are dropped (module docstring)
    guard_forwarding: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        validate_network_name(self.name)
        if not isinstance(self.bridge, str) or not IFNAME_RE.fullmatch(self.bridge):
            raise FirewallError(f"invalid bridge name {self.bridge!r} for network {self.name!r}")
        if isinstance(self.subnets, str):
            raise FirewallError(f"subnets of network {self.name!r} must be a list, not a string")
        nets: list[str] = []
        for raw in self.subnets:
            try:
                net = str(ipaddress.ip_network(str(raw), strict=False))
            except ValueError as exc:
                raise FirewallError(
                    f"invalid subnet {raw!r} for network {self.name!r}", str(exc)
                ) from None
            if net not in nets:
                nets.append(net)
        # frozen dataclass: normalise in place once, at construction
        object.__setattr__(self, "subnets", tuple(nets))
        for flag in ("masquerade", "internal", "isolate", "icc"):
            if not isinstance(getattr(self, flag), bool):
                raise FirewallError(f"{flag} of network {self.name!r} must be true or false")
        # a list from JSON (a stored policy) is fine; the value is a sorted tuple
        guard = self.guard_forwarding
        if isinstance(guard, (str, bytes)) or not all(f in (4, 6) and not isinstance(f, bool)
                                                       for f in guard):
            raise FirewallError(f"guard_forwarding of network {self.name!r} must list IP families 4 and/or 6")
        object.__setattr__(self, "guard_forwarding", tuple(sorted(set(guard))))

    def subnets_of(self, family: int) -> tuple[str, ...]:
        """The subnets of one IP family (4 or 6)."""
        return tuple(s for s in self.subnets if ipaddress.ip_network(s).version == family)

    @property
    def families(self) -> tuple[int, ...]:
        """IP families of the subnets; ``(4,)`` for a network without subnets."""
        fams = tuple(f for f in (4, 6) if self.subnets_of(f))
        return fams or (4,)


@dataclass(frozen=True)
class Match:
    """One condition of a rule. Addresses are prefixes; ``negate`` turns it into "not"."""

    kind: MatchKind
    value: str = ""
    negate: bool = False

    @property
    def family(self) -> int | None:
        """4 or 6 for an address match, else ``None``."""
        if self.kind in ("saddr", "daddr"):
            return ipaddress.ip_network(self.value).version
        return None


@dataclass(frozen=True)
class Rule:
    """Matches (all must hold), then a verdict; ``comment`` is the owner tag."""

    matches: tuple[Match, ...]
    verdict: Verdict
    comment: str

    @property
    def family(self) -> int | None:
        """The IP family an address match restricts the rule to; ``None`` = both."""
        fams = {m.family for m in self.matches if m.family is not None}
        if len(fams) > 1:
            raise FirewallError(f"rule mixes IPv4 and IPv6 addresses: {self}")
        return fams.pop() if fams else None


@dataclass(frozen=True)
class Chain:
    """A per-network chain; its ``role`` fixes where it is entered from (module docstring)."""

    role: ChainRole
    rules: tuple[Rule, ...]


@dataclass(frozen=True)
class Ruleset:
    """Everything one network needs, independent of nftables/iptables syntax."""

    network: str
    bridge: str
    #: owner tag carried by every rule, chain and map element
    tag: str
    #: 8 hex chars from the network name; chains are named ``<role>-<hash>``
    hash: str
    #: IP families with subnets (iptables renders one table set per family)
    families: tuple[int, ...]
    chains: tuple[Chain, ...] = field(default_factory=tuple)
    #: families whose forwarding guard this network needs (see the module docstring)
    guard_forwarding: tuple[int, ...] = ()

    def chain(self, role: ChainRole) -> Chain | None:
        """The chain with ``role``, or ``None`` when the network does not need it."""
        for ch in self.chains:
            if ch.role == role:
                return ch
        return None


def plan_network(policy: NetworkPolicy) -> Ruleset:
    """Turn a policy into the per-network chains (pure; see the module docstring).

    Raises:
        FirewallError: never for a constructed ``NetworkPolicy`` (it validated itself).
    """
    tag = owner_tag(policy.name)
    br = policy.bridge

    def rule(*matches: Match, verdict: Verdict) -> Rule:
        return Rule(tuple(matches), verdict, tag)

    chains: list[Chain] = []
    if policy.internal:
        guard = [rule(Match("oif", br), verdict="return")]
        guard += [rule(Match("daddr", s), verdict="return") for s in policy.subnets]
        guard.append(rule(verdict="drop"))
        chains.append(Chain("guard", tuple(guard)))
        # internal implies isolation: nothing from outside the bridge may enter, and
        # nothing legitimate can be established/DNAT'ed from outside (egress is guarded)
        inner = [rule(Match("iif", br), verdict="accept")] if policy.icc else []
        chains.append(Chain("in", (*inner, rule(verdict="drop"))))
        return Ruleset(policy.name, br, tag, network_hash(policy.name), policy.families,
                       tuple(chains), policy.guard_forwarding)

    ingress = [
        rule(Match("ct_state", "established,related"), verdict="accept"),
        rule(Match("ct_dnat"), verdict="accept"),
        rule(Match("iif", br), verdict="accept" if policy.icc else "drop"),
    ]
    # a verdict either way: what falls off the dispatch is nobody's (the forwarding guard)
    ingress.append(rule(verdict="drop" if policy.isolate else "accept"))
    chains.append(Chain("in", tuple(ingress)))
    chains.append(Chain("out", (rule(verdict="accept"),)))
    if policy.masquerade and policy.subnets:
        masq = [
            rule(
                Match("oif", br, negate=True),
                Match("saddr", s),
                Match("daddr", MULTICAST[ipaddress.ip_network(s).version], negate=True),
                verdict="masquerade",
            )
            for s in policy.subnets
        ]
        chains.append(Chain("nat", tuple(masq)))
    return Ruleset(policy.name, br, tag, network_hash(policy.name), policy.families, tuple(chains),
                   policy.guard_forwarding)
