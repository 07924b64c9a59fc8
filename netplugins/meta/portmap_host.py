"""What the portmap plugin reads from and changes on the host, as one small interface.

Every command of ``portmap.py`` takes a ``host`` (default: ``portmap.SYSTEM``, the real
one); unit tests pass a recording fake instead, so no test reaches the kernel and no
test replaces module functions. Only types live here: the plugin imports this module for
type checking alone, so it costs its hot path nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from ..firewall.driver import PortDriver
    from ..firewall.ports import Forward
    from .hostsockets import HostSocket


@runtime_checkable
class PortmapHost(Protocol):
    """The host side of portmap, in the current network namespace."""

    def port_driver(self, name: str | None) -> PortDriver:
        """The published-ports driver ``name`` (None: detect, as the bridge does).

        Raises:
            FirewallError: unknown name or nothing to detect.
        """
        ...

    def all_port_drivers(self) -> list[PortDriver]:
        """Both real port drivers (teardown and GC: an earlier ADD may have used either)."""
        ...

    def host_sockets(self, protocols: set[str]) -> list[HostSocket]:
        """The port-taking sockets of ``protocols`` (``/proc/net``)."""
        ...

    def socket_owner(self, inode: int) -> str:
        """``name (pid N)`` of the process holding socket ``inode``, or ""."""
        ...

    def is_local_address(self, address: str) -> bool:
        """Whether ``address`` belongs to this namespace."""
        ...

    def route_dev(self, address: str) -> str | None:
        """The interface the main table routes ``address`` through, or None."""
        ...

    def enable_localnet(self, state_dir: str, network: str, dev: str) -> None:
        """route_localnet on for ``dev``, remembered for ``network`` under ``state_dir``.

        Raises:
            OSError: the sysctl or its marker cannot be written.
        """
        ...

    def restore_localnet(self, state_dir: str, network: str) -> None:
        """route_localnet off again where :meth:`enable_localnet` turned it on.

        Raises:
            OSError: the sysctl cannot be written.
        """
        ...

    def localnet_enabled(self, dev: str) -> bool:
        """Whether route_localnet is on for ``dev``."""
        ...

    def flush_udp(self, forwards: Iterable[Forward]) -> int:
        """Delete conntrack entries that would bypass new UDP forwards; how many."""
        ...
