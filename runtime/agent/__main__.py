"""``python -I -m runtime.agent run ...``: the agent process itself (what ``netctl agent
run`` and ``netctl agent start`` execute, and what the systemd unit runs)."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from runtime.paths import Paths


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="netctl-agent", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="run the agent in the foreground")
    add_run_options(run)
    # internal: what a re-exec passes on
    run.add_argument("--root-lib", help=argparse.SUPPRESS)
    run.add_argument("--root-run", help=argparse.SUPPRESS)
    run.add_argument("--inherit-fds", help=argparse.SUPPRESS)
    run.add_argument("--activation", default=None, help=argparse.SUPPRESS)
    run.add_argument("--started", type=float, default=None, help=argparse.SUPPRESS)
    return p


def add_run_options(p: argparse.ArgumentParser) -> None:
    """The options of ``agent run`` (shared with ``netctl agent run``)."""
    p.add_argument("--socket", default=None,
                   help="plugin socket to listen on (default: <run dir>/plugind.sock, "
                        "/run/netctl/plugind.sock without NETCTL_ROOT)")
    p.add_argument("--spare", type=int, default=4,
                   help="pre-forked workers waiting for plugin calls (default: %(default)s)")
    p.add_argument("--store", default=None, metavar="URL",
                   help="cluster store (etcd v3 URL) for overlay networks: the agent then runs "
                        "and supervises the overlay sync process (default: NETCTL_STORE)")
    p.add_argument("--exit-when-idle", type=float, default=0.0, metavar="SECONDS",
                   help="exit after SECONDS without calls when no network exists "
                        "(default: never; netctl's automatic start uses 600)")


def run(args: argparse.Namespace) -> int:
    """Run the agent with parsed ``run`` options; its exit status."""
    # lazy: netctl builds the parser of this verb on every start; only `agent run` loads
    # the agent (the worker pool, the plugins, the reconciler: ~100 ms of imports)
    from .service import Options, serve, systemd_listen_fd

    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s netctl-agent[%(process)d] %(levelname)s: %(message)s")
    os.chdir("/")
    if getattr(args, "root_lib", None) and getattr(args, "root_run", None):
        paths = Paths(lib=args.root_lib, run=args.root_run)
    else:
        paths = Paths.from_env()
    listen_fd = lock_fd = None
    activation = getattr(args, "activation", None) or "self"
    if getattr(args, "inherit_fds", None):
        listen_fd, lock_fd = (int(x) for x in args.inherit_fds.split(","))
    else:
        listen_fd = systemd_listen_fd()
        if listen_fd is not None:
            activation = "systemd"
    if args.spare < 1:
        sys.stderr.write("netctl agent: --spare must be at least 1\n")
        return 2
    opts = Options(root=paths, socket_path=args.socket or paths.plugind_socket, spare=args.spare,
                   exit_when_idle=args.exit_when_idle, listen_fd=listen_fd, lock_fd=lock_fd,
                   activation=activation,
                   store=(getattr(args, "store", None) or os.environ.get("NETCTL_STORE", "")).strip())
    if getattr(args, "started", None):
        opts.started = args.started
    return serve(opts)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
