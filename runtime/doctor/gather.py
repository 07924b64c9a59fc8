"""The gathering layer: read netctl state, the kernel, dnsd, and send the probes.

Links, addresses, routes and neighbours of every namespace come from the netlink boundary
(``netplugins.nl.host.open_host(netns)``: one socket per namespace, no ``ip`` process);
sysctls are read and probes sent by this process inside the namespace, for the block
(``netplugins.nl.netns.entered``: setns and back; doctor is single-threaded), with no
``nsenter`` and no second interpreter. The host namespace is the one netctl runs in. doctor changes one thing only, for the probe's duration: the temporary trace
table of ``tracer`` in the host namespace, removed again in every case.
"""

from __future__ import annotations

import dataclasses
import subprocess
from contextlib import AbstractContextManager, nullcontext

from dnsd import config as dnsconf
from dnsd import control
from netplugins.cni.errors import CniError
from netplugins.firewall.trace import TraceResult, TraceSpec
from netplugins.firewall.tracer import traced
from netplugins.nl import sysctl as nlsysctl
from netplugins.nl.netns import NetnsGone, entered
from netplugins.nl.types import NetlinkError

from ..containers import alive
from ..errors import NetctlError
from ..paths import Paths
from ..state import State
from . import ownrules
from .facts import (
    ContainerInfo,
    DnsAnswer,
    DnsdInfo,
    DoctorFacts,
    HostView,
    Network,
    NsView,
    ProbeResult,
    RuleCheck,
    TargetFacts,
)
from .path import PathPlan, plan_path
from .probe import ask_dns, exchange, parse_ping
from .state_facts import container_info, find_source, resolve_target
from .target import choose_proto, parse_target

TYPE_CHECKING = False
if TYPE_CHECKING:  # the store client behind it is imported only for overlay paths
    from netplugins.overlay.inspect import OverlayFacts

#: a namespace that cannot be entered: gone, not a namespace, or setns refused
UNENTERABLE = (NetnsGone, CniError, OSError)
#: seconds each probe (ping, connect, DNS query) may take
PROBE_TIMEOUT = 1.0


def read_view(netns: str | None, lookups: tuple[str, ...] = ()) -> NsView:
    """Links, routes, neighbours, route lookups and ip_forward of one namespace.

    Raises:
        NetctlError: netlink cannot read it (the namespace is gone).
    """
    # pyroute2 costs ~170 ms to import: only commands that read the kernel pay it
    from netplugins.nl.pyroute import open_host

    try:
        with open_host(netns) as nl:
            view = NsView.read(nl, lookups)
    except NetlinkError as exc:
        raise NetctlError(f"cannot read the links of {netns or 'the host'}: {exc.strerror}") from None
    try:
        with _inside(netns):
            return dataclasses.replace(view, ip_forward=sysctl("net/ipv4/ip_forward"),
                                       ip6_forward=sysctl("net/ipv6/conf/all/forwarding"))
    except UNENTERABLE as exc:
        raise NetctlError(f"cannot enter {netns}: {exc}") from None


def _inside(netns: str | None) -> AbstractContextManager[None]:
    """The block inside the namespace at ``netns``, or where we are when None.

    Raises (on entering): NetnsGone, CniError (not a namespace, cannot be entered)."""
    return entered(netns) if netns else nullcontext()


def sysctl(name: str) -> bool | None:
    """A 0/1 sysctl of the namespace we are in (``net/ipv4/ip_forward``); None when unreadable."""
    return {"0": False, "1": True}.get(nlsysctl.read(name) or "")


def read_dnsd(paths: Paths) -> DnsdInfo:
    """dnsd's networks (listen addresses) and whether it runs."""
    try:
        nets, _entries = dnsconf.read_config(paths.dnsd)
    except OSError:
        nets = {}
    pid = control.find_running(paths.dnsd)
    listen = tuple((name, tuple(str(a) for a in data.get("listen") or [])) for name, data in sorted(nets.items()))
    return DnsdInfo(pid is not None, pid, control.find_supervisor(paths.dnsd), listen)


