"""Facts in, hops + verdict + fix out (pure): the heart of ``netctl doctor``.

The hops are checked in path order; each failure may name a cause with a rank (lower
is more fundamental: a stopped container before a missing route before a firewall
drop). The verdict trusts what was observed over what was inferred: a probe that got
through makes the path healthy whatever the checks thought (unless netctl's own rules
are missing: then it works only because nothing guards it), and a failed probe is
explained by the most fundamental cause found (or called unexplained).
"""

from __future__ import annotations

from . import hops_ends, hops_link, hops_name, hops_overlay, hops_policy
from .facts import DoctorFacts
from .path import plan_path, with_route
from .report import DNS_CODES, Report, Verdict
from .walk import Walk

#: causes that make a working path unsafe (netctl's own rules are gone): never "healthy"
ENFORCEMENT_CODES = frozenset({"firewall-rules-missing", "port-rule-missing"})


def diagnose(facts: DoctorFacts) -> Report:
    """Walk the path described by ``facts``; never raises for consistent facts."""
    plan = plan_path(facts.source, facts.target, facts.networks)
    w = Walk(facts=facts, plan=plan)
    lookup = w.src_lookup()
    if lookup is not None and lookup.ok:
        w.plan = with_route(plan, facts.source, lookup.dev)
    if hops_ends.check_source(w) and hops_ends.check_target(w):
        hops_ends.check_network(w)
        hops_link.check_interface(w)
        hops_link.check_route(w)
        hops_link.check_bridges(w)
        hops_link.check_target_interface(w)
        hops_link.check_isolation(w)
        hops_policy.check_forwarding(w)
        hops_policy.check_host_route(w)
        hops_policy.check_published(w)
        hops_policy.check_firewall(w)
        hops_link.check_neighbour(w)
        if facts.overlay is not None:
            hops_overlay.check_overlay(w, facts.overlay)
    if facts.source.running:
        hops_name.check_dns(w)
        hops_name.check_probe(w)
    verdict = _verdict(w)
    return Report(source=facts.source.name, target=facts.target.text, proto=facts.proto,
                  port=facts.target.port, hops=tuple(w.hops), verdict=verdict,
                  causes=tuple(w.ranked()), probe=facts.probe)


def _verdict(w: Walk) -> Verdict:
    causes = w.ranked()
    path = [c for c in causes if c.code not in DNS_CODES]
    names = [c for c in causes if c.code in DNS_CODES]
    probe = w.facts.probe
    s = w.sname
    # a published port is named as given: "host:8080", not the container behind it
    t = w.facts.target.text if w.facts.target.kind == "hostport" else w.tname
    if probe is not None and probe.ok:
        unsafe = [c for c in path if c.code in ENFORCEMENT_CODES]
        if unsafe:
            # reachable, but only because what should guard the path is gone
            c = unsafe[0]
            return Verdict(False, f"{s} reaches {t}, but {c.message}", c.fix, c.code)
        if names:
            c = names[0]
            return Verdict(False, f"{s} reaches {t} at {probe.address}, but not by name: {c.message}", c.fix, c.code)
        note = f" (although {path[0].message})" if path else ""
        return Verdict(True, f"healthy: {s} reaches {t} ({probe.what()}: {probe.detail}){note}")
    if path:
        c = path[0]
        return Verdict(False, f"{s} cannot reach {t}: {c.message}", c.fix, c.code)
    if probe is not None:
        return Verdict(False, f"{s} cannot reach {t} ({probe.what()}: {probe.detail}), and no check explains why",
                       "capture traffic to see where it stops: tcpdump -ni BRIDGE", "unexplained")
    if names:
        c = names[0]
        return Verdict(False, f"{s} cannot resolve {t}: {c.message}", c.fix, c.code)
    return Verdict(True, f"no problem found between {s} and {t} (nothing was probed)")
