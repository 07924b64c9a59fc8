"""Configuration of the ``bridge`` plugin: the reference's keys plus our extensions (pure).

Reference keys: bridge, isGateway, isDefaultGateway, forceAddress, ipMasq, mtu, hairpinMode,
promiscMode, ipam, dns; MAC from runtimeConfig.mac > args.cni.mac > CNI_ARGS MAC.
Extensions (README "bridge plugin"): isolate, internal, icc, firewallDriver, stateDir.
Unknown keys are tolerated, except reference features we do not implement (vlan,
vlanTrunk, macspoofchk) when they ask for something: ignoring them would give the
container less isolation than its config says; and ``embeddedDNS``, which an earlier
version handled: ignoring it would silently leave the container without names, so ADD
refuses it and says what replaces it (the chained ``netctl-dns`` plugin). The reference's ipMasqBackend picks the
firewall driver when firewallDriver is not given.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..cni.errors import UNSUPPORTED_FIELD, CniError, config_error
from ..cni.netconf import NetConf, check_path, load_netconf
from ..cni.types import DNS
from ..registry import NOT_IPAM

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs every plugin process ~3 ms; annotations are strings here
    from typing import Any

DEFAULT_BRIDGE = "cni0"
DEFAULT_STATE_DIR = "/run/netctl/bridge"
# both matched with fullmatch: ``$`` also accepts a trailing newline
MAC_RE = re.compile(r"([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}")
#: what the kernel accepts (dev_valid_name: no '/', ':' or blanks), narrowed to characters
#: that need no quoting in nft and iptables rules, which name the bridge
BRIDGE_NAME_RE = re.compile(r"[A-Za-z0-9_.@+-]{1,15}")
FIREWALL_DRIVERS = ("nftables", "iptables", "none")
#: reference keys for features we lack, with the value that asks for nothing
UNSUPPORTED = {"vlan": 0, "vlanTrunk": [], "macspoofchk": False}
MIN_MTU, MAX_MTU = 68, 65535
#: keys an earlier version of this plugin read, and what does their job now
MOVED = {"embeddedDNS": "names are registered by the netctl-dns plugin: chain "
                        '{"type": "netctl-dns", "dir": ...} after bridge (docs/plugins.md)'}


@dataclass(frozen=True)
class BridgeConf:
    """A parsed, validated bridge plugin configuration."""

    net: NetConf
    bridge: str = DEFAULT_BRIDGE
    is_gateway: bool = False
    is_default_gateway: bool = False
    force_address: bool = False
    ip_masq: bool = False
    mtu: int = 0
    hairpin: bool = False
    promisc: bool = False
    ipam_type: str = ""
    dns: DNS = field(default_factory=DNS)
    mac: str = ""
    # extensions
    isolate: bool = True
    internal: bool = False
    icc: bool = True
    firewall_driver: str | None = None
    state_dir: str = DEFAULT_STATE_DIR

    @property
    def name(self) -> str:
        return self.net.name


def _bool(raw: dict[str, Any], key: str, default: bool) -> bool:
    value = raw.get(key, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise config_error(f"invalid config: {key} must be true or false", repr(value))
    return value


def _pick_mac(net: NetConf, cni_args: dict[str, str]) -> str:
    """runtimeConfig.mac > args.cni.mac > CNI_ARGS MAC (the reference's precedence)."""
    for value, where in ((net.runtime_config.get("mac"), "runtimeConfig.mac"),
                         (net.cni_args().get("mac"), "args.cni.mac"),
                         (cni_args.get("MAC"), "CNI_ARGS MAC")):
        if value:
            if not isinstance(value, str) or not MAC_RE.fullmatch(value):
                raise config_error(f"invalid MAC address {value!r} in {where}")
            if int(value.split(":")[0], 16) & 1:
                raise config_error(f"invalid MAC address {value!r} in {where}: it is a multicast address")
            if value == "00:00:00:00:00:00":
                raise config_error(f"invalid MAC address {value!r} in {where}: it is all zero")
            return value.lower()
    return ""


def _add_options(net: NetConf, cni_args: dict[str, str]) -> dict[str, Any]:
    """The keys only ADD and CHECK act on, validated, as BridgeConf fields.

    Raises:
        CniError: code 7 naming the offending key, 2 for an unsupported reference feature.
    """
    raw = net.raw
    for key, nothing in UNSUPPORTED.items():
        if raw.get(key) not in (None, nothing):
            raise CniError(UNSUPPORTED_FIELD, f"invalid config: {key} is not supported by this bridge plugin",
                           "remove it, or use the reference bridge plugin")
    for key, instead in MOVED.items():
        if key in raw:
            raise CniError(UNSUPPORTED_FIELD, f"invalid config: {key} is no longer supported by the "
                           "bridge plugin", instead)
    bridge = raw.get("bridge", DEFAULT_BRIDGE) or DEFAULT_BRIDGE
    if not isinstance(bridge, str) or not BRIDGE_NAME_RE.fullmatch(bridge) or bridge in (".", ".."):
        raise config_error(f"invalid config: bridge name {bridge!r} is not a valid interface name",
                           "use up to 15 letters, digits, '_', '.', '@', '+' or '-'")
    mtu = raw.get("mtu", 0) or 0
    if not isinstance(mtu, int) or isinstance(mtu, bool) or (mtu and not MIN_MTU <= mtu <= MAX_MTU):
        raise config_error(f"invalid config: mtu {mtu!r} is out of range",
                           f"it must be between {MIN_MTU} and {MAX_MTU}")
    hairpin = _bool(raw, "hairpinMode", False)
    promisc = _bool(raw, "promiscMode", False)
    if hairpin and promisc:
        raise config_error("invalid config: cannot set hairpin mode and promiscuous mode at the same time")
    is_default_gw = _bool(raw, "isDefaultGateway", False)
    dns_raw = raw.get("dns")
    if dns_raw is not None and not isinstance(dns_raw, dict):
        raise config_error("invalid config: dns must be an object")
    try:
        dns = DNS.from_dict(dns_raw)
    except (TypeError, AttributeError):
        raise config_error("invalid config: dns has an invalid shape") from None
    driver = raw.get("firewallDriver")
    if driver not in (None, "", *FIREWALL_DRIVERS):
        raise config_error(f"invalid config: firewallDriver {driver!r}",
                           "use nftables, iptables or none")
    backend = raw.get("ipMasqBackend")
    if backend not in (None, "", "nftables", "iptables"):
        raise config_error(f"invalid config: ipMasqBackend {backend!r}", "use nftables or iptables")
    internal = _bool(raw, "internal", False)
    return {
        "bridge": bridge,
        "is_gateway": _bool(raw, "isGateway", False) or is_default_gw,
        "is_default_gateway": is_default_gw,
        "force_address": _bool(raw, "forceAddress", False),
        # an internal network never masquerades, whatever ipMasq says
        "ip_masq": _bool(raw, "ipMasq", False) and not internal,
        "mtu": mtu,
        "hairpin": hairpin,
        "promisc": promisc,
        "dns": dns,
        "mac": _pick_mac(net, cni_args),
        "isolate": _bool(raw, "isolate", True),
        "internal": internal,
        "icc": _bool(raw, "icc", True),
        "firewall_driver": driver or backend or None,
    }


def parse_bridge_conf(stdin: bytes, cni_args: dict[str, str] | None = None, *,
                      teardown: bool = False) -> BridgeConf:
    """Parse and validate the plugin config.

    With ``teardown`` (DEL, GC, STATUS) an invalid value of a key that only ADD acts on
    (mtu, MAC, hairpin/promisc, dns ...) is ignored: the runtime sends DEL after a failed
    ADD too, and a DEL that fails for a key it does not use would keep the lease and the
    rules forever. The keys teardown needs (name, ipam, stateDir) are always checked.

    Raises:
        CniError: code 7 naming the offending key, 2 for an unsupported reference feature,
            6 for undecodable input.
    """
    net = load_netconf(stdin)
    raw = net.raw
    ipam = raw.get("ipam") or {}
    if not isinstance(ipam, dict):
        raise config_error("invalid config: ipam must be an object")
    ipam_type = ipam.get("type", "") or ""
    if not isinstance(ipam_type, str):
        raise config_error("invalid config: ipam.type must be a string")
    if ipam_type in NOT_IPAM:
        raise config_error(f"invalid config: ipam.type {ipam_type!r} is not an IPAM plugin",
                           "use an IPAM plugin such as host-local, static or dhcp")
    state_dir = check_path(raw.get("stateDir", DEFAULT_STATE_DIR) or DEFAULT_STATE_DIR, "stateDir")
    try:
        options = _add_options(net, cni_args or {})
    except CniError:
        if not teardown:
            raise
        options = {}  # the defaults: teardown acts on none of these keys
    return BridgeConf(net=net, ipam_type=ipam_type, state_dir=state_dir, **options)
