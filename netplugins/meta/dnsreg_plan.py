"""Pure parts of the ``netctl-dns`` plugin: its config, the names a container answers to,
and what to register with dnsd, planned from ``prevResult``.

Config (``dir`` required; see docs/plugins.md "netctl-dns")::

    {"type": "netctl-dns", "dir": "/run/netctl/dnsd", "upstreams": ["192.0.2.53"],
     "internal": false, "listen": ["10.88.0.1"], "capabilities": {"aliases": true}}

- ``dir``: dnsd's configuration directory (absolute path). Required, with no default: a
  config that lost it must not make the plugin write to (and start dnsd on) the host's
  own directory, which netctl uses as ``/run/netctl/dnsd``;
- ``upstreams``: the network's upstream servers (else the host's resolv.conf);
- ``internal``: the network is internal: names only, nothing forwarded upstream;
- ``listen``: where dnsd answers for this network; default: the gateways of the
  container's addresses in ``prevResult`` (``ips[].gateway``).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from ..cni.errors import config_error
from ..cni.netconf import NetConf, check_path, load_netconf
from ..cni.types import DNS, IPConfig, Result

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs every plugin process ~3 ms; annotations are strings here
    from typing import Any

PLUGIN_TYPE = "netctl-dns"
#: who wrote an entry (the ``owner`` key of dnsd's entry files): GC removes only these,
#: never the entries of other hosts' containers that the overlay's sync process writes
OWNER = PLUGIN_TYPE


@dataclass(frozen=True)
class DnsRegConf:
    """A parsed, validated ``netctl-dns`` configuration."""

    net: NetConf
    #: dnsd's configuration directory
    dir: str
    #: the network's upstream servers (IP addresses)
    upstreams: tuple[str, ...] = ()
    #: internal network: dnsd forwards nothing for it
    internal: bool = False
    #: explicit listen addresses; empty: the gateways in prevResult
    listen: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.net.name


@dataclass(frozen=True)
class Registration:
    """What ADD writes for dnsd: the network's file and the container's entry."""

    #: addresses dnsd listens on for this network (the gateways)
    listen: tuple[str, ...]
    #: the network's subnets (queries from elsewhere are refused)
    subnets: tuple[str, ...]
    ipv4: tuple[str, ...]
    ipv6: tuple[str, ...]
    #: the container's names, most specific first (the first one answers PTR queries)
    names: tuple[str, ...]


def _addresses(raw: dict[str, Any], key: str) -> tuple[str, ...]:
    values = raw.get(key) or []
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise config_error(f"invalid config: {key} must be a list of IP addresses", repr(values))
    out = []
    for value in values:
        try:
            out.append(str(ipaddress.ip_address(value)))
        except ValueError:
            raise config_error(f"invalid config: {key} entry {value!r} is not an IP address") from None
    return tuple(out)


def parse_conf(stdin: bytes) -> DnsRegConf:
    """Parse and validate the plugin config (every command needs ``dir``; the other keys
    are few and cheap to get right, so every command validates all of them).

    Raises:
        CniError: 6 undecodable input, 7 an invalid key (named in the message).
    """
    net = load_netconf(stdin)
    raw = net.raw
    directory = check_path(raw.get("dir"), "dir")
    internal = raw.get("internal", False)
    if not isinstance(internal, bool):
        raise config_error("invalid config: internal must be true or false", repr(internal))
    return DnsRegConf(net=net, dir=directory, upstreams=_addresses(raw, "upstreams"),
                      internal=internal, listen=_addresses(raw, "listen"))


def dns_names(net: NetConf, container_id: str, cni_args: dict[str, str]) -> tuple[str, ...]:
    """Names the container answers to on this network, most specific first, deduplicated:
    the pod/container name (K8S_POD_NAME, as podman and containerd send), the aliases for
    this network (runtimeConfig.aliases keyed by network, or a plain list; args.cni.aliases),
    the hostname (args.cni.hostname), and the 12-character short ID (Docker's DNSNames order)."""
    names: list[str] = []
    pod = cni_args.get("K8S_POD_NAME", "")
    if pod:
        names.append(pod)
    aliases = net.runtime_config.get("aliases")
    if isinstance(aliases, dict):
        aliases = aliases.get(net.name)
    cni = net.cni_args()
    for group in (aliases, cni.get("aliases")):
        # one alias given as a bare string is one name, not one name per character
        for alias in [group] if isinstance(group, str) else (group if isinstance(group, list) else ()):
            if isinstance(alias, str):
                names.append(alias)
    hostname = cni.get("hostname")
    if isinstance(hostname, str) and hostname:
        names.append(hostname)
    names.append(container_id[:12])
    seen: set[str] = set()
    out = []
    for name in names:
        key = name.lower()
        # a name with blanks or empty labels is not a DNS name (netavark 1.15 skips them too)
        if not name.strip(". ") or any(c.isspace() for c in name) or ".." in name or key in seen:
            continue
        seen.add(key)
        out.append(name)
    return tuple(out)


def container_ips(prev: Result, ifname: str) -> tuple[IPConfig, ...]:
    """The addresses of the container's interface in ``prev``: those whose ``interface``
    is a sandbox interface (the one named CNI_IFNAME when there is one). A result whose
    addresses name no interface at all (some plugins omit the index) gives all of them."""
    if all(ip.interface is None for ip in prev.ips):
        return prev.ips
    inside = {i for i, iface in enumerate(prev.interfaces) if iface.sandbox}
    named = {i for i in inside if prev.interfaces[i].name == ifname}
    wanted = named or inside
    return tuple(ip for ip in prev.ips if ip.interface in wanted)


def plan_registration(conf: DnsRegConf, container_id: str, ifname: str, cni_args: dict[str, str],
                      prev: Result) -> Registration | None:
    """What to register for this attachment; None when there is nothing dnsd could serve
    (no container address, or nowhere to listen: no gateway and no ``listen``)."""
    ips = container_ips(prev, ifname)
    if not ips:
        return None
    listen = conf.listen or tuple(dict.fromkeys(ip.gateway for ip in ips if ip.gateway))
    if not listen:
        return None
    try:
        subnets = tuple(sorted({str(ipaddress.ip_interface(ip.address).network) for ip in ips}))
    except ValueError as exc:
        raise config_error(f"prevResult has an invalid address: {exc}") from None
    return Registration(listen=tuple(listen), subnets=subnets,
                        ipv4=tuple(ip.ip for ip in ips if ip.family == 4),
                        ipv6=tuple(ip.ip for ip in ips if ip.family == 6),
                        names=dns_names(conf.net, container_id, cni_args))


def plan_result(prev: Result, reg: Registration | None) -> Result:
    """``prev`` with dnsd's addresses first in ``dns.nameservers`` (dnsname's contract: the
    runtime writes the container's resolv.conf from the final result); otherwise unchanged."""
    if reg is None:
        return prev
    old = prev.dns
    servers = reg.listen + tuple(s for s in old.nameservers if s not in reg.listen)
    return prev.with_changes(dns=DNS(nameservers=servers, domain=old.domain, search=old.search,
                                     options=old.options))


def entry_file(container_id: str, ifname: str) -> str:
    """The name of an attachment's entry file in ``entries/<network>/`` (dnsd/config.py)."""
    return f"{container_id}-{ifname}.json"


def plan_gc(entries: dict[str, dict[str, Any]], valid: set[tuple[str, str]]) -> list[str]:
    """Entry files (name -> content) that GC removes: written by this plugin and not of a
    valid attachment. Entries without our ``owner`` (the overlay's remote containers,
    files of older versions) are left alone."""
    keep = {entry_file(cid, ifname) for cid, ifname in valid}
    return sorted(f for f, data in entries.items() if data.get("owner") == OWNER and f not in keep)
