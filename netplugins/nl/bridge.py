"""Kernel side of the bridge plugin: bridges, veth pairs, addresses, routes.

Thin and idempotent: ``ensure_*`` creates or accepts what exists; deletes tolerate absence.
Every function takes an open :class:`netplugins.nl.host.PluginNetlink` for the namespace it
acts in (the plugins pass :class:`Rtnl`, chosen here; tests run them on both implementations).
Requests are kept few: links are read by name, created with their final name, MAC, master
and state in one request, and deleted by name.
"""

from __future__ import annotations

# the C module: socket.py builds enums of every constant (~2 ms per plugin process)
import _socket as socket
import errno
import ipaddress

from ..cni import errors
from ..cni.errors import CniError
from . import sysctl

# the plugins' PluginNetlink: rtnl; pyroute2 makes the agent's ADD 0.97x -> 1.39x the reference (bench/README.md)
from .rtnl import Rtnl  # noqa: F401 - re-exported: the selection point
from .types import IFF_PROMISC, IFF_UP, RT_SCOPE_UNIVERSE, Link, NetlinkError  # noqa: F401 - re-exported

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs every plugin process ~3 ms; annotations are strings here
    from .host import PluginNetlink



def _log_info(msg: str, *args: object) -> None:
    """Log at INFO, importing logging only then (~4 ms that a plugin call otherwise skips)."""
    # lazy: logging ~4 ms a plugin process; only a warning needs it
    import logging

    logging.getLogger(__name__).info(msg, *args)

#: the most ports a Linux bridge takes: BR_MAX_PORTS is 1024 port numbers and number 0 is
#: reserved (net/bridge/br_if.c find_portno); the next one fails with EXFULL ("exchange
#: full", the bare error Docker users hit, moby#34098). A test fills a bridge to check it.
BRIDGE_MAX_PORTS = 1023
#: the ports are counted only once the network's own attachments come this close to the
#: limit: the count is a netlink dump of every port (~20 ms at 1000 ports), which would
#: make each ADD slower as the network grows. Ports made by others beyond this margin are
#: still refused cleanly, by the kernel (EXFULL, see create_veth).
COUNT_MARGIN = 64

# --- cheap reads of the current namespace (ioctls) ----------------------------------------

def iface_index(name: str) -> int | None:
    """Index of interface ``name`` in the current namespace, or None (an ioctl)."""
    try:
        return socket.if_nametoindex(name)
    except OSError:
        return None


# --- the plugin's operations --------------------------------------------------------------

def get_link(nl: PluginNetlink, name: str) -> Link | None:
    """The link called ``name``, or None.

    Raises:
        CniError: 101 when netlink fails for another reason than absence.
    """
    try:
        return nl.get_link(name)
    except NetlinkError as exc:
        raise CniError(errors.NETLINK_FAILURE, f"failed to read link {name!r}", str(exc)) from None


def _no_router_ads(name: str) -> None:
    """accept_ra=0 on a host-side link: it must never configure itself from a container's RAs."""
    if sysctl.read(f"net/ipv6/conf/{name}/accept_ra") not in (None, "0"):
        sysctl.write(f"net/ipv6/conf/{name}/accept_ra", "0")


#: the alias (IFLA_IFALIAS) of a bridge netctl created: ``netctl net=<network>``
BRIDGE_MARK_PREFIX = "netctl net="


def bridge_mark(network: str) -> str:
    """The alias that marks the bridge of ``network`` as created by netctl (``ip link``
    shows it); netctl deletes only bridges that carry their network's mark."""
    return BRIDGE_MARK_PREFIX + network


def ensure_bridge(nl: PluginNetlink, name: str, mtu: int, promisc: bool, new_mac: str,
                  mark: str = "") -> tuple[int, str]:
    """Create bridge ``name`` if missing (safe when many ADDs race), set it up; return
    its (index, MAC). A bridge this call creates gets ``mark`` as its alias; an existing
    one (another ADD's, or the host's: adopted) is left unmarked.

    A new bridge is created up and with ``new_mac``: a bridge whose MAC was never set takes
    on the lowest MAC of its ports and changes as containers come and go (their ARP caches
    then point nowhere). An existing bridge gets its current MAC pinned, as the reference does.

    Raises:
        CniError: 7 when ``name`` exists and is not a bridge, 101 when netlink refuses.
    """
    flags = IFF_UP | (IFF_PROMISC if promisc else 0)
    link = get_link(nl, name)
    created = False
    if link is None:
        try:
            nl.add_bridge(name, new_mac, mtu, flags)
            created = True
        except NetlinkError as exc:  # EEXIST = another ADD won the race
            if exc.code != errno.EEXIST:
                raise CniError(errors.NETLINK_FAILURE, f"could not add bridge {name!r}", str(exc)) from None
        link = get_link(nl, name)
        if link is None:
            raise CniError(errors.NETLINK_FAILURE, f"bridge {name!r} vanished while being set up")
        if created and mark:
            try:
                nl.set_alias(link.index, mark)
            except NetlinkError as exc:
                # unmarked, it would later be kept as if adopted: fail while nothing uses it
                _quiet_delete(nl, name)
                raise CniError(errors.NETLINK_FAILURE, f"could not mark bridge {name!r}", str(exc)) from None
    if link.kind != "bridge":
        raise CniError(errors.INVALID_CONFIG, f"{name!r} already exists but is not a bridge",
                       f"it is a {link.kind or 'device'} link; choose another bridge name")
    if not created:
        try:
            nl.set_link(link.index, flags=flags, change=flags, mac=link.mac)
        except NetlinkError as exc:
            raise CniError(errors.NETLINK_FAILURE, f"could not set bridge {name!r} up", str(exc)) from None
    _no_router_ads(name)
    return link.index, link.mac


