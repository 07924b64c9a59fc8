"""Host ports already taken by a process of the namespace the plugin runs in.

A published port must not silently capture a host service (the reference portmap's
"last write wins", cni-spec.md 4.1): the DNAT rule would hide the process from every
client but itself. So ADD reads ``/proc/thread-self/net/{tcp,tcp6,udp,udp6,sctp/eps}``
(per network namespace) and refuses a port a socket listens on. Parsing is pure.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
from collections.abc import Iterable
from dataclasses import dataclass

from ..firewall.ports import Forward

PROC_NET = "/proc/thread-self/net"
TCP_LISTEN = "0A"
#: (protocol, family) -> file under PROC_NET
FILES = {("tcp", 4): "tcp", ("tcp", 6): "tcp6", ("udp", 4): "udp", ("udp", 6): "udp6"}


@dataclass(frozen=True)
class HostSocket:
    """A listening (TCP, SCTP) or unconnected bound (UDP) socket of the host."""

    family: int
    protocol: str
    address: str
    port: int
    inode: int = 0

    def describe(self) -> str:
        host = f"[{self.address}]" if self.family == 6 else self.address
        return f"{host}:{self.port}/{self.protocol}"


def _hex_address(text: str) -> str:
    """``0100007F`` -> ``127.0.0.1``; 32 hex digits -> an IPv6 address (kernel byte order)."""
    raw = bytes.fromhex(text)
    # /proc prints each 32-bit word in host byte order
    words = struct.unpack(f"={len(raw) // 4}I", raw)
    packed = b"".join(struct.pack("!I", w) for w in words)
    ip = ipaddress.ip_address(packed)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def parse_proc_net(text: str, protocol: str, family: int) -> list[HostSocket]:
    """Sockets in ``/proc/net/{tcp,udp}[6]`` that take a port: TCP in LISTEN, UDP not
    connected to a peer (a connected UDP socket is a client, its port is ephemeral)."""
    out = []
    for line in text.splitlines()[1:]:
        cols = line.split()
        if len(cols) < 10:
            continue
        local, remote, state = cols[1], cols[2], cols[3]
        if protocol == "tcp" and state != TCP_LISTEN:
            continue
        if protocol == "udp" and not remote.endswith(":0000"):
            continue
        addr, _, port = local.partition(":")
        try:
            out.append(HostSocket(family, protocol, _hex_address(addr), int(port, 16), int(cols[9])))
        except ValueError:
            continue
    return out


def parse_sctp_eps(text: str) -> list[HostSocket]:
    """Endpoints in ``/proc/net/sctp/eps`` (columns ... LPORT UID INODE LADDRS)."""
    out = []
    for line in text.splitlines()[1:]:
        cols = line.split()
        if len(cols) < 9:
            continue
        try:
            port, inode = int(cols[5]), int(cols[7])
        except ValueError:
            continue
        for addr in cols[8:]:
            try:
                ip = ipaddress.ip_address(addr)
            except ValueError:
                continue
            out.append(HostSocket(ip.version, "sctp", str(ip), port, inode))
    return out


def read_sockets(protocols: Iterable[str], proc_net: str = PROC_NET) -> list[HostSocket]:
    """The port-taking sockets of ``protocols`` in the current network namespace."""
    out: list[HostSocket] = []
    for proto in set(protocols):
        if proto == "sctp":
            try:
                with open(os.path.join(proc_net, "sctp", "eps")) as fh:
                    out += parse_sctp_eps(fh.read())
            except OSError:
                pass  # no SCTP module loaded: no SCTP socket either
            continue
        for fam in (4, 6):
            try:
                with open(os.path.join(proc_net, FILES[(proto, fam)])) as fh:
                    out += parse_proc_net(fh.read(), proto, fam)
            except OSError:
                continue  # IPv6 disabled
    return out


def _wildcard(address: str) -> bool:
    return address in ("0.0.0.0", "::")


def socket_conflicts(forwards: Iterable[Forward], sockets: Iterable[HostSocket]) -> list[tuple[Forward, HostSocket]]:
    """Forwards whose host port a socket holds on a matching address.

    A socket on ``::`` also takes IPv4 (dual-stack is Linux's default); a socket on one
    address conflicts with a wildcard forward of its family (the DNAT would hide it
    from every other client) and with a forward on that very address.
    """
    out = []
    socks = list(sockets)
    for fwd in forwards:
        for s in socks:
            if s.protocol != fwd.protocol or s.port != fwd.host_port:
                continue
            if _wildcard(s.address):
                hit = s.family == fwd.family or s.address == "::"
            elif fwd.host_ip is None:
                hit = s.family == fwd.family
            else:
                hit = s.address == fwd.host_ip
            if hit:
                out.append((fwd, s))
    return out


def socket_owner(inode: int, proc: str = "/proc") -> str:
    """``name (pid N)`` of a process holding socket ``inode``, or "" (error path only)."""
    if not inode:
        return ""
    target = f"socket:[{inode}]"
    for pid in os.listdir(proc):
        if not pid.isdigit():
            continue
        fd_dir = os.path.join(proc, pid, "fd")
        try:
            for fd in os.listdir(fd_dir):
                if os.readlink(os.path.join(fd_dir, fd)) == target:
                    with open(os.path.join(proc, pid, "comm")) as fh:
                        return f"{fh.read().strip()} (pid {pid})"
        except OSError:
            continue
    return ""


def is_local_address(address: str) -> bool:
    """Whether ``address`` belongs to this namespace (a bind to it succeeds)."""
    ip = ipaddress.ip_address(address)
    fam = socket.AF_INET if ip.version == 4 else socket.AF_INET6
    with socket.socket(fam, socket.SOCK_DGRAM) as s:
        try:
            s.bind((address, 0))
        except OSError:
            return False
    return True
