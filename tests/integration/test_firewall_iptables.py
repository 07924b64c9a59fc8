"""IptablesDriver in throwaway namespaces: real traffic, teardown, CHECK, concurrency.

python-iptables drives the legacy tables, so assertions read iptables-legacy-save.
The layout and the shared scenarios are in test_firewall_topology.py.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from nsutil import Netns
from test_firewall_topology import (
    NET_A,
    Topo,
    build_topology,
    fw,
    legacy_save,
    scenario_concurrent_setup,
    scenario_internal,
    scenario_isolation_and_masquerade,
    scenario_teardown,
)

from netplugins.firewall.plan import network_hash

DRIVER = "iptables"
GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "firewall"

pytestmark = pytest.mark.netns


@pytest.fixture
def topo(host_ns: Netns, make_ns: Callable[..., Netns], tmp_path: Path) -> Topo:
    return build_topology(host_ns, make_ns, tmp_path / "fw.lock")


def leftovers(ns: Netns) -> str:
    """Anything of ours still in the legacy tables (empty when clean)."""
    return "\n".join(
        line for line in legacy_save(ns).splitlines() if "NETCTL" in line or "netctl" in line
    )


def test_isolation_and_masquerade(topo: Topo) -> None:
    scenario_isolation_and_masquerade(topo, DRIVER)


def test_internal_network(topo: Topo) -> None:
    scenario_internal(topo, DRIVER)


def test_teardown_leaves_nothing(topo: Topo) -> None:
    scenario_teardown(topo, DRIVER, leftovers)


def test_concurrent_setup_of_ten_networks(host_ns: Netns, tmp_path: Path) -> None:
    scenario_concurrent_setup(host_ns, DRIVER, tmp_path / "xtables.lock", leftovers)


def test_live_rules_match_the_golden_rendering(host_ns: Netns, tmp_path: Path) -> None:
    dual = {"name": "v6net", "bridge": "br-v6", "subnets": ["10.88.4.0/24", "fd88:4::/64"]}
    fw(host_ns, "setup", DRIVER, tmp_path / "fw.lock", policies=[dual])
    saved = set(legacy_save(host_ns).splitlines())
    golden = [
        line
        for line in (GOLDEN / "dual-stack.iptables").read_text().splitlines()
        if line.startswith("-A ")
    ]
    assert golden and [line for line in golden if line not in saved] == []


def test_check_reports_a_deleted_rule_and_setup_repairs_it(host_ns: Netns, tmp_path: Path) -> None:
    lock = tmp_path / "fw.lock"
    fw(host_ns, "setup", DRIVER, lock, policies=[NET_A])
    chain = f"NETCTL-IN-{network_hash('net-a')}"
    host_ns.run(
        [
            "iptables-legacy",
            "-D",
            chain,
            "-m",
            "comment",
            "--comment",
            "netctl net=net-a",
            "-j",
            "DROP",
        ]
    )
    problems = fw(host_ns, "check", DRIVER, lock, policies=[NET_A])
    assert problems == [
        f'IPv4 filter: rule missing: -A {chain} -m comment --comment "netctl net=net-a" -j DROP'
    ]
    host_ns.run(["ip6tables-legacy", "-t", "nat", "-F", "NETCTL-POSTROUTING"])
    assert any(
        p.startswith("IPv6 nat: rule missing")
        for p in fw(host_ns, "check", DRIVER, lock, policies=[NET_A])
    )
    fw(host_ns, "setup", DRIVER, lock, policies=[NET_A])
    assert fw(host_ns, "check", DRIVER, lock, policies=[NET_A]) == []


def test_setup_keeps_dispatch_groups_in_order(host_ns: Netns, tmp_path: Path) -> None:
    # internal guards must come before every ingress jump, egress accepts after them
    lock = tmp_path / "fw.lock"
    nets = [
        {"name": "n1", "bridge": "b1", "subnets": ["10.94.1.0/24"]},
        {"name": "n2", "bridge": "b2", "subnets": ["10.94.2.0/24"], "internal": True},
        {"name": "n3", "bridge": "b3", "subnets": ["10.94.3.0/24"]},
    ]
    fw(host_ns, "setup", DRIVER, lock, policies=nets)
    jumps = [
        line.split("-j ")[1]
        for line in legacy_save(host_ns).splitlines()
        if line.startswith("-A NETCTL-FORWARD ")
    ]
    assert [j.split("-")[1] for j in jumps] == ["GUARD", "IN", "IN", "IN", "OUT", "OUT"]
    assert fw(host_ns, "check", DRIVER, lock, policies=nets) == []


def test_dual_stack_to_ipv4_only_removes_ip6tables_rules(host_ns: Netns, tmp_path: Path) -> None:
    lock = tmp_path / "fw.lock"
    fw(host_ns, "setup", DRIVER, lock, policies=[NET_A])
    assert "NETCTL" in host_ns.run(["ip6tables-legacy-save"]).stdout
    fw(host_ns, "setup", DRIVER, lock, policies=[{**NET_A, "subnets": ["10.91.1.0/24"]}])
    assert "NETCTL" not in host_ns.run(["ip6tables-legacy-save"]).stdout
    assert (
        fw(host_ns, "check", DRIVER, lock, policies=[{**NET_A, "subnets": ["10.91.1.0/24"]}]) == []
    )
