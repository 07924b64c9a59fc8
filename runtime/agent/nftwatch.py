"""Wake the agent when anything changes in nftables (what ``nft monitor`` listens to).

A netlink socket of family NETLINK_NETFILTER subscribed to the NFNLGRP_NFTABLES group
receives one message per table, chain, rule, set or element added or deleted, by anyone
(nft, iptables-nft, firewalld, Docker). The agent does not decode them: any message means
"check again"; a receive-buffer overrun (ENOBUFS) means the same. Changes made through
iptables-legacy are not announced: the agent polls on those hosts.
"""

from __future__ import annotations

import errno
import socket

NETLINK_NETFILTER = 12
NFNLGRP_NFTABLES = 7
SOL_NETLINK = 270
NETLINK_ADD_MEMBERSHIP = 1


class NftWatch:
    """A non-blocking subscription to nftables change notifications."""

    def __init__(self) -> None:
        """Raises: OSError when netlink or the group is unavailable (no nf_tables)."""
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_NONBLOCK
                             | socket.SOCK_CLOEXEC, NETLINK_NETFILTER)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            sock.bind((0, 0))
            sock.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, NFNLGRP_NFTABLES)
        except OSError:
            sock.close()
            raise
        self.sock = sock

    def fileno(self) -> int:
        return self.sock.fileno()

    def drain(self) -> int:
        """Read every pending notification; how many datagrams (an overrun counts as one)."""
        count = 0
        while True:
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                return count
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    count += 1  # we missed some: they were changes all the same
                    continue
                raise
            if not data:
                return count
            count += 1

    def close(self) -> None:
        self.sock.close()
