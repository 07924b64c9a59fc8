"""The firewall drivers in throwaway namespaces: real traffic, teardown, CHECK, concurrency.

One suite for both drivers: every test taking ``backend`` runs once with NftablesDriver
(``nftables``) and once with IptablesDriver (``iptables``: python-iptables on the legacy
tables, so assertions read iptables-legacy-save). A :class:`Backend` holds the little
that differs between them (what "none of our rules left" looks like, how to break a
rule by hand and what CHECK then says). Tests of what only one driver does are in the
marked sections at the end, as are the golden renderings checked by the kernel's tools.
The layout is in test_firewall_topology.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from goldenutil import golden_path, iptables_sections
from nsutil import Netns
from test_firewall_topology import (
    NET_A,
    NET_B,
    Topo,
    build_topology,
    fw,
    fw_argv,
    legacy_save,
    nft_ruleset,
    policy,
)

from netplugins.firewall.plan import network_hash

pytestmark = pytest.mark.netns


class Backend:
    """What the driver-independent tests need to know about one driver."""

    #: the name get_driver() takes
    driver: str

    def leftovers(self, ns: Netns) -> str:
        """Anything of ours still in the kernel ('' when clean)."""
        raise NotImplementedError

    def delete_isolation_drop(self, ns: Netns) -> str:
        """Delete net-a's final DROP rule by hand; the problem CHECK must report for it."""
        raise NotImplementedError

    def break_another_part(self, ns: Netns) -> Callable[[str], bool]:
        """Remove another piece of net-a's rules; a test recognising CHECK's report of it."""
        raise NotImplementedError


class Nftables(Backend):
    driver = "nftables"

    def leftovers(self, ns: Netns) -> str:
        return nft_ruleset(ns)  # the whole ruleset: the namespace has nothing else

    def delete_isolation_drop(self, ns: Netns) -> str:
        chain = f"in-{network_hash('net-a')}"
        listing = ns.run(["nft", "-a", "list", "chain", "inet", "netctl", chain]).stdout
        handle = next(
            line.split("# handle ")[1]
            for line in listing.splitlines()
            if line.strip().startswith("drop ")
        )
        ns.run(["nft", "delete", "rule", "inet", "netctl", chain, "handle", handle])
        return f'chain {chain}: rule missing: drop comment "netctl net=net-a"'

    def break_another_part(self, ns: Netns) -> Callable[[str], bool]:
        ns.run(["nft", "delete", "element", "inet", "netctl", "forward-out", '{ "nb1" }'])
        return lambda problem: "forward-out" in problem


class Iptables(Backend):
    driver = "iptables"

    def leftovers(self, ns: Netns) -> str:
        return "\n".join(
            line for line in legacy_save(ns).splitlines() if "NETCTL" in line or "netctl" in line
        )

    def delete_isolation_drop(self, ns: Netns) -> str:
        chain = f"NETCTL-IN-{network_hash('net-a')}"
        comment = ["-m", "comment", "--comment", "netctl net=net-a"]
        ns.run(["iptables-legacy", "-D", chain, *comment, "-j", "DROP"])
        return f'IPv4 filter: rule missing: -A {chain} -m comment --comment "netctl net=net-a" -j DROP'

    def break_another_part(self, ns: Netns) -> Callable[[str], bool]:
        ns.run(["ip6tables-legacy", "-t", "nat", "-F", "NETCTL-POSTROUTING"])
        return lambda problem: problem.startswith("IPv6 nat: rule missing")


BACKENDS = [Nftables(), Iptables()]


@pytest.fixture(params=BACKENDS, ids=lambda b: b.driver)
def backend(request: pytest.FixtureRequest) -> Backend:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def topo(host_ns: Netns, make_ns: Callable[..., Netns], tmp_path: Path) -> Topo:
    return build_topology(host_ns, make_ns, tmp_path / "fw.lock")


# ---------------------------------------------------------------- every driver