def ensure_gateway(nl: PluginNetlink, bridge: str, index: int, cidr: str, force: bool) -> None:
    """Put ``cidr`` on the bridge; refuse a different address of that family unless ``force``.

    Raises:
        CniError: 7 when the bridge carries another address and ``force`` is off, 101 netlink.
    """
    want = ipaddress.ip_interface(cidr)
    present = False
    try:
        have_all = [a.cidr for a in nl.addresses(index) if a.scope == RT_SCOPE_UNIVERSE]
    except NetlinkError as exc:
        raise CniError(errors.NETLINK_FAILURE, f"failed to read the addresses of {bridge!r}", str(exc)) from None
    for have_text in have_all:
        have = ipaddress.ip_interface(have_text)
        if have == want:
            present = True
            continue
        if have.version != want.version:
            continue
        if want.version == 6 and not (have.network.overlaps(want.network)):
            continue  # v6 bridges legitimately carry several prefixes
        if not force:
            raise CniError(errors.INVALID_CONFIG,
                           f"{bridge!r} already has an IP address different from {cidr}",
                           f"it has {have_text}; set forceAddress to replace it")
        try:
            nl.del_addr(index, have_text)
        except NetlinkError as exc:  # EADDRNOTAVAIL: a concurrent ADD removed it
            if exc.code != errno.EADDRNOTAVAIL:
                raise CniError(errors.NETLINK_FAILURE, f"failed to remove {have_text} from {bridge!r}",
                               str(exc)) from None
    if present:
        return
    try:
        # no duplicate address detection for IPv6: the gateway address is ours, and DAD
        # would leave it "tentative" (unusable) for a second after the ADD returned
        nl.add_addr(index, cidr, nodad=want.version == 6)
    except NetlinkError as exc:  # EEXIST: concurrent ADDs (containerd#3507)
        if exc.code != errno.EEXIST:
            raise CniError(errors.NETLINK_FAILURE, f"failed to set bridge address {cidr}", str(exc)) from None


def _bridge_full(bridge: str) -> CniError:
    return CniError(errors.NETLINK_FAILURE,
                    f"bridge {bridge!r} is full: a Linux bridge holds at most {BRIDGE_MAX_PORTS} ports",
                    "put further containers on another network (another bridge)")


def ensure_bridge_room(nl: PluginNetlink, bridge: str, index: int, attachments: int) -> None:
    """Refuse an attachment the bridge has no port for, before anything is made for it.

    ``attachments`` is how many containers the network records on this bridge: below
    ``BRIDGE_MAX_PORTS - COUNT_MARGIN`` the ports are not counted.

    Raises:
        CniError: 101 naming the limit, or when the ports cannot be counted.
    """
    if attachments < BRIDGE_MAX_PORTS - COUNT_MARGIN:
        return
    try:
        ports = nl.count_ports(index)
    except NetlinkError as exc:
        raise CniError(errors.NETLINK_FAILURE, f"failed to count the ports of bridge {bridge!r}",
                       str(exc)) from None
    if ports >= BRIDGE_MAX_PORTS:
        raise _bridge_full(bridge)


