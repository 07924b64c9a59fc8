"""nftables against a live table: parsing real ``nft -j`` output, teardown, re-setup, CHECK.

live-three-networks.json was captured from nft 1.0.6 after NftablesDriver set up the
three policies below in a throwaway namespace.
"""

from __future__ import annotations

import dataclasses

import pytest
from goldenutil import read_golden

from netplugins.firewall.errors import FirewallError
from netplugins.firewall.nft_state import ABSENT, LiveRule, LiveTable, decompile, parse_table
from netplugins.firewall.nftables import check_ruleset, find_owned, render_setup, render_teardown
from netplugins.firewall.plan import NetworkPolicy, network_hash, plan_network

NET_A = NetworkPolicy("net-a", "nb1", ("10.91.1.0/24", "fd91:1::/64"))
NET_B = NetworkPolicy("net-b", "nb2", ("10.91.2.0/24",))
INT = NetworkPolicy("int", "nb3", ("10.91.3.0/24",), internal=True)


@pytest.fixture
def live() -> LiveTable:
    return parse_table(read_golden("firewall/live-three-networks.json"))


def only(live: LiveTable, network: str) -> LiveTable:
    """The sample as if ``network`` were the only one."""
    owned = find_owned(live, network)
    keep = set(owned.chains) | {"forward", "postrouting"}
    return dataclasses.replace(
        live,
        chains={k: v for k, v in live.chains.items() if k in keep},
        rules=tuple(r for r in live.rules if r.chain in keep),
        elements=owned.elements,
    )


def test_parse_real_listing(live: LiveTable) -> None:
    assert live.exists
    assert live.maps == {"forward-guard", "forward-in", "forward-out", "postrouting-out"}
    assert live.chains["forward"] == "forward" and live.chains["postrouting"] == "postrouting"
    assert live.networks() == {"net-a", "net-b", "int"}
    assert len(live.elements) == 3 + 3 + 2
    assert [r.text for r in live.chain_rules("forward")] == [
        "iifname vmap @forward-guard",
        "oifname vmap @forward-in",
        "iifname vmap @forward-out",
    ]


@pytest.mark.parametrize("policy", [NET_A, NET_B, INT], ids=lambda p: p.name)
def test_rendered_rules_read_back_identically(live: LiveTable, policy: NetworkPolicy) -> None:
    # what we render is exactly what nft lists back (CHECK depends on it)
    assert check_ruleset(plan_network(policy), live) == []


def test_parse_rejects_garbage() -> None:
    with pytest.raises(FirewallError, match="cannot parse"):
        parse_table("not json")


def test_decompile_keeps_unknown_expressions_visible() -> None:
    text = decompile([{"limit": {"rate": 1}}, {"accept": None}])
    assert text == '{"limit": {"rate": 1}} accept'


def test_teardown_one_of_three_deletes_only_its_objects(live: LiveTable) -> None:
    script = render_teardown("net-b", live)
    assert script is not None
    lines = script.splitlines()
    h = network_hash("net-b")
    assert sorted(lines) == sorted(
        [
            'delete element inet netctl forward-in { "nb2" }',
            'delete element inet netctl forward-out { "nb2" }',
            'delete element inet netctl postrouting-out { "nb2" }',
        ]
        + [
            f"{verb} chain inet netctl {role}-{h}"
            for role in ("in", "out", "nat")
            for verb in ("flush", "delete")
        ]
    )
    # elements first: a chain cannot be deleted while a map element jumps to it
    assert lines.index('delete element inet netctl forward-in { "nb2" }') < lines.index(
        f"delete chain inet netctl in-{h}"
    )


def test_teardown_of_last_network_deletes_the_table(live: LiveTable) -> None:
    assert render_teardown("int", only(live, "int")) == "delete table inet netctl\n"


def test_teardown_keeps_table_with_foreign_objects(live: LiveTable) -> None:
    alone = dataclasses.replace(only(live, "int"), foreign_objects=1)
    script = render_teardown("int", alone)
    assert script is not None and "delete table" not in script


def test_teardown_absent_is_nothing_to_do(live: LiveTable) -> None:
    assert render_teardown("never-created", live) is None
    assert render_teardown("net-a", ABSENT) is None


def test_teardown_finds_tagged_chain_of_an_older_naming(live: LiveTable) -> None:
    old = LiveRule("legacy-masq", 999, "masquerade", "netctl net=net-b")
    grown = dataclasses.replace(
        live, chains={**live.chains, "legacy-masq": ""}, rules=live.rules + (old,)
    )
    assert "legacy-masq" in find_owned(grown, "net-b").chains
    script = render_teardown("net-b", grown)
    assert script is not None and "delete chain inet netctl legacy-masq" in script


