"""Recording drivers for unit tests of callers (bridge, portmap), no kernel involved."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from .errors import FirewallError, PortConflict
from .plan import NetworkPolicy, validate_network_name
from .ports import PortsPlan, Published, find_conflicts, tag_in_network


@dataclass
class FakeDriver:
    """Keeps the applied policies in memory and logs every call.

    ``fail_on`` holds call names (``"setup_network"``, ``"teardown_network"``, ...) that
    raise ``FirewallError`` instead, to test a caller's rollback.
    """

    name: str = "fake"
    #: network name -> the policy last set up
    networks: dict[str, NetworkPolicy] = field(default_factory=dict)
    #: (method, network name) in call order
    calls: list[tuple[str, str]] = field(default_factory=list)
    fail_on: set[str] = field(default_factory=set)

    def _call(self, method: str, network: str) -> None:
        self.calls.append((method, network))
        if method in self.fail_on:
            raise FirewallError(f"fake failure in {method} for network {network!r}")

    def setup_network(self, policy: NetworkPolicy) -> None:
        """Record ``policy`` (replacing an earlier one of the same network).

        Raises:
            FirewallError: when ``"setup_network"`` is in ``fail_on``.
        """
        self._call("setup_network", policy.name)
        self.networks[policy.name] = policy

    def teardown_network(self, network: str) -> None:
        """Forget the network; absent is success.

        Raises:
            FirewallError: invalid name, or ``"teardown_network"`` is in ``fail_on``.
        """
        validate_network_name(network)
        self._call("teardown_network", network)
        self.networks.pop(network, None)

    def check_network(self, policy: NetworkPolicy) -> list[str]:
        """``[]`` when exactly ``policy`` was set up, else what differs.

        Raises:
            FirewallError: when ``"check_network"`` is in ``fail_on``.
        """
        self._call("check_network", policy.name)
        have = self.networks.get(policy.name)
        if have is None:
            return [f"network {policy.name!r} has no rules"]
        return (
            []
            if have == policy
            else [f"network {policy.name!r} has rules for {have}, expected {policy}"]
        )

    def list_networks(self) -> set[str]:
        """Names of the recorded networks."""
        return set(self.networks)

    def dump(self) -> str:
        """One sorted line per network, for assertions: ``name bridge=.. subnets=.. flags``."""
        lines = []
        for name in sorted(self.networks):
            p = self.networks[name]
            flags = " ".join(
                f"{k}={'yes' if getattr(p, k) else 'no'}"
                for k in ("masquerade", "internal", "isolate")
            )
            if not p.icc:
                flags += " icc=no"
            lines.append(f"{name} bridge={p.bridge} subnets={','.join(p.subnets) or '-'} {flags}")
        return "\n".join(lines)


@dataclass
class FakePortDriver:
    """Keeps published ports in memory, with the real conflict rules; logs every call.

    ``fail_on`` holds method names that raise ``FirewallError`` instead.
    """

    name: str = "fake"
    #: owner tag -> the plan last published under it
    plans: dict[str, PortsPlan] = field(default_factory=dict)
    #: entries someone else published (untagged or foreign), to provoke conflicts
    foreign: list[Published] = field(default_factory=list)
    #: (method, argument summary) in call order
    calls: list[tuple[str, str]] = field(default_factory=list)
    fail_on: set[str] = field(default_factory=set)

    def _call(self, method: str, what: str) -> None:
        self.calls.append((method, what))
        if method in self.fail_on:
            raise FirewallError(f"fake failure in {method} for {what}")

    def published(self) -> list[Published]:
        """Every recorded forward, plus the foreign entries."""
        out = list(self.foreign)
        for tag, plan in self.plans.items():
            out += [Published(f.family, f.protocol, f.host_ip, f.host_port, f.host_port, tag,
                              f"{f.container_ip}:{f.container_port}") for f in plan.forwards]
        return out

    def setup_ports(self, plan: PortsPlan) -> None:
        """Record ``plan`` under its tag (replacing the earlier one).

        Raises:
            PortConflict: as the real drivers, from the recorded entries.
            FirewallError: when ``"setup_ports"`` is in ``fail_on``.
        """
        self._call("setup_ports", plan.tag)
        conflicts = find_conflicts(plan, self.published())
        if conflicts:
            raise PortConflict(conflicts)
        self.plans[plan.tag] = plan

    def teardown_ports(self, tags: Collection[str]) -> int:
        """Forget the plans of ``tags``; how many forwards went.

        Raises:
            FirewallError: when ``"teardown_ports"`` is in ``fail_on``.
        """
        self._call("teardown_ports", ",".join(sorted(tags)))
        gone = [t for t in self.plans if t in tags]
        return sum(len(self.plans.pop(t).forwards) for t in gone)

    def gc_ports(self, network: str, keep: Collection[str]) -> int:
        """Forget the plans of ``network`` not in ``keep``.

        Raises:
            FirewallError: when ``"gc_ports"`` is in ``fail_on``.
        """
        self._call("gc_ports", network)
        gone = [t for t in self.plans if tag_in_network(t, network) and t not in keep]
        return sum(len(self.plans.pop(t).forwards) for t in gone)

    def check_ports(self, plan: PortsPlan) -> list[str]:
        """``[]`` when exactly ``plan`` is recorded under its tag."""
        self._call("check_ports", plan.tag)
        have = self.plans.get(plan.tag)
        return [] if have == plan else [f"ports of {plan.tag!r} are {have}, expected {plan}"]
