"""Network verbs at the top level (the user's card): create, connect, disconnect, inspect,
ls, rm, prune; also reachable as ``netctl network VERB``."""

from __future__ import annotations

import argparse
import json
import sys

from ..context import Context
from ..errors import NetctlError, NotFound
from ..format import render
from ..inspect import container_json, network_json
from .output import check_format, for_each, print_inspect, print_table


def _kv(items: list[str], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise NetctlError(f"invalid {what} {item!r}: use KEY=VALUE")
        out[key] = value
    return out


def add_inspect_args(p: argparse.ArgumentParser, what: str) -> None:
    """The options ``inspect`` and ``container inspect`` share."""
    p.add_argument("-f", "--format", default="", metavar="TEMPLATE",
                   help="a Go template such as '{{.Name}}' or "
                        "'{{(index .NetworkSettings.Networks \"net1\").IPAddress}}'")
    p.add_argument("names", nargs="+", metavar="NAME", help=f"{what} name or ID (prefix)")


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("create", help="create a network")
    p.add_argument("-d", "--driver", default="bridge", help="network driver (only bridge can be created)")
    p.add_argument("--subnet", action="append", default=[], metavar="CIDR",
                   help="subnet, e.g. 172.22.16.0/24 (repeat for IPv6; default: a free private /16)")
    p.add_argument("--gateway", action="append", default=[], metavar="IP",
                   help="gateway of the matching --subnet (default: its first address)")
    p.add_argument("--ip-range", default="", metavar="CIDR",
                   help="give dynamic addresses from this part of the first subnet only")
    p.add_argument("--ipv6", action="store_true", help="dual stack: add an IPv6 subnet")
    p.add_argument("--internal", action="store_true",
                   help="no route or NAT to the outside; containers only reach each other")
    p.add_argument("--disable-dns", action="store_true",
                   help="no embedded DNS: containers do not resolve each other by name")
    p.add_argument("-o", "--opt", action="append", default=[], metavar="KEY=VALUE",
                   help="driver option, e.g. com.docker.network.bridge.name=br0 "
                        "or com.docker.network.driver.mtu=1400")
    p.add_argument("--label", action="append", default=[], metavar="KEY=VALUE",
                   help="metadata shown by inspect")
    p.add_argument("--plugin", action="append", default=[], metavar="JSON",
                   help='append a CNI plugin to the chain, e.g. \'{"type": "tuning", "mtu": 1400}\' '
                        "(its executable on NETCTL_CNI_PATH)")
    p.add_argument("name", help="network name ([a-zA-Z0-9][a-zA-Z0-9_.-]*)")
    p.set_defaults(func=cmd_create)

    p = sub.add_parser("connect", help="connect a running container to a network")
    p.add_argument("--ip", default="", help="static IPv4 address (networks created with --subnet)")
    p.add_argument("--alias", action="append", default=[],
                   help="extra DNS name of the container on this network (repeatable)")
    p.add_argument("network", help="network name or ID")
    p.add_argument("container", help="container name or ID")
    p.set_defaults(func=cmd_connect)

    p = sub.add_parser("disconnect", help="disconnect a container from a network")
    p.add_argument("-f", "--force", action="store_true",
                   help="detach even when the container is not running")
    p.add_argument("network", help="network name or ID")
    p.add_argument("container", help="container name or ID")
    p.set_defaults(func=cmd_disconnect)

    p = sub.add_parser("inspect", help="show networks or containers as JSON")
    add_inspect_args(p, "network or container")
    p.add_argument("--type", choices=("network", "container"), default="",
                   help="only look for this kind of object")
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("ls", help="list networks")
    p.add_argument("-q", "--quiet", action="store_true", help="print network IDs only")
    p.add_argument("--format", default="", metavar="TEMPLATE",
                   help="a Go template per network, e.g. '{{.Name}} {{.Driver}}'")
    p.add_argument("--no-status", action="store_true", help="skip the CNI STATUS column")
    p.set_defaults(func=cmd_ls)

    p = sub.add_parser("rm", help="remove networks")
    p.add_argument("names", nargs="+", metavar="NETWORK", help="network name or ID")
    p.set_defaults(func=cmd_rm)

    p = sub.add_parser("prune", help="remove all unused networks")
    p.add_argument("-f", "--force", action="store_true", help="do not prompt for confirmation")
    p.set_defaults(func=cmd_prune)


def _plugins(items: list[str]) -> list[dict[str, object]]:
    out = []
    for item in items:
        try:
            conf = json.loads(item)
        except ValueError as exc:
            raise NetctlError(f"invalid --plugin {item!r}: {exc}") from None
        if not isinstance(conf, dict) or not isinstance(conf.get("type"), str) or "/" in conf["type"]:
            raise NetctlError(f"invalid --plugin {item!r}: it must be a JSON object with a plugin \"type\"")
        out.append(conf)
    return out


def _print_notes(notes: list[str]) -> None:
    """What the user should know but is no error (stderr, as docker's warnings)."""
    for note in notes:
        print(f"Note: {note}", file=sys.stderr)


def cmd_create(args: argparse.Namespace) -> int:
    # lazy: runtime.containers/networks add 20-40 ms (-X importtime) to every netctl start
    from ..networks import create_network, ensure_builtin

    extra = _plugins(args.plugin)
    ctx = Context.create()
    for conf in extra:
        ctx.cni.find(str(conf["type"]))  # refuse a plugin that is not on the path now, not at run
    if args.driver == "overlay":
        return _create_overlay(ctx, args, extra)
    if args.driver != "bridge":
        raise NetctlError(f"unsupported network driver {args.driver!r}: only bridge and overlay networks "
                          "can be created")
    notes: list[str] = []
    with ctx.state.locked():
        ensure_builtin(ctx)
        net = create_network(ctx, args.name, subnets=args.subnet, gateways=args.gateway,
                             ip_range=args.ip_range, ipv6=args.ipv6, internal=args.internal,
                             disable_dns=args.disable_dns, options=_kv(args.opt, "option"),
                             labels=_kv(args.label, "label"), extra_plugins=extra, notes=notes)
    _print_notes(notes)
    print(net.id)
    return 0


def _create_overlay(ctx: Context, args: argparse.Namespace, extra: list[dict[str, object]]) -> int:
    # lazy: runtime.containers/networks add 20-40 ms (-X importtime) to every netctl start
    from ..networks import ensure_builtin
    from ..overlay import cluster
    from ..overlay.config import store_url

    url = store_url()
    cluster.require_store(url)
    for flag, given in (("--gateway", args.gateway), ("--ip-range", args.ip_range), ("--ipv6", args.ipv6),
                        ("--disable-dns", args.disable_dns), ("-o", args.opt), ("--label", args.label),
                        ("--plugin", extra)):
        if given:
            raise NetctlError(f"{flag} is not supported for overlay networks yet")
    if len(args.subnet) > 1:
        raise NetctlError("an overlay network takes one IPv4 --subnet")
    with ctx.state.locked():
        ensure_builtin(ctx)
        net = cluster.create(ctx, url, args.name, args.subnet[0] if args.subnet else "", args.internal)
    print(net.id)
    return 0


def _mirror(ctx: Context) -> None:
    # lazy: only overlay networks need it (cluster store client, pyroute2)
    from ..overlay.cluster import ensure_mirrored

    ensure_mirrored(ctx)


def cmd_connect(args: argparse.Namespace) -> int:
    # lazy: runtime.containers/networks add 20-40 ms (-X importtime) to every netctl start
    from ..containers import connect

    ctx = Context.create()
    _mirror(ctx)
    connect(ctx, args.network, args.container, args.ip, args.alias)
    return 0


def cmd_disconnect(args: argparse.Namespace) -> int:
    # lazy: runtime.containers/networks add 20-40 ms (-X importtime) to every netctl start
    from ..containers import disconnect

    disconnect(Context.create(), args.network, args.container, args.force)
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    # lazy: runtime.containers/networks add 20-40 ms (-X importtime) to every netctl start
    from ..containers import alive
    from ..networks import ensure_builtin

    check_format(args.format)
    ctx = Context.create()
    with ctx.state.locked():
        ensure_builtin(ctx)
    _mirror(ctx)
    containers = ctx.state.containers()
    nets = {n.name: n for n in ctx.state.networks()}
    out = []
    for name in args.names:
        net = None if args.type == "container" else ctx.state.find_network(name)
        if net is not None:
            obj = network_json(net, containers)
            if net.driver == "overlay":
                _overlay_json(obj, net)
            out.append(obj)
            continue
        c = None if args.type == "network" else ctx.state.find_container(name)
        if c is not None:
            out.append(container_json(c, nets, alive(c), ctx.paths.container_dir(c.id)))
            continue
        what = {"network": "network", "container": "container"}.get(args.type, "network or container")
        raise NotFound(f"no such {what}: {name}")
    print_inspect(out, args.format)
    return 0


def _overlay_json(obj: dict[str, object], net: object) -> None:
    """An overlay's inspect: cluster scope, and the containers of every host with their node."""
    # lazy: only overlay networks need it (cluster store client, pyroute2)
    from ..overlay import cluster
    from ..overlay.config import store_url

    obj["Scope"] = "global"
    members = cluster.members(store_url(), net)  # type: ignore[arg-type]
    if members is not None:
        obj["Containers"] = members


def cmd_ls(args: argparse.Namespace) -> int:
    # lazy: runtime.containers/networks add 20-40 ms (-X importtime) to every netctl start
    from ..networks import ensure_builtin, load_conflist

    check_format(args.format)
    ctx = Context.create()
    with ctx.state.locked():
        ensure_builtin(ctx)
    _mirror(ctx)
    nets = ctx.state.networks()
    if args.quiet:
        for n in nets:
            print(n.id[:12])
        return 0
    containers = ctx.state.containers()
    if args.format:
        for n in nets:
            print(render(args.format, network_json(n, containers)))
        return 0
    rows = [("NETWORK ID", "NAME", "DRIVER", "SCOPE", "SUBNET", "STATUS")]
    for n in nets:
        status = ("" if args.no_status or n.driver not in ("bridge", "overlay")
                  else ctx.cni.status(load_conflist(ctx, n)))
        rows.append((n.id[:12], n.name, {"null": "null"}.get(n.driver, n.driver),
                     "global" if n.driver == "overlay" else "local",
                     ",".join(s.subnet for s in n.subnets), status))
    print_table(rows)
    return 0


def cmd_rm(args: argparse.Namespace) -> int:
    # lazy: runtime.containers/networks add 20-40 ms (-X importtime) to every netctl start
    from ..networks import remove_network

    ctx = Context.create()
    _mirror(ctx)

    def remove(name: str) -> str:
        notes: list[str] = []
        try:
            with ctx.state.locked():
                net = ctx.state.find_network(name)
                if net is not None and net.driver == "overlay":
                    # lazy: runtime.containers/networks add 20-40 ms (-X importtime) to every netctl start
                    from ..networks import attached
                    from ..overlay import cluster
                    from ..overlay.config import store_url

                    if not attached(ctx, net):  # local users: remove_network says so
                        cluster.remove(ctx, store_url(), net)
                return remove_network(ctx, name, notes)
        finally:
            _print_notes(notes)

    return for_each(args.names, remove)


def confirm(prompt: str) -> bool:
    """Ask on stdout, read one line from stdin: True only for y/yes (EOF is no)."""
    print(prompt, end="", flush=True)
    try:
        answer = input()
    except EOFError:
        print()
        return False
    return answer.strip().lower() in ("y", "yes")


def cmd_prune(args: argparse.Namespace) -> int:
    # lazy: runtime.containers/networks add 20-40 ms (-X importtime) to every netctl start
    from ..networks import prune_networks

    if not args.force and not confirm(
            "WARNING! This will remove all custom networks not used by at least one container.\n"
            "Are you sure you want to continue? [y/N] "):
        return 0  # Docker: answering no (or no answer at all) is not an error
    ctx = Context.create()
    notes: list[str] = []
    with ctx.state.locked():
        removed = prune_networks(ctx, notes)
    _print_notes(notes)
    if removed:
        print("Deleted Networks:")
        for name in removed:
            print(name)
    return 0
