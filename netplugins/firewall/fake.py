"""A recording driver for unit tests of callers (the bridge plugin), no kernel involved."""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import FirewallError
from .plan import NetworkPolicy, validate_network_name


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
            lines.append(f"{name} bridge={p.bridge} subnets={','.join(p.subnets) or '-'} {flags}")
        return "\n".join(lines)
