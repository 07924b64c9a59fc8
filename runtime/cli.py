"""``netctl``: networks and containers like ``docker network``, driven through CNI.

Networks at the top level (create, connect, disconnect, inspect, ls, rm, prune), also as
``netctl network VERB``; containers with run, exec, ps, stop, ``container rm``.
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

from .commands import agent, containers, debug, demo, networks, plugins
from .errors import NetctlError


class Parser(argparse.ArgumentParser):
    """argparse with netctl's error style: one ``Error:`` line and exit status 2."""

    #: the exit status of a usage error (``docker run``'s is 125, like its other failures)
    usage_status = 2

    def error(self, message: str) -> NoReturn:
        code = 125 if self.prog.split()[-1] == "run" else self.usage_status
        self.exit(code, f"Error: {self.prog}: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="netctl",
                    description="netctl: networks and containers like docker network, driven through CNI.",
                    epilog="New here? 'netctl sandbox' opens a shell in a throwaway host where "
                           "nothing you try touches this machine's network. "
                           "'netctl VERB --help' describes each verb.")
    parser.add_argument("--store", default=None, metavar="URL",
                        help="cluster store for overlay networks, an etcd v3 endpoint "
                             "(default: NETCTL_STORE; none = local networks only)")
    sub = parser.add_subparsers(dest="cmd", required=True, metavar="COMMAND", parser_class=Parser)
    networks.add_parsers(sub)
    net = sub.add_parser("network", help="network verbs (same as the top-level ones)")
    networks.add_parsers(net.add_subparsers(dest="network_cmd", required=True, parser_class=Parser))
    containers.add_parsers(sub)
    plugins.add_parser(sub)
    agent.add_parsers(sub)
    demo.add_parser(sub)
    debug.add_parsers(sub)
    p = sub.add_parser("completion", help="print a shell completion script (bash or zsh)",
                       description="Load it with: source <(netctl completion bash)")
    p.add_argument("shell", choices=("bash", "zsh"), help="the shell to complete in")
    p.set_defaults(func=_completion)
    return parser


def _completion(args: argparse.Namespace) -> int:
    # lazy: netctl start-up; only shell completion needs it
    from . import completion

    print(getattr(completion, args.shell)(build_parser()), end="")
    return 0


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["run"] and isinstance(parser, Parser):
        parser.usage_status = 125  # unknown options of run are reported by the top parser
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
