"""Planning: NetworkPolicy validation and the per-network chains (pure, no kernel)."""

from __future__ import annotations

import pytest

from netplugins.firewall.errors import FirewallError
from netplugins.firewall.plan import (
    Match,
    NetworkPolicy,
    Owner,
    Rule,
    network_hash,
    owner_tag,
    parse_owner,
    plan_network,
)

TAG = "netctl net=web"


def rules(policy: NetworkPolicy, role: str) -> list[tuple[tuple[Match, ...], str]]:
    chain = plan_network(policy).chain(role)  # type: ignore[arg-type]
    assert chain is not None, f"no {role} chain"
    assert all(r.comment == owner_tag(policy.name) for r in chain.rules)
    return [(r.matches, r.verdict) for r in chain.rules]


def test_policy_normalises_subnets() -> None:
    p = NetworkPolicy("web", "br-web", ["10.1.2.3/24", "10.1.2.0/24", "FD00::1/64"])  # type: ignore[arg-type]
    assert p.subnets == ("10.1.2.0/24", "fd00::/64")
    assert p.families == (4, 6)
    assert p.subnets_of(6) == ("fd00::/64",)
    assert NetworkPolicy("l2", "br0").families == (4,)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"name": "bad name"}, "invalid network name"),
        ({"name": "-lead"}, "invalid network name"),
        ({"name": "x" * 101}, "invalid network name"),
        ({"bridge": 'br"0'}, "invalid bridge name"),
        ({"bridge": "a-bridge-name-too-long"}, "invalid bridge name"),
        ({"subnets": ("10.0.0.0/33",)}, "invalid subnet"),
        ({"subnets": "10.0.0.0/24"}, "must be a list"),
        ({"masquerade": "yes"}, "masquerade"),
    ],
)
def test_policy_rejects_bad_input(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"name": "web", "bridge": "br0", "subnets": ("10.0.0.0/24",)} | kwargs
    with pytest.raises(FirewallError, match=message):
        NetworkPolicy(**args)  # type: ignore[arg-type]


def test_default_network_isolated_with_masquerade() -> None:
    p = NetworkPolicy("web", "br-web", ("10.1.0.0/24",))
    rs = plan_network(p)
    assert [c.role for c in rs.chains] == ["in", "out", "nat"]
    assert rs.hash == network_hash("web") and len(rs.hash) == 8
    assert rules(p, "in") == [
        ((Match("ct_state", "established,related"),), "accept"),
        ((Match("ct_dnat"),), "accept"),
        ((Match("iif", "br-web"),), "accept"),
        ((), "drop"),
    ]
    assert rules(p, "out") == [((), "accept")]
    assert rules(p, "nat") == [
        (
            (
                Match("oif", "br-web", negate=True),
                Match("saddr", "10.1.0.0/24"),
                Match("daddr", "224.0.0.0/4", negate=True),
            ),
            "masquerade",
        )
    ]


def test_isolate_off_drops_nothing() -> None:
    p = NetworkPolicy("web", "br-web", ("10.1.0.0/24",), isolate=False)
    assert all(verdict == "accept" for _m, verdict in rules(p, "in"))


def test_masquerade_off_has_no_nat_chain() -> None:
    rs = plan_network(NetworkPolicy("web", "br-web", ("10.1.0.0/24",), masquerade=False))
    assert rs.chain("nat") is None
    assert [c.role for c in rs.chains] == ["in", "out"]


def test_internal_guards_egress_and_never_masquerades() -> None:
    p = NetworkPolicy(
        "db", "br-db", ("10.2.0.0/24", "fd02::/64"), internal=True, masquerade=True, isolate=False
    )
    rs = plan_network(p)
    assert [c.role for c in rs.chains] == ["guard", "in"]
    assert rules(p, "guard") == [
        ((Match("oif", "br-db"),), "return"),
        ((Match("daddr", "10.2.0.0/24"),), "return"),
        ((Match("daddr", "fd02::/64"),), "return"),
        ((), "drop"),
    ]
    # internal implies isolation, whatever isolate says
    assert rules(p, "in") == [((Match("iif", "br-db"),), "accept"), ((), "drop")]


def test_dual_stack_masquerades_each_family_and_skips_multicast() -> None:
    p = NetworkPolicy("web", "br-web", ("10.1.0.0/24", "fd01::/64"))
    nat = plan_network(p).chain("nat")
    assert nat is not None
    assert [r.family for r in nat.rules] == [4, 6]
    assert Match("daddr", "ff00::/8", negate=True) in nat.rules[1].matches


def test_rule_family() -> None:
    assert Rule((), "drop", TAG).family is None
    assert Rule((Match("saddr", "fd00::/64"),), "drop", TAG).family == 6
    with pytest.raises(FirewallError, match="mixes"):
        _ = Rule((Match("saddr", "fd00::/64"), Match("daddr", "10.0.0.0/8")), "drop", TAG).family


def test_plan_is_per_network_and_deterministic() -> None:
    p = NetworkPolicy("web", "br-web", ("10.1.0.0/24",))
    assert plan_network(p) == plan_network(NetworkPolicy("web", "br-web", ("10.1.0.0/24",)))
    assert (
        plan_network(p).hash != plan_network(NetworkPolicy("web2", "br-web", ("10.1.0.0/24",))).hash
    )


@pytest.mark.parametrize(
    "comment, owner",
    [
        ("netctl net=web", Owner("web")),
        ("netctl net=web cid=abc if=eth0", Owner("web", "abc", "eth0")),
        ("netctl", None),
        ("netctl cid=abc", None),
        ("CNI firewall plugin rules", None),
        ("", None),
        (None, None),
    ],
)
def test_owner_tags_round_trip(comment: str | None, owner: Owner | None) -> None:
    assert parse_owner(comment) == owner
    if owner is not None:
        assert owner_tag(owner.network, owner.cid, owner.ifname) == comment