def create_veth(nl: PluginNetlink, host_name: str, host_mac: str, peer_name: str, peer_mac: str,
                container_fd: int, mtu: int, master: int, bridge: str = "") -> None:
    """Create the pair in one request: the host end enslaved to bridge ``master`` and up, the
    peer created directly in the container namespace under its final name (names are per
    namespace, so it cannot clash with a host interface) and left down.

    A leftover host end of the same name (a crashed earlier ADD of this attachment) is ours
    by construction of the name: it is removed and the pair created again.

    Raises:
        CniError: 106 when ``peer_name`` exists in the container, 101 when netlink refuses.
    """
    for attempt in (1, 2):
        try:
            nl.add_veth(host_name, host_mac, mtu, master, peer_name, peer_mac, container_fd)
            return
        except NetlinkError as exc:
            if exc.code == errno.EEXIST and attempt == 1 and delete_link(nl, host_name):
                _log_info("removed leftover host veth %s of an earlier ADD", host_name)
                continue
            if exc.code == errno.EEXIST:
                raise CniError(errors.IFACE_EXISTS,
                               f"interface {peer_name!r} already exists in the container") from None
            if exc.code == errno.EXFULL:
                # another ADD took the last port after our count: the kernel created
                # nothing (a new link whose master cannot be set is unregistered again)
                raise _bridge_full(bridge or f"index {master}") from None
            raise CniError(errors.NETLINK_FAILURE, f"failed to create veth pair {host_name}",
                           str(exc)) from None


def setup_host_port(nl: PluginNetlink, host_name: str, hairpin: bool, isolated: bool) -> None:
    """Bridge port options of the host end, and no router advertisements on it.

    Raises:
        CniError: 101 when netlink refuses.
    """
    if hairpin or isolated:
        index = iface_index(host_name)
        if index is None:
            raise CniError(errors.NETLINK_FAILURE, f"host veth {host_name!r} is missing")
        try:
            # IFLA_BRPORT_MODE is hairpin; IFLA_BRPORT_ISOLATED keeps isolated ports from
            # talking to each other while they still reach the bridge (gateway, host): icc=false
            nl.set_brport(index, hairpin, isolated)
        except NetlinkError as exc:
            raise CniError(errors.NETLINK_FAILURE, f"failed to set the bridge port options of {host_name}",
                           str(exc)) from None
    _no_router_ads(host_name)


def _quiet_delete(nl: PluginNetlink, name: str) -> None:
    try:
        nl.del_link(name)
    except NetlinkError:
        pass


def delete_link(nl: PluginNetlink, name: str) -> bool:
    """Delete link ``name`` (one request, by name); True if it existed. Absence is success.

    Deleting one end of a veth pair deletes the other end too, wherever it is.

    Raises:
        CniError: 101 when netlink refuses for another reason than absence.
    """
    try:
        nl.del_link(name)
    except NetlinkError as exc:
        if exc.code in (errno.ENODEV, errno.ENOENT):
            return False
        raise CniError(errors.NETLINK_FAILURE, f"failed to delete {name}", str(exc)) from None
    return True


def enable_ipv6(ifname: str) -> None:
    """IPv6 on a container interface without DAD (call it inside the container's namespace:
    these settings have no netlink equivalent).

    Raises:
        CniError: 101 when the sysctls cannot be written.
    """
    try:
        sysctl.write(f"net/ipv6/conf/{ifname}/disable_ipv6", "0")
        sysctl.write(f"net/ipv6/conf/{ifname}/accept_dad", "0")
    except OSError as exc:
        raise CniError(errors.NETLINK_FAILURE, f"failed to enable IPv6 on {ifname}", str(exc)) from None


def configure_container_iface(nl: PluginNetlink, ifname: str, ips: list[tuple[str, str | None]],
                              routes: list[tuple[str, str | None]]) -> int:
    """The container end, through a socket in the container's namespace: arp_notify,
    addresses, up, routes. Returns the link's MTU.

    ``ips`` are (cidr, gateway); ``routes`` are (dst, next hop or None).

    Raises:
        CniError: 101 when netlink refuses (message names the step).
    """
    step = "read"
    try:
        link = nl.get_link(ifname)
        if link is None:
            raise CniError(errors.NETLINK_FAILURE, f"container end {ifname!r} is missing")
        step = "arp_notify"
        # gratuitous ARP when the link comes up: a reused IP gets a new MAC (moby#36069);
        # so it is set first, and the link goes up after its addresses
        nl.set_arp_notify(link.index)
        for cidr, _ in ips:
            step = f"address {cidr}"
            nl.add_addr(link.index, cidr)
        step = "up"
        nl.set_link(link.index, flags=IFF_UP, change=IFF_UP)
        for dst, gw in routes:
            step = f"route {dst}"
            try:
                nl.add_route(dst, gw, link.index)
            except NetlinkError as exc:
                # a container on several networks has one default route: the first network's
                # (Docker's default gateway priority); a later network's identical dst is kept
                if exc.code != errno.EEXIST:
                    raise
                _log_info("route to %s already exists in the container: keeping it", dst)
    except (OSError, ValueError) as exc:
        raise CniError(errors.NETLINK_FAILURE, f"failed to configure {ifname} ({step})", str(exc)) from None
    return link.mtu
