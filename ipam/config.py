"""The host-local IPAM configuration: the ``ipam`` section plus what the runtime adds.

Accepted, as the reference (``backend/allocator/config.go``) and cni.dev's host-local page:

* ``ipam.ranges``: a list of range sets, each a list of ``{subnet, rangeStart, rangeEnd,
  gateway}``; one address per range set (dual stack = one IPv4 set + one IPv6 set);
* the legacy single range at the top of ``ipam`` (``subnet``, ``rangeStart``, ``rangeEnd``,
  ``gateway``), prepended to ``ranges``;
* ``runtimeConfig.ipRanges`` (capability ``ipRanges``), prepended before both;
* ``ipam.routes`` (``[{dst, gw?}]``, copied into the result), ``ipam.dataDir``,
  ``ipam.resolvConf`` (a resolv.conf whose settings become the result's ``dns``);
* requested addresses: ``args.cni.ips``, else ``CNI_ARGS`` ``IP=`` (the spec: a plugin
  that understands ``args`` ignores the same key in CNI_ARGS), plus ``runtimeConfig.ips``
  (capability ``ips``). Each is an address, optionally with the subnet's prefix length.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .errors import ConfigError
from .ranges import IPAddress, RangeSet, parse_address, parse_range_sets, parse_subnet

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs every plugin process ~3 ms; annotations are strings here
    from typing import Any

#: where leases live when the config has no ``dataDir``: /run is a tmpfs on normal
#: hosts, and no container survives a reboot, so neither should its leases (host-local's
#: /var/lib/cni/networks keeps them and leaks them: cni-spec.md pain point 1; podman keeps
#: its ipam.db under /run for the same reason)
DEFAULT_DATA_DIR = "/run/netctl/ipam"

_LEGACY_KEYS = ("subnet", "rangeStart", "rangeEnd", "gateway")


@dataclass(frozen=True)
class RouteConf:
    """A route from ``ipam.routes`` (validated, copied into the result)."""

    dst: str
    gw: str | None = None


@dataclass(frozen=True)
class IpamConfig:
    """Everything an ADD needs, validated."""

    #: the network name: names the lease database
    network: str
    range_sets: tuple[RangeSet, ...]
    #: per range set, the address asked for (None: the allocator picks)
    requested: tuple[IPAddress | None, ...]
    routes: tuple[RouteConf, ...]
    data_dir: str
    resolv_conf: str


def ipam_section(conf: Mapping[str, Any]) -> Mapping[str, Any]:
    """The ``ipam`` object of a network config.

    Raises:
        ConfigError: when it is missing or not an object.
    """
    section = conf.get("ipam")
    if not isinstance(section, Mapping):
        raise ConfigError("IPAM config missing 'ipam' key")
    return section


def check_path(value: object, key: str) -> str:
    """A path from the config: a string, absolute, without NUL, valid UTF-8.

    A relative dataDir was resolved against whatever directory the plugin (or the daemon's
    worker) ran in: two lease databases for one network, the same address given twice.

    Raises:
        ConfigError: naming ``key``.
    """
    if not isinstance(value, str):
        raise ConfigError(f"invalid {key} {value!r}: expected a path")
    if not value.startswith("/"):
        raise ConfigError(f"invalid {key} {value!r}: it must be an absolute path")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError(f"invalid {key} {value!r}: not valid UTF-8") from None
    if "\0" in value:
        raise ConfigError(f"invalid {key} {value!r}: it contains a NUL character")
    return value


def data_dir_of(conf: Mapping[str, Any]) -> str:
    """``ipam.dataDir`` or the default; all that DEL and GC need besides the name.

    Raises:
        ConfigError: when ``ipam`` is missing or dataDir is not an absolute path.
    """
    return check_path(ipam_section(conf).get("dataDir") or DEFAULT_DATA_DIR, "dataDir")


def _routes(section: Mapping[str, Any]) -> tuple[RouteConf, ...]:
    raw = section.get("routes") or []
    if not isinstance(raw, list):
        raise ConfigError("invalid routes: expected a list of {dst, gw}")
    out = []
    for item in raw:
        if not isinstance(item, Mapping) or "dst" not in item:
            raise ConfigError(f"invalid route {item!r}: expected an object with dst")
        dst = item["dst"]
        if not isinstance(dst, str):
            raise ConfigError(f"invalid route dst {dst!r}")
        parse_subnet(dst, "route dst")
        gw = item.get("gw") or None
        if gw is not None:
            parse_address(gw, "route gw")
        out.append(RouteConf(dst=dst, gw=gw))
    return tuple(out)


def _range_set_objects(conf: Mapping[str, Any], section: Mapping[str, Any]) -> list[Any]:
    objs: list[Any] = []
    runtime = conf.get("runtimeConfig") or {}
    ip_ranges = runtime.get("ipRanges") if isinstance(runtime, Mapping) else None
    if ip_ranges:
        if not isinstance(ip_ranges, list):
            raise ConfigError("invalid runtimeConfig.ipRanges: expected a list of range sets")
        objs.extend(ip_ranges)
    if section.get("subnet"):
        objs.append([{k: section[k] for k in _LEGACY_KEYS if k in section}])
    ranges = section.get("ranges") or []
    if not isinstance(ranges, list):
        raise ConfigError("invalid ranges: expected a list of range sets (lists of ranges)")
    objs.extend(ranges)
    return objs


def _requested_texts(conf: Mapping[str, Any], cni_args: Mapping[str, str]) -> list[tuple[str, str]]:
    """(address text, where it came from), in the reference's order."""
    out: list[tuple[str, str]] = []
    args = conf.get("args") or {}
    cni = args.get("cni") if isinstance(args, Mapping) else None
    arg_ips = cni.get("ips") if isinstance(cni, Mapping) else None
    if arg_ips:
        if not isinstance(arg_ips, list):
            raise ConfigError("invalid args.cni.ips: expected a list of addresses")
        out.extend((ip, "args.cni.ips") for ip in arg_ips)
    elif cni_args.get("IP"):
        # CNI_ARGS IP= counts only when args.cni.ips is absent (CONVENTIONS.md)
        out.extend((ip.strip(), "CNI_ARGS IP") for ip in cni_args["IP"].split(",") if ip.strip())
    runtime = conf.get("runtimeConfig") or {}
    rt_ips = runtime.get("ips") if isinstance(runtime, Mapping) else None
    if rt_ips:
        if not isinstance(rt_ips, list):
            raise ConfigError("invalid runtimeConfig.ips: expected a list of addresses")
        out.extend((ip, "runtimeConfig.ips") for ip in rt_ips)
    return out