def test_isolation_and_masquerade(topo: Topo, backend: Backend) -> None:
    """Default networks: same network talks, other networks don't, the outside sees the host."""
    driver = backend.driver
    fw(topo.host, "setup", driver, topo.lock, policies=[NET_A, NET_B])
    a = topo.addr
    got = topo.pings(
        [
            ("a1", a["a2"]), ("a1", a["a26"]),            # same network, v4 and v6
            ("a1", a["b1"]), ("b1", a["a1"]),             # other network, both ways
            ("a1", a["b16"]), ("b2", a["a26"]),           # ... and over IPv6
            ("a1", "10.91.1.1"), ("a1", "10.91.2.1"),     # the host (its gateway and another address)
            ("a1", "192.0.2.2"), ("b1", "192.0.2.2"), ("a2", "fd00:2::2"),  # outside: masquerade
        ]
    )  # fmt: skip
    assert got == {
        ("a1", a["a2"]): True, ("a1", a["a26"]): True,
        ("a1", a["b1"]): False, ("b1", a["a1"]): False,
        ("a1", a["b16"]): False, ("b2", a["a26"]): False,
        ("a1", "10.91.1.1"): True, ("a1", "10.91.2.1"): True,
        ("a1", "192.0.2.2"): True, ("b1", "192.0.2.2"): True, ("a2", "fd00:2::2"): True,
    }  # fmt: skip
    topo.start_echo()
    assert topo.peer_seen_by_outside("a1", "192.0.2.2") == "192.0.2.1"
    assert topo.peer_seen_by_outside("b2", "fd00:2::2") == "fd00:2::1"
    assert fw(topo.host, "check", driver, topo.lock, policies=[NET_A, NET_B]) == []
    assert fw(topo.host, "list", driver, topo.lock) == ["net-a", "net-b"]


def test_internal_network(topo: Topo, backend: Backend) -> None:
    """An internal network talks inside and to its gateway, reaches nothing else, no NAT."""
    driver = backend.driver
    internal_b = {**NET_B, "internal": True}
    fw(topo.host, "setup", driver, topo.lock, policies=[NET_A, internal_b])
    a = topo.addr
    got = topo.pings(
        [
            ("b1", a["b2"]), ("b1", a["b26"]), ("b1", "10.91.2.1"), ("b1", "fd91:2::1"),  # inside + gateway
            ("b1", "192.0.2.2"), ("b1", "fd00:2::2"),                                    # outside
            ("b1", a["a1"]), ("a1", a["b1"]),                                            # other network
            ("a1", "192.0.2.2"),                                                         # others unaffected
        ]
    )  # fmt: skip
    assert got == {
        ("b1", a["b2"]): True, ("b1", a["b26"]): True, ("b1", "10.91.2.1"): True, ("b1", "fd91:2::1"): True,
        ("b1", "192.0.2.2"): False, ("b1", "fd00:2::2"): False,
        ("b1", a["a1"]): False, ("a1", a["b1"]): False,
        ("a1", "192.0.2.2"): True,
    }  # fmt: skip
    assert fw(topo.host, "check", driver, topo.lock, policies=[NET_A, internal_b]) == []


def test_teardown_leaves_nothing(topo: Topo, backend: Backend) -> None:
    """Teardown leaves nothing, twice is fine, and traffic flows as without rules again."""
    driver = backend.driver
    fw(topo.host, "setup", driver, topo.lock, policies=[NET_A, NET_B])
    fw(topo.host, "teardown", driver, topo.lock, names=["net-a"])
    assert fw(topo.host, "list", driver, topo.lock) == ["net-b"]
    fw(topo.host, "teardown", driver, topo.lock, names=["net-b", "net-b", "net-a", "never-existed"])
    assert backend.leftovers(topo.host) == ""
    assert fw(topo.host, "list", driver, topo.lock) == []
    got = topo.pings([("a1", topo.addr["b1"])])
    assert got == {("a1", topo.addr["b1"]): True}, "with no rules, bridges route to each other"


