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

LOOPBACK_MAC = "00:00:00:00:00:00"


def _is_loopback(cidr: str) -> bool:
    ip = cidr.split("/", 1)[0]
    return ip == "::1" or ip.startswith("127.")


def _lo_addresses() -> list[str]:
    from ..nl.ioctl import ipv4_addresses, ipv6_addresses

    return ipv4_addresses("lo") + ipv6_addresses("lo")


def cmd_add(args: CmdArgs) -> Result:
    """Set ``lo`` up; return it with its addresses (or prevResult unchanged).

    Raises:
        CniError: 104 for a bad namespace, 101 when ``lo`` carries a non-loopback address.
    """
    conf = load_netconf(args.stdin)
    from ..nl.ioctl import set_up

    try:
        with entered(args.netns):
            bad = [a for a in _lo_addresses() if not _is_loopback(a)]
            if bad:
                raise CniError(errors.NETLINK_FAILURE,
                               f"loopback interface found with non-loopback address {bad[0]!r}")
            try:
                set_up("lo")
            except OSError as exc:
                raise CniError(errors.NETLINK_FAILURE, "failed to set lo up", str(exc)) from None
            # the kernel adds 127.0.0.1/8 and ::1 when lo comes up: read them after
            addresses = _lo_addresses()
    except NetnsGone:
        raise CniError(errors.INVALID_NETNS, f"failed to open netns {args.netns!r}: no such file") from None
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
    from ..nl.ioctl import set_up

    try:
        with entered(args.netns):
            try:
                set_up("lo", False)
            except OSError as exc:
                raise CniError(errors.NETLINK_FAILURE, "failed to set lo down", str(exc)) from None
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
    from ..nl.ioctl import IFF_UP, get_flags

    try:
        with entered(args.netns):
            up = bool(get_flags("lo") & IFF_UP)
    except NetnsGone:
        raise CniError(errors.INVALID_NETNS, f"failed to open netns {args.netns!r}: no such file") from None
    if not up:
        raise CniError(errors.NETLINK_FAILURE, "loopback interface is down")


FUNCS = PluginFuncs(add=cmd_add, delete=cmd_del, check=cmd_check,
                    about="netctl loopback plugin (the none mode)")


def main() -> None:
    skel_main(FUNCS)


if __name__ == "__main__":
    main()
