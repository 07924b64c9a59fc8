"""Hops about the two ends: source, target, and the networks between them (pure)."""

from __future__ import annotations

from .facts import ContainerInfo
from .walk import Walk


def _addrs(c: ContainerInfo) -> str:
    parts = [f"{', '.join(a.ips())} on {a.network}" for a in c.attachments if a.addresses]
    return "; ".join(parts) or "no address"


def _not_running(w: Walk, c: ContainerInfo, hop: str) -> None:
    w.found.fail(hop, f"{c.name} is not running", f"state: {c.name} {c.id[:12]}",
                 cause=w.found.cause("not-running", 0, f"{c.name} is not running",
                                     f"start it again: netctl container rm {c.name}, then netctl run --name {c.name} ...",
                                     hop))


def _unreadable(w: Walk, c: ContainerInfo, hop: str) -> None:
    w.found.fail(hop, f"{c.name} is running, but its network namespace cannot be entered", f"netns {c.netns}",
                 cause=w.found.cause("netns-gone", 0, f"{c.name}'s network namespace is gone",
                                     f"recreate it: netctl container rm -f {c.name}, then netctl run --name "
                                     f"{c.name} ...", hop))


def check_source(w: Walk) -> bool:
    """Is SOURCE running with a namespace and an address? False stops the walk."""
    s = w.src
    if not s.running:
        _not_running(w, s, "source")
        return False
    if not any(a.addresses for a in s.attachments):
        w.found.fail("source", f"{s.name} has no network interface besides lo (network {s.mode})",
                     cause=w.found.cause("no-network", 0, f"{s.name} is not on any network",
                                         f"connect it: netctl connect NETWORK {s.name}", "source"))
        return False
    if s.view is None:
        _unreadable(w, s, "source")
        return False
    joined = f", in {s.joined_to}'s namespace" if s.joined_to else ""
    w.found.ok("source", f"{s.name} is running{joined}: {_addrs(s)}", f"netns {s.netns}")
    return True


def check_target(w: Walk) -> bool:
    """What TARGET is; False when there is nothing to go to."""
    t = w.facts.target
    c = t.container
    if t.kind == "hostport":
        if t.mapping is None or c is None:
            proto = w.facts.proto
            w.found.fail("target", f"no container publishes {proto} port {t.port}",
                         cause=w.found.cause("port-unpublished", 1,
                                             f"no container publishes {proto} port {t.port}",
                                             f"publish it: netctl run -p {t.port}:CONTAINER_PORT ...", "target"))
            return False
        if not c.running:
            _not_running(w, c, "target")
            return False
        w.found.ok("target", f"host port {t.mapping.host_port}/{t.mapping.protocol} is published by {c.name} "
                   f"({t.mapping.text()})")
        return True
    if c is not None:
        if not c.running:
            _not_running(w, c, "target")
            return False
        if c.view is None:
            _unreadable(w, c, "target")
            return False
        if w.plan.address is None:
            w.found.fail("target", f"{c.name} has no IPv4 address on any network (network {c.mode})",
                         cause=w.found.cause("no-network", 0, f"{c.name} is not on any network",
                                             f"connect it: netctl connect NETWORK {c.name}", "target"))
            return False
        how = {"name": f"{t.text} is a name of {c.name}: ", "address": f"{t.text} belongs to {c.name}: "}
        w.found.ok("target", f"{how.get(t.kind, '')}{c.name} is running: {_addrs(c)}")
        return True
    if t.kind == "name":
        if t.address is not None:
            w.found.ok("target", f"{t.text} is no netctl container; it resolves to {t.address}")
            return True
        w.found.fail("target", f"no container is called {t.text}, and its name does not resolve",
                     cause=w.found.cause("unknown-name", 1, f"{t.text} is neither a container nor a known name",
                                         "check the name: netctl ps lists the containers", "target"))
        return False
    if w.plan.kind == "bridged":
        net = w.plan.src.network if w.plan.src else "?"
        w.found.fail("target", f"{t.text} is in {net}'s subnet, but no container has it",
                     cause=w.found.cause("unknown-address", 1, f"no container on {net} has {t.text}",
                                         f"netctl inspect {net} lists the addresses in use", "target"))
        return True
    w.found.ok("target", f"{t.text} is outside netctl's networks (external address)")
    return True


def _connect_fix(w: Walk) -> str:
    """"connect them: netctl connect NET WHO" for two containers without a common network."""
    t = w.dst
    assert t is not None
    theirs = w.user_networks(t.networks)
    if theirs:
        return f"connect them: netctl connect {theirs[0].name} {w.sname}"
    mine = w.user_networks(w.src.networks)
    if mine:
        return f"connect them: netctl connect {mine[0].name} {t.name}"
    return f"connect them: netctl connect {t.networks[0] if t.networks else 'NETWORK'} {w.sname}"


def check_network(w: Walk) -> None:
    """Do the ends share a network (containers), may traffic leave it (external)?"""
    plan, s = w.plan, w.src
    net = w.net(plan.src)
    if w.dst is not None and plan.kind in ("bridged", "routed"):
        t = w.dst
        if plan.kind == "bridged" and plan.src is not None:
            flags = [f"icc {'on' if net is None or net.icc else 'off'}"]
            if net is not None and net.internal:
                flags.append("internal")
            w.found.ok("network", f"{s.name} and {t.name} share {plan.src.network} ({', '.join(flags)})")
            return
        msg = (f"{s.name} and {t.name} share no network: {s.name} is on {', '.join(s.networks)}, "
               f"{t.name} on {', '.join(t.networks)}")
        w.found.fail("network", msg, cause=w.found.cause(
            "no-shared-network", 1, "they share no network, and traffic between networks is dropped", _connect_fix(w),
            "network"))
        return
    if plan.kind in ("external", "hostport") and net is not None:
        if net.internal and plan.kind == "external":
            others = [n for n in w.facts.networks if not n.internal and n.driver == "bridge"
                      and n.name not in s.networks]
            pick = next((n.name for n in others if not n.builtin), others[0].name if others else "NETWORK")
            w.found.fail("network", f"{net.name} is internal: nothing leaves it",
                         f"{s.name} is on {', '.join(s.networks)}",
                         cause=w.found.cause("internal", 1, f"{net.name} is internal: no traffic leaves it",
                                             f"connect {s.name} to a network that is not internal as well: "
                                             f"netctl connect {pick} {s.name}", "network"))
            return
        if plan.kind == "external":
            w.found.ok("network", f"{s.name} leaves through {net.name} (not internal"
                       f"{', masquerade on' if net.masquerade else ', masquerade off'})")