def test_concurrent_setup_of_ten_networks(host_ns: Netns, tmp_path: Path, backend: Backend) -> None:
    """10 plugin processes set up 10 networks at once; all 10 end up intact, then all go."""
    driver, lock = backend.driver, tmp_path / "fw.lock"
    nets = [policy(f"conc{i}", f"cb{i}", f"10.92.{i}.0/24") for i in range(10)]
    procs = [
        subprocess.Popen(
            fw_argv(host_ns, "setup", driver, lock, policies=[p]), stdout=subprocess.PIPE, text=True
        )
        for p in nets
    ]
    outs = [(p.wait(60), p.communicate()[0]) for p in procs]
    assert all(rc == 0 for rc, _ in outs), outs
    assert fw(host_ns, "list", driver, lock) == sorted(p["name"] for p in nets)
    assert fw(host_ns, "check", driver, lock, policies=nets) == []
    procs = [
        subprocess.Popen(
            fw_argv(host_ns, "teardown", driver, lock, names=[p["name"]]),
            stdout=subprocess.PIPE,
            text=True,
        )
        for p in nets
    ]
    assert all(p.wait(60) == 0 for p in procs)
    assert backend.leftovers(host_ns) == ""


def test_check_reports_a_deleted_rule_and_setup_repairs_it(
    host_ns: Netns, tmp_path: Path, backend: Backend
) -> None:
    driver, lock = backend.driver, tmp_path / "fw.lock"
    fw(host_ns, "setup", driver, lock, policies=[NET_A])
    missing = backend.delete_isolation_drop(host_ns)
    assert fw(host_ns, "check", driver, lock, policies=[NET_A]) == [missing]
    reported = backend.break_another_part(host_ns)
    assert any(reported(p) for p in fw(host_ns, "check", driver, lock, policies=[NET_A]))
    fw(host_ns, "setup", driver, lock, policies=[NET_A])
    assert fw(host_ns, "check", driver, lock, policies=[NET_A]) == []


# ---------------------------------------------------------------- both drivers at once


def test_teardown_everywhere_removes_rules_of_both_drivers(host_ns: Netns, tmp_path: Path) -> None:
    lock = tmp_path / "fw.lock"
    for backend in BACKENDS:
        fw(host_ns, "setup", backend.driver, lock, policies=[NET_A])
    fw(host_ns, "everywhere", "", lock, name="net-a")
    fw(host_ns, "everywhere", "", lock, name="net-a")
    assert [b.leftovers(host_ns) for b in BACKENDS] == ["", ""]


# ---------------------------------------------------------------- nftables only


def test_bridge_of_another_network_is_refused_clearly(host_ns: Netns, tmp_path: Path) -> None:
    lock = tmp_path / "fw.lock"
    fw(host_ns, "setup", "nftables", lock, policies=[NET_A])
    thief = policy("thief", "nb1", "10.93.0.0/24")
    res = subprocess.run(
        fw_argv(host_ns, "setup", "nftables", lock, policies=[thief]), capture_output=True, text=True
    )
    assert res.returncode == 1 and "already used by network 'net-a'" in res.stdout


