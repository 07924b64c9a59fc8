"""``netctl plugins dir|install|serve``: deliver the CNI executables and run their daemon."""

from __future__ import annotations

import argparse
import sys

from ..agent.__main__ import add_run_options
from ..agent.__main__ import run as run_agent


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("plugins", help="the CNI plugin executables and their warm daemon")
    psub = p.add_subparsers(dest="plugins_cmd", required=True)
    psub.add_parser("dir", help="print the directory that holds the plugin executables")
    inst = psub.add_parser("install", help="install the plugin executables into a directory")
    inst.add_argument("--dir", required=True, help="e.g. /opt/cni/bin (put it on CNI_PATH)")
    serve = psub.add_parser("serve", help="the same as 'netctl agent run' (kept as an alias)")
    add_run_options(serve)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # lazy: netctl start-up; only this verb needs it
    from netplugins import delivery

    if args.plugins_cmd == "dir":
        print(delivery.ensure_default_dir())
        return 0
    if args.plugins_cmd == "install":
        for path in delivery.install(args.dir):
            print(path)
        return 0

    return run_agent(args)


if __name__ == "__main__":
    sys.exit(0)
