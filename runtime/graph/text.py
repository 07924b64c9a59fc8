"""GraphModel -> a tree for the terminal (pure)."""

from __future__ import annotations

from .model import GEndpoint, GNetwork, GraphModel


def _tree(lines: list[str], items: list[tuple[str, list[str]]], prefix: str = "") -> None:
    """Append ``items`` (text, children) as tree branches under ``prefix``."""
    for i, (text, children) in enumerate(items):
        last = i == len(items) - 1
        lines.append(f"{prefix}{'└── ' if last else '├── '}{text}")
        sub = prefix + ("    " if last else "│   ")
        _tree(lines, [(c, []) for c in children], sub)


def _net_line(n: GNetwork) -> str:
    parts = [f"network {n.name}" + ("  (overlay)" if n.driver == "overlay" else "")]
    br = n.bridge + (f" ({n.bridge_state})" if n.bridge_state else "")
    parts.append(f"bridge {br}")
    for i, s in enumerate(n.subnets):
        gw = n.gateways[i] if i < len(n.gateways) else ""
        parts.append(f"{s} gw {gw}" if gw else s)
    if n.builtin:
        parts.append("default bridge, no DNS")
    elif not n.dns:
        parts.append("DNS off")
    elif n.dns_listen:
        parts.append("dnsd " + ", ".join(f"{a}:53" for a in n.dns_listen))
    else:
        parts.append("dnsd not listening")
    if n.internal:
        parts.append("internal")
    if not n.icc:
        parts.append("icc off")
    return "  ".join(parts)


def _ep_line(name: str, e: GEndpoint, running: bool) -> str:
    veth = f"  ⇄ {e.host_veth}" + (f" ({e.veth_state})" if e.veth_state else "") if e.host_veth else ""
    aliases = f"  aliases {', '.join(e.aliases)}" if e.aliases else ""
    stopped = "" if running else "  (stopped)"
    return f"{name}  {e.ifname} {', '.join(e.addresses) or 'no address'}{veth}{aliases}{stopped}"


def render_text(model: GraphModel) -> str:
    """The model as an indented tree: networks and their containers, then joined
    containers, containers without a network, and published ports."""
    others = len(model.remote_hosts()) if model.node else 0
    lines = [model.title() + (f" on {model.node}, {others} other host{'' if others == 1 else 's'}"
                              if model.node else "")]
    items: list[tuple[str, list[str]]] = []
    for n in model.networks:
        kids = [_ep_line(c.name, e, c.running) for c in model.members(n.name) for e in c.endpoints
                if e.network == n.name]
        for node, vtep in model.remote_hosts(n.name):
            for r in model.remotes:
                if r.network == n.name and r.node == node:
                    kids.append(f"{r.name}  {r.address}  on {node}, through the VXLAN tunnel to {vtep}")
        items.append((_net_line(n), kids or ["(no containers)"]))
    joined = [f"{c.name} → shares {c.joined_to}'s namespace" for c in model.containers if c.joined_to]
    if joined:
        items.append(("joined containers", joined))
    alone = [f"{c.name}  network {c.mode}" for c in model.containers if not c.joined_to and not c.endpoints]
    if alone:
        items.append(("containers without a bridge network", alone))
    ports = [f"{p.host_text()}/{p.protocol} → {c.name}:{p.container_port}" for c in model.containers
             for p in c.ports]
    if ports:
        items.append(("published ports", ports))
    _tree(lines, items)
    return "\n".join(lines) + "\n"
