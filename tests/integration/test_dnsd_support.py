"""Helpers for the dnsd integration tests (no tests here): dig, dnsd start, fake upstreams."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nsutil import Netns, connect, wait_for  # noqa: E402,F401  (re-exported)


@dataclass
class Dig:
    """What dig saw: rcode (None = no reply at all), header flags, answer rdata."""

    status: str | None
    flags: set[str] = field(default_factory=set)
    answers: list[str] = field(default_factory=list)
    raw: str = ""


def dig(ns: Netns, server: str, name: str, qtype: str = "A", *opts: str, timeout: float = 2,
        tcp: bool = False, check: bool = True) -> Dig:
    """Run dig in ``ns`` against ``server`` (one try) and parse its answer.

    ``name`` goes through ``-q`` (so "a" is a name, not the type A); qtype "PTR" with an
    address as name makes a reverse query.
    """
    query = ["-x", name] if qtype == "PTR" and ":" in name or qtype == "PTR" and name[-1].isdigit() \
        else ["-q", name, "-t", qtype]
    argv = ["dig", f"@{server}", *query, *opts, "+tries=1", f"+timeout={int(timeout)}",
            "+noall", "+comments", "+answer"]
    if tcp:
        argv.append("+tcp")
    out = ns.run(argv, check=False, timeout=timeout * 3 + 5).stdout
    m = re.search(r"status: (\w+)", out)
    if m is None:
        assert not check or "timed out" in out or "refused" in out or "reached" in out, out
        return Dig(None, raw=out)
    flags = set(re.search(r";; flags: ([^;]*);", out).group(1).split())  # type: ignore[union-attr]
    answers = [line.split()[-1] for line in out.splitlines()
               if line and not line.startswith(";") and len(line.split()) >= 5]
    return Dig(m.group(1), flags, answers, out)


def start_dnsd(host: Netns, dns_dir: str, resolv_conf: str) -> int:
    """ensure_running() inside ``host``: dnsd inherits that namespace."""
    code = ("import sys; from dnsd.control import ensure_running; "
            "print(ensure_running(sys.argv[1], resolv_conf=sys.argv[2]))")
    return int(host.run([sys.executable, "-c", code, dns_dir, resolv_conf]).stdout)


def spawn_upstream(host: Netns, ip: str, mode: str, log: Path) -> subprocess.Popen[bytes]:
    """A fake upstream server in ``host`` (killed with the namespace); waits until bound."""
    proc = host.spawn([sys.executable, "-c", UPSTREAM, ip, mode, str(log)], stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    return proc


# Fake upstream: "answer" gives 192.0.2.10 for *.fwd.test and NXDOMAIN otherwise,
# "servfail" always SERVFAIL, "silent" reads and never answers. UDP and TCP; every
# question it sees is appended to the log file.
UPSTREAM = r"""
import socket, sys, threading
from dnslib import DNSRecord, RR, A, QTYPE, RCODE
ip, mode, log = sys.argv[1], sys.argv[2], sys.argv[3]

def answer(data):
    q = DNSRecord.parse(data)
    with open(log, "a") as fh:
        fh.write(f"{mode} {q.q.qname}\n")
    if mode == "silent":
        return None
    r = q.reply()
    if mode == "servfail":
        r.header.rcode = RCODE.SERVFAIL
    elif str(q.q.qname).lower().endswith(".fwd.test.") and q.q.qtype == QTYPE.A:
        r.add_answer(RR(q.q.qname, QTYPE.A, rdata=A("192.0.2.10"), ttl=30))
    elif not str(q.q.qname).lower().endswith(".fwd.test."):
        r.header.rcode = RCODE.NXDOMAIN
    return bytes(r.pack())

def tcp_loop(srv):
    while True:
        conn, _ = srv.accept()
        try:
            n = int.from_bytes(conn.recv(2), "big")
            data = b""
            while len(data) < n:
                data += conn.recv(n - len(data))
            out = answer(data)
            if out:
                conn.sendall(len(out).to_bytes(2, "big") + out)
        finally:
            conn.close()

udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.bind((ip, 53))
tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
tcp.bind((ip, 53))
tcp.listen(16)
threading.Thread(target=tcp_loop, args=(tcp,), daemon=True).start()
print("ready", flush=True)
while True:
    data, addr = udp.recvfrom(65535)
    out = answer(data)
    if out:
        udp.sendto(out, addr)
"""
