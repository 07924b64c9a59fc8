"""``netctl``: networks and containers like ``docker network``, driven through CNI."""

from __future__ import annotations

import argparse
import sys

from .commands import plugins


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="netctl", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    plugins.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = args.func(args)
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)


if __name__ == "__main__":
    main()
