"""Hops about the name (dnsd) and the probe that observes the path (pure)."""

from __future__ import annotations

from .walk import Walk


def _create_fix(w: Walk) -> str:
    who = [w.sname] + ([w.dst.name] if w.dst is not None else [])
    steps = ", then ".join(f"netctl connect NET {n}" for n in who)
    return f"use a user-defined network: netctl create NET, then {steps}"


def check_dns(w: Walk) -> None:
    """Can SOURCE resolve TARGET's name through dnsd? (containers and names only)"""
    t, s, c = w.facts.target, w.src, w.dst
    if t.kind not in ("container", "name"):
        return
    name = t.container.name if t.kind == "container" and t.container is not None else t.text
    known = [n for n in (w.facts.network(n) for n in s.networks) if n is not None]
    dns_nets = [n for n in known if n.dns]
    if not dns_nets:
        if known and all(n.builtin and n.driver == "bridge" for n in known):
            w.fail("dns", f"{s.name} is on the default bridge, which has no DNS", code="no-dns-default-bridge",
                   rank=7, fix=_create_fix(w))
        else:
            names = ", ".join(n.name for n in known) or "no network"
            w.fail("dns", f"DNS is disabled on {names}", code="dns-disabled", rank=7,
                   why=f"{s.name}'s networks ({names}) have DNS disabled",
                   fix="use a network created without --disable-dns")
        return
    if c is not None and not [n for n in dns_nets if n.name in c.networks]:
        theirs = [w.facts.network(n) for n in c.networks]
        if theirs and all(n is not None and n.builtin and n.driver == "bridge" for n in theirs):
            msg = f"{c.name} is on the default bridge, which has no DNS"
        else:
            msg = (f"{c.name} is on {', '.join(c.networks)}, where {s.name} cannot ask: "
                   "dnsd answers only names of the asker's networks")
        w.fail("dns", msg, f"{s.name} asks dnsd on {', '.join(n.name for n in dns_nets)}", code="dns-other-network",
               rank=7, fix=f"use a user-defined network for both: netctl connect {dns_nets[0].name} {c.name}")
        return
    dnsd, first = w.facts.host.dnsd, dns_nets[0].name
    listen = [a for n in dns_nets for a in dnsd.listens_for(n.name)]
    if not dnsd.running:
        again = (f"the agent (pid {dnsd.supervisor}) restarts it: if it stays down, netctl agent status says why"
                 if dnsd.supervisor else "start the agent, which keeps it running: netctl agent start "
                 f"(or reconnect a container: netctl disconnect {first} {s.name}, then netctl connect {first} {s.name})")
        w.fail("dns", "dnsd is not running", code="dnsd-down", rank=6,
               why="dnsd, the embedded DNS server, is not running", fix=again)
        return
    if not listen:
        w.fail("dns", f"dnsd has no address on {', '.join(n.name for n in dns_nets)}", code="dnsd-no-listener",
               rank=6, why=f"dnsd does not listen on {first}'s gateway",
               fix=f"reconnect {s.name}: netctl disconnect {first} {s.name}, then netctl connect {first} {s.name}")
        return
    ans = w.facts.dns
    if ans is None:
        w.info("dns", f"{name} was not looked up", f"dnsd (pid {dnsd.pid}) listens on {', '.join(listen)}")
        return
    asked = f"asked dnsd on {ans.server} from {s.name}"
    if ans.outcome == "answer":
        if c is None or {ip for a in c.attachments for ip in a.ips()} & set(ans.addresses):
            w.ok("dns", f"{name} → {', '.join(ans.addresses)}", asked)
        else:
            w.fail("dns", f"{name} → {', '.join(ans.addresses)}, which is not {c.name}'s address", asked,
                   code="dns-wrong", rank=7, why=f"dnsd answers {name} with another container's address",
                   fix="names are shared: rename one of them or use an alias")
    elif ans.outcome == "timeout":
        w.fail("dns", f"no answer from {ans.server}:53", asked, ans.detail, code="dns-timeout", rank=6,
               why=f"dnsd on {ans.server} does not answer {s.name}",
               fix="look at dnsd's log (dnsd.log in netctl's run/dnsd directory)")
    else:
        w.fail("dns", f"dnsd does not know {name} ({ans.outcome})", asked, ans.detail, code="dns-failed", rank=7,
               why=f"dnsd on {ans.server} does not know {name}",
               fix=f"reconnect {name} so that its names are registered again" if c is not None
               else "check the spelling (netctl ps lists names; aliases via netctl inspect)")


def check_probe(w: Walk) -> None:
    """What actually happened to traffic sent from SOURCE's namespace."""
    p = w.facts.probe
    if p is None:
        if w.plan.address is not None and w.src.running:
            w.info("probe", "no probe was sent")
        return
    via = f" (via host port {w.facts.target.port})" if w.plan.kind == "hostport" else ""
    if p.ok:
        w.ok("probe", f"{p.what()}{via}: {p.detail}")
    elif p.outcome != "refused":
        w.fail("probe", f"{p.what()}{via}: {p.detail}")
    elif w.plan.kind == "hostport" and not any(h.name == "published port" and h.status == "ok" for h in w.hops):
        w.fail("probe", f"{p.what()}: {p.detail}", "the host itself refused: nothing redirects it")
    else:
        m = w.facts.target.mapping
        port = m.container_port if m is not None else p.port
        w.fail("probe", f"{p.what()}{via}: {p.detail}", code="not-listening", rank=9,
               why=f"{w.tname} refused {p.proto} port {port}: the path is open, but nothing listens",
               fix=f"start a server on {p.proto} port {port} {'in' if w.dst is not None else 'on'} {w.tname}")
