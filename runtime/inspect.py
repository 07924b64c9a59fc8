"""``netctl inspect``: networks and containers as JSON in Docker's shape (pure rendering)."""

from __future__ import annotations

import hashlib
import ipaddress
import os
from dataclasses import dataclass
from typing import Any

from .caps import effective
from .models import Container, Endpoint, Network, PortMapping


@dataclass(frozen=True)
class Iface:
    """What a CNI result says about the container's interface."""

    v4: str = ""       # IPv4 CIDR
    v6: str = ""       # IPv6 CIDR
    mac: str = ""
    gw4: str = ""
    gw6: str = ""
    #: further addresses of either family (Docker's SecondaryIP(v6)Addresses)
    more: tuple[str, ...] = ()


def _result_iface(ep_result: dict[str, Any]) -> Iface:
    """The container interface of a result: first address of each family, MAC, gateways."""
    ifaces = ep_result.get("interfaces") or []
    v4 = v6 = gw4 = gw6 = mac = ""
    more: list[str] = []
    for ip in ep_result.get("ips") or []:
        idx = ip.get("interface")
        if idx is not None and idx < len(ifaces) and ifaces[idx].get("sandbox"):
            mac = ifaces[idx].get("mac", "")
        if ":" in ip["address"]:
            if v6:
                more.append(ip["address"])
            v6 = v6 or ip["address"]
            gw6 = gw6 or ip.get("gateway", "")
        else:
            if v4:
                more.append(ip["address"])
            v4 = v4 or ip["address"]
            gw4 = gw4 or ip.get("gateway", "")
    if not mac:
        mac = next((i.get("mac", "") for i in ifaces if i.get("sandbox")), "")
    return Iface(v4, v6, mac, gw4, gw6, tuple(more))


#: the default bridge network's options, as ``docker network inspect bridge`` shows them
#: (values from the network itself where netctl has them)
def _default_bridge_options(net: Network) -> dict[str, str]:
    return {
        "com.docker.network.bridge.default_bridge": "true",
        "com.docker.network.bridge.enable_icc": str(net.icc).lower(),
        "com.docker.network.bridge.enable_ip_masquerade": str(net.masquerade).lower(),
        "com.docker.network.bridge.host_binding_ipv4": "0.0.0.0",
        "com.docker.network.bridge.name": net.bridge,
        "com.docker.network.driver.mtu": str(net.mtu or 1500),
    }


def network_json(net: Network, containers: list[Container], status: str | None = None) -> dict[str, Any]:
    members: dict[str, Any] = {}
    for c in containers:
        ep = c.endpoint(net.name)
        if ep is None:
            continue
        ifc = _result_iface(ep.result or {})
        members[c.id] = {"Name": c.name, "EndpointID": _endpoint_id(c, net), "MacAddress": ifc.mac,
                         "IPv4Address": ifc.v4, "IPv6Address": ifc.v6}
    opts = dict(net.options)
    if net.driver == "bridge" and net.builtin:
        opts = {**_default_bridge_options(net), **opts}
    elif net.driver == "bridge":
        opts.setdefault("com.docker.network.bridge.name", net.bridge)
    out: dict[str, Any] = {
        "Name": net.name, "Id": net.id, "Created": net.created, "Scope": "local",
        "Driver": {"null": "null"}.get(net.driver, net.driver),
        "EnableIPv4": True, "EnableIPv6": net.ipv6,
        "IPAM": {"Driver": "default", "Options": {},
                 "Config": [{"Subnet": s.subnet, "Gateway": s.gateway,
                             **({"IPRange": s.ip_range} if s.ip_range else {})} for s in net.subnets]},
        "Internal": net.internal, "Attachable": False, "Ingress": False,
        "ConfigFrom": {"Network": ""}, "ConfigOnly": False,
        "Containers": members, "Options": opts, "Labels": dict(net.labels),
    }
    if status is not None:
        out["Status"] = status
    return out


def _endpoint_id(c: Container, net: Network) -> str:
    return hashlib.sha256(f"{c.id}:{net.id}".encode()).hexdigest()


def _sandbox_id(c: Container) -> str:
    """Docker's SandboxID: 64 hex naming the network namespace (shared by joiners)."""
    return hashlib.sha256(f"sandbox:{c.netns}".encode()).hexdigest() if c.netns else ""


