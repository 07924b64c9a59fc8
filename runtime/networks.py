"""Network verbs: create, rm, prune, connect, disconnect (the CNI side of them)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import re
import secrets
import socket
from typing import Any

from ipam.errors import IpamError

from . import conflist
from .cnirun import RuntimeConf
from .context import Context
from .errors import Conflict, NetctlError, NotFound
from .models import BUILTIN, Container, Endpoint, Network, Subnet
from .names import name_containers
from .state import write_json

NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
DEFAULT_BRIDGE = "netctl0"
OPT_BRIDGE_NAME = "com.docker.network.bridge.name"
OPT_ICC = "com.docker.network.bridge.enable_icc"
OPT_MASQ = "com.docker.network.bridge.enable_ip_masquerade"
OPT_MTU = "com.docker.network.driver.mtu"
KNOWN_OPTS = (OPT_BRIDGE_NAME, OPT_ICC, OPT_MASQ, OPT_MTU)


def now() -> str:
    """RFC 3339 UTC with microseconds, as Docker's Created (RFC3339Nano): records made in
    the same second still sort in the order they were made (``ps`` lists by it)."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _bool_opt(opts: dict[str, str], key: str, default: bool) -> bool:
    if key not in opts:
        return default
    val = opts[key].lower()
    if val in ("true", "1", "yes"):
        return True
    if val in ("false", "0", "no"):
        return False
    raise NetctlError(f"invalid value {opts[key]!r} for option {key}: use true or false")


def write_conflist(ctx: Context, net: Network) -> dict[str, Any]:
    has_portmap = os.path.exists(os.path.join(ctx.cni.plugin_path[0], "portmap"))
    conf = conflist.render(net, ctx.paths, portmap=has_portmap)
    write_json(os.path.join(ctx.paths.conf_dir, f"{net.name}.conflist"), conf)
    return conf


def load_conflist(ctx: Context, net: Network) -> dict[str, Any]:
    path = os.path.join(ctx.paths.conf_dir, f"{net.name}.conflist")
    try:
        with open(path) as fh:
            data: dict[str, Any] = json.load(fh)
    except (OSError, ValueError):
        return write_conflist(ctx, net)
    if data.get("cniVersion") != conflist.CNI_VERSION and "cniVersions" in data:
        # written by an older netctl ("cniVersion": "1.1.0", which libcni < 1.2 rejects)
        return write_conflist(ctx, net)
    if conflist.outdated(data):
        # DNS names by the bridge's embeddedDNS key: now the chained netctl-dns plugin,
        # whose DEL removes the names the old bridge wrote (same files)
        return write_conflist(ctx, net)
    return data


def _host_prefixes() -> list[Any]:
    # lazy: ipam.pools imports netaddr, ~20 ms of netctl start-up
    from ipam.pools import probe_host_prefixes

    return list(probe_host_prefixes())


def _existing(ctx: Context) -> dict[str, list[str]]:
    return {n.name: [s.subnet for s in n.subnets] for n in ctx.state.networks()}


def _link_exists(name: str) -> bool:
    """Whether an interface called ``name`` exists (a read-only look for the note of
    :func:`create_network`: the bridge plugin decides what to do with it)."""
    try:
        socket.if_nametoindex(name)
        return True
    except OSError:
        return False


