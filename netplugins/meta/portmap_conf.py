"""The portmap plugin's configuration (pure): netconf keys, portMappings, container addresses.

Reference keys (containernetworking/plugins ``plugins/meta/portmap``): ``snat`` (default
true), ``backend`` (``iptables``/``nftables``), ``markMasqBit`` (accepted and ignored: we
masquerade by conntrack status and sets, not by a packet mark). ``masqAll``,
``externalSetMarkChain``, ``conditionsV4``/``conditionsV6`` change what gets NATed in ways
we do not implement, so they are refused (code 7) rather than silently ignored.
Ours: ``firewallDriver`` (same values as the bridge's, wins over ``backend``) and
``stateDir`` (where the attachment records live; netctl passes its bridge state dir).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..cni.errors import INVALID_CONFIG, CniError
from ..cni.netconf import NetConf, check_path, load_netconf
from ..cni.types import Result
from ..firewall.errors import FirewallError

if TYPE_CHECKING:
    from ..firewall.ports import PortMapping

DEFAULT_STATE_DIR = "/run/netctl/bridge"
_UNSUPPORTED = ("externalSetMarkChain", "conditionsV4", "conditionsV6")


@dataclass(frozen=True)
class PortmapConf:
    """What portmap needs from its stdin."""

    net: NetConf
    #: validated mappings from ``runtimeConfig.portMappings`` (empty: nothing to publish)
    mappings: tuple[PortMapping, ...]
    state_dir: str
    #: ``nftables``, ``iptables`` or ``None`` (detect, as the bridge does)
    driver: str | None
    snat: bool

    @property
    def name(self) -> str:
        return self.net.name

    @property
    def prev_result(self) -> Result | None:
        return self.net.prev_result


def _error(msg: str, details: str = "") -> CniError:
    return CniError(INVALID_CONFIG, f"invalid portmap config: {msg}", details)


def parse_mapping(raw: Any) -> PortMapping:
    """One ``portMappings`` entry (``hostPort``, ``containerPort``, ``protocol``, ``hostIP``).

    Raises:
        CniError: code 7 naming the entry and what is wrong with it.
    """
    from ..firewall.ports import PortMapping  # lazy: only configs with mappings need it

    if not isinstance(raw, dict):
        raise _error(f"a port mapping must be an object, not {raw!r}")
    proto = raw.get("protocol") or "tcp"
    host_ip = raw.get("hostIP") or ""
    if not isinstance(proto, str) or not isinstance(host_ip, str):
        raise _error(f"protocol and hostIP must be strings in {raw!r}")
    try:
        return PortMapping(raw.get("hostPort"), raw.get("containerPort"),  # type: ignore[arg-type]
                           proto.lower(), host_ip.strip())
    except FirewallError as exc:
        raise _error(f"{exc.msg} in {raw!r}") from None


def parse_mappings(raw: Any) -> tuple[PortMapping, ...]:
    """``runtimeConfig.portMappings`` (absent or null: none); duplicates collapse.

    Raises:
        CniError: code 7 when it is not a list of valid mappings.
    """
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise _error("runtimeConfig.portMappings must be a list")
    out: list[PortMapping] = []
    for item in raw:
        m = parse_mapping(item)
        if m not in out:
            out.append(m)
    return tuple(out)


def parse_portmap_conf(stdin: bytes, *, teardown: bool = False) -> PortmapConf:
    """Parse portmap's stdin.

    With ``teardown`` (DEL, GC) the plugin-specific keys are read leniently: a config that
    ADD would have refused published nothing, and DEL must not fail on it (a failing DEL
    stops the runtime's teardown of the whole chain); DEL removes by owner tag anyway.

    Raises:
        CniError: code 6/7 for undecodable input or invalid common keys; without
            ``teardown`` also for invalid portmap keys and mappings.
    """
    net = load_netconf(stdin)
    raw = net.raw
    try:
        return _parse(net, raw)
    except CniError:
        if not teardown:
            raise
    # ADD refused this stateDir, so it wrote no record there: the default is as good as any
    state_dir = raw.get("stateDir")
    try:
        state_dir = check_path(state_dir, "stateDir")
    except CniError:
        state_dir = DEFAULT_STATE_DIR
    return PortmapConf(net, (), state_dir, None, True)


def _parse(net: NetConf, raw: dict[str, Any]) -> PortmapConf:
    for key in _UNSUPPORTED:
        if raw.get(key):
            raise _error(f"{key} is not supported by this portmap")
    if raw.get("masqAll") is True:
        raise _error("masqAll is not supported by this portmap (hairpin traffic is masqueraded)")
    state_dir = raw.get("stateDir") or DEFAULT_STATE_DIR
    try:
        check_path(state_dir, "stateDir")
    except CniError as err:
        raise _error(f"stateDir must be an absolute path, not {state_dir!r}") from err
    driver = raw.get("firewallDriver") or raw.get("backend") or None
    if driver is not None and driver not in ("nftables", "iptables", "none"):
        raise _error(f"unknown firewall driver {driver!r}: use nftables or iptables")
    mappings = parse_mappings(net.runtime_config.get("portMappings"))
    return PortmapConf(net, mappings, state_dir, driver, net.get_bool("snat", True))


def container_addresses(prev: Result, ifname: str) -> list[str]:
    """The first IPv4 and first IPv6 address (CIDR) of ``ifname`` inside the sandbox.

    Like the reference: only ``ips`` whose ``interface`` index points at an interface
    named ``ifname`` that has a sandbox (the container side, not the host veth).
    """
    out: dict[int, str] = {}
    for ip in prev.ips:
        if ip.interface is None or not 0 <= ip.interface < len(prev.interfaces):
            continue
        iface = prev.interfaces[ip.interface]
        if iface.name == ifname and iface.sandbox:
            out.setdefault(ip.family, ip.address)
    return [out[f] for f in sorted(out)]
