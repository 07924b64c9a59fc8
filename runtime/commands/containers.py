"""Container verbs: run, exec, ps, stop, container rm, port, check, gc."""

from __future__ import annotations

import argparse

from ..context import Context
from ..errors import NetctlError
from .networks import add_inspect_args, cmd_inspect
from .output import for_each, print_table


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("run", help="run a command in a new container")
    p.add_argument("-d", "--detach", action="store_true",
                   help="run in the background and print the container ID")
    p.add_argument("--rm", action="store_true", help="remove the container when it exits")
    p.add_argument("--name", default="", help="container name (default: ctr-<8 hex>)")
    p.add_argument("--network", "--net", default="bridge",
                   help="network name, host, none or container:NAME (default: bridge)")
    p.add_argument("--ip", default="", help="static IPv4 address (networks created with --subnet)")
    p.add_argument("--alias", "--network-alias", action="append", default=[],
                   help="extra DNS name on the network (repeatable)")
    p.add_argument("--hostname", default="", help="hostname inside (default: the short ID)")
    p.add_argument("-p", "--publish", action="append", default=[],
                   metavar="[IP:][HOST_PORT:]CONTAINER_PORT[/PROTO]",
                   help="publish a container port on the host (repeatable)")
    p.add_argument("-P", "--publish-all", action="store_true",
                   help="publish the -p ports on free host ports")
    p.add_argument("--cap-add", action="append", default=[],
                   help="add a Linux capability (NET_ADMIN, CAP_SYS_TIME, ALL ...)")
    p.add_argument("--cap-drop", action="append", default=[], help="drop a Linux capability (or ALL)")
    p.add_argument("--privileged", action="store_true", help="every capability (docs/security.md)")
    p.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- COMMAND",
                   help="the command to run, after --")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("exec", help="run a command in a running container")
    p.add_argument("container", help="container name or ID")
    p.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- COMMAND",
                   help="the command to run, after --")
    p.set_defaults(func=cmd_exec)

    p = sub.add_parser("ps", help="list containers")
    p.add_argument("-a", "--all", action="store_true", help="show exited containers too")
    p.add_argument("-q", "--quiet", action="store_true", help="print short IDs only")
    p.set_defaults(func=cmd_ps)

    p = sub.add_parser("stop", help="stop containers (their networks are detached)")
    p.add_argument("-t", "--time", type=float, default=10.0, metavar="SECONDS",
                   help="grace period between SIGTERM and SIGKILL (default: 10)")
    p.add_argument("names", nargs="+", metavar="CONTAINER", help="container name or ID")
    p.set_defaults(func=cmd_stop)

    p = sub.add_parser("container", help="container verbs: rm, ls, inspect")
    csub = p.add_subparsers(dest="container_cmd", required=True)
    rm = csub.add_parser("rm", help="remove containers")
    rm.add_argument("-f", "--force", action="store_true", help="stop running containers first")
    rm.add_argument("names", nargs="+", metavar="CONTAINER", help="container name or ID")
    rm.set_defaults(func=cmd_rm)
    ls = csub.add_parser("ls", help="list containers")
    ls.add_argument("-a", "--all", action="store_true", help="show exited containers too")
    ls.add_argument("-q", "--quiet", action="store_true", help="print short IDs only")
    ls.set_defaults(func=cmd_ps)
    ins = csub.add_parser("inspect", help="show containers as JSON (Docker's shape)")
    add_inspect_args(ins, "container")
    ins.set_defaults(func=cmd_inspect, type="container")

    p = sub.add_parser("port", help="list a container's published ports")
    p.add_argument("container", help="container name or ID")
    p.set_defaults(func=cmd_port)

    p = sub.add_parser("check", help="CNI CHECK of a container's attachments")
    p.add_argument("container", help="container name or ID")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("gc", help="clean up what dead containers or a killed netctl left")
    p.set_defaults(func=cmd_gc)

    # internal: the watcher that `run -d --rm` starts
    p = sub.add_parser("_remove-on-exit")
    p.add_argument("id")
    p.add_argument("pid", type=int)
    p.add_argument("pid_start", type=int)
    p.set_defaults(func=cmd_remove_on_exit)


