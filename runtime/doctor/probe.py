"""Probes that run INSIDE the source namespace: ``nsenter --net=NS python -m runtime.doctor.probe``.

``tcp ADDR PORT`` connects, ``udp ADDR PORT`` sends one datagram and waits for an
answer, ``dns NAME SERVER`` asks for an A/AAAA record. Each prints one JSON object
(``outcome``, ``detail``, ``rtt_ms``, for dns ``addresses``) and exits 0; the caller
turns it into facts. ICMP uses ``ping`` directly; ``parse_ping`` reads its output.
Every probe has a short time-out: it must not hang the doctor.
"""

from __future__ import annotations

import errno
import json
import re
import socket
import sys
import time
from typing import Any

from .facts import ProbeResult

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


def _exchange(proto: str, addr: str, port: int, timeout: float) -> dict[str, Any]:
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
        return {"outcome": "ok", "detail": detail, "rtt_ms": round((time.monotonic() - start) * 1000, 3)}
    except TimeoutError:
        return {"outcome": "timeout", "detail": f"no answer to SYN within {timeout:g} s" if proto == "tcp" else
                f"no answer within {timeout:g} s (UDP cannot tell dropped from unanswered)"}
    except OSError as exc:
        return {"outcome": ERRNO_OUTCOME.get(exc.errno or 0, "error"), "detail": exc.strerror or str(exc)}
    finally:
        s.close()


def _dns(name: str, server: str, timeout: float) -> dict[str, Any]:
    from dnslib import QTYPE, RCODE, DNSRecord  # only this probe needs dnslib

    q = DNSRecord.question(name, "A")
    try:
        raw = q.send(server, 53, timeout=timeout)
    except TimeoutError:
        return {"outcome": "timeout", "detail": f"no answer within {timeout:g} s"}
    except OSError as exc:
        return {"outcome": "error", "detail": exc.strerror or str(exc)}
    reply = DNSRecord.parse(raw)
    rcode = RCODE.get(reply.header.rcode)
    addrs = [str(rr.rdata) for rr in reply.rr if rr.rtype in (QTYPE.A, QTYPE.AAAA)]
    if addrs:
        return {"outcome": "answer", "addresses": addrs, "detail": rcode}
    return {"outcome": "nxdomain" if rcode == "NXDOMAIN" else "empty", "addresses": [], "detail": rcode}


def main(argv: list[str] | None = None) -> int:
    """``probe tcp|udp ADDR PORT [TIMEOUT]`` or ``probe dns NAME SERVER [TIMEOUT]``."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 3 or args[0] not in ("tcp", "udp", "dns"):
        print("usage: probe tcp|udp ADDR PORT [TIMEOUT] | dns NAME SERVER [TIMEOUT]", file=sys.stderr)
        return 2
    timeout = float(args[3]) if len(args) > 3 else 1.0
    if args[0] == "dns":
        out = _dns(args[1], args[2], timeout)
    else:
        out = _exchange(args[0], args[1], int(args[2]), timeout)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
