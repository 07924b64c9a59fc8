"""The iptables driver of published ports: applies ports_ipt.py's rules to the legacy nat
and raw tables through python-iptables (ports_iptc.py), one forked child per family."""

from __future__ import annotations

from collections.abc import Callable, Collection

from . import iptc_table, ports_iptc
from .errors import FirewallError, PortConflict
from .iptables import IptRule
from .lock import DEFAULT_XTABLES_LOCK, file_lock
from .ports import PortsPlan, Published, find_conflicts, tag_in_network
from .ports_ipt import plan_rules, skeleton_rules


class IptablesPortsDriver:
    """Publishes ports in the legacy nat tables of the current network namespace."""

    name = "iptables"

    def __init__(self, lock_path: str = DEFAULT_XTABLES_LOCK) -> None:
        self.lock_path = lock_path

    def setup_ports(self, plan: PortsPlan) -> None:
        """Publish ``plan`` (replacing the attachment's earlier rules); one commit per table.

        Raises:
            PortConflict: another owner publishes one of the host ports (nothing changed).
            FirewallError: python-iptables is unusable or libiptc refused a commit.
        """
        rules = plan_rules(plan)
        with file_lock(self.lock_path):
            live: list[Published] = []
            for fam in plan.families:
                live += iptc_table.run_forked(ports_iptc.read_family, fam)
            conflicts = find_conflicts(plan, live)
            if conflicts:
                raise PortConflict(conflicts)
            # a family the attachment published in before but not now is cleaned too
            for fam in sorted(set(plan.families) | iptc_table.loaded_families()):
                mine = [r for r in rules if r.family == fam]
                _sync(fam, mine, lambda c: c == plan.tag)

    def teardown_ports(self, tags: Collection[str]) -> int:
        """Remove the rules carrying one of ``tags``; the number removed (absent is 0).

        Raises:
            FirewallError: libiptc refused a commit.
        """
        return self._remove(lambda c: c in tags)

    def gc_ports(self, network: str, keep: Collection[str]) -> int:
        """Remove the rules of ``network`` whose tag is not in ``keep``; the number removed.

        Raises:
            FirewallError: libiptc refused a commit.
        """
        return self._remove(lambda c: tag_in_network(c, network) and c not in keep)

    def check_ports(self, plan: PortsPlan) -> list[str]:
        """What differs from ``plan`` (``[]`` = in sync).

        Raises:
            FirewallError: python-iptables is unusable.
        """
        rules = plan_rules(plan)
        problems: list[str] = []
        for fam in plan.families:
            want = skeleton_rules(fam) + [r for r in rules if r.family == fam]
            problems += iptc_table.run_forked(ports_iptc.check_family, fam, want, plan.tag)
        return problems

    def published(self) -> list[Published]:
        """Every published port in the legacy tables (all owners).

        Raises:
            FirewallError: python-iptables is unusable.
        """
        out: list[Published] = []
        for fam in sorted(iptc_table.loaded_families()):
            out += iptc_table.run_forked(ports_iptc.read_family, fam)
        return out

    def _remove(self, select: Callable[[str | None], bool]) -> int:
        families = iptc_table.loaded_families()
        if not families:
            return 0  # no legacy table here: nothing of ours, and iptc stays unloaded
        removed = 0
        with file_lock(self.lock_path):
            for fam in sorted(families):
                removed += _sync(fam, [], select)
        return removed


def _sync(fam: int, add: list[IptRule], select: Callable[[str | None], bool],
          attempts: int = 3) -> int:
    """``ports_iptc.sync_family`` in a child, retried when the table changed under us
    (a writer that does not take the xtables lock committed: EAGAIN).

    Raises:
        FirewallError: the last attempt failed.
    """
    for attempt in range(attempts):
        try:
            removed: int = iptc_table.run_forked(ports_iptc.sync_family, fam, add, select)
            return removed
        except FirewallError as exc:
            if "temporarily unavailable" not in exc.details or attempt == attempts - 1:
                raise
    return 0
