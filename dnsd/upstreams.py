"""Upstream DNS servers: parsing addresses and the host's resolv.conf.

dnsd runs in the host network namespace, so the host's own nameservers (including a
loopback stub such as systemd-resolved's 127.0.0.53) are reachable as they are.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass

log = logging.getLogger(__name__)

#: at most this many servers are tried per query (resolv.conf MAXNS, docker, aardvark)
MAX_UPSTREAMS = 3
DNS_PORT = 53


@dataclass(frozen=True, slots=True)
class Upstream:
    """One upstream server, ready for ``socket.connect``."""

    #: the address as configured (``fe80::1%eth0`` keeps its zone), for logs
    host: str
    family: int
    #: sockaddr for connect(): (ip, port) or (ip, port, flowinfo, scope_id)
    sockaddr: tuple[str, int] | tuple[str, int, int, int]

    @property
    def ip(self) -> str:
        return self.sockaddr[0]

    def __str__(self) -> str:
        port = self.sockaddr[1]
        return self.host if port == DNS_PORT else f"{self.host}#{port}"


def parse_upstream(text: str, port: int = DNS_PORT) -> Upstream:
    """Parse a numeric IPv4/IPv6 address, optionally with an ``%iface`` zone.

    Raises:
        ValueError: if ``text`` is not a numeric address, or its zone does not exist.
    """
    text = text.strip()
    try:
        infos = socket.getaddrinfo(
            text, port, type=socket.SOCK_DGRAM, flags=socket.AI_NUMERICHOST
        )
    except (socket.gaierror, UnicodeError) as exc:
        # aardvark-dns#535: a link-local server with a zone of an interface that is gone
        raise ValueError(f"invalid upstream address {text!r}: {exc}") from None
    family, _, _, _, sockaddr = infos[0]
    return Upstream(text, family, sockaddr)  # type: ignore[arg-type]


def parse_resolv_conf(text: str) -> list[Upstream]:
    """The ``nameserver`` entries of a resolv.conf, in order, invalid ones skipped.

    As glibc does, only the first word after ``nameserver`` counts (podman#13926: two
    servers on one line); comments start with ``#`` or ``;``.
    """
    out: list[Upstream] = []
    for line in text.splitlines():
        words = line.split()
        if len(words) < 2 or words[0] != "nameserver":
            continue
        try:
            up = parse_upstream(words[1])
        except ValueError as exc:
            log.warning("resolv.conf: skipping %s", exc)
            continue
        if up not in out:
            out.append(up)
    return out


class ResolvConf:
    """The host's nameservers, re-read when the file changes.

    The file is stat'ed at most once per ``interval`` seconds (on the forwarding path
    only), so upstream changes on the host reach dnsd without a restart (moby#25452).
    """

    def __init__(self, path: str, interval: float = 1.0) -> None:
        self.path = path
        self.interval = interval
        self._servers: list[Upstream] = []
        self._key: tuple[int, int, int] | None = None
        self._checked = float("-inf")
        self._logged = False

    def refresh(self, force: bool = False) -> None:
        """Re-read the file if it changed (or if ``force``); never raises."""
        now = time.monotonic()
        if not force and now - self._checked < self.interval:
            return
        self._checked = now
        try:
            st = os.stat(self.path)
            key = (st.st_ino, st.st_mtime_ns, st.st_size)
            if key == self._key and not force:
                return
            with open(self.path) as fh:
                text = fh.read()
        except OSError as exc:
            if self._key is not None or force:
                log.warning("cannot read %s: %s", self.path, exc)
            self._key = None
            self._servers = []
            return
        self._key = key
        servers = parse_resolv_conf(text)
        if servers != self._servers or force and not self._logged:
            log.info("upstreams from %s: %s", self.path, ", ".join(map(str, servers)) or "none")
            self._logged = True
        self._servers = servers

    @property
    def servers(self) -> list[Upstream]:
        """Current host nameservers (re-read if due)."""
        self.refresh()
        return self._servers
