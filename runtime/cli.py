"""``netctl``: networks and containers like ``docker network``, driven through CNI.

Networks at the top level (create, connect, disconnect, inspect, ls, rm, prune), also as
``netctl network VERB``; containers with run, exec, ps, stop, ``container rm``.
"""

from __future__ import annotations

import argparse
import sys

from .commands import containers, debug, demo, networks, plugins
from .errors import NetctlError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="netctl", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True, metavar="COMMAND")
    networks.add_parsers(sub)
    net = sub.add_parser("network", help="network verbs (same as the top-level ones)")
    networks.add_parsers(net.add_subparsers(dest="network_cmd", required=True))
    containers.add_parsers(sub)
    plugins.add_parser(sub)
    demo.add_parser(sub)
    debug.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = args.func(args)
    except NetctlError as exc:
        print(f"Error: {exc.msg}", file=sys.stderr)
        code = exc.code
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)


if __name__ == "__main__":
    main()