def _probe(netns: str, proto: str, address: str, port: int | None) -> ProbeResult:
    """The probe, sent from inside ``netns``."""
    try:
        with _inside(netns):
            if proto != "icmp":
                return exchange(proto, address, port or 0, PROBE_TIMEOUT)
            ping = ["ping", "-n", "-c", "1", "-W", f"{PROBE_TIMEOUT:g}", address]
            res = subprocess.run(ping, capture_output=True, text=True, timeout=5)
            return parse_ping(address, res.stdout, res.stderr, res.returncode, PROBE_TIMEOUT)
    except (*UNENTERABLE, subprocess.TimeoutExpired) as exc:
        return ProbeResult(proto, address, port, "error", f"cannot probe from {netns}: {exc}")


def _ask_dnsd(src: ContainerInfo, name: str, nets: dict[str, bool], dnsd: DnsdInfo) -> DnsAnswer | None:
    """Ask dnsd for ``name`` from inside SOURCE; only dnsd's own addresses are asked."""
    if not dnsd.running:
        return None
    for att in src.attachments:
        if not nets.get(att.network):
            continue
        listen = dnsd.listens_for(att.network)
        server = next((s for s in att.nameservers if s in listen), listen[0] if listen else None)
        if server is None:
            continue
        try:
            with _inside(src.netns):
                return ask_dns(name, server, PROBE_TIMEOUT)
        except UNENTERABLE as exc:
            return DnsAnswer(name, server, "error", detail=f"cannot enter {src.netns}: {exc}")
    return None


def _worth_asking(src: ContainerInfo, tgt: TargetFacts, nets: tuple[Network, ...]) -> bool:
    """Ask dnsd only where it can answer from its own records: for a container, only when
    both share a DNS network (anything else dnsd would forward upstream, proving nothing)."""
    if tgt.kind == "name":
        return True
    if tgt.kind != "container" or tgt.container is None:
        return False
    dns = {n.name for n in nets if n.dns}
    return bool(dns & set(src.networks) & set(tgt.container.networks))


def _views(src: ContainerInfo, tgt: TargetFacts, plan: PathPlan) -> tuple[ContainerInfo, TargetFacts]:
    """Both ends with the kernel view of their namespaces (None when it cannot be read)."""
    def view(c: ContainerInfo, lookups: tuple[str, ...]) -> NsView | None:
        try:
            return read_view(c.netns, lookups)
        except NetctlError:
            return None  # the hops then say the namespace could not be read

    if src.running:
        src = dataclasses.replace(src, view=view(src, (plan.address,) if plan.address else ()))
    if tgt.container is not None and tgt.container.running:
        back = plan.src.ips() if plan.src is not None else ()
        tgt = dataclasses.replace(tgt, container=dataclasses.replace(tgt.container, view=view(tgt.container, back)))
    return src, tgt


def _host(plan: PathPlan, dnsd: DnsdInfo, trace: TraceResult | None, rules: tuple[RuleCheck, ...]) -> HostView:
    """The host namespace: links, routes to an external target, forwarding, the firewall.

    Raises:
        NetctlError: netlink cannot read the host namespace.
    """
    lookups = (plan.address,) if plan.kind in ("external", "hostport") and plan.address else ()
    return HostView(read_view(None, lookups), sysctl("net/bridge/bridge-nf-call-iptables"), dnsd, trace, rules)


def trace_spec(plan: PathPlan, proto: str, port: int | None, tgt: TargetFacts) -> TraceSpec | None:
    """What the trace table matches: the probe from SOURCE's address on the path."""
    src = plan.src.ips(plan.family) if plan.src is not None else ()
    if plan.address is None or not src:
        return None
    final_port = tgt.mapping.container_port if tgt.mapping is not None else None
    return TraceSpec(plan.family, src[0], plan.address, proto, port, plan.final, final_port)


