"""Debugging verbs: ``doctor`` (why can't A reach B?) and ``graph`` (a picture of it all)."""

from __future__ import annotations

import argparse
import json
import sys

from ..errors import NetctlError
from ..paths import Paths

#: exit status of ``doctor`` when it found the path broken (1 is for errors)
BROKEN = 3


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "doctor", help="walk the path from a container to a target and say what breaks it",
        description="Check, hop by hop, why SOURCE can or cannot reach TARGET, probe it from inside "
                    "SOURCE, and suggest a fix. TARGET: a container, a DNS name, an address "
                    "(ADDRESS[:PORT]) or host:PORT for a published port. While the probe runs, "
                    "doctor adds a temporary nftables table (inet netctl_doctor_*) that traces "
                    "only the probe's packets, and removes it afterwards.",
        epilog=f"exit status: 0 healthy, {BROKEN} a problem was found, 1 doctor itself failed")
    p.add_argument("source", metavar="SOURCE", help="container the traffic starts from")
    p.add_argument("target", metavar="TARGET", help="container, name, address or host:PORT")
    p.add_argument("--port", type=int, default=None, help="port to probe (tcp unless --proto udp)")
    p.add_argument("--proto", choices=("tcp", "udp", "icmp"), default=None,
                   help="probe protocol (default: icmp, or tcp with a port)")
    p.add_argument("--json", action="store_true", help="print the diagnosis as JSON")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser(
        "graph", help="draw networks, containers, veths, ports and dnsd",
        description="A picture of netctl's networks (subnet, gateway, bridge), containers "
                    "(addresses, aliases), the veth pairs between them, published ports, joined "
                    "containers and dnsd listeners.")
    p.add_argument("--format", choices=("svg", "png", "dot", "text"), default=None,
                   help="output format (default: from --output's extension, else text)")
    p.add_argument("--output", "-o", default=None, metavar="FILE", help="write to FILE instead of stdout")
    p.set_defaults(func=cmd_graph)


def cmd_doctor(args: argparse.Namespace) -> int:
    # lazy: doctor and graph are ~3,000 lines of modules; only these verbs load them
    from ..doctor.diagnose import diagnose
    from ..doctor.gather import gather
    from ..doctor.report import render_text

    facts = gather(Paths.from_env(), args.source, args.target, proto=args.proto, port=args.port)
    report = diagnose(facts)
    if args.json:
        print(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
    else:
        print(render_text(report))
    return 0 if report.verdict.ok else BROKEN


def _format(args: argparse.Namespace) -> str:
    if args.format:
        return str(args.format)
    if args.output:
        ext = args.output.rsplit(".", 1)[-1].lower() if "." in args.output else ""
        fmt = {"svg": "svg", "png": "png", "dot": "dot", "gv": "dot", "txt": "text"}.get(ext)
        if fmt is None:
            raise NetctlError(f"cannot tell the format of {args.output!r}: add --format svg|png|dot|text")
        return fmt
    return "text"


def cmd_graph(args: argparse.Namespace) -> int:
    # lazy: doctor and graph are ~3,000 lines of modules; only these verbs load them
    from ..graph.gather import gather_model
    from ..graph.render import render

    fmt = _format(args)
    out = render(gather_model(Paths.from_env()), fmt)
    if args.output:
        try:
            mode = "wb" if isinstance(out, bytes) else "w"
            with open(args.output, mode) as fh:
                fh.write(out)
        except OSError as exc:
            raise NetctlError(f"cannot write {args.output}: {exc.strerror}") from None
        return 0
    if isinstance(out, bytes):
        sys.stdout.buffer.write(out)
    else:
        sys.stdout.write(out if out.endswith("\n") else out + "\n")
    return 0
