"""The ``none`` driver: installs nothing (the host's own firewall is in charge)."""

from __future__ import annotations

from .plan import NetworkPolicy, validate_network_name


class NullDriver:
    """Accepts every call and changes nothing; CHECK finds nothing wrong."""

    name = "none"

    def setup_network(self, policy: NetworkPolicy) -> None:
        """Do nothing (the policy was validated when it was built)."""

    def teardown_network(self, network: str) -> None:
        """Do nothing.

        Raises:
            FirewallError: the name is invalid (same contract as the real drivers).
        """
        validate_network_name(network)

    def check_network(self, policy: NetworkPolicy) -> list[str]:
        """No rules are expected, so none can be missing."""
        return []

    def list_networks(self) -> set[str]:
        """No network has rules."""
        return set()
