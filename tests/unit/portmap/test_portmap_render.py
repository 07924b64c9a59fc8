"""Golden tests of both renderings of published ports, and the nft live-state logic (pure).

Expected texts live in tests/golden/portmap/. Rewrite them only on purpose:
``UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/unit/portmap`` (then review the diff).
tests/integration/test_firewall_drivers.py checks in namespaces that nft accepts the .nft
files and that iptables-legacy-save prints the .iptables lines back.
``live-two-containers.{json,txt}`` are ``nft -j list`` / ``nft list`` of a real table
holding two attachments (web/c1: 8080, 5353/udp, 127.0.0.1:9090, dual stack; db/c2:
192.0.2.1:5432).
"""

from __future__ import annotations

import pytest
from goldenutil import assert_golden, golden_names, read_golden

from netplugins.firewall.iptables import IptRule
from netplugins.firewall.ports import PortMapping, PortsPlan, Published, plan_ports
from netplugins.firewall.ports_ipt import PortRange, compress, published, render_save
from netplugins.firewall.ports_nft import (
    TABLE,
    check_plan,
    parse_chain_rules,
    parse_live,
    render_setup,
    render_teardown,
)

V4, V6 = "10.88.1.2/24", "fd88::2/64"

SCENARIOS: dict[str, PortsPlan] = {
    "single": plan_ports("web", "c1", "eth0", [PortMapping(8080, 80)], [V4]),
    "dual-stack": plan_ports("web", "c1", "eth0", [
        PortMapping(8080, 80), PortMapping(5353, 53, "udp"), PortMapping(9090, 90, host_ip="127.0.0.1"),
        PortMapping(3868, 3868, "sctp")], [V4, V6]),
    "range-100": plan_ports("web", "c1", "eth0",
                            [PortMapping(8000 + i, 80 + i) for i in range(100)], [V4]),
    "host-ip": plan_ports("web", "c1", "eth0", [
        PortMapping(8080, 80, host_ip="192.0.2.1"), PortMapping(8080, 80, host_ip="2001:db8::1")],
        [V4, V6]),
    "snat-off": plan_ports("web", "c1", "eth0", [PortMapping(8080, 80)], [V4], snat=False),
}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_nft_rendering(scenario: str) -> None:
    assert_golden(f"portmap/{scenario}.nft", render_setup(SCENARIOS[scenario]))


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_iptables_rendering(scenario: str) -> None:
    assert_golden(f"portmap/{scenario}.iptables", render_save(SCENARIOS[scenario]))


def test_every_golden_file_has_a_scenario() -> None:
    expected = {f"{s}.{ext}" for s in SCENARIOS for ext in ("nft", "iptables")}
    assert golden_names("portmap", ".nft", ".iptables") == expected


def test_a_range_is_one_element_per_port_in_nft_and_one_rule_in_iptables() -> None:
    plan = SCENARIOS["range-100"]
    assert render_setup(plan).count("comment \"netctl net=web cid=c1 if=eth0\" : 10.88.1.2") == 100
    assert render_save(plan).count("-j DNAT") == 1
    assert compress(plan.forwards) == [PortRange(4, "tcp", None, "10.88.1.2", 8000, 8099, 80)]


def test_compress_splits_where_the_offset_changes() -> None:
    plan = plan_ports("web", "c1", "eth0", [PortMapping(8000, 80), PortMapping(8001, 81),
                                            PortMapping(8002, 90), PortMapping(8004, 91)], [V4])
    assert [(r.host_lo, r.host_hi, r.container_lo, r.destination) for r in compress(plan.forwards)] == [
        (8000, 8001, 80, "10.88.1.2:80-81/8000"), (8002, 8002, 90, "10.88.1.2:90"),
        (8004, 8004, 91, "10.88.1.2:91")]


def test_iptables_dnat_rule_reads_back_as_published() -> None:
    rule = IptRule(4, "nat", "NETCTL-PORTS", dst="127.0.0.1/32", proto="tcp",
                   matches=(("tcp", (("dport", "8000:8009"),)), ("comment", (("comment", "T"),))),
                   target="DNAT", target_opts=(("to-destination", "10.0.0.2:80-89/8000"),))
    assert published(rule) == Published(4, "tcp", "127.0.0.1", 8000, 8009, "T", "10.0.0.2:80-89/8000")
    assert published(IptRule(4, "nat", "POSTROUTING", target="MASQUERADE")) is None


@pytest.fixture
def live_json() -> str:
    return read_golden("portmap/live-two-containers.json")


def test_live_table_reads_back_every_owner(live_json: str) -> None:
    live = parse_live(live_json)
    assert live.exists and not live.foreign
    got = {(p.family, p.protocol, p.host_ip, p.port_lo, p.tag, p.target) for p in live.published()}
    web, db = "netctl net=web cid=c1 if=eth0", "netctl net=db cid=c2 if=eth0"
    assert got == {
        (4, "tcp", None, 8080, web, "10.88.1.2:80"), (4, "udp", None, 5353, web, "10.88.1.2:53"),
        (4, "tcp", "127.0.0.1", 9090, web, "10.88.1.2:90"), (6, "tcp", None, 8080, web, "[fd88::2]:80"),
        (6, "udp", None, 5353, web, "[fd88::2]:53"), (4, "tcp", "192.0.2.1", 5432, db, "10.89.0.2:5432"),
    }


def test_live_table_checks_clean_against_its_plan(live_json: str) -> None:
    live = parse_live(live_json)
    chains = parse_chain_rules(read_golden("portmap/live-two-containers.txt"))
    web = plan_ports("web", "c1", "eth0", [PortMapping(8080, 80), PortMapping(5353, 53, "udp"),
                                           PortMapping(9090, 90, host_ip="127.0.0.1")], [V4, V6])
    assert check_plan(web, live, chains) == []
    moved = plan_ports("web", "c1", "eth0", [PortMapping(8081, 80)], [V4])
    problems = check_plan(moved, live, chains)
    assert "pm-any4: element tcp . 8081 comment \"netctl net=web cid=c1 if=eth0\" : 10.88.1.2 . 80 is missing" in problems
    assert any("stale element udp . 5353" in p for p in problems)
    chains["guard"] = chains["guard"][:1]
    assert any(p.startswith("chain guard has rules []") for p in check_plan(web, live, chains))


def test_teardown_deletes_one_attachment_then_the_table(live_json: str) -> None:
    live = parse_live(live_json)
    web = "netctl net=web cid=c1 if=eth0"
    script = render_teardown(live, lambda c: c == web)
    assert script is not None
    assert f"delete element {TABLE} pm-any4 {{ tcp . 8080, udp . 5353 }}" in script
    assert f"delete element {TABLE} pm-hairpin6 {{ fd88::2 . fd88::/64 }}" in script
    assert "cid=c2" not in script and "delete table" not in script
    assert render_teardown(live, lambda c: c is not None) == f"delete table {TABLE}\n"
    assert render_teardown(live, lambda c: False) is None


def test_a_repeated_add_replaces_its_own_elements_only(live_json: str) -> None:
    live = parse_live(live_json)
    again = plan_ports("db", "c2", "eth0", [PortMapping(5433, 5432, host_ip="192.0.2.1")], ["10.89.0.2/24"])
    script = render_setup(again, live)
    assert f"delete element {TABLE} pm-addr4 {{ 192.0.2.1 . tcp . 5432 }}" in script
    assert f"delete element {TABLE} pm-hairpin4 {{ 10.89.0.2 . 10.89.0.0/24 }}" in script
    assert "5433" in script and "10.88.1.2" not in script