def _cmd(argv: list[str]) -> list[str]:
    return argv[1:] if argv and argv[0] == "--" else argv


#: ``docker run``'s own exit statuses: the command could not be invoked (126) or found
#: (127); anything else that fails in netctl is 125, so a script can tell them from the
#: command's own status
RUN_FAILED = 125


def cmd_run(args: argparse.Namespace) -> int:
    # lazy: runtime.containers/networks add 20-40 ms (-X importtime) to every netctl start
    from ..containers import run

    try:
        ctx = Context.create()
        # lazy: only overlay networks need it (cluster store client, pyroute2)
        from ..overlay.cluster import ensure_mirrored

        ensure_mirrored(ctx)
        c = run(ctx, _cmd(args.cmd), name=args.name, network=args.network, ip=args.ip,
                aliases=args.alias, hostname=args.hostname, publish=args.publish,
                publish_all=args.publish_all, detach_=args.detach, remove=args.rm,
                cap_add=args.cap_add, cap_drop=args.cap_drop, privileged=args.privileged)
    except NetctlError as exc:
        if exc.code not in (126, 127):
            exc.code = RUN_FAILED
        raise
    if args.detach:
        print(c.id)
        return 0
    return c.exit_code


def cmd_exec(args: argparse.Namespace) -> int:
    # lazy: runtime.containers/networks add 20-40 ms (-X importtime) to every netctl start
    from ..containers import exec_in

    return exec_in(Context.create(), args.container, _cmd(args.cmd))


def cmd_ps(args: argparse.Namespace) -> int:
    # lazy: runtime.containers/networks add 20-40 ms (-X importtime) to every netctl start
    from ..containers import alive

    ctx = Context.create()
    rows = [("CONTAINER ID", "NAME", "COMMAND", "STATUS", "NETWORKS", "PORTS")]
    for c in ctx.state.containers():
        running = alive(c)
        if not running and not args.all:
            continue
        if args.quiet:
            print(c.id[:12])
            continue
        ports = ", ".join(p.text() for p in c.ports)
        cmd = " ".join(c.command)
        rows.append((c.id[:12], c.name, (cmd[:27] + "...") if len(cmd) > 30 else cmd,
                     "running" if running else "exited", ",".join(e.network for e in c.endpoints
                                                                   if e.network != "none") or c.network_mode,
                     ports))
    if args.quiet:
        return 0
    print_table(rows)
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    # lazy: runtime.containers/networks add 20-40 ms (-X importtime) to every netctl start
    from ..containers import stop

    ctx = Context.create()
    for name in args.names:
        print(stop(ctx, name, args.time).name)
    return 0


def cmd_rm(args: argparse.Namespace) -> int:
    # lazy: runtime.containers/networks add 20-40 ms (-X importtime) to every netctl start
    from ..containers import remove

    ctx = Context.create()
    return for_each(args.names, lambda name: remove(ctx, name, args.force))


def cmd_port(args: argparse.Namespace) -> int:
    ctx = Context.create()
    c = ctx.state.container(args.container)
    for p in c.ports:
        print(f"{p.container_port}/{p.protocol} -> {p.host_ip or '0.0.0.0'}:{p.host_port}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    # lazy: runtime.containers/networks add 20-40 ms (-X importtime) to every netctl start
    from ..containers import check

    problems = check(Context.create(), args.container)
    for p in problems:
        print(p)
    if problems:
        return 1
    print("ok")
    return 0


def cmd_remove_on_exit(args: argparse.Namespace) -> int:
    # lazy: runtime.containers/networks add 20-40 ms (-X importtime) to every netctl start
    from ..containers import remove_on_exit

    remove_on_exit(Context.create(), args.id, args.pid, args.pid_start)
    return 0


def cmd_gc(args: argparse.Namespace) -> int:
    # lazy: runtime.containers/networks add 20-40 ms (-X importtime) to every netctl start
    from ..gc import collect

    for line in collect(Context.create()):
        print(line)
    return 0
