"""Network → CNI conflist (pure). The conflist is what any CNI runtime can use."""

from __future__ import annotations

import ipaddress
from typing import Any

from .models import Network
from .paths import Paths

#: the top-level version every CNI runtime reads. libcni before 1.2 (containerd 1.6/1.7,
#: podman's CNI backend) knows nothing of ``cniVersions`` and fails ADD with "unsupported
#: CNI result version 1.1.0" -- after the chain already ran -- when this says 1.1.0
CNI_VERSION = "1.0.0"
#: libcni >= 1.2 and netctl's runtime choose the highest of these that every plugin of the
#: chain supports (CNI spec 1.1 "cniVersions"): 1.1.0 first, for GC and STATUS; the others
#: when a plugin of the chain (a third-party one, or the Debian reference plugins, which
#: stop at 1.0.0) lacks 1.1.0
CNI_VERSIONS = ["1.1.0", "1.0.0", "0.4.0"]
LOOPBACK_NETWORK = "netctl-loopback"
#: the chained plugin that registers container names with dnsd (netplugins/meta/dnsreg.py)
DNS_PLUGIN = "netctl-dns"


def _dns(net: Network, paths: Paths) -> dict[str, Any]:
    """The DNS registration plugin of ``net``: right after the plugin that gives the
    container its addresses (it reads them from prevResult) and before portmap, so that
    DEL, which runs the chain backwards, removes the published ports first and the names
    last, after the container stopped being reachable."""
    plugin: dict[str, Any] = {"type": DNS_PLUGIN, "dir": paths.dnsd,
                              "capabilities": {"aliases": True}}
    if net.internal:
        plugin["internal"] = True
    return plugin


def outdated(conflist: dict[str, Any]) -> bool:
    """Whether a stored conflist was written by an older netctl that gave the main plugin
    the ``embeddedDNS`` key (now the chained ``netctl-dns`` plugin's job): it is rendered
    again, and the bridge plugin would refuse it on ADD."""
    plugins = conflist.get("plugins")
    return isinstance(plugins, list) and any(
        isinstance(p, dict) and "embeddedDNS" in p for p in plugins)


def _range(subnet: str, gateway: str, ip_range: str) -> dict[str, str]:
    entry: dict[str, str] = {"subnet": subnet}
    if gateway:
        entry["gateway"] = gateway
    if ip_range:
        net = ipaddress.ip_network(subnet)
        rng = ipaddress.ip_network(ip_range)
        start = rng.network_address if rng.network_address != net.network_address else net.network_address + 1
        end = rng.broadcast_address
        if net.version == 4 and end == net.broadcast_address:
            end -= 1
        entry["rangeStart"] = str(start)
        entry["rangeEnd"] = str(end)
    return entry


def render(net: Network, paths: Paths, portmap: bool = True) -> dict[str, Any]:
    """The conflist for ``net`` (bridge → netctl-dns → portmap → the user's extra plugins)."""
    if net.driver == "host":
        plugins: list[dict[str, Any]] = [{"type": "host"}]
    elif net.driver == "null":
        plugins = [{"type": "loopback"}]
    elif net.driver == "overlay":
        # the network itself (subnet, VNI) lives in the cluster store; see netplugins/main/overlay.py
        plugins = [{"type": "overlay", "overlayDir": paths.overlay, "stateDir": paths.bridge_state,
                    "capabilities": {"ips": True, "mac": True, "aliases": True}}]
        if net.dns:
            plugins.append(_dns(net, paths))
        if portmap:
            plugins.append({"type": "portmap", "capabilities": {"portMappings": True},
                            "stateDir": paths.bridge_state})
    else:
        ipam: dict[str, Any] = {
            "type": "host-local",
            "ranges": [[_range(s.subnet, s.gateway, s.ip_range)] for s in net.subnets],
            "dataDir": paths.ipam,
        }
        if not net.internal:
            routes = []
            for s in net.subnets:
                routes.append({"dst": "::/0" if ":" in s.subnet else "0.0.0.0/0"})
            ipam["routes"] = routes
        bridge: dict[str, Any] = {
            "type": "bridge",
            "bridge": net.bridge,
            "isGateway": True,
            "isDefaultGateway": not net.internal,
            "ipMasq": net.masquerade and not net.internal,
            "hairpinMode": True,
            "internal": net.internal,
            "icc": net.icc,
            "isolate": True,
            "stateDir": paths.bridge_state,
            "capabilities": {"ips": True, "mac": True},
            "ipam": ipam,
        }
        if net.mtu:
            bridge["mtu"] = net.mtu
        plugins = [bridge]
        if net.dns:
            plugins.append(_dns(net, paths))
        if portmap:
            plugins.append({"type": "portmap", "capabilities": {"portMappings": True},
                            "stateDir": paths.bridge_state})
    plugins.extend(net.extra_plugins)
    return {"cniVersion": CNI_VERSION, "cniVersions": CNI_VERSIONS, "name": net.name, "plugins": plugins}


def loopback() -> dict[str, Any]:
    """Every container with a namespace of its own gets ``lo`` up (containerd's WithLoNetwork)."""
    return {"cniVersion": CNI_VERSION, "cniVersions": CNI_VERSIONS, "name": LOOPBACK_NETWORK,
            "plugins": [{"type": "loopback"}]}
