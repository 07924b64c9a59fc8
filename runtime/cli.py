"""``netctl``: networks and containers like ``docker network``, driven through CNI.

Networks at the top level (create, connect, disconnect, inspect, ls, rm, prune), also as
``netctl network VERB``; containers with run, exec, ps, stop, ``container rm``.
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

from .commands import containers, debug, demo, networks, plugins
from .errors import NetctlError


class Parser(argparse.ArgumentParser):
    """argparse with netctl's error style: one ``Error:`` line and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"Error: {self.prog}: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="netctl", description=__doc__.splitlines()[0])
    parser.add_argument("--store", default=None, metavar="URL",
                        help="cluster store for overlay networks, an etcd v3 endpoint "
                             "(default: NETCTL_STORE; none = local networks only)")
    sub = parser.add_subparsers(dest="cmd", required=True, metavar="COMMAND", parser_class=Parser)
    networks.add_parsers(sub)
    net = sub.add_parser("network", help="network verbs (same as the top-level ones)")
    networks.add_parsers(net.add_subparsers(dest="network_cmd", required=True, parser_class=Parser))
    containers.add_parsers(sub)
    plugins.add_parser(sub)
    demo.add_parser(sub)
    debug.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.store is not None:
        # read by runtime.overlay.config.store_url wherever a command needs the store
        import os

        os.environ["NETCTL_STORE"] = args.store
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
