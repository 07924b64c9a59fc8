"""The iptables driver: applies iptables.py's rendering to the legacy tables through
python-iptables (iptc_table.py), one forked child per IP family."""

from __future__ import annotations

from . import iptc_table
from .errors import FirewallError
from .iptables import IptablesPlan, render_iptables
from .lock import DEFAULT_XTABLES_LOCK, file_lock
from .plan import NetworkPolicy, plan_network, validate_network_name


class IptablesDriver:
    """Applies rulesets to the legacy iptables tables of the current network namespace."""

    name = "iptables"

    def __init__(self, lock_path: str = DEFAULT_XTABLES_LOCK) -> None:
        self.lock_path = lock_path

    def setup_network(self, policy: NetworkPolicy) -> None:
        """Install (or replace) a network's rules; one libiptc commit per table and family.

        Raises:
            FirewallError: python-iptables is unusable or libiptc refused a commit.
        """
        plan = render_iptables(plan_network(policy))
        with file_lock(self.lock_path):
            # families the network left (dual-stack -> IPv4 only) are cleaned up too
            for fam in sorted(set(plan.families) | iptc_table.loaded_families()):
                _sync(fam, policy.name, plan if fam in plan.families else None)

    def teardown_network(self, network: str) -> None:
        """Remove every rule and chain tagged for ``network``; absent is success.

        Raises:
            FirewallError: bad name, or libiptc refused a commit.
        """
        validate_network_name(network)
        families = iptc_table.loaded_families()
        if not families:
            return  # no legacy table in this namespace: nothing of ours, and iptc stays unloaded
        with file_lock(self.lock_path):
            for fam in sorted(families):
                _sync(fam, network, None)

    def check_network(self, policy: NetworkPolicy) -> list[str]:
        """What differs from the policy's rules (``[]`` = in sync).

        Raises:
            FirewallError: python-iptables is unusable.
        """
        plan = render_iptables(plan_network(policy))
        problems: list[str] = []
        for fam in sorted(set(plan.families) | iptc_table.loaded_families()):
            problems += iptc_table.run_forked(iptc_table.check_family, plan, policy.name, fam)
        return problems

    def list_networks(self) -> set[str]:
        """Names of networks with tagged rules in filter/nat (for GC).

        Raises:
            FirewallError: python-iptables is unusable.
        """
        names: set[str] = set()
        for fam in sorted(iptc_table.loaded_families()):
            names |= iptc_table.run_forked(iptc_table.list_family, fam)
        return names


def _sync(fam: int, network: str, plan: IptablesPlan | None, attempts: int = 3) -> None:
    """``iptc_table.sync_family`` in a child, retried when the table changed under us.

    libiptc commits a whole table and the kernel refuses it (EAGAIN) if another
    writer that does not take the xtables lock committed since we read it.

    Raises:
        FirewallError: the last attempt failed.
    """
    for attempt in range(attempts):
        try:
            iptc_table.run_forked(iptc_table.sync_family, fam, network, plan)
            return
        except FirewallError as exc:
            if "temporarily unavailable" not in exc.details or attempt == attempts - 1:
                raise
