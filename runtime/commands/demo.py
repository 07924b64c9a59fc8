"""``netctl demo`` and ``netctl sandbox``: safe, self-cleaning places to try netctl."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("demo", help="create a network, two containers that talk by name, clean up")
    p.set_defaults(func=run)
    p = sub.add_parser(
        "sandbox", help="a shell in a throwaway host namespace; everything is removed on exit",
        description="Open a shell whose network namespace and netctl state (NETCTL_ROOT) are new "
                    "and private: try any netctl command there without touching this machine's "
                    "network. Exiting the shell removes every container, network, rule and file "
                    "made inside.")
    p.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- COMMAND",
                   help="run this command in the sandbox instead of a shell (after --)")
    p.set_defaults(func=sandbox)


def run(args: argparse.Namespace) -> int:
    # lazy: netctl start-up; only this verb needs it
    from ..demo import main

    return main()


def sandbox(args: argparse.Namespace) -> int:
    # lazy: netctl start-up; only this verb needs it
    from ..sandbox import main

    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    return main(cmd)
