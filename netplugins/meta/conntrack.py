"""Forget UDP flows to a newly published host port, so they cannot bypass the new DNAT.

NAT is decided on a flow's first packet. A client that sent UDP to host port P before P
was published (no listener, or another container's earlier mapping) owns a conntrack
entry that keeps its later packets away from the new DNAT until the entry times out. ADD
therefore deletes UDP entries whose original destination is a local address and port P
(the reference does the same). TCP needs nothing: a new connection is a new flow.

Uses the ``conntrack`` tool (conntrack-tools): one listing per family, one delete per
stale flow, usually none. Without the tool, ADD logs a warning and carries on.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass

from ..firewall.ports import Forward
from ..firewall.which import which
from .hostsockets import is_local_address

log = logging.getLogger("netplugins.portmap")


@dataclass(frozen=True)
class Flow:
    """The original direction of a conntrack entry."""

    src: str
    dst: str
    sport: int
    dport: int


def parse_flows(text: str) -> list[Flow]:
    """Original tuples from ``conntrack -L`` text (the first src/dst/sport/dport of a line)."""
    out = []
    for line in text.splitlines():
        fields: dict[str, str] = {}
        for word in line.split():
            key, sep, value = word.partition("=")
            if sep and key in ("src", "dst", "sport", "dport") and key not in fields:
                fields[key] = value
        if len(fields) == 4:
            try:
                out.append(Flow(fields["src"], fields["dst"], int(fields["sport"]), int(fields["dport"])))
            except ValueError:
                continue
    return out


def stale_flows(flows: Iterable[Flow], forwards: Iterable[Forward]) -> list[Flow]:
    """Flows aimed at a host port (and address) that ``forwards`` now publish (pure but
    for the locality check of wildcard forwards, which :func:`is_local_address` makes)."""
    fwds = list(forwards)
    local: dict[str, bool] = {}
    out = []
    for flow in flows:
        for f in fwds:
            if f.host_port != flow.dport:
                continue
            if f.host_ip is not None:
                hit = flow.dst == f.host_ip
            else:
                if flow.dst not in local:
                    local[flow.dst] = is_local_address(flow.dst)
                hit = local[flow.dst]
            if hit:
                out.append(flow)
                break
    return out


def flush_udp(forwards: Iterable[Forward]) -> int:
    """Delete stale UDP flows to the host ports of ``forwards``; how many were deleted."""
    udp = [f for f in forwards if f.protocol == "udp"]
    if not udp:
        return 0
    tool = which("conntrack")
    if tool is None:
        log.warning("conntrack is not installed: old UDP flows may bypass new port mappings")
        return 0
    deleted = 0
    for fam in sorted({f.family for f in udp}):
        name = "ipv4" if fam == 4 else "ipv6"
        listing = _run([tool, "-L", "-p", "udp", "-f", name])
        if listing is None:
            continue
        for flow in stale_flows(parse_flows(listing), [f for f in udp if f.family == fam]):
            done = _run([tool, "-D", "-p", "udp", "-f", name, "--orig-src", flow.src, "--orig-dst",
                         flow.dst, "--sport", str(flow.sport), "--dport", str(flow.dport)],
                        quiet=True)  # failing = it expired meanwhile: fine
            deleted += done is not None
    return deleted


def _run(argv: list[str], quiet: bool = False) -> str | None:
    """stdout of a conntrack command, or None (logged) when it failed: a flush is best effort,
    it must not fail the ADD whose rules are already correct."""
    try:
        res = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("%s failed: %s", " ".join(argv[:2]), exc)
        return None
    if res.returncode != 0:
        if not quiet:
            log.warning("%s failed: %s", " ".join(argv[:2]), res.stderr.strip())
        return None
    return res.stdout
