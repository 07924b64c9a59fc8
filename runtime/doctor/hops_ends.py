"""Hops about the two ends: source, target, and the networks between them (pure)."""

from __future__ import annotations

from .facts import ContainerInfo
from .walk import Walk


def _addrs(c: ContainerInfo) -> str:
    parts = [f"{', '.join(a.ips())} on {a.network}" for a in c.attachments if a.addresses]
    return "; ".join(parts) or "no address"


def _usable(w: Walk, c: ContainerInfo, hop: str) -> bool:
    """Running, with a namespace that could be read; else a ✘ hop saying which."""
    if not c.running:
        w.fail(hop, f"{c.name} is not running", f"state: {c.name} {c.id[:12]}", code="not-running",
               fix=f"start it again: netctl container rm {c.name}, then netctl run --name {c.name} ...")
    elif c.view is None:
        w.fail(hop, f"{c.name} is running, but its network namespace cannot be entered", f"netns {c.netns}",
               code="netns-gone", why=f"{c.name}'s network namespace is gone",
               fix=f"recreate it: netctl container rm -f {c.name}, then netctl run --name {c.name} ...")
    return c.running and c.view is not None


def _off_network(w: Walk, c: ContainerInfo, hop: str, summary: str) -> bool:
    w.fail(hop, summary, code="no-network", why=f"{c.name} is not on any network",
           fix=f"connect it: netctl connect NETWORK {c.name}")
    return False


def check_source(w: Walk) -> bool:
    """Is SOURCE running with a namespace and an address? False stops the walk."""
    s = w.src
    if s.running and not any(a.addresses for a in s.attachments):
        return _off_network(w, s, "source", f"{s.name} has no network interface besides lo (network {s.mode})")
    if not _usable(w, s, "source"):
        return False
    joined = f", in {s.joined_to}'s namespace" if s.joined_to else ""
    w.ok("source", f"{s.name} is running{joined}: {_addrs(s)}", f"netns {s.netns}")
    return True


def check_target(w: Walk) -> bool:
    """What TARGET is; False when there is nothing to go to."""
    t = w.facts.target
    c = t.container
    if t.kind == "hostport":
        if t.mapping is None or c is None:
            w.fail("target", f"no container publishes {w.facts.proto} port {t.port}", code="port-unpublished",
                   rank=1, fix=f"publish it: netctl run -p {t.port}:CONTAINER_PORT ...")
            return False
        if not c.running:
            return _usable(w, c, "target")
        w.ok("target", f"host port {t.mapping.host_port}/{t.mapping.protocol} is published by {c.name} "
             f"({t.mapping.text()})")
        return True
    if c is not None:
        if not _usable(w, c, "target"):
            return False
        if w.plan.address is None:
            return _off_network(w, c, "target", f"{c.name} has no IPv4 address on any network (network {c.mode})")
        how = {"name": f"{t.text} is a name of {c.name}: ", "address": f"{t.text} belongs to {c.name}: "}
        w.ok("target", f"{how.get(t.kind, '')}{c.name} is running: {_addrs(c)}")
        return True
    if t.kind == "name":
        if t.address is not None:
            w.ok("target", f"{t.text} is no netctl container; it resolves to {t.address}")
            return True
        w.fail("target", f"no container is called {t.text}, and its name does not resolve", code="unknown-name",
               rank=1, why=f"{t.text} is neither a container nor a known name",
               fix="check the name: netctl ps lists the containers")
        return False
    if w.plan.kind == "bridged":
        net = w.plan.src.network if w.plan.src else "?"
        w.fail("target", f"{t.text} is in {net}'s subnet, but no container has it", code="unknown-address",
               rank=1, why=f"no container on {net} has {t.text}",
               fix=f"netctl inspect {net} lists the addresses in use")
        return True
    w.ok("target", f"{t.text} is outside netctl's networks (external address)")
    return True


def _connect_fix(w: Walk) -> str:
    """"connect them: netctl connect NET WHO" for two containers without a common network."""
    t = w.dst
    assert t is not None
    theirs, mine = w.user_networks(t.networks), w.user_networks(w.src.networks)
    if theirs:
        return f"connect them: netctl connect {theirs[0].name} {w.sname}"
    if mine:
        return f"connect them: netctl connect {mine[0].name} {t.name}"
    return f"connect them: netctl connect {t.networks[0] if t.networks else 'NETWORK'} {w.sname}"


def check_network(w: Walk) -> None:
    """Do the ends share a network (containers), may traffic leave it (external)?"""
    plan, s, t = w.plan, w.src, w.dst
    net = w.net(plan.src)
    if t is not None and plan.kind in ("bridged", "routed"):
        if plan.kind == "bridged" and plan.src is not None:
            flags = [f"icc {'on' if net is None or net.icc else 'off'}"] + (["internal"] if net and net.internal else [])
            w.ok("network", f"{s.name} and {t.name} share {plan.src.network} ({', '.join(flags)})")
            return
        w.fail("network", f"{s.name} and {t.name} share no network: {s.name} is on {', '.join(s.networks)}, "
               f"{t.name} on {', '.join(t.networks)}", code="no-shared-network", rank=1,
               why="they share no network, and traffic between networks is dropped", fix=_connect_fix(w))
        return
    if net is None or plan.kind != "external":
        return
    if net.internal:
        others = [n for n in w.facts.networks if not n.internal and n.driver == "bridge" and n.name not in s.networks]
        pick = next((n.name for n in others if not n.builtin), others[0].name if others else "NETWORK")
        w.fail("network", f"{net.name} is internal: nothing leaves it", f"{s.name} is on {', '.join(s.networks)}",
               code="internal", rank=1, why=f"{net.name} is internal: no traffic leaves it",
               fix=f"connect {s.name} to a network that is not internal as well: netctl connect {pick} {s.name}")
        return
    w.ok("network", f"{s.name} leaves through {net.name} (not internal"
         f"{', masquerade on' if net.masquerade else ', masquerade off'})")
