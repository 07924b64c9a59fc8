"""Container verbs: run, exec, ps, stop, container rm, port, check, gc."""

from __future__ import annotations

import argparse

from ..context import Context
from .output import for_each, print_table


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("run", help="run a command in a new container")
    p.add_argument("-d", "--detach", action="store_true")
    p.add_argument("--rm", action="store_true")
    p.add_argument("--name", default="")
    p.add_argument("--network", "--net", default="bridge")
    p.add_argument("--ip", default="")
    p.add_argument("--alias", "--network-alias", action="append", default=[])
    p.add_argument("--hostname", default="")
    p.add_argument("-p", "--publish", action="append", default=[])
    p.add_argument("-P", "--publish-all", action="store_true")
    p.add_argument("cmd", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("exec", help="run a command in a running container")
    p.add_argument("container")
    p.add_argument("cmd", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_exec)

    p = sub.add_parser("ps", help="list containers")
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=cmd_ps)

    p = sub.add_parser("stop", help="stop containers (their networks are detached)")
    p.add_argument("-t", "--time", type=float, default=10.0)
    p.add_argument("names", nargs="+")
    p.set_defaults(func=cmd_stop)

    p = sub.add_parser("container", help="container verbs: rm, ls, inspect")
    csub = p.add_subparsers(dest="container_cmd", required=True)
    rm = csub.add_parser("rm", help="remove containers")
    rm.add_argument("-f", "--force", action="store_true")
    rm.add_argument("names", nargs="+")
    rm.set_defaults(func=cmd_rm)
    ls = csub.add_parser("ls", help="list containers")
    ls.add_argument("-a", "--all", action="store_true")
    ls.add_argument("-q", "--quiet", action="store_true")
    ls.set_defaults(func=cmd_ps)

    p = sub.add_parser("port", help="list a container's published ports")
    p.add_argument("container")
    p.set_defaults(func=cmd_port)

    p = sub.add_parser("check", help="CNI CHECK of a container's attachments")
    p.add_argument("container")
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


def cmd_run(args: argparse.Namespace) -> int:
    from ..containers import run

    ctx = Context.create()
    from ..overlay.cluster import ensure_mirrored

    ensure_mirrored(ctx)
    c = run(ctx, _cmd(args.cmd), name=args.name, network=args.network, ip=args.ip,
            aliases=args.alias, hostname=args.hostname, publish=args.publish,
            publish_all=args.publish_all, detach_=args.detach, remove=args.rm)
    if args.detach:
        print(c.id)
        return 0
    return c.exit_code


def cmd_exec(args: argparse.Namespace) -> int:
    from ..containers import exec_in

    return exec_in(Context.create(), args.container, _cmd(args.cmd))


def cmd_ps(args: argparse.Namespace) -> int:
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
        ports = ", ".join(f"{p.host_ip or '0.0.0.0'}:{p.host_port}->{p.container_port}/{p.protocol}"
                          for p in c.ports)
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
    from ..containers import stop

    ctx = Context.create()
    for name in args.names:
        print(stop(ctx, name, args.time).name)
    return 0


def cmd_rm(args: argparse.Namespace) -> int:
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
    from ..containers import check

    problems = check(Context.create(), args.container)
    for p in problems:
        print(p)
    if problems:
        return 1
    print("ok")
    return 0


def cmd_remove_on_exit(args: argparse.Namespace) -> int:
    from ..containers import remove_on_exit

    remove_on_exit(Context.create(), args.id, args.pid, args.pid_start)
    return 0


def cmd_gc(args: argparse.Namespace) -> int:
    from ..gc import collect

    for line in collect(Context.create()):
        print(line)
    return 0
