"""The firewall driver interface, the driver choice, and teardown on every backend.

Choice order: the ``name`` argument, then ``$NETCTL_FIREWALL_DRIVER``, then the host:
``iptables`` resolving to ``xtables-nft-multi`` means nftables, to
``xtables-legacy-multi`` (or an old non-nft build) means iptables; with no iptables at
all, nftables if ``nft`` is installed. Detection looks at files only (no process).
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from .errors import FirewallError
from .plan import NetworkPolicy, validate_network_name
from .which import which

if TYPE_CHECKING:
    from .ports import PortsPlan, Published

ENV_DRIVER = "NETCTL_FIREWALL_DRIVER"
DRIVER_NAMES = ("nftables", "iptables", "none")
#: CNI runtimes may pass a short PATH; the tools live in sbin on Debian


@runtime_checkable
class FirewallDriver(Protocol):
    """Per-network firewall rules. Every method acts on the current network namespace."""

    name: str

    def setup_network(self, policy: NetworkPolicy) -> None:
        """Install or replace the network's rules; idempotent; one atomic commit where possible.

        Raises:
            FirewallError: the backend refused the change (its message in ``details``).
        """
        ...

    def teardown_network(self, network: str) -> None:
        """Remove everything tagged for ``network``; absent is success.

        Raises:
            FirewallError: the backend refused the removal.
        """
        ...

    def check_network(self, policy: NetworkPolicy) -> list[str]:
        """Human-readable differences from the policy's rules; ``[]`` means in sync.

        Raises:
            FirewallError: the live rules cannot be read.
        """
        ...

    def list_networks(self) -> set[str]:
        """Names of networks that have rules (for GC).

        Raises:
            FirewallError: the live rules cannot be read.
        """
        ...


@runtime_checkable
class PortDriver(Protocol):
    """Published ports of attachments (portmap). Every method acts on the current namespace."""

    name: str

    def setup_ports(self, plan: PortsPlan) -> None:
        """Publish the plan's ports, replacing the attachment's earlier entries, atomically.

        Raises:
            PortConflict: another owner publishes one of the host ports (nothing changed).
            FirewallError: the backend refused the change.
        """
        ...

    def teardown_ports(self, tags: Collection[str]) -> int:
        """Remove every entry carrying one of ``tags``; how many were removed (absent is 0).

        Raises:
            FirewallError: the backend refused the removal.
        """
        ...

    def gc_ports(self, network: str, keep: Collection[str]) -> int:
        """Remove the entries of ``network`` whose tag is not in ``keep``; how many.

        Raises:
            FirewallError: the backend refused the removal.
        """
        ...

    def check_ports(self, plan: PortsPlan) -> list[str]:
        """Human-readable differences from the plan; ``[]`` means in sync.

        Raises:
            FirewallError: the live rules cannot be read.
        """
        ...

    def published(self) -> list[Published]:
        """Every published port in this backend, of every owner.

        Raises:
            FirewallError: the live rules cannot be read.
        """
        ...


def _which(cmd: str, search_path: str | None) -> str | None:
    return which(cmd, search_path)


def detect_driver_name(search_path: str | None = None) -> str:
    """The driver that suits this host: ``nftables`` or ``iptables``.

    ``search_path`` replaces ``$PATH`` plus the sbin directories (tests use it).

    Raises:
        FirewallError: neither iptables nor nft is installed.
    """
    ipt = _which("iptables", search_path)
    if ipt is not None:
        real = os.path.basename(os.path.realpath(ipt))
        if "nft" in real:
            return "nftables"
        if "legacy" in real or real in ("xtables-multi", "iptables", "iptables-multi"):
            return "iptables"
    if _which("nft", search_path) is not None:
        return "nftables"
    if ipt is not None:
        return "iptables"
    raise FirewallError(
        "no firewall backend found: neither iptables nor nft is installed"
        f" (set {ENV_DRIVER}=none to run without firewall rules)"
    )


def _chosen_name(name: str | None, environ: Mapping[str, str] | None) -> str:
    """``name``, else ``$NETCTL_FIREWALL_DRIVER`` of ``environ`` (default: ours), else detected.

    Raises:
        FirewallError: nothing to detect.
    """
    env = os.environ if environ is None else environ
    return (name or env.get(ENV_DRIVER, "").strip() or detect_driver_name()).lower()


def get_driver(
    name: str | None = None,
    *,
    lock_path: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> FirewallDriver:
    """The driver called ``name``, else ``$NETCTL_FIREWALL_DRIVER``, else the detected one.

    ``lock_path`` overrides the driver's lock file (nftables: /run/netctl/firewall.lock,
    iptables: the xtables lock /run/xtables.lock). ``environ`` replaces ``os.environ``
    where the variable is read (tests pass their own).

    Raises:
        FirewallError: unknown driver name, or nothing to detect.
    """
    chosen = _chosen_name(name, environ)
    if chosen == "nftables":
        # lazy: only the chosen driver is loaded (python-iptables ~110 ms)
        from .nftables import NftablesDriver

        return NftablesDriver(lock_path) if lock_path else NftablesDriver()
    if chosen == "iptables":
        # lazy: only the chosen driver is loaded (python-iptables ~110 ms)
        from .iptables_driver import IptablesDriver

        return IptablesDriver(lock_path) if lock_path else IptablesDriver()
    if chosen == "none":
        # lazy: only the chosen driver is loaded (python-iptables ~110 ms)
        from .null import NullDriver

        return NullDriver()
    raise FirewallError(f"unknown firewall driver {chosen!r}: use one of {', '.join(DRIVER_NAMES)}")


def get_port_driver(
    name: str | None = None,
    *,
    lock_path: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> PortDriver:
    """The published-ports driver called ``name`` (same choice and arguments as :func:`get_driver`).

    Raises:
        FirewallError: unknown name, nothing to detect, or ``none`` (ports need DNAT rules).
    """
    chosen = _chosen_name(name, environ)
    if chosen == "nftables":
        # lazy: only the chosen driver is loaded (python-iptables ~110 ms)
        from .ports_nft import NftPortsDriver

        return NftPortsDriver(lock_path) if lock_path else NftPortsDriver()
    if chosen == "iptables":
        # lazy: only the chosen driver is loaded (python-iptables ~110 ms)
        from .ports_ipt_driver import IptablesPortsDriver

        return IptablesPortsDriver(lock_path) if lock_path else IptablesPortsDriver()
    if chosen == "none":
        raise FirewallError("the 'none' firewall driver cannot publish ports (they need DNAT rules)")
    raise FirewallError(f"unknown firewall driver {chosen!r}: use one of {', '.join(DRIVER_NAMES)}")


def all_port_drivers() -> list[PortDriver]:
    """Both real port drivers, for teardown and GC (an earlier run may have used either).

    Cheap where a backend is absent: without nft the nftables driver removes nothing,
    without legacy tables the iptables driver never imports python-iptables.
    """
    # lazy: only the chosen driver is loaded (python-iptables ~110 ms)
    from .ports_ipt_driver import IptablesPortsDriver
    from .ports_nft import NftPortsDriver

    return [NftPortsDriver(), IptablesPortsDriver()]


def teardown_network_everywhere(
    network: str, *, nft_lock_path: str | None = None, xtables_lock_path: str | None = None
) -> None:
    """Tear a network down with BOTH real drivers (an earlier version may have used the other).

    Each driver runs even if the other fails; a backend that is not installed has nothing
    to remove. Cheap on a host without legacy tables: iptables is then neither loaded
    nor imported.

    Raises:
        FirewallError: one or both drivers failed (all messages joined).
    """
    validate_network_name(network)
    # lazy: only the chosen driver is loaded (python-iptables ~110 ms)
    from .iptables_driver import IptablesDriver
    from .nftables import NftablesDriver

    drivers: list[FirewallDriver] = [
        NftablesDriver(nft_lock_path) if nft_lock_path else NftablesDriver(),
        IptablesDriver(xtables_lock_path) if xtables_lock_path else IptablesDriver(),
    ]
    errors: list[FirewallError] = []
    for drv in drivers:
        try:
            drv.teardown_network(network)
        except FirewallError as exc:
            errors.append(exc)
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise FirewallError(
            f"failed to tear down firewall for network {network!r} with {len(errors)} drivers",
            "; ".join(str(e) for e in errors),
        )
