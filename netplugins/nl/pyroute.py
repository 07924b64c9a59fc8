"""The netlink boundary implemented with pyroute2 (:class:`netplugins.nl.host.HostNetlink`).

Imported only where pyroute2 is wanted anyway (doctor, graph, netctl, the overlay, the
agent's workers): it imports pyroute2 (~170 ms in a fresh process).
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from pyroute2 import IPRoute
from pyroute2.netlink import NLA_F_NESTED, NLM_F_ACK, NLM_F_REQUEST, nla, nlmsg
from pyroute2.netlink.exceptions import NetlinkError as Pyroute2Error
from pyroute2.netlink.rtnl import RTM_SETLINK
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

from ..cni.errors import CniError
from .host import FdbEntry, Neighbour, Route
from .netns import NetnsGone, entered
from .types import PORT_STATES, RT_SCOPE_LINK, RT_SCOPE_UNIVERSE, Addr, Link, NetlinkError, nud_name

T = TypeVar("T")

IFA_F_NODAD = 0x02
NTF_SELF = 0x02
NUD_PERMANENT, NUD_NOARP = 0x80, 0x40
#: rtm_type values (linux/rtnetlink.h RTN_*) as iproute2 names them
RTN_NAMES = {1: "unicast", 2: "local", 3: "broadcast", 4: "anycast", 5: "multicast",
             6: "blackhole", 7: "unreachable", 8: "prohibit", 9: "throw", 10: "nat"}
RT_TABLE_MAIN, RTPROT_STATIC = 254, 4


def _call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a pyroute2 call; its NetlinkError becomes ours (callers never import pyroute2)."""
    try:
        return fn(*args, **kwargs)
    except Pyroute2Error as exc:
        raise NetlinkError(exc.code) from None


def _open_in(netns: str) -> IPRoute:
    """An IPRoute whose socket lives in the namespace at path ``netns``.

    Why setns around the socket's creation, not ``IPRoute(netns=...)`` or nsenter: a netlink
    socket stays bound to the namespace it was created in, so entering only for its
    creation is enough. setns(CLONE_NEWNET) changes the calling thread only, so other
    threads (doctor's trace monitor) are unaffected, and nothing is forked: pyroute2's
    ``netns=`` forks a multiprocessing child per socket (~14 ms against ~1.4 ms here) and,
    with its default ``flags=O_CREAT``, would create a namespace that has gone missing.

    Raises:
        NetlinkError: ENOENT (no such path), EINVAL (not a network namespace, or setns
            refused: the message says which).
    """
    try:
        with entered(netns):  # the plugins' own enter-and-return (netns.py)
            return IPRoute()
    except NetnsGone:
        raise NetlinkError(errno.ENOENT, f"no network namespace at {netns}") from None
    except CniError as exc:  # not a namespace, or setns refused
        raise NetlinkError(errno.EINVAL, f"{netns}: {exc.msg} {exc.details}".strip()) from None


def _link(msg: Any) -> Link:
    info = msg.get_attr("IFLA_LINKINFO")
    kind, isolated, state = "", None, None
    if info is not None:
        kind = info.get_attr("IFLA_INFO_KIND") or ""
        if info.get_attr("IFLA_INFO_SLAVE_KIND") == "bridge":
            data = info.get_attr("IFLA_INFO_SLAVE_DATA")
            if data is not None:
                iso = data.get_attr("IFLA_BRPORT_ISOLATED")
                isolated = bool(iso) if iso is not None else False
                st = data.get_attr("IFLA_BRPORT_STATE")
                state = PORT_STATES[st] if isinstance(st, int) and st < len(PORT_STATES) else None
    return Link(index=msg["index"], name=msg.get_attr("IFLA_IFNAME") or "", flags=msg["flags"],
                mac=msg.get_attr("IFLA_ADDRESS") or "", mtu=int(msg.get_attr("IFLA_MTU") or 0),
                kind=kind, master=int(msg.get_attr("IFLA_MASTER") or 0),
                peer=int(msg.get_attr("IFLA_LINK") or 0), alias=msg.get_attr("IFLA_IFALIAS") or "",
                isolated=isolated, port_state=state)


def _route(msg: Any, dst: str | None = None) -> Route:
    if dst is None:
        raw = msg.get_attr("RTA_DST")
        dst = f"{raw}/{msg['dst_len']}" if raw and msg["dst_len"] else "default"
    return Route(dst=dst, oif=int(msg.get_attr("RTA_OIF") or 0), gateway=msg.get_attr("RTA_GATEWAY"),
                 type=RTN_NAMES.get(msg["type"], str(msg["type"])), prefsrc=msg.get_attr("RTA_PREFSRC"),
                 family=msg["family"])