def _own_rules(plan: PathPlan, nets: tuple[Network, ...], tgt: TargetFacts, state_dir: str) -> tuple[RuleCheck, ...]:
    """The drivers' check of netctl's rules for the networks (and published ports) on the path."""
    names = [a.network for a in (plan.src, plan.dst) if a is not None]
    by_name = {n.name: n for n in nets}
    on_path = [by_name[n] for n in dict.fromkeys(names) if n in by_name]
    checks = ownrules.check_networks(on_path, state_dir)
    if plan.kind == "hostport" and tgt.container is not None and plan.dst is not None:
        ports = ownrules.check_ports(tgt.container, plan.dst, state_dir)
        checks += (ports,) if ports is not None else ()
    return checks


def gather_overlay(overlay_dir: str, src: ContainerInfo, networks: tuple[Network, ...],
                   address: str | None) -> OverlayFacts | None:
    """The overlay facts for a path from ``src`` to ``address`` (None: not an overlay path)."""
    by_name = {n.name: n for n in networks}
    net = next((n for a in src.attachments if (n := by_name.get(a.network)) is not None
                and n.driver == "overlay" and address and n.contains(address)), None)
    if net is None or address is None:
        return None
    # lazy: only overlay paths need them (the cluster store client; pyroute2: ~170 ms)
    from netplugins.nl.pyroute import open_host
    from netplugins.overlay.inspect import inspect

    try:
        with open_host() as nl:
            return inspect(overlay_dir, net.name, net.bridge, address, nl)
    except NetlinkError:
        return None  # no netlink socket here: the host view, read next, fails and says so


def gather(paths: Paths, source: str, target: str, *, proto: str | None, port: int | None) -> DoctorFacts:
    """Everything ``diagnose`` needs, read now (the probe is sent before the kernel is
    read, so neighbour entries show what the probe left).

    Raises:
        NetctlError: unknown source, a source in the host's namespace, a bad target or
            options, or the host namespace cannot be read.
    """
    spec = parse_target(target)
    state = State(paths)
    nets = tuple(state.networks())
    stored = state.containers()
    by_id = {c.id: c for c in stored}
    ctrs = [container_info(c, by_id, alive(c)) for c in stored]
    src = find_source(source, ctrs)
    if src is None:
        raise NetctlError(f"no such container: {source}")
    if src.mode == "host":
        raise NetctlError(f"{src.name} uses the host's network namespace: give a container with its own")
    tgt = resolve_target(spec, ctrs, proto, target)
    probe_proto, port = choose_proto(spec, proto, port, tgt.mapping.protocol if tgt.mapping else None)
    dnsd = read_dnsd(paths)
    answer = None
    if src.running and _worth_asking(src, tgt, nets):
        name = tgt.container.name if tgt.kind == "container" and tgt.container else spec.value
        answer = _ask_dnsd(src, name, {n.name: n.dns for n in nets}, dnsd)
        if tgt.kind == "name" and tgt.container is None and answer is not None and answer.addresses:
            addr = answer.addresses[0]
            holder = next((c for c in ctrs for a in c.attachments if addr in a.ips()), None)
            tgt = TargetFacts("name", target, container=holder, address=addr)
    tgt = dataclasses.replace(tgt, port=port)
    plan = plan_path(src, tgt, nets)
    probe, trace = None, None
    if src.running and plan.address is not None and (probe_proto == "icmp" or port is not None):
        address, netns = plan.address, src.netns
        matches = trace_spec(plan, probe_proto, port, tgt)
        if matches is None:
            probe = _probe(netns, probe_proto, address, port)
            trace = TraceResult(error=f"{src.name} has no IPv{plan.family} address on the path to trace "
                                      "the probe by")
        else:
            probe, trace = traced(matches, lambda: _probe(netns, probe_proto, address, port))
    src, tgt = _views(src, tgt, plan)
    overlay = gather_overlay(paths.overlay, src, nets, plan.address) if tgt.container is None else None
    return DoctorFacts(source=src, target=tgt, networks=nets,
                       host=_host(plan, dnsd, trace, _own_rules(plan, nets, tgt, paths.bridge_state)),
                       proto=probe_proto, dns=answer, probe=probe, overlay=overlay)
