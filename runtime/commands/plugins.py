"""``netctl plugins dir|install|serve``: deliver the CNI executables and run their daemon."""

from __future__ import annotations

import argparse
import sys


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("plugins", help="the CNI plugin executables and their warm daemon")
    psub = p.add_subparsers(dest="plugins_cmd", required=True)
    psub.add_parser("dir", help="print the directory that holds the plugin executables")
    inst = psub.add_parser("install", help="install the plugin executables into a directory")
    inst.add_argument("--dir", required=True, help="e.g. /opt/cni/bin (put it on CNI_PATH)")
    serve = psub.add_parser("serve", help="run the warm plugin daemon in the foreground")
    serve.add_argument("--socket", default=None, help="default /run/netctl/plugind.sock")
    serve.add_argument("--idle-timeout", type=float, default=0.0, metavar="SECONDS",
                       help="exit after this long without a call (default 0: never)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from netplugins import delivery

    if args.plugins_cmd == "dir":
        print(delivery.ensure_default_dir())
        return 0
    if args.plugins_cmd == "install":
        for path in delivery.install(args.dir):
            print(path)
        return 0
    from netplugins import daemon

    argv = []
    if args.socket:
        argv += ["--socket", args.socket]
    argv += ["--idle-timeout", str(args.idle_timeout)]
    daemon.main(argv)
    return 0


if __name__ == "__main__":
    sys.exit(0)
