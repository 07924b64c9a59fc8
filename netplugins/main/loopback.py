"""The ``loopback`` plugin (the none mode): bring ``lo`` up in the container.

Reference-compatible (containernetworking/plugins plugins/main/loopback): same config,
same result shape, prevResult passed through, DEL a success when the namespace is gone.
This module is the template the other plugins copy: parse, cmd_add/cmd_del/cmd_check,
FUNCS, main().
"""

from __future__ import annotations

from ..cni import errors
from ..cni.errors import CniError
from ..cni.netconf import load_netconf
from ..cni.skel import CmdArgs, PluginFuncs
from ..cni.skel import main as skel_main
from ..cni.types import Interface, IPConfig, Result
from ..nl.netns import NetnsGone, entered

# the plugins' rtnetlink client (a netplugins.nl.host.PluginNetlink; why not pyroute2: nl/bridge.py)
from ..nl.rtnl import Rtnl
from ..nl.types import IFF_UP, Link, NetlinkError

LOOPBACK_MAC = "00:00:00:00:00:00"


def _is_loopback(cidr: str) -> bool:
    ip = cidr.split("/", 1)[0]
    return ip == "::1" or ip.startswith("127.")


def _open(netns: str) -> Rtnl:
    """The plugin's netlink socket in ``netns`` (it stays bound there once made).

    Raises:
        NetnsGone / CniError 104: as :func:`entered`.
    """
    with entered(netns):
        return Rtnl()


def _lo(nl: Rtnl) -> Link:
    """The namespace's ``lo``. Raises: CniError 101 when it is missing or unreadable."""
    try:
        link = nl.get_link("lo")
    except NetlinkError as exc:
        raise CniError(errors.NETLINK_FAILURE, "failed to read lo", str(exc)) from None
    if link is None:
        raise CniError(errors.NETLINK_FAILURE, "the namespace has no loopback interface")
    return link


def _set_lo(nl: Rtnl, index: int, up: bool) -> None:
    """Set ``lo`` (link ``index``) up or down. Raises: CniError 101."""
    try:
        nl.set_link(index, flags=IFF_UP if up else 0, change=IFF_UP)
    except NetlinkError as exc:
        raise CniError(errors.NETLINK_FAILURE, f"failed to set lo {'up' if up else 'down'}", str(exc)) from None


def _lo_addresses(nl: Rtnl, index: int) -> list[str]:
    """The addresses of ``lo`` (link ``index``). Raises: CniError 101."""
    try:
        return [a.cidr for a in nl.addresses(index)]
    except NetlinkError as exc:
        raise CniError(errors.NETLINK_FAILURE, "failed to read the addresses of lo", str(exc)) from None


def cmd_add(args: CmdArgs) -> Result:
    """Set ``lo`` up; return it with its addresses (or prevResult unchanged).

    Raises:
        CniError: 104 for a bad namespace, 101 when ``lo`` carries a non-loopback address.
    """
    conf = load_netconf(args.stdin)
    try:
        nl = _open(args.netns)
    except NetnsGone:
        raise CniError(errors.INVALID_NETNS, f"failed to open netns {args.netns!r}: no such file") from None
    with nl:
        index = _lo(nl).index
        bad = [a for a in _lo_addresses(nl, index) if not _is_loopback(a)]
        if bad:
            raise CniError(errors.NETLINK_FAILURE, f"loopback interface found with non-loopback address {bad[0]!r}")
        _set_lo(nl, index, True)
        # the kernel adds 127.0.0.1/8 and ::1 when lo comes up: read them after
        addresses = _lo_addresses(nl, index)
    if conf.prev_result is not None:
        return conf.prev_result
    v4 = [a for a in addresses if "." in a][:1]
    v6 = [a for a in addresses if ":" in a][:1]
    return Result(
        interfaces=(Interface(name="lo", mac=LOOPBACK_MAC, sandbox=args.netns),),
        ips=tuple(IPConfig(address=a, interface=0) for a in v4 + v6),
    )


def cmd_del(args: CmdArgs) -> None:
    """Set ``lo`` down; a missing or invalid namespace means there is nothing to undo."""
    load_netconf(args.stdin)
    if not args.netns:
        return
    try:
        with _open(args.netns) as nl:
            _set_lo(nl, _lo(nl).index, False)
    except NetnsGone:
        return
    except CniError as err:
        if err.code == errors.INVALID_NETNS:
            return
        raise


def cmd_check(args: CmdArgs) -> None:
    """``lo`` must be up.

    Raises:
        CniError: 104 for a bad namespace, 101 when ``lo`` is down.
    """
    load_netconf(args.stdin)
    try:
        nl = _open(args.netns)
    except NetnsGone:
        raise CniError(errors.INVALID_NETNS, f"failed to open netns {args.netns!r}: no such file") from None
    with nl:
        up = _lo(nl).up
    if not up:
        raise CniError(errors.NETLINK_FAILURE, "loopback interface is down")


FUNCS = PluginFuncs(add=cmd_add, delete=cmd_del, check=cmd_check,
                    about="netctl loopback plugin (the none mode)")


def main() -> None:
    skel_main(FUNCS)


if __name__ == "__main__":
    main()
