"""Probes, sent from inside the source namespace (``gather._inside``).

``exchange`` connects (TCP) or sends one datagram and waits for an answer (UDP),
``ask_dns`` asks for an A record; ICMP uses ``ping``, whose output ``parse_ping`` reads.
Every probe has a short time-out: it must not hang the doctor.
"""

from __future__ import annotations

import errno
import re
import socket
import time

from .facts import DnsAnswer, ProbeResult

#: errno -> outcome for connect/recv failures
ERRNO_OUTCOME = {errno.ECONNREFUSED: "refused", errno.EHOSTUNREACH: "unreachable",
                 errno.ENETUNREACH: "unreachable", errno.ETIMEDOUT: "timeout", errno.EACCES: "unreachable",
                 errno.EPERM: "unreachable"}


def parse_ping(address: str, stdout: str, stderr: str, returncode: int, timeout: float) -> ProbeResult:
    """``ping -n -c 1 -W T ADDR`` output -> a probe result (pure)."""
    m = re.search(r"time[=<]([\d.]+) ms", stdout)
    if returncode == 0:
        rtt = float(m.group(1)) if m else None
        return ProbeResult("icmp", address, None, "ok", f"reply in {rtt} ms" if rtt is not None else "reply",
                           rtt)
    text = (stderr.strip() or stdout.strip()).splitlines()
    err = next((line for line in text if "unreachable" in line.lower() or "ping:" in line), "")
    if "unreachable" in err.lower():
        return ProbeResult("icmp", address, None, "unreachable", err.rsplit(":", 1)[-1].strip())
    if returncode == 1:
        return ProbeResult("icmp", address, None, "timeout", f"no reply within {timeout:g} s")
    return ProbeResult("icmp", address, None, "error", err or f"ping failed with status {returncode}")


def exchange(proto: str, addr: str, port: int, timeout: float) -> ProbeResult:
    """TCP: connect. UDP: send one datagram and wait for an answer."""
    start = time.monotonic()
    s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET,
                      socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        s.connect((addr, port))
        if proto == "tcp":
            detail = "connected"
        else:
            s.send(b"netctl-doctor\n")
            detail = f"{len(s.recv(2048))}-byte answer"
        return ProbeResult(proto, addr, port, "ok", detail, round((time.monotonic() - start) * 1000, 3))
    except TimeoutError:
        return ProbeResult(proto, addr, port, "timeout", f"no answer to SYN within {timeout:g} s" if proto == "tcp"
                           else f"no answer within {timeout:g} s (UDP cannot tell dropped from unanswered)")
    except OSError as exc:
        return ProbeResult(proto, addr, port, ERRNO_OUTCOME.get(exc.errno or 0, "error"),  # type: ignore[arg-type]
                           exc.strerror or str(exc))
    finally:
        s.close()


def ask_dns(name: str, server: str, timeout: float) -> DnsAnswer:
    """An A query for ``name`` to ``server``:53."""
    from dnslib import QTYPE, RCODE, DNSRecord  # only this probe needs dnslib

    try:
        raw = DNSRecord.question(name, "A").send(server, 53, timeout=timeout)
    except TimeoutError:
        return DnsAnswer(name, server, "timeout", detail=f"no answer within {timeout:g} s")
    except OSError as exc:
        return DnsAnswer(name, server, "error", detail=exc.strerror or str(exc))
    reply = DNSRecord.parse(raw)
    rcode = RCODE.get(reply.header.rcode)
    addrs = tuple(str(rr.rdata) for rr in reply.rr if rr.rtype in (QTYPE.A, QTYPE.AAAA))
    outcome = "answer" if addrs else "nxdomain" if rcode == "NXDOMAIN" else "empty"
    return DnsAnswer(name, server, outcome, addrs, rcode)  # type: ignore[arg-type]
