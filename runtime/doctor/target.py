"""The TARGET argument of ``netctl doctor`` (pure parsing).

Forms: ``host:PORT`` (a published port), ``ADDRESS`` or ``ADDRESS:PORT`` /
``[V6]:PORT`` (an address, external or a container's), anything else a container
name/ID or a DNS name (``gather`` decides which by looking at netctl state).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Literal

from ..errors import NetctlError

PROTOS = ("tcp", "udp", "icmp")
SpecKind = Literal["ref", "address", "hostport"]


@dataclass(frozen=True)
class TargetSpec:
    """What the user asked for, before looking at state."""

    kind: SpecKind
    #: the container/DNS name, the address, or "host"
    value: str
    port: int | None = None


def _port(text: str, whole: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise NetctlError(f"invalid target {whole!r}: {text!r} is not a port number") from None
    if not 0 < port < 65536:
        raise NetctlError(f"invalid target {whole!r}: port {port} is out of range 1-65535")
    return port


def parse_target(text: str) -> TargetSpec:
    """Classify TARGET.

    Raises:
        NetctlError: empty, a bad port, or ``host:`` without a port.
    """
    text = text.strip()
    if not text:
        raise NetctlError("empty target: give a container, a name, an address or host:PORT")
    if text.startswith("["):
        addr, sep, rest = text[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise NetctlError(f"invalid target {text!r}: use [IPv6]:PORT")
        _check_ip(addr, text)
        return TargetSpec("address", addr, _port(rest[1:], text))
    try:
        ipaddress.ip_address(text)
        return TargetSpec("address", text)
    except ValueError:
        pass
    head, sep, tail = text.rpartition(":")
    if sep and head.lower() == "host":
        return TargetSpec("hostport", "host", _port(tail, text))
    if sep:
        _check_ip(head, text)
        return TargetSpec("address", head, _port(tail, text))
    return TargetSpec("ref", text)


def _check_ip(addr: str, whole: str) -> None:
    try:
        ipaddress.ip_address(addr)
    except ValueError:
        raise NetctlError(f"invalid target {whole!r}: {addr!r} is not an IP address "
                          "(use host:PORT for a published port)") from None


def choose_proto(spec: TargetSpec, proto: str | None, port: int | None,
                 published: str | None = None) -> tuple[str, int | None]:
    """The probe's protocol and port: ``--proto``/``--port`` win, then the target's port
    (``host:PORT``: the protocol the port is ``published`` with, else tcp).

    Raises:
        NetctlError: a protocol that needs a port has none, icmp was given a port, or
            ``host:PORT`` was given ``--port`` or icmp.
    """
    if proto is not None and proto not in PROTOS:
        raise NetctlError(f"invalid protocol {proto!r}: use tcp, udp or icmp")
    if spec.kind == "hostport":
        if proto == "icmp" or port is not None:
            raise NetctlError("host:PORT names the port already: drop --port, and use --proto tcp or udp")
        return proto or published or "tcp", spec.port
    port = port if port is not None else spec.port
    if proto is None:
        proto = "tcp" if port is not None else "icmp"
    if proto in ("tcp", "udp") and port is None:
        raise NetctlError(f"--proto {proto} needs a port: add --port N")
    if proto == "icmp" and port is not None:
        raise NetctlError("icmp has no ports: drop --port or use --proto tcp|udp")
    if port is not None and not 0 < port < 65536:
        raise NetctlError(f"invalid port {port}: use 1-65535")
    return proto, port