class _InetConfMsg(nlmsg):
    """RTM_SETLINK carrying IPv4 per-link settings as the kernel parses them on a change
    (linux/if_link.h: IFLA_AF_SPEC > AF_INET > IFLA_INET_CONF > IPV4_DEVCONF_*). Not a
    subclass of pyroute2's ifinfmsg: pyroute2 caches the compiled attribute map on the
    class, and a subclass would inherit ifinfmsg's once that is in use."""

    fields = ifinfmsg.fields
    nla_map = ((26, "IFLA_AF_SPEC", "af_spec"),)

    class af_spec(nla):  # noqa: N801 - pyroute2 resolves nested types by these names
        nla_flags = NLA_F_NESTED
        nla_map = ((socket.AF_INET, "AF_INET", "af_inet"),)

        class af_inet(nla):  # noqa: N801
            nla_flags = NLA_F_NESTED
            nla_map = ((1, "IFLA_INET_CONF", "conf"),)

            class conf(nla):  # noqa: N801
                nla_flags = NLA_F_NESTED
                nla_map = ((22, "IPV4_DEVCONF_ARP_NOTIFY", "uint32"),)


def open_host(netns: str | None = None) -> Pyroute:
    """A netlink socket in the current namespace, or in the one at path ``netns``.

    Raises:
        NetlinkError: ENOENT when ``netns`` does not exist, EINVAL when it is not a network
            namespace, or the errno of entering it.
    """
    return Pyroute(netns)


