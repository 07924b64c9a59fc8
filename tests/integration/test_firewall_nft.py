"""NftablesDriver in throwaway namespaces: real traffic, teardown, CHECK, concurrency.

The layout and the shared scenarios are in test_firewall_topology.py.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from nsutil import Netns
from test_firewall_topology import (
    NET_A,
    Topo,
    build_topology,
    fw,
    fw_argv,
    nft_ruleset,
    policy,
    scenario_concurrent_setup,
    scenario_internal,
    scenario_isolation_and_masquerade,
    scenario_teardown,
)

from netplugins.firewall.plan import network_hash

DRIVER = "nftables"
GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "firewall"

pytestmark = pytest.mark.netns


@pytest.fixture
def topo(host_ns: Netns, make_ns: Callable[..., Netns], tmp_path: Path) -> Topo:
    return build_topology(host_ns, make_ns, tmp_path / "fw.lock")


def test_isolation_and_masquerade(topo: Topo) -> None:
    scenario_isolation_and_masquerade(topo, DRIVER)


def test_internal_network(topo: Topo) -> None:
    scenario_internal(topo, DRIVER)


def test_teardown_leaves_nothing(topo: Topo) -> None:
    scenario_teardown(topo, DRIVER, nft_ruleset)


def test_concurrent_setup_of_ten_networks(host_ns: Netns, tmp_path: Path) -> None:
    scenario_concurrent_setup(host_ns, DRIVER, tmp_path / "fw.lock", nft_ruleset)


def test_check_reports_a_deleted_rule_and_setup_repairs_it(host_ns: Netns, tmp_path: Path) -> None:
    lock = tmp_path / "fw.lock"
    fw(host_ns, "setup", DRIVER, lock, policies=[NET_A])
    chain = f"in-{network_hash('net-a')}"
    listing = host_ns.run(["nft", "-a", "list", "chain", "inet", "netctl", chain]).stdout
    handle = next(
        line.split("# handle ")[1]
        for line in listing.splitlines()
        if line.strip().startswith("drop ")
    )
    host_ns.run(["nft", "delete", "rule", "inet", "netctl", chain, "handle", handle])
    assert fw(host_ns, "check", DRIVER, lock, policies=[NET_A]) == [
        f'chain {chain}: rule missing: drop comment "netctl net=net-a"'
    ]
    host_ns.run(["nft", "delete", "element", "inet", "netctl", "forward-out", '{ "nb1" }'])
    assert any("forward-out" in p for p in fw(host_ns, "check", DRIVER, lock, policies=[NET_A]))
    fw(host_ns, "setup", DRIVER, lock, policies=[NET_A])
    assert fw(host_ns, "check", DRIVER, lock, policies=[NET_A]) == []


def test_teardown_everywhere_removes_rules_of_both_drivers(host_ns: Netns, tmp_path: Path) -> None:
    lock = tmp_path / "fw.lock"
    fw(host_ns, "setup", "nftables", lock, policies=[NET_A])
    fw(host_ns, "setup", "iptables", lock, policies=[NET_A])
    fw(host_ns, "everywhere", "", lock, name="net-a")
    fw(host_ns, "everywhere", "", lock, name="net-a")
    assert nft_ruleset(host_ns) == ""
    assert "netctl" not in host_ns.run(["iptables-legacy-save"]).stdout


def test_golden_scripts_pass_nft_check(host_ns: Netns) -> None:
    scripts = sorted(GOLDEN.glob("*.nft"))
    assert len(scripts) == 8
    for script in scripts:
        res = host_ns.run(["nft", "--check", "-f", str(script)], check=False)
        assert res.returncode == 0, f"{script.name}: {res.stderr}"
    assert nft_ruleset(host_ns) == ""  # --check applied nothing


def test_bridge_of_another_network_is_refused_clearly(host_ns: Netns, tmp_path: Path) -> None:
    lock = tmp_path / "fw.lock"
    fw(host_ns, "setup", DRIVER, lock, policies=[NET_A])
    thief = policy("thief", "nb1", "10.93.0.0/24")
    res = subprocess.run(
        fw_argv(host_ns, "setup", DRIVER, lock, policies=[thief]), capture_output=True, text=True
    )
    assert res.returncode == 1 and "already used by network 'net-a'" in res.stdout


def test_nft_failure_is_a_firewall_error_with_nft_stderr(host_ns: Netns, tmp_path: Path) -> None:
    # someone else put a set where our verdict map belongs: nft refuses the transaction
    host_ns.run(["nft", "add", "table", "inet", "netctl"])
    host_ns.run(["nft", "add", "set", "inet", "netctl", "forward-in", "{ type ipv4_addr; }"])
    res = subprocess.run(
        fw_argv(host_ns, "setup", DRIVER, tmp_path / "fw.lock", policies=[NET_A]),
        capture_output=True,
        text=True,
    )
    assert res.returncode == 1
    error = json.loads(res.stdout)["error"]
    assert error.startswith(
        "failed to set up firewall for network 'net-a': nft rejected the transaction: "
    )
    assert "Error:" in error  # nft's own stderr is carried along
    # nothing was half-applied: the transaction is atomic
    assert "chain" not in nft_ruleset(host_ns)
