"""``netctl inspect``: networks and containers as JSON in Docker's shape (pure rendering)."""

from __future__ import annotations

import ipaddress
from typing import Any

from .caps import effective
from .models import Container, Network


def _result_iface(ep_result: dict[str, Any]) -> tuple[str, str, str, str]:
    """(IPv4 CIDR, IPv6 CIDR, MAC, IPv4 gateway) of the container interface in a result."""
    ifaces = ep_result.get("interfaces") or []
    v4 = v6 = gw = ""
    mac = ""
    for ip in ep_result.get("ips") or []:
        idx = ip.get("interface")
        if idx is not None and idx < len(ifaces) and ifaces[idx].get("sandbox"):
            mac = ifaces[idx].get("mac", "")
        if ":" in ip["address"]:
            v6 = v6 or ip["address"]
        else:
            v4 = v4 or ip["address"]
            gw = gw or ip.get("gateway", "")
    if not mac:
        mac = next((i.get("mac", "") for i in ifaces if i.get("sandbox")), "")
    return v4, v6, mac, gw


def network_json(net: Network, containers: list[Container], status: str | None = None) -> dict[str, Any]:
    members: dict[str, Any] = {}
    for c in containers:
        ep = c.endpoint(net.name)
        if ep is None:
            continue
        v4, v6, mac, _ = _result_iface(ep.result or {})
        members[c.id] = {"Name": c.name, "EndpointID": _endpoint_id(c, net), "MacAddress": mac,
                         "IPv4Address": v4, "IPv6Address": v6}
    opts = dict(net.options)
    if net.driver == "bridge":
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
    import hashlib

    return hashlib.sha256(f"{c.id}:{net.id}".encode()).hexdigest()


def container_json(c: Container, networks: dict[str, Network], running: bool) -> dict[str, Any]:
    nets: dict[str, Any] = {}
    for ep in c.endpoints:
        if ep.network.startswith("container:"):
            continue  # Docker: a joined namespace is the owner's; the joiner has no networks
        net = networks.get(ep.network)
        v4, v6, mac, gw = _result_iface(ep.result or {})
        prefix = ipaddress.ip_interface(v4).network.prefixlen if v4 else 0
        nets[ep.network] = {
            "IPAMConfig": {"IPv4Address": ep.ip} if ep.ip else None,
            "Aliases": list(ep.aliases),
            "NetworkID": net.id if net else "",
            "EndpointID": _endpoint_id(c, net) if net else "",
            "Gateway": gw, "IPAddress": v4.split("/")[0] if v4 else "", "IPPrefixLen": prefix,
            "GlobalIPv6Address": v6.split("/")[0] if v6 else "",
            "GlobalIPv6PrefixLen": ipaddress.ip_interface(v6).network.prefixlen if v6 else 0,
            "MacAddress": mac, "InterfaceName": ep.ifname,
            "DNSNames": _dns_names(c, ep.aliases) if net and net.dns else None,
        }
    ports: dict[str, Any] = {}
    for p in c.ports:
        ports.setdefault(f"{p.container_port}/{p.protocol}", []).append(
            {"HostIp": p.host_ip or "0.0.0.0", "HostPort": str(p.host_port)})
    return {
        "Id": c.id, "Name": c.name, "Created": c.created, "Path": c.command[0], "Args": c.command[1:],
        "State": {"Status": "running" if running else c.state, "Running": running,
                  "Pid": c.pid if running else 0, "ExitCode": c.exit_code},
        "Config": {"Hostname": c.hostname, "Cmd": c.command},
        "HostConfig": {"NetworkMode": c.network_mode, "CapAdd": list(c.cap_add) or None,
                       "CapDrop": list(c.cap_drop) or None, "Privileged": c.privileged},
        # not in Docker's output: what the container's processes hold (bounding, permitted
        # and effective sets), after --cap-add / --cap-drop / --privileged
        "EffectiveCapabilities": list(effective(c.cap_add, c.cap_drop, c.privileged)),
        "NetworkSettings": {"SandboxKey": c.netns, "Ports": ports, "Networks": nets},
    }


def _dns_names(c: Container, aliases: list[str]) -> list[str]:
    out: list[str] = []
    for n in [c.name, *aliases, c.id[:12], c.hostname]:
        if n and n not in out:
            out.append(n)
    return out
