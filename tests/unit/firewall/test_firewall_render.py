"""Golden tests: both renderings of the standard scenarios (pure, no kernel).

The expected texts live in tests/golden/firewall/. Rewrite them only on purpose:
``UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/unit/firewall`` (then review the diff).
tests/integration/test_firewall_drivers.py checks in namespaces that ``nft --check`` accepts
the .nft files and that iptables-legacy-save prints the .iptables lines back.
"""

from __future__ import annotations

import pytest
from goldenutil import assert_golden, golden_names

from netplugins.firewall.iptables import render_iptables, render_save
from netplugins.firewall.nftables import render_setup
from netplugins.firewall.plan import NetworkPolicy, plan_network

#: scenario name -> policy; file names are <scenario>.nft and <scenario>.iptables
SCENARIOS: dict[str, NetworkPolicy] = {
    "default-masquerade": NetworkPolicy("web", "br-web", ("10.88.1.0/24",)),
    "masquerade-off": NetworkPolicy("web", "br-web", ("10.88.1.0/24",), masquerade=False),
    "internal": NetworkPolicy("db", "br-db", ("10.88.2.0/24",), internal=True),
    "isolate-off": NetworkPolicy("shared", "br-shared", ("10.88.3.0/24",), isolate=False),
    "dual-stack": NetworkPolicy("v6net", "br-v6", ("10.88.4.0/24", "fd88:4::/64")),
    "icc-off": NetworkPolicy("quiet", "br-quiet", ("10.88.5.0/24",), icc=False),
    "internal-icc-off": NetworkPolicy("vault", "br-vault", ("10.88.6.0/24",), internal=True, icc=False),
    # netctl turned forwarding on: what leaves no netctl bridge is dropped at the end
    "forwarding-guard": NetworkPolicy("routed", "br-routed", ("10.88.7.0/24", "fd88:7::/64"),
                                      guard_forwarding=(6, 4)),
}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_nft_rendering(scenario: str) -> None:
    assert_golden(f"firewall/{scenario}.nft", render_setup(plan_network(SCENARIOS[scenario])))


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_iptables_rendering(scenario: str) -> None:
    assert_golden(
        f"firewall/{scenario}.iptables", render_save(render_iptables(plan_network(SCENARIOS[scenario])))
    )


def test_every_golden_file_has_a_scenario() -> None:
    # a renamed scenario must not leave a stale golden file behind
    expected = {f"{s}.{ext}" for s in SCENARIOS for ext in ("nft", "iptables")}
    assert golden_names("firewall", ".nft", ".iptables") == expected


def test_internal_network_renders_no_masquerade() -> None:
    text = render_setup(plan_network(SCENARIOS["internal"]))
    ipt = render_save(render_iptables(plan_network(SCENARIOS["internal"])))
    assert "masquerade" not in text and "MASQUERADE" not in ipt
    assert "*ipv4 nat" not in ipt


def test_ipv4_only_network_renders_no_ip6tables() -> None:
    assert "*ipv6" not in render_save(
        render_iptables(plan_network(SCENARIOS["default-masquerade"]))
    )
    assert "*ipv6 nat" in render_save(render_iptables(plan_network(SCENARIOS["dual-stack"])))
