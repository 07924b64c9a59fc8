"""The bridge plugin's rtnetlink client, without a kernel: message encoding, reply parsing,
errors (a fake socket records what is sent and plays back replies)."""

from __future__ import annotations

import errno
import socket
import struct

import pytest

from netplugins.cni.errors import CniError
from netplugins.nl import bridge as nlb
from netplugins.nl import rtnl as rt
from netplugins.nl.rtnl import (
    IFINFOMSG,
    NLMSGHDR,
    RTMSG,
    Rtnl,
    _attr,
    _attrs,
    _parse_link,
)
from netplugins.nl.types import Addr, Link, NetlinkError


class FakeSock:
    """Records sent datagrams; ``replies`` are callables seq -> list of datagrams."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.queue: list[bytes] = []
        self.replies: list = []  # type: ignore[type-arg]

    def send(self, data: bytes) -> int:
        self.sent.append(data)
        seq = NLMSGHDR.unpack_from(data)[3]
        self.queue += self.replies.pop(0)(seq)
        return len(data)

    def recv(self, _size: int) -> bytes:
        return self.queue.pop(0)

    def close(self) -> None:
        pass


def msg(kind: int, seq: int, body: bytes, flags: int = 0) -> bytes:
    data = NLMSGHDR.pack(NLMSGHDR.size + len(body), kind, flags, seq, 0) + body
    return data + b"\0" * (-len(data) % 4)


def ack(code: int = 0) -> object:
    return lambda seq: [msg(rt.NLMSG_ERROR, seq, struct.pack("=i", -code) + b"\0" * 16)]


def fake_rtnl() -> tuple[Rtnl, FakeSock]:
    nl = Rtnl.__new__(Rtnl)
    sock = FakeSock()
    nl.sock = sock  # type: ignore[assignment]
    nl.seq = 0
    return nl, sock


def link_body(index: int, name: str, kind: str = "", mac: bytes = b"\x02\0\0\0\0\x01", flags: int = 1,
              master: int = 0) -> bytes:
    attrs = _attr(rt.IFLA_IFNAME, name.encode() + b"\0") + _attr(rt.IFLA_ADDRESS, mac)
    attrs += _attr(rt.IFLA_MTU, struct.pack("=I", 1500))
    if master:
        attrs += _attr(rt.IFLA_MASTER, struct.pack("=I", master))
    if kind:
        attrs += _attr(rt.IFLA_LINKINFO | rt.NLA_F_NESTED, _attr(rt.IFLA_INFO_KIND, kind.encode() + b"\0"))
    return IFINFOMSG.pack(0, 1, index, flags, 0) + attrs


def sent_attrs(data: bytes, header: struct.Struct) -> dict[int, bytes]:
    return dict(_attrs(data[NLMSGHDR.size:], header.size))


# --- encoding -----------------------------------------------------------------------------

def test_attr_is_padded_and_its_length_is_not() -> None:
    a = _attr(3, b"eth0\0")
    assert len(a) == 12 and struct.unpack_from("=HH", a) == (9, 3)
    assert list(_attrs(a + _attr(4, b"\x01\0\0\0"))) == [(3, b"eth0\0"), (4, b"\x01\0\0\0")]


def test_nested_flag_is_stripped_when_parsing() -> None:
    nested = _attr(18 | rt.NLA_F_NESTED, _attr(1, b"veth\0"))
    [(kind, payload)] = list(_attrs(nested))
    assert kind == 18 and list(_attrs(payload)) == [(1, b"veth\0")]


def test_parse_link() -> None:
    link = _parse_link(link_body(7, "br0", "bridge", b"\x02\xaa\xbb\xcc\xdd\xee", flags=0x1103, master=0))
    assert link == Link(index=7, name="br0", flags=0x1103, mac="02:aa:bb:cc:dd:ee", mtu=1500, kind="bridge",
                        master=0, peer=0)
    assert link.up
    assert _parse_link(link_body(8, "eth0", flags=0)).kind == "" and not _parse_link(link_body(8, "x", flags=0)).up


def test_veth_request() -> None:
    nl, sock = fake_rtnl()
    sock.replies = [ack()]
    nlb.create_veth(nl, "vethabc", "02:00:00:00:00:01", "eth0", "02:00:00:00:00:02", 42, 1400, 5)
    [data] = sock.sent
    length, kind, flags, seq, _ = NLMSGHDR.unpack_from(data)
    assert length == len(data) and kind == rt.RTM_NEWLINK and seq == 1
    assert flags == rt.NLM_F_REQUEST | rt.NLM_F_ACK | rt.NLM_F_CREATE | rt.NLM_F_EXCL
    _fam, _type, index, ifflags, change = IFINFOMSG.unpack_from(data, NLMSGHDR.size)
    assert index == 0 and ifflags == change == rt.IFF_UP  # the host end comes up at once
    attrs = sent_attrs(data, IFINFOMSG)
    assert attrs[rt.IFLA_IFNAME] == b"vethabc\0"
    assert attrs[rt.IFLA_ADDRESS] == bytes.fromhex("020000000001")
    assert struct.unpack("=I", attrs[rt.IFLA_MASTER])[0] == 5
    info = dict(_attrs(attrs[rt.IFLA_LINKINFO]))
    assert info[rt.IFLA_INFO_KIND] == b"veth\0"
    peer = dict(_attrs(info[rt.IFLA_INFO_DATA]))[rt.VETH_INFO_PEER]
    assert IFINFOMSG.unpack_from(peer)[3] == 0  # the container end stays down
    pattrs = dict(_attrs(peer, IFINFOMSG.size))
    assert pattrs[rt.IFLA_IFNAME] == b"eth0\0"
    assert struct.unpack("=I", pattrs[rt.IFLA_NET_NS_FD])[0] == 42
    assert struct.unpack("=I", pattrs[rt.IFLA_MTU])[0] == 1400


def test_veth_leftover_host_end_is_replaced() -> None:
    nl, sock = fake_rtnl()
    sock.replies = [ack(errno.EEXIST), ack(), ack()]  # add: exists; del: ok; add: ok
    nlb.create_veth(nl, "vethabc", "02:00:00:00:00:01", "eth0", "02:00:00:00:00:02", 42, 0, 5)
    assert [NLMSGHDR.unpack_from(d)[1] for d in sock.sent] == [rt.RTM_NEWLINK, rt.RTM_DELLINK, rt.RTM_NEWLINK]


def test_veth_peer_name_taken_is_code_106() -> None:
    nl, sock = fake_rtnl()
    sock.replies = [ack(errno.EEXIST), ack(errno.ENODEV)]  # add: exists; del host end: not there
    with pytest.raises(CniError) as exc:
        nlb.create_veth(nl, "vethabc", "02:00:00:00:00:01", "eth0", "02:00:00:00:00:02", 42, 0, 5)
    assert exc.value.code == 106 and "'eth0' already exists" in exc.value.msg


@pytest.mark.parametrize("dst,gw,scope,dst_len", [
    ("0.0.0.0/0", "10.1.0.1", rt.RT_SCOPE_UNIVERSE, 0),
    ("10.9.0.0/16", None, rt.RT_SCOPE_LINK, 16),
    ("::/0", "fd00::1", rt.RT_SCOPE_UNIVERSE, 0),
])
def test_route_request(dst: str, gw: str | None, scope: int, dst_len: int) -> None:
    nl, sock = fake_rtnl()
    sock.replies = [ack()]
    nl.add_route(dst, gw, 3)
    [data] = sock.sent
    fields = RTMSG.unpack_from(data, NLMSGHDR.size)
    family = socket.AF_INET6 if ":" in dst else socket.AF_INET
    assert fields[:2] == (family, dst_len) and fields[4] == rt.RT_TABLE_MAIN and fields[6] == scope
    attrs = sent_attrs(data, RTMSG)
    assert struct.unpack("=I", attrs[rt.RTA_OIF])[0] == 3
    assert (rt.RTA_DST in attrs) == bool(dst_len)
    assert (rt.RTA_GATEWAY in attrs) == bool(gw)


def test_ipv4_address_gets_a_broadcast() -> None:
    nl, sock = fake_rtnl()
    sock.replies = [ack(), ack()]
    nl.add_addr(4, "10.1.0.5/24")
    nl.add_addr(4, "fd00::5/64", nodad=True)
    v4 = sent_attrs(sock.sent[0], rt.IFADDRMSG)
    assert v4[rt.IFA_LOCAL] == socket.inet_aton("10.1.0.5") and v4[rt.IFA_BROADCAST] == socket.inet_aton("10.1.0.255")
    family, prefixlen, flags, _scope, index = rt.IFADDRMSG.unpack_from(sock.sent[1], NLMSGHDR.size)
    assert (family, prefixlen, flags, index) == (socket.AF_INET6, 64, rt.IFA_F_NODAD, 4)


# --- replies ------------------------------------------------------------------------------

def test_get_link_reads_reply_then_ack() -> None:
    nl, sock = fake_rtnl()
    sock.replies = [lambda seq: [msg(rt.RTM_NEWLINK, seq, link_body(3, "br0", "bridge")) +
                                 msg(rt.NLMSG_ERROR, seq, b"\0" * 20)]]
    link = nl.get_link("br0")
    assert link is not None and link.index == 3 and link.kind == "bridge"


def test_get_link_absent() -> None:
    nl, sock = fake_rtnl()
    sock.replies = [ack(errno.ENODEV)]
    assert nl.get_link("nope") is None


def test_errors_carry_errno() -> None:
    nl, sock = fake_rtnl()
    sock.replies = [ack(errno.EPERM)]
    with pytest.raises(NetlinkError) as exc:
        nl.del_link("x")
    assert exc.value.code == errno.EPERM
    sock.replies = [ack(errno.EBUSY)]
    with pytest.raises(CniError) as cni:
        nlb.delete_link(nl, "x")
    assert cni.value.code == 101 and "Device or resource busy" in str(cni.value.details)


def test_dump_across_datagrams_skips_other_sequences() -> None:
    nl, sock = fake_rtnl()

    def addr(index: int, ip: str, prefix: int, scope: int = 0) -> bytes:
        raw = socket.inet_aton(ip)
        return rt.IFADDRMSG.pack(socket.AF_INET, prefix, 0, scope, index) + _attr(rt.IFA_ADDRESS, raw)

    sock.replies = [lambda seq: [
        msg(rt.RTM_NEWADDR, seq, addr(2, "10.1.0.1", 24), rt.NLM_F_MULTI)
        + msg(rt.RTM_NEWADDR, seq + 100, addr(2, "9.9.9.9", 8), rt.NLM_F_MULTI),
        msg(rt.RTM_NEWADDR, seq, addr(3, "10.2.0.1", 24), rt.NLM_F_MULTI)
        + msg(rt.RTM_NEWADDR, seq, addr(2, "127.0.0.5", 8, 254), rt.NLM_F_MULTI)
        + msg(rt.NLMSG_DONE, seq, struct.pack("=i", 0)),
    ]]
    assert nl.addresses(2) == [Addr(2, "10.1.0.1/24", 0), Addr(2, "127.0.0.5/8", 254)]


def test_dump_that_fails_part_way() -> None:
    nl, sock = fake_rtnl()
    sock.replies = [lambda seq: [msg(rt.NLMSG_DONE, seq, struct.pack("=i", -errno.EINTR))]]
    with pytest.raises(NetlinkError) as exc:
        nl.route_destinations()
    assert exc.value.code == errno.EINTR


def test_delete_link_absent_is_success() -> None:
    nl, sock = fake_rtnl()
    sock.replies = [ack(errno.ENODEV), ack()]
    assert nlb.delete_link(nl, "vethx") is False
    assert nlb.delete_link(nl, "vethx") is True


def test_fdb_and_neighbour_requests() -> None:
    nl, sock = fake_rtnl()
    sock.replies = [ack(), ack(), ack()]
    nl.replace_fdb(9, "02:42:0a:00:00:05", "198.18.60.13")
    nl.replace_neigh(9, "10.0.0.5", "02:42:0a:00:00:05")
    nl.del_neigh(9, "fd00::5")
    fdb, neigh, gone = sock.sent
    _len, kind, flags, _seq, _pid = NLMSGHDR.unpack_from(fdb)
    assert kind == rt.RTM_NEWNEIGH and flags & rt.NLM_F_REPLACE and flags & rt.NLM_F_CREATE
    assert rt.NDMSG.unpack_from(fdb, NLMSGHDR.size) == (socket.AF_BRIDGE, 9, rt.NUD_PERMANENT, rt.NTF_SELF, 0)
    attrs = sent_attrs(fdb, rt.NDMSG)
    assert attrs[rt.NDA_LLADDR] == bytes.fromhex("02420a000005")
    assert attrs[rt.NDA_DST] == socket.inet_aton("198.18.60.13")
    assert rt.NDMSG.unpack_from(neigh, NLMSGHDR.size)[:3] == (socket.AF_INET, 9, rt.NUD_PERMANENT)
    assert NLMSGHDR.unpack_from(gone)[1] == rt.RTM_DELNEIGH
    assert rt.NDMSG.unpack_from(gone, NLMSGHDR.size)[0] == socket.AF_INET6
    assert rt.NDA_LLADDR not in sent_attrs(gone, rt.NDMSG)