def _assign_requested(sets: tuple[RangeSet, ...],
                      texts: list[tuple[str, str]]) -> tuple[IPAddress | None, ...]:
    """Give each requested address to the range set whose subnet holds it."""
    chosen: list[IPAddress | None] = [None] * len(sets)
    for text, source in texts:
        if not isinstance(text, str):
            raise ConfigError(f"invalid address {text!r} in {source}")
        addr_text, _, plen = text.partition("/")
        addr = parse_address(addr_text, f"address in {source}")
        index = next((i for i, s in enumerate(sets) if s.range_for(addr) is not None), None)
        if index is None:
            raise ConfigError(
                f"invalid address {addr}: it does not belong to any of this network's subnets")
        rng = sets[index].range_for(addr)
        assert rng is not None
        if plen and plen != str(rng.subnet.prefixlen):
            raise ConfigError(f"invalid address {text} in {source}: the prefix length of "
                              f"subnet {rng.subnet} is {rng.subnet.prefixlen}")
        previous = chosen[index]
        if previous is not None and previous != addr:
            raise ConfigError(f"requested addresses {previous} and {addr} are both in range "
                              f"set {index} ({sets[index].subnets()}): one address per range set")
        chosen[index] = addr
    return tuple(chosen)


def load_ipam_config(conf: Mapping[str, Any], cni_args: Mapping[str, str]) -> IpamConfig:
    """Validate a whole network config (as decoded from stdin) for ADD/CHECK/STATUS.

    Raises:
        ConfigError: for any invalid key, range or requested address (code 7).
    """
    section = ipam_section(conf)
    network = conf.get("name")
    if not isinstance(network, str) or not network:
        raise ConfigError("invalid config: the network name is missing")
    sets = parse_range_sets(_range_set_objects(conf, section))
    resolv = section.get("resolvConf") or ""
    if resolv:
        check_path(resolv, "resolvConf")
    return IpamConfig(
        network=network,
        range_sets=sets,
        requested=_assign_requested(sets, _requested_texts(conf, cni_args)),
        routes=_routes(section),
        data_dir=data_dir_of(conf),
        resolv_conf=resolv,
    )
