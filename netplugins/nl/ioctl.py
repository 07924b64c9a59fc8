"""Interface flags and addresses through ioctl and /proc: the standard library only.

The loopback plugin runs for every container; with these it never imports pyroute2
(~170 ms), so even a cold in-process call stays cheap. Sockets are bound to the namespace
they were created in, so call these inside :func:`netplugins.nl.netns.entered`.
"""

from __future__ import annotations

import array
import fcntl
import socket
import struct

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
SIOCGIFCONF = 0x8912
SIOCGIFNETMASK = 0x891B
IFF_UP = 0x1
_IFREQ = struct.Struct("16sH22x")  # ifr_name + ifr_flags, padded to sizeof(struct ifreq) = 40


def _sock() -> socket.socket:
    return socket.socket(socket.AF_INET, socket.SOCK_DGRAM)


def get_flags(name: str) -> int:
    """Interface flags. Raises: OSError (ENODEV) when there is no such interface."""
    with _sock() as s:
        res = fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, _IFREQ.pack(name.encode(), 0))
    return int(_IFREQ.unpack(res)[1])


def set_up(name: str, up: bool = True) -> None:
    """Set an interface up or down. Raises: OSError from the kernel."""
    flags = get_flags(name)
    new = flags | IFF_UP if up else flags & ~IFF_UP
    if new != flags:
        with _sock() as s:
            fcntl.ioctl(s.fileno(), SIOCSIFFLAGS, _IFREQ.pack(name.encode(), new & 0xFFFF))


def ipv4_addresses(name: str) -> list[str]:
    """CIDR strings of the IPv4 addresses on ``name`` (SIOCGIFCONF lists every address)."""
    size = 40 * 64
    with _sock() as s:
        buf = array.array("B", b"\0" * size)
        ptr, _ = buf.buffer_info()
        res = fcntl.ioctl(s.fileno(), SIOCGIFCONF, struct.pack("iL", size, ptr))
        used = struct.unpack("iL", res)[0]
        raw = buf.tobytes()[:used]
        out = []
        for off in range(0, used, 40):
            ifname = raw[off:off + 16].split(b"\0", 1)[0].decode()
            if ifname != name:
                continue
            addr = socket.inet_ntoa(raw[off + 20:off + 24])
            mask_req = struct.pack("16s24x", ifname.encode())
            mask = socket.inet_ntoa(fcntl.ioctl(s.fileno(), SIOCGIFNETMASK, mask_req)[20:24])
            prefix = sum(bin(int(octet)).count("1") for octet in mask.split("."))
            out.append(f"{addr}/{prefix}")
        return out


def ipv6_addresses(name: str) -> list[str]:
    """CIDR strings of the IPv6 addresses on ``name`` (/proc/net/if_inet6 of this namespace)."""
    out = []
    try:
        with open("/proc/self/net/if_inet6") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return []
    for line in lines:
        parts = line.split()
        if len(parts) == 6 and parts[5] == name:
            hexaddr = parts[0]
            packed = bytes.fromhex(hexaddr)
            out.append(f"{socket.inet_ntop(socket.AF_INET6, packed)}/{int(parts[2], 16)}")
    return out
