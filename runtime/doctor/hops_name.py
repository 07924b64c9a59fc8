"""Hops about the name (dnsd) and the probe that observes the path (pure)."""

from __future__ import annotations

from .walk import Walk


def _create_fix(w: Walk) -> str:
    who = [w.sname] + ([w.dst.name] if w.dst is not None else [])
    steps = ", then ".join(f"netctl connect NET {n}" for n in who)
    return f"use a user-defined network: netctl create NET, then {steps}"


def check_dns(w: Walk) -> None:
    """Can SOURCE resolve TARGET's name through dnsd? (containers and names only)"""
    t = w.facts.target
    if t.kind not in ("container", "name"):
        return
    s = w.src
    name = t.container.name if t.kind == "container" and t.container is not None else t.text
    nets = [w.facts.network(n) for n in s.networks]
    known = [n for n in nets if n is not None]
    dns_nets = [n for n in known if n.dns]
    f = w.found
    if not dns_nets:
        if known and all(n.default_bridge for n in known):
            f.fail("dns", f"{s.name} is on the default bridge, which has no DNS",
                   cause=f.cause("no-dns-default-bridge", 7, f"{s.name} is on the default bridge, which has no DNS",
                                 _create_fix(w), "dns"))
        else:
            names = ", ".join(n.name for n in known) or "no network"
            f.fail("dns", f"DNS is disabled on {names}",
                   cause=f.cause("dns-disabled", 7, f"{s.name}'s networks ({names}) have DNS disabled",
                                 "use a network created without --disable-dns", "dns"))
        return
    c = w.dst
    if c is not None:
        shared = [n for n in dns_nets if n.name in c.networks]
        if not shared:
            theirs = [w.facts.network(n) for n in c.networks]
            if theirs and all(n is not None and n.default_bridge for n in theirs):
                msg = f"{c.name} is on the default bridge, which has no DNS"
            else:
                msg = (f"{c.name} is on {', '.join(c.networks)}, where {s.name} cannot ask: "
                       "dnsd answers only names of the asker's networks")
            f.fail("dns", msg, f"{s.name} asks dnsd on {', '.join(n.name for n in dns_nets)}",
                   cause=f.cause("dns-other-network", 7, msg,
                                 f"use a user-defined network for both: netctl connect {dns_nets[0].name} {c.name}",
                                 "dns"))
            return
    dnsd = w.facts.host.dnsd
    listen = [a for n in dns_nets for a in dnsd.listens_for(n.name)]
    if not dnsd.running:
        f.fail("dns", "dnsd is not running", cause=f.cause(
            "dnsd-down", 6, "dnsd, the embedded DNS server, is not running",
            "reconnect a container to restart it: netctl disconnect "
            f"{dns_nets[0].name} {s.name}, then netctl connect {dns_nets[0].name} {s.name}", "dns"))
        return
    if not listen:
        f.fail("dns", f"dnsd has no address on {', '.join(n.name for n in dns_nets)}", cause=f.cause(
            "dnsd-no-listener", 6, f"dnsd does not listen on {dns_nets[0].name}'s gateway",
            f"reconnect {s.name}: netctl disconnect {dns_nets[0].name} {s.name}, "
            f"then netctl connect {dns_nets[0].name} {s.name}", "dns"))
        return
    ans = w.facts.dns
    if ans is None:
        f.info("dns", f"{name} was not looked up", f"dnsd (pid {dnsd.pid}) listens on {', '.join(listen)}")
        return
    asked = f"asked dnsd on {ans.server} from {s.name}"
    if ans.outcome == "answer":
        wanted = set(c.attachments[0].ips() if c is not None and c.attachments else ())
        if c is not None:
            wanted = {ip for a in c.attachments for ip in a.ips()}
        if c is None or wanted & set(ans.addresses):
            f.ok("dns", f"{name} → {', '.join(ans.addresses)}", asked)
            return
        f.fail("dns", f"{name} → {', '.join(ans.addresses)}, which is not {c.name}'s address", asked,
               cause=f.cause("dns-wrong", 7, f"dnsd answers {name} with another container's address",
                             "names are shared: rename one of them or use an alias", "dns"))
        return
    if ans.outcome == "timeout":
        f.fail("dns", f"no answer from {ans.server}:53", asked, ans.detail,
               cause=f.cause("dns-timeout", 6, f"dnsd on {ans.server} does not answer {s.name}",
                             "look at dnsd's log (dnsd.log in netctl's run/dnsd directory)", "dns"))
        return
    f.fail("dns", f"dnsd does not know {name} ({ans.outcome})", asked, ans.detail,
           cause=f.cause("dns-failed", 7, f"dnsd on {ans.server} does not know {name}",
                         f"reconnect {name} so that its names are registered again" if c is not None
                         else "check the spelling (netctl ps lists names; aliases via netctl inspect)", "dns"))


def check_probe(w: Walk) -> None:
    """What actually happened to traffic sent from SOURCE's namespace."""
    p = w.facts.probe
    if p is None:
        if w.plan.address is not None and w.src.running:
            w.found.info("probe", "no probe was sent")
        return
    via = f" (via host port {w.facts.target.port})" if w.plan.kind == "hostport" else ""
    if p.ok:
        w.found.ok("probe", f"{p.what()}{via}: {p.detail}")
        return
    if p.outcome == "refused":
        if w.plan.kind == "hostport" and not any(h.name == "published port" and h.status == "ok" for h in w.found.hops):
            w.found.fail("probe", f"{p.what()}: {p.detail}", "the host itself refused: nothing redirects it")
            return
        m = w.facts.target.mapping
        port = m.container_port if m is not None else p.port
        w.found.fail("probe", f"{p.what()}{via}: {p.detail}", cause=w.found.cause(
            "not-listening", 9, f"{w.tname} refused {p.proto} port {port}: the path is open, but nothing listens",
            f"start a server on {p.proto} port {port} {'in' if w.dst is not None else 'on'} {w.tname}", "probe"))
        return
    w.found.fail("probe", f"{p.what()}{via}: {p.detail}")