class Pyroute:
    """A pyroute2 IPRoute in the current namespace, or in the one at path ``netns``."""

    def __init__(self, netns: str | None = None) -> None:
        self.ipr = _open_in(netns) if netns else IPRoute()

    def close(self) -> None:
        self.ipr.close()

    def __enter__(self) -> Pyroute:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- links ----------------------------------------------------------------------------

    def get_link(self, name: str) -> Link | None:
        try:
            msgs = _call(self.ipr.link, "get", ifname=name)
        except NetlinkError as exc:
            if exc.code in (errno.ENODEV, errno.ENOENT):
                return None
            raise
        return _link(msgs[0]) if msgs else None

    def links(self) -> list[Link]:
        return sorted((_link(m) for m in _call(self.ipr.get_links)), key=lambda lk: lk.index)

    def count_ports(self, master: int) -> int:
        return sum(1 for m in _call(self.ipr.get_links) if m.get_attr("IFLA_MASTER") == master)

    def add_bridge(self, name: str, mac: str, mtu: int, flags: int) -> None:
        extra = {"mtu": mtu} if mtu else {}
        _call(self.ipr.link, "add", ifname=name, kind="bridge", address=mac, flags=flags,
              change=flags, **extra)

    def add_veth(self, name: str, mac: str, mtu: int, master: int, peer_name: str,
                 peer_mac: str, peer_netns_fd: int) -> None:
        peer: dict[str, Any] = {"ifname": peer_name, "address": peer_mac, "net_ns_fd": peer_netns_fd}
        extra: dict[str, Any] = {}
        if mtu:
            peer["mtu"] = extra["mtu"] = mtu
        _call(self.ipr.link, "add", ifname=name, kind="veth", address=mac, master=master,
              flags=1, change=1, peer=peer, **extra)

    def add_vxlan(self, name: str, vni: int, local: str, port: int) -> None:
        _call(self.ipr.link, "add", ifname=name, kind="vxlan", vxlan_id=vni, vxlan_local=local,
              vxlan_port=port, vxlan_learning=0, vxlan_proxy=1)

    def set_link(self, index: int, *, flags: int = 0, change: int = 0, mac: str = "",
                 mtu: int = 0, master: int = 0) -> None:
        attrs: dict[str, Any] = {}
        if change:
            attrs.update(flags=flags, change=change)
        if mac:
            attrs["address"] = mac
        if mtu:
            attrs["mtu"] = mtu
        if master:
            attrs["master"] = master
        _call(self.ipr.link, "set", index=index, **attrs)

    def _request(self, msg: Any, msg_type: int) -> None:
        """Send one request built by hand and wait for its ACK (IPRoute.nlm_request of 0.9.7
        fails in its sync wrapper, so the async core is driven directly)."""
        core = self.ipr.asyncore

        async def send() -> list[Any]:
            resp = await core.nlm_request(msg, msg_type, NLM_F_REQUEST | NLM_F_ACK)
            return [m async for m in resp]

        _call(core.event_loop.run_until_complete, send())

    def set_alias(self, index: int, alias: str) -> None:
        _call(self.ipr.link, "set", index=index, IFLA_IFALIAS=alias)

    def set_arp_notify(self, index: int) -> None:
        # NOTE: pyroute2 0.9.7 encodes AF_INET's IFLA_INET_CONF as the array a dump returns
        # (the kernel acks it and changes nothing); a change wants nested (IPV4_DEVCONF_*,
        # u32) attributes, so the request is built from its own message class
        msg = _InetConfMsg()
        msg["index"] = index
        msg["attrs"] = [["IFLA_AF_SPEC", {"attrs": [["AF_INET", {"attrs": [
            ["IFLA_INET_CONF", {"attrs": [["IPV4_DEVCONF_ARP_NOTIFY", 1]]}]]}]]}]]
        self._request(msg, RTM_SETLINK)

    def set_brport(self, index: int, hairpin: bool, isolated: bool) -> None:
        _call(self.ipr.brport, "set", index=index, mode=int(hairpin), isolated=int(isolated))

    def del_link(self, name: str) -> None:
        _call(self.ipr.link, "del", ifname=name)

    # --- addresses and routes -------------------------------------------------------------

    def addresses(self, index: int = 0) -> list[Addr]:
        msgs = _call(self.ipr.get_addr, index=index) if index else _call(self.ipr.get_addr)
        out = []
        for m in msgs:
            addr = m.get_attr("IFA_ADDRESS") or m.get_attr("IFA_LOCAL")
            if addr:
                out.append(Addr(m["index"], f"{addr}/{m['prefixlen']}", m["scope"]))
        return out

    def add_addr(self, index: int, cidr: str, nodad: bool = False) -> None:
        iface = ipaddress.ip_interface(cidr)
        extra: dict[str, Any] = {"flags": IFA_F_NODAD} if nodad else {}
        if iface.version == 4 and iface.network.prefixlen < 31:
            extra["broadcast"] = str(iface.network.broadcast_address)
        _call(self.ipr.addr, "add", index=index, address=str(iface.ip),
              prefixlen=iface.network.prefixlen, **extra)

    def del_addr(self, index: int, cidr: str) -> None:
        iface = ipaddress.ip_interface(cidr)
        _call(self.ipr.addr, "del", index=index, address=str(iface.ip), prefixlen=iface.network.prefixlen)

    def add_route(self, dst: str, gateway: str | None, oif: int) -> None:
        net = ipaddress.ip_network(dst, strict=False)
        spec: dict[str, Any] = {"family": socket.AF_INET6 if net.version == 6 else socket.AF_INET,
                                "dst_len": net.prefixlen, "oif": oif, "table": RT_TABLE_MAIN,
                                "proto": RTPROT_STATIC, "type": 1,
                                "scope": RT_SCOPE_UNIVERSE if gateway else RT_SCOPE_LINK}
        if net.prefixlen:
            spec["dst"] = str(net.network_address)
        if gateway:
            spec["gateway"] = gateway
        _call(self.ipr.route, "add", **spec)

    def routes(self) -> list[Route]:
        return [_route(m) for m in _call(self.ipr.get_routes, table=RT_TABLE_MAIN)]

    def route_destinations(self) -> set[str]:
        out = set()
        for r in self.routes():
            if r.dst == "default":
                out.add("::/0" if r.family == socket.AF_INET6 else "0.0.0.0/0")
            else:
                out.add(str(ipaddress.ip_network(r.dst, strict=False)))
        return out

    def route_get(self, dst: str) -> Route:
        msgs = _call(self.ipr.route, "get", dst=dst)
        if not msgs:
            raise NetlinkError(errno.ENETUNREACH)
        return _route(msgs[0], dst=dst)

    # --- neighbours and FDB ---------------------------------------------------------------

    def neighbours(self, index: int = 0) -> list[Neighbour]:
        out = []
        for m in _call(self.ipr.get_neighbours):
            if m["family"] not in (socket.AF_INET, socket.AF_INET6) or m["state"] & NUD_NOARP:
                continue
            if index and m["ifindex"] != index:
                continue
            out.append(Neighbour(m["ifindex"], str(m.get_attr("NDA_DST")), nud_name(m["state"]),
                                 m.get_attr("NDA_LLADDR")))
        return out

    def fdb(self, index: int) -> list[FdbEntry]:
        return [FdbEntry(m["ifindex"], str(m.get_attr("NDA_LLADDR")), m.get_attr("NDA_DST"))
                for m in _call(self.ipr.fdb, "dump") if m["ifindex"] == index]

    def replace_fdb(self, index: int, mac: str, dst: str) -> None:
        _call(self.ipr.fdb, "replace", ifindex=index, lladdr=mac, dst=dst, state=NUD_PERMANENT,
              flags=NTF_SELF)

    def del_fdb(self, index: int, mac: str, dst: str) -> None:
        _call(self.ipr.fdb, "del", ifindex=index, lladdr=mac, dst=dst, flags=NTF_SELF)

    def replace_neigh(self, index: int, ip: str, mac: str) -> None:
        _call(self.ipr.neigh, "replace", ifindex=index, dst=ip, lladdr=mac, state=NUD_PERMANENT)

    def del_neigh(self, index: int, ip: str) -> None:
        _call(self.ipr.neigh, "del", ifindex=index, dst=ip)


if TYPE_CHECKING:  # mypy checks the class against the Protocol
    from .host import HostNetlink

    _check: HostNetlink = Pyroute()
