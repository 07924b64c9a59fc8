"""The forwarding guard and icc in the plans and renderers (pure; issue 13)."""

from __future__ import annotations

import pytest

from netplugins.firewall.errors import FirewallError
from netplugins.firewall.iptables import dispatch_group, guard_rule, is_guard, render_iptables
from netplugins.firewall.nft_state import LiveRule, LiveTable
from netplugins.firewall.nftables import (
    BASE_CHAINS,
    MAPS,
    check_ruleset,
    live_guard,
    render_setup,
    render_teardown,
)
from netplugins.firewall.plan import GUARD_TAG, NetworkPolicy, plan_network
from netplugins.main.forwarding import Forwarding, plan_enable


def _live(guard: tuple[int, ...], network_rules: bool = False) -> LiveTable:
    """Our skeleton (plus, optionally, one network's in-chain rule) as nft would list it."""
    rules = [LiveRule(name, i, text) for name, (_s, texts) in BASE_CHAINS.items()
             for i, text in enumerate(texts)]
    rules += [LiveRule("forward", 10 + f, f"meta nfproto ipv{f} drop", GUARD_TAG) for f in guard]
    chains = {"forward": "forward", "postrouting": "postrouting"}
    if network_rules:
        chains["in-x"] = ""
        rules.append(LiveRule("in-x", 20, "drop", "netctl net=other"))
    return LiveTable(True, chains, frozenset(m for m, _k in MAPS.values()), tuple(rules))


def test_policy_takes_a_json_list_and_validates() -> None:
    p = NetworkPolicy("n", "br0", ("10.0.0.0/24",), guard_forwarding=[6, 4, 4])  # type: ignore[arg-type]
    assert p.guard_forwarding == (4, 6)
    for bad in ("4", [5], [True]):
        with pytest.raises(FirewallError):
            NetworkPolicy("n", "br0", guard_forwarding=bad)  # type: ignore[arg-type]


def test_guard_added_once_and_kept_for_others() -> None:
    guarded = plan_network(NetworkPolicy("n", "br0", ("10.0.0.0/24",), guard_forwarding=(4,)))
    script = render_setup(guarded)
    assert script.count('meta nfproto ipv4 drop comment "netctl forwarding"') == 1
    # a live guard stays when a network without it is set up (it only grows)
    plain = plan_network(NetworkPolicy("m", "br1", ("10.0.1.0/24",)))
    assert render_setup(plain, _live((4,))).count("meta nfproto ipv4 drop") == 0  # nothing to repair
    assert live_guard(_live((4, 6))) == {4, 6}
    assert check_ruleset(guarded, _live(())) and any("base chain forward" in p for p in
                                                      check_ruleset(guarded, _live(())))


def test_guard_goes_with_the_last_network_only() -> None:
    assert render_teardown("other", _live((4,), network_rules=True)) == "delete table inet netctl\n"


def test_iptables_guard_is_last_and_shared() -> None:
    plan = render_iptables(plan_network(NetworkPolicy("n", "br0", ("10.0.0.0/24",), guard_forwarding=(4, 6))))
    assert [r for r in plan.rules if is_guard(r)] == [guard_rule(4)]  # IPv4-only network
    assert dispatch_group("DROP") > dispatch_group("NETCTL-OUT-12345678")


def test_icc_off_drops_same_bridge_and_guard_needs_verdicts() -> None:
    rs = plan_network(NetworkPolicy("n", "br0", ("10.0.0.0/24",), icc=False, isolate=False))
    ingress = rs.chain("in")
    assert ingress is not None
    assert [r.verdict for r in ingress.rules] == ["accept", "accept", "drop", "accept"]


def test_plan_enable() -> None:
    # off -> netctl's; on -> the host's; earlier record kept
    assert plan_enable({4: "0"}, {4}, ()) == ((4,), (4,))
    assert plan_enable({4: "1"}, {4}, ()) == ((), ())
    assert plan_enable({4: "1", 6: "0"}, {4, 6}, (4,)) == ((6,), (4, 6))
    assert plan_enable({6: None}, {6}, ()) == ((6,), ())  # absent: written (and fails), never ours


def test_record_and_in_use(tmp_path) -> None:  # type: ignore[no-untyped-def]
    fwd = Forwarding(str(tmp_path))
    assert fwd.recorded() == ()
    fwd._write((4,))
    assert fwd.recorded() == (4,)
    assert not fwd._in_use()
    (tmp_path / "net1").mkdir()
    assert not fwd._in_use()
    (tmp_path / "net1" / "abc-eth0.json").write_text("{}")
    assert fwd._in_use()
    # release_if_idle while in use changes nothing (and touches no sysctl)
    fwd.release_if_idle()
    assert fwd.recorded() == (4,)


def test_policy_round_trips_through_json() -> None:
    """A reconciler stores policies as JSON and re-applies them with setup_network."""
    import json
    from dataclasses import asdict

    p = NetworkPolicy("n", "br0", ("10.0.0.0/24", "fd00::/64"), icc=False, guard_forwarding=(4, 6))
    again = NetworkPolicy(**json.loads(json.dumps(asdict(p))))
    assert again == p
    assert plan_network(again) == plan_network(p)
