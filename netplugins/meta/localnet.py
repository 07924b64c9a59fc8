"""127.0.0.1 -> container: ``route_localnet`` on the interface that leads to the container.

Decision (README "Published ports"): no userland proxy. The OUTPUT DNAT sends a packet
with source 127.0.0.1 towards the container; the kernel lets a loopback source leave
(and its replies come back) only through an interface with
``net.ipv4.conf.<if>.route_localnet=1``, and the postrouting rule masquerades it to the
bridge's address. This is what the reference portmap does. The side effect, that
neighbours on that bridge could now reach the host's 127.0.0.0/8, is closed by the guard
rule that drops 127.0.0.0/8 arriving on anything but ``lo`` (ports_nft/ports_ipt).

The sysctl is written only in the namespace the plugin runs in. When netctl turned it on
(it was 0), a marker file remembers that, and the last published port of the network
turns it off again, so no bridge keeps route_localnet without the guard.
"""

from __future__ import annotations

import ipaddress
import json
import os
import struct

from ..nl import sysctl

PROC_ROUTE = "/proc/thread-self/net/route"


def _proc_ip(hexval: str) -> int:
    """A /proc/net/route field (the address's bytes read as a host-order word) as an int."""
    word = struct.unpack("=I", bytes.fromhex(hexval))[0]
    return int(ipaddress.IPv4Address(struct.pack("!I", word)))


RTF_GATEWAY = 0x2


def parse_route_dev(text: str, address: str) -> str | None:
    """The interface of the longest-prefix on-link IPv4 route to ``address`` (/proc/net/route).

    Routes through a gateway (the default route among them) are skipped: the container
    sits on a link of this host, and route_localnet must never land on an uplink.
    """
    target = int(ipaddress.IPv4Address(address))
    best: tuple[int, int, str] | None = None  # (prefix length, -metric, interface)
    for line in text.splitlines()[1:]:
        cols = line.split()
        if len(cols) < 8:
            continue
        try:
            dest, mask, metric = _proc_ip(cols[1]), _proc_ip(cols[7]), int(cols[6])
            flags = int(cols[3], 16)
        except ValueError:
            continue
        if flags & RTF_GATEWAY or mask == 0 or target & mask != dest:
            continue
        cand = (bin(mask).count("1"), -metric, cols[0])
        if best is None or cand[:2] > best[:2]:
            best = cand
    return best[2] if best else None


def route_dev(address: str) -> str | None:
    """The interface this namespace routes ``address`` through (main table), or None."""
    try:
        with open(PROC_ROUTE) as fh:
            return parse_route_dev(fh.read(), address)
    except OSError:
        return None


def _key(dev: str) -> str:
    return f"net/ipv4/conf/{dev}/route_localnet"


def _marker(state_dir: str, network: str) -> str:
    return os.path.join(state_dir, f"{network}.localnet")


def enable(state_dir: str, network: str, dev: str) -> None:
    """Turn route_localnet on for ``dev``; remember when we were the ones to turn it on.

    Raises:
        OSError: the sysctl or the marker cannot be written.
    """
    if sysctl.read(_key(dev)) == "1":
        return
    os.makedirs(state_dir, mode=0o700, exist_ok=True)
    with open(_marker(state_dir, network), "w") as fh:
        json.dump({"dev": dev}, fh)
    sysctl.write(_key(dev), "1")


def restore(state_dir: str, network: str) -> None:
    """Turn route_localnet off again if :func:`enable` turned it on for this network.

    Raises:
        OSError: the sysctl cannot be written (the marker stays for a retry).
    """
    path = _marker(state_dir, network)
    try:
        with open(path) as fh:
            dev = str(json.load(fh).get("dev", ""))
    except (OSError, ValueError, AttributeError):
        return
    if dev and sysctl.read(_key(dev)) is not None:  # None: the bridge is gone already
        sysctl.write(_key(dev), "0")
    os.unlink(path)


def is_enabled(dev: str) -> bool:
    """Whether route_localnet is on for ``dev``."""
    return sysctl.read(_key(dev)) == "1"


def disable(dev: str) -> None:
    """Turn route_localnet off for ``dev`` (fail closed: its guard rule is missing).

    Raises:
        OSError: the sysctl cannot be written.
    """
    sysctl.write(_key(dev), "0")
