"""The plugins' netlink (bridge, loopback, the overlay's readiness check), standard library
only: the second implementation of :class:`netplugins.nl.host.PluginNetlink` (the first is
pyroute2, :mod:`netplugins.nl.pyroute`).

Kept for one reason, measured by bench/nl_bench.py (figures in bench/README.md, "netlink"):
a plugin process started without the agent would pay pyroute2's import (~170 ms in
``python -IS``) on every container start, and in the agent's forked workers pyroute2's
asyncio core makes every request ~1 ms where the kernel's work is ~0.05 ms. The plugin's
requests are a handful of fixed messages, so it speaks them directly. Everything that is
not on a container's start path uses pyroute2 through :func:`netplugins.nl.pyroute.open_host`.
"""

from __future__ import annotations

# the C module: socket.py builds enums of every constant (~2 ms per plugin process)
import _socket as socket
import errno
import ipaddress
import struct
from collections.abc import Iterator

from .types import (
    IFF_UP,
    PORT_STATES,
    RT_SCOPE_LINK,
    RT_SCOPE_UNIVERSE,
    Addr,
    Link,
    NetlinkError,
    nud_name,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .host import FdbEntry, Neighbour

IFA_F_NODAD = 0x02

# --- rtnetlink (linux/netlink.h, linux/rtnetlink.h, linux/if_link.h, linux/if_addr.h) -----

NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK = 0x1, 0x2, 0x4
NLM_F_EXCL, NLM_F_CREATE, NLM_F_DUMP = 0x200, 0x400, 0x300
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK, RTM_SETLINK = 16, 17, 18, 19
RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR = 20, 21, 22
RTM_NEWROUTE, RTM_GETROUTE = 24, 26
RTM_NEWNEIGH, RTM_DELNEIGH, RTM_GETNEIGH = 28, 29, 30
NLM_F_REPLACE = 0x100
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_LINK, IFLA_MASTER = 1, 3, 4, 5, 10
IFLA_PROTINFO, IFLA_LINKINFO, IFLA_AF_SPEC, IFLA_NET_NS_FD = 12, 18, 26, 28
IFLA_IFALIAS = 20
IFLA_INET_CONF, IPV4_DEVCONF_ARP_NOTIFY = 1, 22
IFLA_INFO_KIND, IFLA_INFO_DATA, IFLA_INFO_SLAVE_KIND, IFLA_INFO_SLAVE_DATA = 1, 2, 4, 5
VETH_INFO_PEER = 1
IFLA_BRPORT_STATE, IFLA_BRPORT_MODE, IFLA_BRPORT_ISOLATED = 1, 4, 33
IFA_ADDRESS, IFA_LOCAL, IFA_BROADCAST = 1, 2, 4
NDA_DST, NDA_LLADDR = 1, 2
NTF_SELF, NUD_PERMANENT, NUD_NOARP = 0x02, 0x80, 0x40
IFLA_VXLAN_ID, IFLA_VXLAN_LOCAL, IFLA_VXLAN_LEARNING, IFLA_VXLAN_PROXY = 1, 4, 7, 11
IFLA_VXLAN_PORT, IFLA_VXLAN_LOCAL6 = 15, 17
RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_TABLE = 1, 4, 5, 15
NLA_F_NESTED = 0x8000
RT_TABLE_MAIN, RTPROT_STATIC, RTN_UNICAST = 254, 4, 1
NLMSGHDR = struct.Struct("=IHHII")       # len, type, flags, seq, pid
IFINFOMSG = struct.Struct("=BxHiII")     # family, type, index, flags, change
IFADDRMSG = struct.Struct("=BBBBI")      # family, prefixlen, flags, scope, index
RTMSG = struct.Struct("=BBBBBBBBI")      # family, dst_len, src_len, tos, table, proto, scope, type, flags
NDMSG = struct.Struct("=BxxxiHBB")       # family, ifindex, state, flags, type
RTATTR = struct.Struct("=HH")            # len, type


def _attr(kind: int, payload: bytes) -> bytes:
    data = RTATTR.pack(RTATTR.size + len(payload), kind) + payload
    return data + b"\0" * (-len(data) % 4)


def _nested(kind: int, *attrs: bytes) -> bytes:
    return _attr(kind | NLA_F_NESTED, b"".join(attrs))


def _u32(kind: int, value: int) -> bytes:
    return _attr(kind, struct.pack("=I", value))


def _str(kind: int, value: str) -> bytes:
    return _attr(kind, value.encode() + b"\0")


def _mac(kind: int, mac: str) -> bytes:
    return _attr(kind, bytes.fromhex(mac.replace(":", "")))


def _attrs(data: bytes, offset: int = 0) -> Iterator[tuple[int, bytes]]:
    """(type, payload) of the attributes in ``data`` from ``offset``."""
    while offset + RTATTR.size <= len(data):
        length, kind = RTATTR.unpack_from(data, offset)
        if length < RTATTR.size:
            return
        yield kind & ~NLA_F_NESTED, data[offset + RTATTR.size:offset + length]
        offset += (length + 3) & ~3


def _parse_link(body: bytes) -> Link:
    _family, _type, index, flags, _change = IFINFOMSG.unpack_from(body)
    vals: dict[int, bytes] = dict(_attrs(body, IFINFOMSG.size))
    kind, slave_kind, isolated, state = "", "", None, None
    slave = b""
    for sub, payload in _attrs(vals.get(IFLA_LINKINFO, b"")):
        if sub == IFLA_INFO_KIND:
            kind = payload.rstrip(b"\0").decode()
        elif sub == IFLA_INFO_SLAVE_KIND:
            slave_kind = payload.rstrip(b"\0").decode()
        elif sub == IFLA_INFO_SLAVE_DATA:
            slave = payload
    if slave_kind == "bridge":
        port = dict(_attrs(slave))
        isolated = bool(port.get(IFLA_BRPORT_ISOLATED, b"\0")[:1] != b"\0")
        if IFLA_BRPORT_STATE in port and port[IFLA_BRPORT_STATE][0] < len(PORT_STATES):
            state = PORT_STATES[port[IFLA_BRPORT_STATE][0]]

    def u32(key: int) -> int:
        raw = vals.get(key)
        return struct.unpack("=I", raw[:4])[0] if raw and len(raw) >= 4 else 0

    return Link(index=index, name=vals.get(IFLA_IFNAME, b"").rstrip(b"\0").decode(), flags=flags,
                mac=":".join(f"{b:02x}" for b in vals.get(IFLA_ADDRESS, b"")), mtu=u32(IFLA_MTU),
                kind=kind, master=u32(IFLA_MASTER), peer=u32(IFLA_LINK),
                alias=vals.get(IFLA_IFALIAS, b"").rstrip(b"\0").decode(errors="replace"),
                isolated=isolated, port_state=state)


class Rtnl:
    """A synchronous rtnetlink socket, bound to the network namespace it was created in."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, 0)
        self.sock.bind((0, 0))
        self.seq = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Rtnl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, msg_type: int, flags: int, body: bytes) -> list[tuple[int, bytes]]:
        """Send one request; return the (type, body) of the replies before the ACK or DONE.

        Raises:
            NetlinkError: the kernel answered with an error.
        """
        self.seq += 1
        seq = self.seq
        self.sock.send(NLMSGHDR.pack(NLMSGHDR.size + len(body), msg_type, flags | NLM_F_REQUEST, seq, 0) + body)
        out: list[tuple[int, bytes]] = []
        while True:
            data = self.sock.recv(65536)
            offset = 0
            while offset + NLMSGHDR.size <= len(data):
                length, kind, _flags, rseq, _pid = NLMSGHDR.unpack_from(data, offset)
                if length < NLMSGHDR.size:
                    raise NetlinkError(errno.EPROTO)  # malformed: never loop on it
                payload = data[offset + NLMSGHDR.size:offset + length]
                offset += (length + 3) & ~3
                if rseq != seq:
                    continue
                if kind == NLMSG_DONE:
                    # a dump that failed part-way ends with -errno in its DONE message
                    code = -struct.unpack_from("=i", payload)[0] if len(payload) >= 4 else 0
                    if code > 0:
                        raise NetlinkError(code)
                    return out
                if kind == NLMSG_ERROR:
                    code = -struct.unpack_from("=i", payload)[0]
                    if code:
                        raise NetlinkError(code)
                    return out
                out.append((kind, payload))

    # --- links ----------------------------------------------------------------------------

    def get_link(self, name: str) -> Link | None:
        """The link called ``name``, or None."""
        try:
            replies = self.request(RTM_GETLINK, NLM_F_ACK, IFINFOMSG.pack(0, 0, 0, 0, 0) + _str(IFLA_IFNAME, name))
        except NetlinkError as exc:
            if exc.code in (errno.ENODEV, errno.ENOENT):
                return None
            raise
        return next((_parse_link(body) for kind, body in replies if kind == RTM_NEWLINK), None)

    def count_ports(self, master: int) -> int:
        """How many links have ``master`` as their master (a bridge's ports).

        One dump filtered by the kernel (IFLA_MASTER in the request, Linux >= 4.6): only
        the bridge's own ports cross the socket, and they are counted, not parsed.

        Raises:
            NetlinkError: the kernel refused the dump.
        """
        replies = self.request(RTM_GETLINK, NLM_F_DUMP, IFINFOMSG.pack(0, 0, 0, 0, 0) + _u32(IFLA_MASTER, master))
        return sum(1 for kind, _ in replies if kind == RTM_NEWLINK)

    def _new_link(self, name: str, kind: str, *, mac: str = "", mtu: int = 0, flags: int = 0,
                  master: int = 0, info_data: bytes = b"") -> None:
        """RTM_NEWLINK that fails with EEXIST when ``name`` exists."""
        attrs = [_str(IFLA_IFNAME, name)]
        if mac:
            attrs.append(_mac(IFLA_ADDRESS, mac))
        if mtu:
            attrs.append(_u32(IFLA_MTU, mtu))
        if master:
            attrs.append(_u32(IFLA_MASTER, master))
        info = [_str(IFLA_INFO_KIND, kind)]
        if info_data:
            info.append(_attr(IFLA_INFO_DATA | NLA_F_NESTED, info_data))
        attrs.append(_nested(IFLA_LINKINFO, *info))
        self.request(RTM_NEWLINK, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
                     IFINFOMSG.pack(0, 0, 0, flags, flags) + b"".join(attrs))

    def add_bridge(self, name: str, mac: str, mtu: int, flags: int) -> None:
        """A bridge, in one request (PluginNetlink.add_bridge)."""
        self._new_link(name, "bridge", mac=mac, mtu=mtu, flags=flags)

    def add_veth(self, name: str, mac: str, mtu: int, master: int, peer_name: str,
                 peer_mac: str, peer_netns_fd: int) -> None:
        """A veth pair, the peer in another namespace, in one request (PluginNetlink.add_veth)."""
        peer_attrs = [_str(IFLA_IFNAME, peer_name), _mac(IFLA_ADDRESS, peer_mac),
                      _u32(IFLA_NET_NS_FD, peer_netns_fd)]
        if mtu:
            peer_attrs.append(_u32(IFLA_MTU, mtu))
        peer = _attr(VETH_INFO_PEER, IFINFOMSG.pack(0, 0, 0, 0, 0) + b"".join(peer_attrs))
        self._new_link(name, "veth", mac=mac, mtu=mtu, flags=IFF_UP, master=master, info_data=peer)

    def set_link(self, index: int, *, flags: int = 0, change: int = 0, mac: str = "",
                 mtu: int = 0, master: int = 0) -> None:
        body = IFINFOMSG.pack(0, 0, index, flags, change) + (_mac(IFLA_ADDRESS, mac) if mac else b"")
        if mtu:
            body += _u32(IFLA_MTU, mtu)
        if master:
            body += _u32(IFLA_MASTER, master)
        self.request(RTM_SETLINK, NLM_F_ACK, body)

    def set_alias(self, index: int, alias: str) -> None:
        """Set the link's alias (``ip link set DEV alias TEXT``)."""
        self.request(RTM_SETLINK, NLM_F_ACK, IFINFOMSG.pack(0, 0, index, 0, 0) + _str(IFLA_IFALIAS, alias))

    def set_ipv4_conf(self, index: int, values: dict[int, int]) -> None:
        """Per-interface IPv4 settings (``IPV4_DEVCONF_*`` -> value), the netlink way of
        writing /proc/sys/net/ipv4/conf/<if>/: no need to be in the link's namespace."""
        conf = b"".join(_attr(key, struct.pack("=I", value)) for key, value in values.items())
        spec = _nested(IFLA_AF_SPEC, _nested(socket.AF_INET, _nested(IFLA_INET_CONF, conf)))
        self.request(RTM_SETLINK, NLM_F_ACK, IFINFOMSG.pack(0, 0, index, 0, 0) + spec)

    def set_arp_notify(self, index: int) -> None:
        """arp_notify=1 on the link (PluginNetlink.set_arp_notify)."""
        self.set_ipv4_conf(index, {IPV4_DEVCONF_ARP_NOTIFY: 1})

    def del_link(self, name: str) -> None:
        self.request(RTM_DELLINK, NLM_F_ACK, IFINFOMSG.pack(0, 0, 0, 0, 0) + _str(IFLA_IFNAME, name))

    def set_brport(self, index: int, hairpin: bool, isolated: bool) -> None:
        protinfo = _nested(IFLA_PROTINFO, _attr(IFLA_BRPORT_MODE, bytes([int(hairpin)])),
                           _attr(IFLA_BRPORT_ISOLATED, bytes([int(isolated)])))
        self.request(RTM_SETLINK, NLM_F_ACK, IFINFOMSG.pack(socket.AF_BRIDGE, 0, index, 0, 0) + protinfo)

    # --- addresses and routes -------------------------------------------------------------

    def addresses(self, index: int = 0) -> list[Addr]:
        """The addresses on link ``index`` (0: on every link)."""
        out = []
        for kind, body in self.request(RTM_GETADDR, NLM_F_DUMP, IFADDRMSG.pack(0, 0, 0, 0, 0)):
            if kind != RTM_NEWADDR:
                continue
            family, prefixlen, _flags, scope, ifindex = IFADDRMSG.unpack_from(body)
            if index and ifindex != index:
                continue
            vals = dict(_attrs(body, IFADDRMSG.size))
            raw = vals.get(IFA_ADDRESS) or vals.get(IFA_LOCAL)
            if raw:
                out.append(Addr(ifindex, f"{socket.inet_ntop(family, raw)}/{prefixlen}", scope))
        return out

    def _addr(self, msg_type: int, flags: int, index: int, cidr: str, addr_flags: int = 0) -> None:
        iface = ipaddress.ip_interface(cidr)
        family = socket.AF_INET6 if iface.version == 6 else socket.AF_INET
        raw = iface.ip.packed
        attrs = _attr(IFA_LOCAL, raw) + _attr(IFA_ADDRESS, raw)
        if iface.version == 4 and iface.network.prefixlen < 31 and msg_type == RTM_NEWADDR:
            attrs += _attr(IFA_BROADCAST, iface.network.broadcast_address.packed)
        self.request(msg_type, NLM_F_ACK | flags,
                     IFADDRMSG.pack(family, iface.network.prefixlen, addr_flags, 0, index) + attrs)

    def add_addr(self, index: int, cidr: str, nodad: bool = False) -> None:
        self._addr(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, index, cidr, IFA_F_NODAD if nodad else 0)

    def del_addr(self, index: int, cidr: str) -> None:
        self._addr(RTM_DELADDR, 0, index, cidr)

    def add_route(self, dst: str, gateway: str | None, oif: int) -> None:
        net = ipaddress.ip_network(dst, strict=False)
        family = socket.AF_INET6 if net.version == 6 else socket.AF_INET
        scope = RT_SCOPE_UNIVERSE if gateway else RT_SCOPE_LINK
        attrs = _u32(RTA_OIF, oif)
        if net.prefixlen:
            attrs += _attr(RTA_DST, net.network_address.packed)
        if gateway:
            attrs += _attr(RTA_GATEWAY, ipaddress.ip_address(gateway).packed)
        self.request(RTM_NEWROUTE, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
                     RTMSG.pack(family, net.prefixlen, 0, 0, RT_TABLE_MAIN, RTPROT_STATIC, scope,
                                RTN_UNICAST, 0) + attrs)

    # --- neighbours and FDB (the overlay's VXLAN device) ------------------------------------

    def add_vxlan(self, name: str, vni: int, local: str, port: int) -> None:
        """A VXLAN device without learning, with ARP proxy (PluginNetlink.add_vxlan)."""
        ip = ipaddress.ip_address(local)
        data = (_u32(IFLA_VXLAN_ID, vni)
                + _attr(IFLA_VXLAN_LOCAL6 if ip.version == 6 else IFLA_VXLAN_LOCAL, ip.packed)
                + _attr(IFLA_VXLAN_PORT, struct.pack("!H", port))
                + _attr(IFLA_VXLAN_LEARNING, b"\0") + _attr(IFLA_VXLAN_PROXY, b"\1"))
        self._new_link(name, "vxlan", info_data=data)

    def neighbours(self, index: int = 0) -> list[Neighbour]:
        """IPv4/IPv6 neighbour entries of link ``index`` (0: all), NOARP ones left out."""
        from .host import Neighbour  # a dataclass: ~0.8 ms a bridge ADD does not pay

        out = []
        for kind, body in self.request(RTM_GETNEIGH, NLM_F_DUMP, NDMSG.pack(0, 0, 0, 0, 0)):
            family, ifindex, state, _flags, _type = NDMSG.unpack_from(body)
            if kind != RTM_NEWNEIGH or family not in (socket.AF_INET, socket.AF_INET6) or state & NUD_NOARP:
                continue
            if index and ifindex != index:
                continue
            vals = dict(_attrs(body, NDMSG.size))
            if NDA_DST not in vals:
                continue
            mac = vals.get(NDA_LLADDR)
            out.append(Neighbour(ifindex, socket.inet_ntop(family, vals[NDA_DST]), nud_name(state),
                                 ":".join(f"{b:02x}" for b in mac) if mac else None))
        return out

    def fdb(self, index: int) -> list[FdbEntry]:
        """The bridge FDB entries of link ``index``."""
        from .host import FdbEntry  # a dataclass: ~0.8 ms a bridge ADD does not pay

        out = []
        for kind, body in self.request(RTM_GETNEIGH, NLM_F_DUMP, NDMSG.pack(socket.AF_BRIDGE, 0, 0, 0, 0)):
            _family, ifindex, _state, _flags, _type = NDMSG.unpack_from(body)
            if kind != RTM_NEWNEIGH or ifindex != index:
                continue
            vals = dict(_attrs(body, NDMSG.size))
            dst = vals.get(NDA_DST)
            out.append(FdbEntry(ifindex, ":".join(f"{b:02x}" for b in vals.get(NDA_LLADDR, b"")),
                                socket.inet_ntop(socket.AF_INET6 if len(dst) == 16 else socket.AF_INET, dst)
                                if dst else None))
        return out

    def _fdb(self, msg_type: int, flags: int, index: int, mac: str, dst: str, state: int) -> None:
        body = (NDMSG.pack(socket.AF_BRIDGE, index, state, NTF_SELF, 0) + _mac(NDA_LLADDR, mac)
                + _attr(NDA_DST, ipaddress.ip_address(dst).packed))
        self.request(msg_type, NLM_F_ACK | flags, body)

    def replace_fdb(self, index: int, mac: str, dst: str) -> None:
        """``bridge fdb replace MAC dev DEV dst DST self permanent``."""
        self._fdb(RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE, index, mac, dst, NUD_PERMANENT)

    def del_fdb(self, index: int, mac: str, dst: str) -> None:
        """``bridge fdb del MAC dev DEV dst DST self``."""
        self._fdb(RTM_DELNEIGH, 0, index, mac, dst, 0)

    def _neigh(self, msg_type: int, flags: int, index: int, ip: str, mac: str, state: int) -> None:
        addr = ipaddress.ip_address(ip)
        family = socket.AF_INET6 if addr.version == 6 else socket.AF_INET
        body = NDMSG.pack(family, index, state, 0, 0) + _attr(NDA_DST, addr.packed)
        if mac:
            body += _mac(NDA_LLADDR, mac)
        self.request(msg_type, NLM_F_ACK | flags, body)

    def replace_neigh(self, index: int, ip: str, mac: str) -> None:
        """``ip neigh replace IP lladdr MAC dev DEV nud permanent``."""
        self._neigh(RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE, index, ip, mac, NUD_PERMANENT)

    def del_neigh(self, index: int, ip: str) -> None:
        """``ip neigh del IP dev DEV``."""
        self._neigh(RTM_DELNEIGH, 0, index, ip, "", 0)

    def route_destinations(self) -> set[str]:
        """Destinations (as normalised networks) of the routes in ``table``."""
        out = set()
        for kind, body in self.request(RTM_GETROUTE, NLM_F_DUMP, RTMSG.pack(0, 0, 0, 0, 0, 0, 0, 0, 0)):
            if kind != RTM_NEWROUTE:
                continue
            family, dst_len, _s, _t, rtable, *_rest = RTMSG.unpack_from(body)
            vals = dict(_attrs(body, RTMSG.size))
            if RTA_TABLE in vals:
                rtable = struct.unpack("=I", vals[RTA_TABLE][:4])[0]
            if rtable != RT_TABLE_MAIN:
                continue
            dst = socket.inet_ntop(family, vals[RTA_DST]) if RTA_DST in vals else (
                "::" if family == socket.AF_INET6 else "0.0.0.0")
            out.add(str(ipaddress.ip_network(f"{dst}/{dst_len}", strict=False)))
        return out




if TYPE_CHECKING:  # mypy checks the class against the Protocol
    from .host import PluginNetlink

    _check: PluginNetlink = Rtnl()
