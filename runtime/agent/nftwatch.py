"""Wake the agent when anything changes in nftables (what ``nft monitor`` listens to).

A netlink socket of family NETLINK_NETFILTER subscribed to the NFNLGRP_NFTABLES group
receives one message per table, chain, rule, set or element added or deleted, by anyone
(nft, iptables-nft, firewalld, Docker), and after each committed transaction a NEWGEN
message naming the process that made it (what ``nft monitor`` prints as "new generation
N by process PID"). A transaction by one of the agent's own workers (a plugin call: the
desired state being written) needs no check; any other one means "check again", and so
does a receive-buffer overrun (ENOBUFS) or a NEWGEN without a process. Changes made
through iptables-legacy are not announced: the agent polls on those hosts.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable

NETLINK_NETFILTER = 12
NFNLGRP_NFTABLES = 7
SOL_NETLINK = 270
NETLINK_ADD_MEMBERSHIP = 1
NFNL_SUBSYS_NFTABLES = 10
NFT_MSG_NEWGEN = 15  # enum nf_tables_msg_types (GETGEN is 16)
NFTA_GEN_PROC_PID = 2
NLMSG_HDR = 16
NFGENMSG = 4


def newgen_pid(msg: bytes) -> int | None:
    """The process of a NEWGEN message (header included), None when it names none."""
    at = NLMSG_HDR + NFGENMSG
    while at + 4 <= len(msg):
        length = int.from_bytes(msg[at:at + 2], "little")
        kind = int.from_bytes(msg[at + 2:at + 4], "little") & 0x3FFF
        if length < 4:
            return None
        if kind == NFTA_GEN_PROC_PID and length >= 8:
            return int.from_bytes(msg[at + 4:at + 8], "big")
        at += (length + 3) & ~3
    return None


def transactions(data: bytes) -> tuple[list[int | None], int]:
    """Split one datagram into its messages: the process of each NEWGEN in order, and how
    many other messages (changes) came after the last NEWGEN (pure)."""
    pids: list[int | None] = []
    pending = 0
    at = 0
    while at + NLMSG_HDR <= len(data):
        length = int.from_bytes(data[at:at + 4], "little")
        kind = int.from_bytes(data[at + 4:at + 6], "little")
        if length < NLMSG_HDR:
            break
        if kind == (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWGEN:
            pids.append(newgen_pid(data[at:at + length]))
            pending = 0
        else:
            pending += 1
        at += (length + 3) & ~3
    return pids, pending


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
        #: changes seen whose transaction's NEWGEN has not arrived yet
        self.pending = 0

    def fileno(self) -> int:
        return self.sock.fileno()

    def drain(self, own: Callable[[int], bool] = lambda _pid: False) -> int:
        """Read every pending notification; how many transactions need a check: those not
        made by a process for which ``own(pid)`` holds (an overrun counts as one).

        Changes whose NEWGEN has not arrived yet count when it does (a transaction's
        messages may span datagrams); :meth:`forget` drops them.
        """
        count = 0
        while True:
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                return count
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    count += 1  # we missed some: they were changes all the same
                    self.pending = 0
                    continue
                raise
            if not data:
                return count
            pids, after = transactions(data)
            for pid in pids:
                if pid is None or not own(pid):
                    count += 1
            self.pending = after if pids else self.pending + after

    def forget(self) -> None:
        """Forget changes still waiting for their NEWGEN (a check covering them starts)."""
        self.pending = 0

    def close(self) -> None:
        self.sock.close()
