"""``netctl demo``: a safe, self-cleaning walk through the main scenario."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("demo", help="create a network, two containers that talk by name, clean up")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..demo import main

    return main()
