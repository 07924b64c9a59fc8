"""Hops about policy on the host: forwarding, published ports, the firewall (pure)."""

from __future__ import annotations

import re

from netplugins.firewall.trace import LegacyHit, TracedPacket, TraceEvent

from .fate import Fate, dropped, fate
from .path import is_loopback
from .report import Cause
from .walk import Walk

#: chain-name prefixes of our own per-network chains (nftables / iptables-legacy)
OWN_ROLES = {"in-": "in", "guard-": "guard", "NETCTL-IN-": "in", "NETCTL-GUARD-": "guard"}
#: the fix for netctl rules that are missing or altered
RELOAD = "netctl firewall reload"


def check_forwarding(w: Walk) -> None:
    """``net.ipv4.ip_forward`` on the host, for every path the host routes."""
    if w.plan.kind not in ("routed", "external", "hostport"):
        return
    view = w.facts.host.view
    # the evidence of the path's own family: IPv6 routing has its own switch
    key = "net.ipv4.ip_forward" if w.plan.family == 4 else "net.ipv6.conf.all.forwarding"
    fwd = view.ip_forward if w.plan.family == 4 else view.ip6_forward
    if fwd is None:
        w.info("forwarding", f"{key} could not be read")
    elif fwd:
        w.ok("forwarding", f"{key} = 1 on the host")
    else:
        w.fail("forwarding", f"{key} = 0 on the host: it routes nothing between its interfaces",
               code="ip-forward-off", rank=4, why=f"{key} is off on the host, so it forwards nothing",
               fix=f"turn it back on: sysctl -w {key}=1")


def check_host_route(w: Walk) -> None:
    """The host's own route to an external address."""
    if w.plan.kind != "external" or w.plan.address is None:
        return
    lookup = w.facts.host.view.lookup(w.plan.address)
    if lookup is None:
        return
    if lookup.ok:
        via = f"via {lookup.gateway} " if lookup.gateway else ""
        w.ok("host route", f"the host sends {lookup.dst} {via}out {lookup.dev}")
        return
    w.fail("host route", f"the host has no route to {lookup.dst}: {lookup.error}", code="host-no-route", rank=3,
           why=f"the host has no route to {lookup.dst}",
           fix=f"add one on the host: ip route add {lookup.dst} via GATEWAY")


def _src_ip(w: Walk) -> str:
    ips = w.plan.src.ips(w.plan.family) if w.plan.src is not None else ()
    return ips[0] if ips else ""


def _sent(w: Walk) -> tuple[TracedPacket, ...]:
    trace = w.facts.host.trace
    return trace.outgoing(_src_ip(w)) if trace is not None else ()


def _checks(w: Walk, ports: bool) -> tuple[list[str], list[str]]:
    """The drivers' findings on netctl's rules (of published ports, or of networks):
    what is missing or altered, prefixed with what it belongs to; what could not be read."""
    checks = [c for c in w.facts.host.rules if c.what.startswith("published ports") == ports]
    return ([f"{c.what}: {p}" for c in checks for p in c.problems],
            [f"could not check: {c.what}: {c.error}" for c in checks if c.error])


def check_published(w: Walk) -> None:
    """host:PORT: how the port is published, portmap's rules (driver check), and the DNAT
    the kernel applied to the probe (trace)."""
    t, plan = w.facts.target, w.plan
    if plan.kind != "hostport" or t.mapping is None or w.dst is None:
        return
    m = t.mapping
    if m.host_ip and is_loopback(m.host_ip):
        w.fail("published port", f"{m.host_port}/{m.protocol} is published on {m.host_ip} only", code="port-loopback",
               rank=1, why=f"port {m.host_port} is published on {m.host_ip} only: the host itself can reach it, "
               f"{w.sname} cannot", fix=f"publish it on every address (netctl run -p {m.host_port}:"
               f"{m.container_port} ...), or reach {w.dst.name} directly on a shared network")
        return
    if plan.address is None:
        w.fail("published port", f"{w.sname} has no address to reach the host on")
        return
    broken, unread = _checks(w, ports=True)
    sent = _sent(w)
    nats = [f"kernel: {n}" for p in sent for n in fate(p).nats if re.search(r"\bdnat\b", n)]
    trace = w.facts.host.trace
    if broken:
        w.fail("published port", f"portmap's rules for {m.text()} are missing or altered", *broken, *nats,
               code="port-rule-missing", rank=3, why=f"the published-port rules of {w.dst.name} are missing or "
               "altered", fix=RELOAD)
    elif nats:
        # where the kernel sent it (the trace's last destination), else where state says
        to = next((p.to for p in sent if p.to and p.to != p.daddr), plan.final or w.dst.name)
        w.ok("published port", f"{plan.address}:{m.host_port} is DNATed to {to}:{m.container_port}", *nats, *unread)
    elif trace is not None and trace.error is None and sent:
        w.fail("published port", f"no DNAT rule matched {plan.address}:{m.host_port} from {w.sname}",
               *[f"traced: {p.what()}" for p in sent], *unread, code="port-rule-mismatch", rank=4,
               why=f"no rule DNATs {w.sname}'s traffic to {plan.address}:{m.host_port}",
               fix=f"compare the published address ({m.text()}) with the one {w.sname} uses")
    else:
        w.ok("published port", f"{m.text()} is published (portmap's rules are intact)", *unread)


