"""The ruleset parsers and the evaluator, on rulesets captured from our own drivers.

data/nft-four-networks.json: ``nft -j list ruleset`` of a throwaway host with networks
bridge (netctl0), my_net2 (br-6069690eae69), noicc (br-871728789aee, icc off) and
intnet (br-b300b8a4e9f9, internal). data/legacy-two-networks.txt:
``iptables-legacy-save`` with na (br-e44693a18827) and nb (br-52701e0913bc, internal).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.doctor.iptparse import parse_iptables_save
from runtime.doctor.netfilter import (
    Action,
    Chain,
    Cond,
    Decision,
    Packet,
    Rule,
    Ruleset,
    Step,
    evaluate,
    find_dnat_to,
)
from runtime.doctor.nfparse import ParseError, merge, parse_nft_ruleset

DATA = Path(__file__).parent / "data"
NET2, BR0, INT = "br-6069690eae69", "netctl0", "br-b300b8a4e9f9"
NA, NB = "br-e44693a18827", "br-52701e0913bc"


def decisive(d: Decision) -> Step:
    assert d.decisive is not None
    return d.decisive


def rule_text(d: Decision) -> str:
    rule = decisive(d).rule
    assert rule is not None
    return rule.text


@pytest.fixture(scope="module")
def nft() -> Ruleset:
    return parse_nft_ruleset((DATA / "nft-four-networks.json").read_text())


@pytest.fixture(scope="module")
def legacy() -> Ruleset:
    return parse_iptables_save((DATA / "legacy-two-networks.txt").read_text())


def test_nft_parse_keeps_chains_rules_and_vmaps(nft: Ruleset) -> None:
    fwd = nft.find("nftables", "inet", "netctl", "forward")
    assert fwd is not None and fwd.hook == "forward" and fwd.policy == "accept"
    assert [r.text for r in fwd.rules] == ["iifname vmap @forward-guard", "oifname vmap @forward-in",
                                          "iifname vmap @forward-out"]
    assert dict(fwd.rules[1].action.mapping)[NET2] == Action("jump", "in-5b265d26")
    inner = nft.find("nftables", "inet", "netctl", "in-5b265d26")
    assert inner is not None
    assert inner.rules[0].text == 'ct state established,related accept comment "netctl net=my_net2"'
    assert inner.rules[-1].comment == "netctl net=my_net2"


def test_nft_between_networks_is_dropped_by_isolation(nft: Ruleset) -> None:
    d = evaluate(nft, "forward", Packet(4, "172.17.0.2", "172.22.16.2", iifname=BR0, oifname=NET2))
    assert d.verdict == "drop"
    assert d.decisive is not None and decisive(d).in_chain is not None
    assert decisive(d).describe() == 'table inet netctl chain forward -> in-5b265d26: drop comment "netctl net=my_net2"'


def test_nft_same_bridge_established_and_dnat_are_accepted(nft: Ruleset) -> None:
    same = evaluate(nft, "forward", Packet(4, "172.22.16.3", "172.22.16.2", iifname=NET2, oifname=NET2))
    assert same.verdict == "accept" and rule_text(same).startswith(f'iifname "{NET2}" accept')
    est = evaluate(nft, "forward", Packet(4, "172.17.0.2", "172.22.16.2", iifname=BR0, oifname=NET2,
                                          ct_state="established"))
    assert est.verdict == "accept"
    dnat = evaluate(nft, "forward", Packet(4, "172.17.0.2", "172.22.16.2", iifname=BR0, oifname=NET2,
                                           ct_status=("dnat",)))
    assert dnat.verdict == "accept" and "ct status dnat" in rule_text(dnat)


def test_nft_internal_network_guard(nft: Ruleset) -> None:
    out = evaluate(nft, "forward", Packet(4, "172.19.0.2", "10.99.0.2", iifname=INT, oifname="out0"))
    assert out.verdict == "drop" and decisive(out).describe().endswith('guard-d80d4e4a: drop comment "netctl net=intnet"')
    inside = evaluate(nft, "forward", Packet(4, "172.19.0.2", "172.19.0.3", iifname=INT, oifname=INT))
    assert inside.verdict == "accept"


def test_nft_egress_accepted_and_masqueraded(nft: Ruleset) -> None:
    pkt = Packet(4, "172.22.16.2", "10.99.0.2", iifname=NET2, oifname="out0")
    assert decisive(evaluate(nft, "forward", pkt)).describe().endswith('out-5b265d26: accept comment "netctl net=my_net2"')
    nat = evaluate(nft, "postrouting", pkt, "nat")
    assert nat.verdict == "masquerade"
    assert "ip saddr 172.22.16.0/24" in rule_text(nat)
    # an IPv6 packet is not caught by "ip saddr" matches
    assert evaluate(nft, "postrouting", Packet(6, "fd00::2", "fd01::2", iifname=NET2, oifname="out0"),
                    "nat").verdict == "none"


def test_legacy_parse_and_evaluate(legacy: Ruleset) -> None:
    fwd = legacy.find("iptables-legacy", "ip", "filter", "FORWARD")
    assert fwd is not None and fwd.hook == "forward" and fwd.policy == "accept"
    assert fwd.rules[0].action == Action("jump", "NETCTL-FORWARD")
    dispatch = legacy.find("iptables-legacy", "ip", "filter", "NETCTL-FORWARD")
    assert dispatch is not None and dispatch.hook is None
    cross = evaluate(legacy, "forward", Packet(4, "10.50.1.2", "10.50.2.2", iifname=NA, oifname=NB))
    # nb is internal: its guard is not consulted (packet comes from na), its in-chain drops
    assert cross.verdict == "drop"
    assert decisive(cross).describe() == ('iptables-legacy filter FORWARD -> NETCTL-IN-665077f5: '
                                         '-A NETCTL-IN-665077f5 -m comment --comment "netctl net=nb" -j DROP')
    guard = evaluate(legacy, "forward", Packet(4, "10.50.2.2", "10.99.0.2", iifname=NB, oifname="out0"))
    assert guard.verdict == "drop" and "NETCTL-GUARD-665077f5" in decisive(guard).describe()
    ok = evaluate(legacy, "forward", Packet(4, "10.50.1.2", "10.99.0.2", iifname=NA, oifname="out0"))
    assert ok.verdict == "accept" and rule_text(ok).endswith("-j ACCEPT")
    nat = evaluate(legacy, "postrouting", Packet(4, "10.50.1.2", "10.99.0.2", iifname=NA, oifname="out0"), "nat")
    assert nat.verdict == "masquerade"


def test_drop_in_any_base_chain_wins(nft: Ruleset) -> None:
    legacy = parse_iptables_save("*filter\n:FORWARD DROP [0:0]\nCOMMIT\n")
    both = merge(nft, legacy)
    d = evaluate(both, "forward", Packet(4, "172.22.16.2", "10.99.0.2", iifname=NET2, oifname="out0"))
    assert d.verdict == "drop" and decisive(d).rule is None
    assert decisive(d).describe() == "iptables-legacy filter FORWARD: policy drop"
    assert [s.verdict for s in d.steps] == ["drop"]  # legacy sorts first at equal priority


def test_unknown_expressions_are_skipped_and_reported() -> None:
    text = ('{"nftables": [{"chain": {"family": "ip", "table": "t", "name": "f", "type": "filter", '
            '"hook": "forward", "prio": "filter", "policy": "accept"}}, {"rule": {"family": "ip", "table": "t", '
            '"chain": "f", "expr": [{"match": {"op": "==", "left": {"meta": {"key": "mark"}}, "right": 1}}, '
            '{"drop": null}]}}]}')
    rs = parse_nft_ruleset(text)
    d = evaluate(rs, "forward", Packet(4, "10.0.0.1", "10.0.0.2"))
    assert d.verdict == "accept"
    assert len(d.unknown) == 1 and "meta mark" in d.unknown[0]


def test_goto_return_and_wildcards() -> None:
    a = Chain("iptables-legacy", "ip", "filter", "FORWARD", (
        Rule((Cond("iifname", "==", ("veth+",)),), Action("goto", "A"), "-A FORWARD -i veth+ -g A"),
        Rule((), Action("drop"), "-A FORWARD -j DROP")), hook="forward", type="filter", policy="accept")
    sub = Chain("iptables-legacy", "ip", "filter", "A", (
        Rule((Cond("daddr", "!=", ("10.0.0.0/8",)),), Action("return"), "-A A ! -d 10.0.0.0/8 -j RETURN"),))
    rs = Ruleset((a, sub))
    # goto + return resumes after FORWARD's caller: the base chain's policy, not its DROP
    assert evaluate(rs, "forward", Packet(4, "1.1.1.1", "8.8.8.8", iifname="veth12")).verdict == "accept"
    assert evaluate(rs, "forward", Packet(4, "1.1.1.1", "10.1.1.1", iifname="veth12")).verdict == "accept"
    assert evaluate(rs, "forward", Packet(4, "1.1.1.1", "8.8.8.8", iifname="eth0")).verdict == "drop"


def test_dnat_rules_are_found_by_target(legacy: Ruleset) -> None:
    rs = parse_iptables_save(
        "*nat\n:PREROUTING ACCEPT [0:0]\n:PORTS - [0:0]\n-A PREROUTING -m addrtype --dst-type LOCAL -j PORTS\n"
        "-A PORTS -d 127.0.0.1/32 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.3:80\nCOMMIT\n")
    assert [r.text for _c, r in find_dnat_to(rs, "172.17.0.3")] == [
        "-A PORTS -d 127.0.0.1/32 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.3:80"]
    local = ("127.0.0.1", "172.17.0.1")
    hit = evaluate(rs, "prerouting", Packet(4, "172.17.0.2", "127.0.0.1", l4proto="tcp", dport=8080, local=local),
                   "nat")
    assert hit.verdict == "dnat" and hit.target == "172.17.0.3:80"
    miss = evaluate(rs, "prerouting", Packet(4, "172.17.0.2", "172.17.0.1", l4proto="tcp", dport=8080,
                                             local=local), "nat")
    assert miss.verdict == "none"


def test_bad_input_is_a_parse_error() -> None:
    with pytest.raises(ParseError):
        parse_nft_ruleset("not json")
    with pytest.raises(ParseError):
        parse_iptables_save('*filter\n-A FORWARD -m comment --comment "unterminated\nCOMMIT\n')
    assert parse_nft_ruleset("").chains == ()


def test_portmap_data_maps() -> None:
    """data/nft-portmap.json: our portmap plugin's ``inet netctl-ports`` for srv 172.30.9.2 with
    -p 127.0.0.1:18080:80 -p 18081:80 -p 18082:53/udp (host addresses 127.0.0.1, 172.30.9.1)."""
    rs = parse_nft_ruleset((DATA / "nft-portmap.json").read_text())
    local = ("127.0.0.1", "172.30.9.1")

    def nat(daddr: str, port: int, proto: str = "tcp") -> Decision:
        pkt = Packet(4, "172.30.12.2", daddr, iifname="br-other", l4proto=proto, dport=port, local=local)
        return evaluate(rs, "prerouting", pkt, "nat")

    every = nat("172.30.9.1", 18081)
    assert every.verdict == "dnat" and every.target == "172.30.9.2:80"
    assert decisive(every).describe() == ("table inet netctl-ports chain prerouting -> ports: "
                                          "dnat ip to meta l4proto . th dport map @pm-any4")
    assert nat("172.30.9.1", 18080).verdict == "none"  # published on 127.0.0.1 only
    assert nat("127.0.0.1", 18080).target == "172.30.9.2:80"
    assert nat("172.30.9.1", 18082, "udp").target == "172.30.9.2:53"
    assert nat("172.30.9.1", 18082, "tcp").verdict == "none"
    assert nat("10.1.1.1", 18081).verdict == "none"  # not a local address: fib daddr type local
    assert [r.text.split(": element ")[1] for _c, r in find_dnat_to(rs, "172.30.9.2")] == [
        "127.0.0.1 . tcp . 18080 : 172.30.9.2:80", "tcp . 18081 : 172.30.9.2:80", "udp . 18082 : 172.30.9.2:53"]
