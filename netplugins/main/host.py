"""The ``host`` plugin (the host mode): the container shares the namespace the plugin runs in.

The reference skeleton refuses a CNI_NETNS equal to the plugin's own namespace (error 8
unless CNI_NETNS_OVERRIDE); here that is the point. Nothing is changed; the result lists
the host's interfaces and addresses so that a runtime can report them.
"""

from __future__ import annotations

import os

from ..cni import errors
from ..cni.errors import CniError
from ..cni.netconf import load_netconf
from ..cni.skel import CmdArgs, PluginFuncs
from ..cni.skel import main as skel_main
from ..cni.types import Interface, IPConfig, Result
from ..nl.netns import NetnsGone, is_own_netns, open_netns


def _require_own_netns(netns: str) -> None:
    """Raises: CniError 104 unless ``netns`` is the namespace this plugin runs in."""
    try:
        os.close(open_netns(netns))
    except NetnsGone:
        raise CniError(errors.INVALID_NETNS, f"failed to open netns {netns!r}: no such file") from None
    if not is_own_netns(netns):
        raise CniError(errors.INVALID_NETNS,
                       f"netns {netns!r} is not the host namespace",
                       "the host plugin only accepts the namespace it runs in")


def host_result() -> Result:
    """The current namespace's interfaces and their non-link-local addresses."""
    # lazy: plugin start-up (docs/plugin-speed.md); only this command needs it
    from ..nl.links import list_links

    links = list_links()
    ifaces = []
    ips = []
    for link in links:
        ifaces.append(Interface(name=link.name, mac=link.mac, mtu=link.mtu))
        for addr in link.addresses:
            if addr.lower().startswith("fe80:"):
                continue
            ips.append(IPConfig(address=addr, interface=len(ifaces) - 1))
    return Result(interfaces=tuple(ifaces), ips=tuple(ips))


def cmd_add(args: CmdArgs) -> Result:
    """Verify CNI_NETNS is our own namespace and report the host's interfaces.

    Raises:
        CniError: 104 when CNI_NETNS is another namespace.
    """
    load_netconf(args.stdin)
    _require_own_netns(args.netns)
    return host_result()


def cmd_del(args: CmdArgs) -> None:
    """Nothing was changed, so nothing is undone."""
    load_netconf(args.stdin)


def cmd_check(args: CmdArgs) -> None:
    """Raises: CniError 104 when CNI_NETNS is not (any more) the host namespace."""
    load_netconf(args.stdin)
    _require_own_netns(args.netns)


FUNCS = PluginFuncs(add=cmd_add, delete=cmd_del, check=cmd_check,
                    about="netctl host plugin (the host mode)")


def main() -> None:
    skel_main(FUNCS)


if __name__ == "__main__":
    main()
