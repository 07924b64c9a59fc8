"""netctl state (models) -> facts, and TARGET resolution against it (pure)."""

from __future__ import annotations

from typing import Any

from netplugins.nl.host import Route

from ..models import Container
from .facts import Attachment, ContainerInfo, TargetFacts
from .target import TargetSpec


def host_end(result: dict[str, Any], ifname: str) -> str:
    """The host interface of a CNI result: the one listed just before the container's
    (bridge and ptp results list ``[bridge,] host veth, container interface``); "" when
    the result names none (macvlan, a result without interfaces)."""
    ifaces = [i for i in result.get("interfaces") or [] if isinstance(i, dict)]
    at = next((n for n, i in enumerate(ifaces) if i.get("sandbox") and i.get("name") == ifname), None)
    if not at or ifaces[at - 1].get("sandbox"):
        return ""
    return str(ifaces[at - 1].get("name", ""))


def attachment(network: str, ifname: str, result: dict[str, Any], aliases: list[str]) -> Attachment:
    """An attachment from the CNI result netctl stored (and cached) for an endpoint."""
    ifaces = result.get("interfaces") or []
    addrs, gateway = [], None
    for ip in result.get("ips") or []:
        idx = ip.get("interface")
        # only addresses on the container's own interface (the sandbox one)
        if idx is not None and (idx >= len(ifaces) or not ifaces[idx].get("sandbox")):
            continue
        addrs.append(str(ip.get("address", "")))
        if gateway is None and ip.get("gateway") and ":" not in ip["address"]:
            gateway = str(ip["gateway"])
    routes = tuple(Route(str(r.get("dst", "")), gateway=r.get("gw")) for r in result.get("routes") or [])
    ns = tuple(str(s) for s in ((result.get("dns") or {}).get("nameservers") or []))
    return Attachment(network=network, ifname=ifname, addresses=tuple(a for a in addrs if a), gateway=gateway,
                      routes=routes, host_veth=host_end(result, ifname), aliases=tuple(aliases), nameservers=ns)


def container_info(c: Container, by_id: dict[str, Container], running: bool) -> ContainerInfo:
    """A container's facts from state; one in another's namespace gets the owner's attachments."""
    owner = c
    joined = None
    if c.network_mode.startswith("container:"):
        found = by_id.get(c.network_mode.split(":", 1)[1])
        if found is not None:
            owner, joined = found, found.name
    atts = tuple(attachment(ep.network, ep.ifname, ep.result or {}, ep.aliases)
                 for ep in owner.endpoints
                 if ep.network not in ("none", "host") and not ep.network.startswith("container:"))
    return ContainerInfo(name=c.name, id=c.id, running=running, mode=c.network_mode, netns=owner.netns,
                         joined_to=joined, attachments=atts, ports=tuple(c.ports))


def resolve_target(spec: TargetSpec, containers: list[ContainerInfo], proto: str | None,
                   text: str) -> TargetFacts:
    """TARGET against state: a container (name/ID), an alias, an address, a published port.

    DNS names that match nothing stay unresolved here (``gather`` asks dnsd).
    """
    if spec.kind == "hostport":
        hits = [(c, p) for c in containers for p in c.ports
                if p.host_port == spec.port and (proto in (None, "icmp") or p.protocol == proto)]
        hits.sort(key=lambda cp: (cp[1].protocol != "tcp", not cp[0].running))
        if not hits:
            return TargetFacts("hostport", text, port=spec.port)
        c, p = hits[0]
        return TargetFacts("hostport", text, container=c, port=spec.port, mapping=p)
    if spec.kind == "address":
        holder = next((c for c in containers for a in c.attachments if spec.value in a.ips()), None)
        return TargetFacts("address", text, container=holder, address=spec.value, port=spec.port)
    found = find_source(spec.value, containers)
    if found is not None:
        return TargetFacts("container", text, container=found)
    alias = [c for c in containers if any(spec.value in a.aliases for a in c.attachments)]
    return TargetFacts("name", text, container=alias[0] if alias else None)


def find_source(ref: str, containers: list[ContainerInfo]) -> ContainerInfo | None:
    """A container by name, full ID or unique ID prefix (SOURCE, and TARGET first)."""
    exact = [c for c in containers if c.name == ref or c.id == ref]
    prefix = [c for c in containers if len(ref) >= 3 and c.id.startswith(ref)]
    return exact[0] if exact else prefix[0] if len(prefix) == 1 else None