def test_teardown_deletes_tagged_rule_in_a_shared_chain_by_handle(live: LiveTable) -> None:
    stray = LiveRule("forward", 4242, "counter", "netctl net=net-b")
    grown = dataclasses.replace(live, rules=live.rules + (stray,))
    script = render_teardown("net-b", grown)
    assert script is not None and "delete rule inet netctl forward handle 4242" in script


def test_attachment_tagged_objects_are_left_to_portmap(live: LiveTable) -> None:
    # published ports carry cid=/if= and belong to portmap: network-level teardown, setup
    # and CHECK neither remove nor report them
    port = LiveRule("ports-b", 4343, "counter", "netctl net=net-b cid=abc if=eth0")
    grown = dataclasses.replace(
        live, chains={**live.chains, "ports-b": ""}, rules=live.rules + (port,)
    )
    owned = find_owned(grown, "net-b")
    assert port not in owned.rules and "ports-b" not in owned.chains
    script = render_teardown("net-b", grown)
    assert script is not None and "ports-b" not in script
    assert "ports-b" not in render_setup(plan_network(NET_B), grown)
    assert not any("ports-b" in p for p in check_ruleset(plan_network(NET_B), grown))


def test_setup_again_replaces_in_one_transaction(live: LiveTable) -> None:
    script = render_setup(plan_network(NET_B), live)
    h = network_hash("net-b")
    # the network's elements are re-created, its chains refilled; nothing of others touched
    assert 'delete element inet netctl forward-in { "nb2" }' in script
    assert f"flush chain inet netctl in-{h}" in script
    assert "nb1" not in script and "nb3" not in script
    # the skeleton is intact, so its base chains are not rewritten
    assert "flush chain inet netctl forward" not in script


def test_setup_after_bridge_change_drops_old_element(live: LiveTable) -> None:
    moved = dataclasses.replace(NET_B, bridge="nb9")
    script = render_setup(plan_network(moved), live)
    assert 'delete element inet netctl forward-in { "nb2" }' in script
    assert (
        'add element inet netctl forward-in { "nb9" comment "netctl net=net-b" : jump in-' in script
    )


def test_setup_after_internal_change_drops_guard_chain(live: LiveTable) -> None:
    opened = NetworkPolicy("int", "nb3", ("10.91.3.0/24",))
    script = render_setup(plan_network(opened), live)
    h = network_hash("int")
    assert f"delete chain inet netctl guard-{h}" in script
    assert 'delete element inet netctl forward-guard { "nb3" }' in script


def test_setup_refuses_a_bridge_owned_by_another_network(live: LiveTable) -> None:
    with pytest.raises(FirewallError, match="already used by network 'net-a'"):
        render_setup(plan_network(NetworkPolicy("thief", "nb1", ("10.99.0.0/24",))), live)


def test_setup_repairs_a_tampered_base_chain(live: LiveTable) -> None:
    tampered = dataclasses.replace(
        live, rules=tuple(r for r in live.rules if r.body != "oifname vmap @forward-in")
    )
    script = render_setup(plan_network(NET_A), tampered)
    assert "flush chain inet netctl forward\n" in script
    assert script.count("add rule inet netctl forward ") == 3


def test_check_reports_what_is_wrong(live: LiveTable) -> None:
    h = network_hash("net-a")
    no_drop = dataclasses.replace(
        live, rules=tuple(r for r in live.rules if not (r.chain == f"in-{h}" and r.body == "drop"))
    )
    assert check_ruleset(plan_network(NET_A), no_drop) == [
        f'chain in-{h}: rule missing: drop comment "netctl net=net-a"'
    ]
    no_elem = dataclasses.replace(
        live, elements=tuple(e for e in live.elements if e.key != "nb1" or e.map != "forward-out")
    )
    problems = check_ruleset(plan_network(NET_A), no_elem)
    assert len(problems) == 1 and "forward-out" in problems[0] and "missing" in problems[0]
    assert check_ruleset(plan_network(NET_A), ABSENT) == ["table inet netctl is missing"]
    # a policy change shows up as differences too
    assert check_ruleset(plan_network(dataclasses.replace(NET_A, masquerade=False)), live) == [
        f"map postrouting-out: stale element 'nb1' : jump nat-{h}",
        f"stale chain nat-{h}",
    ]
