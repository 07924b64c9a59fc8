"""``dnsd --dir DIR [--resolv-conf PATH] [--port 53]``: run the DNS server by hand.

Normally started by netctl's agent or ``dnsd.control.ensure_running`` (dnsd.control.serve); the
command line is the same either way. Exit codes: 0 stopped (SIGTERM/SIGINT, or no
network left to serve), 1 another dnsd already serves the directory, 2 bad usage.
"""

from __future__ import annotations

import argparse
import logging
import sys

from dnsd.forward import DEFAULT_TIMEOUT


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line (argparse exits with code 2 on bad usage)."""
    p = argparse.ArgumentParser(
        prog="dnsd",
        description="Embedded DNS for container networks: answers container names on each "
        "DNS-enabled network's gateway address and forwards other names upstream.",
    )
    p.add_argument("--dir", required=True, help="configuration directory (networks/, entries/)")
    p.add_argument(
        "--resolv-conf",
        default="/etc/resolv.conf",
        help="host resolv.conf whose nameservers are the default upstreams (default: %(default)s)",
    )
    p.add_argument("--port", type=int, default=53, help="port to listen on (default: %(default)s)")
    p.add_argument(
        "--upstream-timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help="seconds to wait for each upstream server before failing over (default: %(default)s)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log every upstream failure")
    args = p.parse_args(argv)
    if not 0 < args.port < 65536:
        p.error(f"--port {args.port}: must be 1..65535")
    if not 0 < args.upstream_timeout <= 10:
        p.error("--upstream-timeout must be in (0, 10] seconds")
    return args


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``dnsd`` console script and ``python -m dnsd``."""
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s dnsd[%(process)d] %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    from dnsd.server import Server  # after argument errors, which need no asyncio

    return Server(
        args.dir, port=args.port, resolv_conf=args.resolv_conf, upstream_timeout=args.upstream_timeout
    ).run()


if __name__ == "__main__":
    sys.exit(main())