def _drop_cause(w: Walk, ev: TraceEvent, fate: Fate) -> tuple[str, int, str, str]:
    """(code, rank, message, fix) for the rule or policy that dropped the probe."""
    m = re.search(r'comment "netctl net=([^" ]+)', ev.text)
    net = m.group(1) if m else ""
    role = next((r for c in fate.path for p, r in OWN_ROLES.items() if c.startswith(p)), None)
    ours = ev.family == "inet" and ev.table == "netctl" and bool(net)
    if ours and role == "in":
        return ("isolation", 5, f"{net} drops new connections from other networks (isolation)",
                f"connect {w.sname} to {net}: netctl connect {net} {w.sname}")
    if ours and role == "guard":
        return ("internal", 5, f"{net} is internal: its traffic may not leave it",
                f"connect {w.sname} to a network that is not internal: netctl connect NETWORK {w.sname}")
    where = ev.where(fate.path)
    if ev.kind == "policy":
        return ("firewall-policy", 4, f"the policy of {where} is drop",
                f"accept this traffic in {ev.family} {ev.table} {ev.chain}, or set its policy to accept")
    delete = f", nft delete rule {ev.family} {ev.table} {ev.chain} handle {ev.handle}" if ev.handle is not None else ""
    return ("firewall-rule", 4, f"{where} drops it: {ev.text}", "remove or change that rule (it is not netctl's): "
            f"nft -a list chain {ev.family} {ev.table} {ev.chain} shows it{delete}")


def _legacy_cause(hit: LegacyHit) -> tuple[str, int, str, str]:
    """A legacy DROP/REJECT rule (or policy) counted the probe: the nearest thing to a
    verdict where the kernel cannot trace (its counters, not an evaluation)."""
    fam, table = hit.table.split()
    tool = "iptables-legacy" if fam == "ip" else "ip6tables-legacy"
    fix = (f"{tool} -t {table} -D {hit.text[3:]}" if hit.text.startswith("-A ")
           else f"{tool} -t {table} -P {hit.text[1:].split()[0]} ACCEPT")
    return ("firewall-rule", 4, f"iptables-legacy table {hit.table} drops it: {hit.text}",
            f"remove or change that rule: {fix}")


def _rules_cause(w: Walk, broken: list[str]) -> tuple[str, int, str, str]:
    whats = list(dict.fromkeys(b.split(":", 1)[0] for b in broken))
    why = ": isolation between networks is not enforced" if w.plan.kind == "routed" else ""
    return ("firewall-rules-missing", 4, f"netctl's firewall rules for {', '.join(whats)} are missing or "
            f"altered{why}", RELOAD)


def check_firewall(w: Walk) -> None:
    """The kernel's verdict on the probe (trace) and the drivers' check of netctl's rules."""
    trace, probe = w.facts.host.trace, w.facts.probe
    broken, evidence = _checks(w, ports=False)
    evidence += [f"missing or altered: {b}" for b in broken]
    if trace is not None and trace.legacy_tables:
        evidence.append(f"iptables-legacy tables ({', '.join(trace.legacy_tables)}) run too: the kernel cannot "
                        "trace their rules; counters that rose during the probe: "
                        + ("; ".join(h.describe() for h in trace.legacy) or "none"))
    drop = dropped(trace) if trace is not None else None
    legacy = next((h for h in trace.legacy if h.drops), None) if trace is not None else None
    if drop is None and legacy is not None and probe is not None and not probe.ok:
        code, rank, why, fix = _legacy_cause(legacy)
        w.fail("firewall", f"dropped (its counter rose during the probe): {legacy.describe()}", *evidence,
               code=code, rank=rank, why=why, fix=fix)
    elif drop is not None:
        pkt, decided = drop
        assert decided.decisive is not None
        code, rank, why, fix = _drop_cause(w, decided.decisive, decided)
        w.fail("firewall", f"dropped: {decided.decisive.describe(decided.path)}", f"traced: {pkt.what()}",
               *decided.accepts, *evidence, code=code, rank=rank, why=why, fix=fix)
    else:
        _not_dropped(w, broken, evidence)
        return
    if broken:  # a second cause: netctl's own rules are gone as well
        w.causes.append(Cause(*_rules_cause(w, broken), "firewall"))


def _not_dropped(w: Walk, broken: list[str], evidence: list[str]) -> None:
    """The firewall hop when nothing the kernel reported dropped the probe."""
    plan, trace, sent = w.plan, w.facts.host.trace, _sent(w)
    bridged_only = plan.kind == "bridged" and w.facts.host.bridge_nf_call is not True
    if bridged_only:
        net = w.net(plan.src)
        summary = f"bridged traffic on {net.bridge if net else ''} skips the IP firewall (bridge-nf-call-iptables off)"
    elif trace is None:
        summary = "no probe was sent, so the kernel's verdict is unknown"
    elif trace.error is not None:
        summary = "the kernel's verdict could not be traced"
        evidence.insert(0, f"trace: {trace.error}")
    elif not sent:
        summary = f"no probe packet reached the host's firewall (table inet {trace.table} traced nothing)"
    else:
        got = fate(sent[0])
        summary = f"accepted: {got.accepted_by or 'no chain at the hooks it passed decides anything'}"
        evidence = [f"traced: {p.what()}" for p in sent] + [a for a in got.accepts if a != got.accepted_by] \
            + [f"{'masqueraded' if re.search(r'masquerade|snat', n) else 'DNATed'}: {n}" for n in got.nats] + evidence
        if plan.kind == "external" and not any("masquerade" in n or "snat" in n for n in got.nats):
            evidence.append(f"not masqueraded: {plan.address} must route {_src_ip(w)} back to the host itself")
    if broken:
        code, rank, why, fix = _rules_cause(w, broken)
        w.fail("firewall", f"{why.split(': isolation')[0]}: {broken[0].split(': ', 1)[1]}", summary, *evidence,
               code=code, rank=rank, why=why, fix=fix)
    elif trace is not None and trace.error is None and sent or bridged_only:
        w.ok("firewall", summary, *evidence)
    else:
        w.info("firewall", summary, *evidence)