def _endpoint_json(c: Container, ep: Endpoint, net: Network | None) -> dict[str, Any]:
    ifc = _result_iface(ep.result or {})
    return {
        "IPAMConfig": {"IPv4Address": ep.ip} if ep.ip else None,
        "Links": None,
        "Aliases": list(ep.aliases),
        "NetworkID": net.id if net else "",
        "EndpointID": _endpoint_id(c, net) if net else "",
        "Gateway": ifc.gw4,
        "IPAddress": _addr(ifc.v4), "IPPrefixLen": _prefix(ifc.v4),
        "IPv6Gateway": ifc.gw6,
        "GlobalIPv6Address": _addr(ifc.v6), "GlobalIPv6PrefixLen": _prefix(ifc.v6),
        "MacAddress": ifc.mac,
        "DriverOpts": None,
        "InterfaceName": ep.ifname,
        "DNSNames": _dns_names(c, ep.aliases) if net and net.dns else None,
    }


def _addr(cidr: str) -> str:
    return cidr.split("/")[0] if cidr else ""


def _prefix(cidr: str) -> int:
    return ipaddress.ip_interface(cidr).network.prefixlen if cidr else 0


def _port_key(p: PortMapping) -> str:
    return f"{p.container_port}/{p.protocol}"


def container_json(c: Container, networks: dict[str, Network], running: bool,
                   etc_dir: str = "") -> dict[str, Any]:
    """``docker container inspect`` for one container (``etc_dir``: where its hosts,
    hostname and resolv.conf live).

    The top-level NetworkSettings address fields describe the default ``bridge`` network's
    endpoint and are empty otherwise, as in Docker (they predate multiple networks).
    """
    nets: dict[str, Any] = {}
    for ep in c.endpoints:
        if ep.network.startswith("container:"):
            continue  # Docker: a joined namespace is the owner's; the joiner has no networks
        nets[ep.network] = _endpoint_json(c, ep, networks.get(ep.network))
    default = c.endpoint("bridge")
    ifc = _result_iface(default.result or {}) if default is not None else Iface()
    ports: dict[str, Any] = {}
    bindings: dict[str, Any] = {}
    for p in c.ports:
        ports.setdefault(_port_key(p), []).append(
            {"HostIp": p.host_ip or "0.0.0.0", "HostPort": str(p.host_port)})
        bindings.setdefault(_port_key(p), []).append(
            {"HostIp": p.host_ip, "HostPort": str(p.host_port)})
    path = (lambda name: os.path.join(etc_dir, name)) if etc_dir else (lambda name: "")
    return {
        "Id": c.id, "Name": c.name, "Created": c.created, "Path": c.command[0], "Args": c.command[1:],
        "State": {"Status": "running" if running else c.state, "Running": running,
                  "Pid": c.pid if running else 0, "ExitCode": c.exit_code},
        "ResolvConfPath": path("resolv.conf"), "HostnamePath": path("hostname"),
        "HostsPath": path("hosts"),
        "Config": {"Hostname": c.hostname, "Cmd": c.command},
        "HostConfig": {
            "NetworkMode": c.network_mode, "PortBindings": bindings,
            "PublishAllPorts": c.publish_all,
            "Dns": [], "DnsOptions": [], "DnsSearch": [], "ExtraHosts": None,
            "CapAdd": list(c.cap_add) or None, "CapDrop": list(c.cap_drop) or None,
            "Privileged": c.privileged,
        },
        # not in Docker's output: what the container's processes hold (bounding, permitted
        # and effective sets), after --cap-add / --cap-drop / --privileged
        "EffectiveCapabilities": list(effective(c.cap_add, c.cap_drop, c.privileged)),
        "NetworkSettings": {
            "Bridge": "", "SandboxID": _sandbox_id(c), "HairpinMode": False,
            "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0,
            "Ports": ports, "SandboxKey": c.netns,
            "SecondaryIPAddresses": [{"Addr": _addr(a), "PrefixLen": _prefix(a)}
                                     for a in ifc.more if ":" not in a] or None,
            "SecondaryIPv6Addresses": [{"Addr": _addr(a), "PrefixLen": _prefix(a)}
                                       for a in ifc.more if ":" in a] or None,
            "EndpointID": nets["bridge"]["EndpointID"] if "bridge" in nets else "",
            "Gateway": ifc.gw4, "GlobalIPv6Address": _addr(ifc.v6),
            "GlobalIPv6PrefixLen": _prefix(ifc.v6),
            "IPAddress": _addr(ifc.v4), "IPPrefixLen": _prefix(ifc.v4),
            "IPv6Gateway": ifc.gw6, "MacAddress": ifc.mac,
            "Networks": nets,
        },
    }


def _dns_names(c: Container, aliases: list[str]) -> list[str]:
    out: list[str] = []
    for n in [c.name, *aliases, c.id[:12], c.hostname]:
        if n and n not in out:
            out.append(n)
    return out