def test_nft_failure_is_a_firewall_error_with_nft_stderr(host_ns: Netns, tmp_path: Path) -> None:
    # someone else put a set where our verdict map belongs: nft refuses the transaction
    host_ns.run(["nft", "add", "table", "inet", "netctl"])
    host_ns.run(["nft", "add", "set", "inet", "netctl", "forward-in", "{ type ipv4_addr; }"])
    res = subprocess.run(
        fw_argv(host_ns, "setup", "nftables", tmp_path / "fw.lock", policies=[NET_A]),
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


@pytest.mark.parametrize("planner, count", [("firewall", 8), ("portmap", 5)], ids=["firewall", "portmap"])
def test_golden_nft_scripts_pass_nft_check(host_ns: Netns, planner: str, count: int) -> None:
    """The golden renderings of networks (firewall/) and published ports (portmap/)."""
    scripts = sorted(golden_path(planner).glob("*.nft"))
    assert len(scripts) == count
    for script in scripts:
        res = host_ns.run(["nft", "--check", "-f", str(script)], check=False)
        assert res.returncode == 0, f"{script.name}: {res.stderr}"
    assert nft_ruleset(host_ns) == ""  # --check applied nothing


# ---------------------------------------------------------------- iptables (legacy) only


def test_setup_keeps_dispatch_groups_in_order(host_ns: Netns, tmp_path: Path) -> None:
    # internal guards must come before every ingress jump, egress accepts after them
    lock = tmp_path / "fw.lock"
    nets = [
        {"name": "n1", "bridge": "b1", "subnets": ["10.94.1.0/24"]},
        {"name": "n2", "bridge": "b2", "subnets": ["10.94.2.0/24"], "internal": True},
        {"name": "n3", "bridge": "b3", "subnets": ["10.94.3.0/24"]},
    ]
    fw(host_ns, "setup", "iptables", lock, policies=nets)
    jumps = [
        line.split("-j ")[1]
        for line in legacy_save(host_ns).splitlines()
        if line.startswith("-A NETCTL-FORWARD ")
    ]
    assert [j.split("-")[1] for j in jumps] == ["GUARD", "IN", "IN", "IN", "OUT", "OUT"]
    assert fw(host_ns, "check", "iptables", lock, policies=nets) == []


def test_dual_stack_to_ipv4_only_removes_ip6tables_rules(host_ns: Netns, tmp_path: Path) -> None:
    lock = tmp_path / "fw.lock"
    v4_only = {**NET_A, "subnets": ["10.91.1.0/24"]}
    fw(host_ns, "setup", "iptables", lock, policies=[NET_A])
    assert "NETCTL" in host_ns.run(["ip6tables-legacy-save"]).stdout
    fw(host_ns, "setup", "iptables", lock, policies=[v4_only])
    assert "NETCTL" not in host_ns.run(["ip6tables-legacy-save"]).stdout
    assert fw(host_ns, "check", "iptables", lock, policies=[v4_only]) == []


#: the plan of tests/golden/portmap/dual-stack.* (test_portmap_render.SCENARIOS), applied
#: with the iptables ports driver
APPLY_PORTMAP_DUAL_STACK = """
import sys
from netplugins.firewall.ports import PortMapping, plan_ports
from netplugins.firewall.ports_ipt_driver import IptablesPortsDriver
plan = plan_ports("web", "c1", "eth0", [
    PortMapping(8080, 80), PortMapping(5353, 53, "udp"), PortMapping(9090, 90, host_ip="127.0.0.1"),
    PortMapping(3868, 3868, "sctp")], ["10.88.1.2/24", "fd88::2/64"])
IptablesPortsDriver(sys.argv[1]).setup_ports(plan)
"""


def _apply_golden_dual_stack(planner: str, ns: Netns, tmp_path: Path) -> None:
    """Apply the scenario of golden/<planner>/dual-stack.iptables with the iptables driver."""
    if planner == "firewall":  # test_firewall_render.SCENARIOS["dual-stack"]
        dual = {"name": "v6net", "bridge": "br-v6", "subnets": ["10.88.4.0/24", "fd88:4::/64"]}
        fw(ns, "setup", "iptables", tmp_path / "fw.lock", policies=[dual])
    else:
        ns.run([sys.executable, "-c", APPLY_PORTMAP_DUAL_STACK, str(tmp_path / "xtables.lock")])


@pytest.mark.parametrize(
    "planner, sections",
    [
        ("firewall", {"ipv4 filter", "ipv4 nat", "ipv6 filter", "ipv6 nat"}),
        ("portmap", {"ipv4 raw", "ipv4 nat", "ipv6 nat"}),
    ],
    ids=["firewall", "portmap"],
)
def test_iptables_save_prints_the_golden_lines(
    host_ns: Netns, tmp_path: Path, planner: str, sections: set[str]
) -> None:
    """Every rule of the golden rendering is in the kernel, in its family and table."""
    _apply_golden_dual_stack(planner, host_ns, tmp_path)
    golden = iptables_sections(f"{planner}/dual-stack.iptables")
    assert set(golden) == sections and any(golden.values())
    for section, lines in golden.items():
        fam, table = section.split()
        tool = "iptables-legacy-save" if fam == "ipv4" else "ip6tables-legacy-save"
        saved = host_ns.run([tool, "-t", table]).stdout.splitlines()
        assert [line for line in lines if line not in saved] == [], section