def create_network(ctx: Context, name: str, *, driver: str = "bridge", subnets: list[str] | None = None,
                   gateways: list[str] | None = None, ip_range: str = "", ipv6: bool = False,
                   internal: bool = False, disable_dns: bool = False, options: dict[str, str] | None = None,
                   labels: dict[str, str] | None = None, builtin: bool = False,
                   extra_plugins: list[dict[str, Any]] | None = None,
                   notes: list[str] | None = None) -> Network:
    """Create a network (state + conflist). Call with the state lock held. ``notes`` gets a
    line when the bridge named by an option exists already (adopted: netplugins/main/bridge_gc.py).

    Raises:
        NetctlError: invalid name/option/subnet, an overlap, a duplicate name.
    """
    if not NAME_RE.fullmatch(name):
        raise NetctlError(f"invalid network name {name!r}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    if ctx.state.find_network(name) is not None:
        raise Conflict(f"network with name {name} already exists")
    if driver not in ("bridge",) and not builtin:
        raise NetctlError(f"unsupported network driver {driver!r}: only bridge networks can be created")
    opts = dict(options or {})
    for key in opts:
        if key not in KNOWN_OPTS:
            raise NetctlError(f"unknown option {key!r}: known options are {', '.join(KNOWN_OPTS)}")
    net_id = secrets.token_hex(32)
    net = Network(id=net_id, name=name, driver=driver, created=now(), internal=internal,
                  dns=not disable_dns and not builtin, options=opts, labels=dict(labels or {}),
                  builtin=builtin, extra_plugins=list(extra_plugins or []))
    if driver != "bridge":
        ctx.state.save_network(net)
        write_conflist(ctx, net)
        return net
    net.bridge = opts.get(OPT_BRIDGE_NAME) or (DEFAULT_BRIDGE if name == "bridge" else f"br-{net_id[:12]}")
    if len(net.bridge) > 15 or not NAME_RE.fullmatch(net.bridge):
        raise NetctlError(f"invalid bridge name {net.bridge!r}")
    if any(n.bridge == net.bridge for n in ctx.state.networks()):
        raise Conflict(f"bridge name {net.bridge} is already used by another network")
    if notes is not None and OPT_BRIDGE_NAME in opts:
        if _link_exists(net.bridge):
            notes.append(f"bridge {net.bridge} exists: netctl uses it but did not create it, so "
                         f"'netctl rm {name}' will keep it and its other links (removing only "
                         "netctl's addresses and rules)")
    net.icc = _bool_opt(opts, OPT_ICC, True)
    net.masquerade = _bool_opt(opts, OPT_MASQ, True)
    if OPT_MTU in opts:
        try:
            net.mtu = int(opts[OPT_MTU])
        except ValueError:
            raise NetctlError(f"invalid MTU {opts[OPT_MTU]!r}") from None
        if net.mtu and not 68 <= net.mtu <= 65535:
            raise NetctlError(f"invalid MTU {net.mtu}: it must be between 68 and 65535")
    gateways = list(gateways or [])
    subnets = list(subnets or [])
    existing = _existing(ctx)
    try:
        host = _host_prefixes()
        if subnets:
            net.user_subnet = True
            for s in subnets:
                # lazy: ipam.pools imports netaddr, ~20 ms of netctl start-up
                from ipam.pools import check_overlap

                check_overlap(s, existing, host)
        else:
            # lazy: ipam.pools imports netaddr, ~20 ms of netctl start-up
            from ipam.pools import pick_subnet

            subnets = [pick_subnet(existing, host, 4)]
            if ipv6:
                subnets.append(pick_subnet(existing, host, 6))
    except IpamError as exc:
        raise NetctlError(str(exc)) from None
    if len(gateways) > len(subnets):
        raise NetctlError("cannot have more gateways than subnets")
    if ipv6 and not any(":" in s for s in subnets):
        raise NetctlError("--ipv6 needs an IPv6 subnet (or no --subnet at all)")
    net.ipv6 = any(":" in s for s in subnets)
    for i, s in enumerate(subnets):
        try:
            sn = ipaddress.ip_network(s, strict=True)
        except ValueError as exc:
            raise NetctlError(f"invalid subnet {s}: {exc}") from None
        gw = gateways[i] if i < len(gateways) else ""
        if gw:
            try:
                gip = ipaddress.ip_address(gw)
            except ValueError:
                raise NetctlError(f"invalid gateway {gw}") from None
            if gip not in sn or gip in (sn.network_address, sn.broadcast_address):
                raise NetctlError(f"no matching subnet for gateway {gw}")
        else:
            gw = str(sn.network_address + 1)
        rng = ""
        if ip_range and i == 0:
            try:
                rn = ipaddress.ip_network(ip_range, strict=True)
            except ValueError as exc:
                raise NetctlError(f"invalid ip range {ip_range}: {exc}") from None
            if rn.version != sn.version or not rn.subnet_of(sn):  # type: ignore[arg-type]
                raise NetctlError(f"ip range {ip_range} is not inside subnet {s}")
            rng = ip_range
        net.subnets.append(Subnet(subnet=str(sn), gateway=gw, ip_range=rng))
    ctx.state.save_network(net)
    write_conflist(ctx, net)
    return net


def ensure_builtin(ctx: Context) -> None:
    """The default networks exist from the first use: bridge (netctl0, no DNS), host, none."""
    names = {n.name for n in ctx.state.networks()}
    if "host" not in names:
        create_network(ctx, "host", driver="host", builtin=True)
    if "none" not in names:
        create_network(ctx, "none", driver="null", builtin=True)
    if "bridge" not in names:
        create_network(ctx, "bridge", driver="bridge", builtin=True, disable_dns=True)


def attached(ctx: Context, net: Network) -> list[Container]:
    return [c for c in ctx.state.containers() if c.endpoint(net.name) is not None]


def remove_network(ctx: Context, ref: str, notes: list[str] | None = None) -> str:
    """Remove a network nobody uses: GC its plugins with no valid attachment (leases,
    rules, DNS, and the bridge: deleted if the plugin created it, else only netctl's
    addresses come off it); what the plugins said they did goes to ``notes``.

    Raises:
        NotFound / NetctlError: unknown, built-in, or still with active endpoints.
    """
    net = ctx.state.network(ref)
    if net.builtin:
        raise NetctlError(f"{net.name} is a pre-defined network and cannot be removed")
    users = attached(ctx, net)
    if users:
        raise Conflict(f"error while removing network: network {net.name} id {net.id} has active endpoints "
                       f"({', '.join(c.name for c in users)})")
    conf = load_conflist(ctx, net)
    # with no valid attachment the bridge plugin also removes the bridge if it made it, or
    # only its own addresses from one it adopted, and says so (netplugins/main/bridge_gc.py);
    # host-local deletes the lease database, its round-robin cursor with it, so a network
    # created again with the same name and subnet starts at .2, as Docker's does (this GC
    # does not pass netctl.dev/keep-network: the network goes)
    said: list[str] = []
    failures = ctx.cni.gc(conf, set(), said)
    if notes is not None:
        notes += said
    try:
        os.unlink(os.path.join(ctx.paths.conf_dir, f"{net.name}.conflist"))
    except FileNotFoundError:
        pass
    ctx.state.delete_network(net.name)
    if failures:
        raise NetctlError(f"network {net.name} removed, but cleanup reported: {'; '.join(failures)}")
    return net.name


def next_ifname(c: Container) -> str:
    used = {e.ifname for e in c.endpoints}
    i = 0
    while f"eth{i}" in used:
        i += 1
    return f"eth{i}"


def owns_ports(c: Container, ep: Endpoint) -> bool:
    """Published ports go with the container's first bridge network only (as Docker's
    default gateway endpoint): sending them on every attachment would make portmap see the
    same host port asked twice when a container with -p is connected to a second network."""
    first = next((e for e in c.endpoints if e.network not in ("none", "host")
                  and not e.network.startswith("container:")), None)
    return first is None or first is ep


def runtime_conf(c: Container, net: Network, ep: Endpoint, ports: bool) -> RuntimeConf:
    caps: dict[str, Any] = {}
    if ep.ip:
        caps["ips"] = [ep.ip]
    if ep.aliases:
        caps["aliases"] = {net.name: list(ep.aliases)}
    if ports and c.ports:
        caps["portMappings"] = [{"hostPort": p.host_port, "containerPort": p.container_port,
                                 "protocol": p.protocol, **({"hostIP": p.host_ip} if p.host_ip else {})}
                                for p in c.ports]
    return RuntimeConf(container_id=c.id, netns=c.netns, ifname=ep.ifname,
                       args=(("IgnoreUnknown", "1"), ("K8S_POD_NAME", c.name)),
                       capability_args=caps, cni_args_json={"hostname": c.hostname})


def validate_static_ip(net: Network, ip: str) -> None:
    """Docker's rules for --ip: user-defined network, created with --subnet, inside it.

    Raises:
        NetctlError: with Docker's wording.
    """
    if net.builtin:
        raise NetctlError("user specified IP address is supported on user defined networks only")
    if not net.user_subnet:
        raise NetctlError("user specified IP address is supported only when connecting to networks "
                          "with user configured subnets")
    try:
        ipaddress.ip_address(ip)
    except ValueError:
        raise NetctlError(f"invalid IP address {ip!r}") from None
    if not net.contains(ip):
        raise NetctlError(f"invalid address {ip}: it does not belong to any of this network's subnets")


def attach(ctx: Context, c: Container, net: Network, ep: Endpoint) -> None:
    """ADD the network's chain for the container (a failed ADD DELs what the chain did:
    :meth:`runtime.cnirun.CNI.add`).

    Raises:
        NetctlError: the plugin error, after the rollback.
    """
    conf = load_conflist(ctx, net)
    try:
        ep.result = ctx.cni.add(conf, runtime_conf(c, net, ep, ports=owns_ports(c, ep))) or {}
    except NetctlError as exc:
        # plugins know IDs and owner tags; users know names (Docker's messages use them)

        exc.msg = name_containers(exc.msg, {o.id: o.name for o in ctx.state.containers()})
        exc.args = (exc.msg,)
        raise


def detach(ctx: Context, c: Container, net: Network | None, ep: Endpoint) -> None:
    """DEL the chain (cached prevResult, capability args).

    Raises:
        NetctlError: listing the plugins whose DEL failed.
    """
    if net is None:
        return
    conf = load_conflist(ctx, net)
    ctx.cni.delete(conf, runtime_conf(c, net, ep, ports=owns_ports(c, ep)))


def prune_networks(ctx: Context, notes: list[str] | None = None) -> list[str]:
    """Remove every unused user-defined network (``notes``: see :func:`remove_network`)."""
    removed = []
    for net in ctx.state.networks():
        # an overlay belongs to the cluster: removed with `netctl rm`, never pruned by one host
        if net.builtin or net.driver == "overlay" or attached(ctx, net):
            continue
        removed.append(remove_network(ctx, net.name, notes))
    return removed


def lookup(ctx: Context, ref: str) -> Network:
    net = ctx.state.find_network(ref)
    if net is None:
        raise NotFound(f"network {ref} not found")
    return net


__all__ = ["BUILTIN", "create_network", "remove_network", "attach", "detach"]
