"""The trace table doctor adds and the kernel's trace text it reads (pure, no root)."""

from __future__ import annotations

from pathlib import Path

from netplugins.firewall.trace import (
    TraceResult,
    TraceSpec,
    legacy_hits,
    parse_trace,
    render_table,
    trace_rules,
)
from runtime.doctor.fate import dropped, fate

DATA = Path(__file__).parent / "data"


def test_the_kernels_text_of_a_masqueraded_ping() -> None:
    # captured from `nft -a monitor` in test_ip_forward_off: note the new trace id at forward
    lines = (DATA / "trace-external.txt").read_text().splitlines()
    packets = parse_trace(lines)
    assert [p.id for p in packets] == ["ca18cb5f", "49627d4d"]
    assert packets[0].iif == "br-4b54a9b9b3eb" and packets[1].oif == "out0"
    result = TraceResult("netctl_doctor_7f648508", packets)
    (way,) = result.outgoing("172.30.8.2")
    assert way.id == "ca18cb5f,49627d4d"
    assert way.what() == "172.30.8.2 → 10.99.0.2 (in br-4b54a9b9b3eb, out out0)"
    got = fate(way)
    assert got.verdict == "accept" and dropped(result) is None
    assert got.accepted_by == ('table inet netctl chain forward -> out-2d8d6931: accept comment '
                                '"netctl net=front" (handle 17)')
    assert got.nats == ('table inet netctl chain postrouting -> nat-2d8d6931: oifname != "br-4b54a9b9b3eb" '
                         'ip saddr 172.30.8.0/24 ip daddr != 224.0.0.0/4 masquerade comment "netctl net=front" '
                         "(handle 19)",)
    # our own table's events never decide anything
    assert all("netctl_doctor_" not in a for a in got.accepts)


def test_drops_jumps_returns_and_policies() -> None:
    lines = [
        'trace id 1 ip filter FORWARD packet: iif "br0" oif "eth0" ip saddr 10.0.0.2 ip daddr 10.9.0.2',
        "trace id 1 ip filter FORWARD rule counter packets 4 bytes 336 jump DOCKER-USER # handle 3 "
        "(verdict jump DOCKER-USER)",
        "trace id 1 ip filter DOCKER-USER verdict return",
        "trace id 1 ip filter FORWARD rule ip saddr 10.0.0.2 counter packets 1 bytes 84 goto FILTERS # handle 4 "
        "(verdict goto FILTERS)",
        "trace id 1 ip filter FILTERS unknown rule handle 9 (verdict drop)",
    ]
    (p,) = parse_trace(lines)
    got = fate(p)
    assert got.verdict == "drop" and got.path == ("FORWARD", "FILTERS")
    assert got.decisive is not None and got.decisive.handle == 9 and got.decisive.text == ""
    assert got.decisive.describe(got.path) == "table ip filter chain FORWARD -> FILTERS: drop (handle 9)"
    policy = parse_trace(['trace id 2 ip filter FORWARD packet: ip saddr 10.0.0.2 ip daddr 10.9.0.2',
                          "trace id 2 ip filter FORWARD policy drop "])
    assert fate(policy[0]).decisive is not None
    assert fate(policy[0]).decisive.describe() == "table ip filter chain FORWARD: policy drop"  # type: ignore[union-attr]
    # an accept ends one base chain only: a later base chain (or hook) may still drop
    two = parse_trace(['trace id 3 inet netctl forward packet: ip saddr 10.0.0.2 ip daddr 10.9.0.2',
                       "trace id 3 inet netctl forward rule accept # handle 2 (verdict accept)",
                       "trace id 3 inet admin screen rule reject # handle 5 (verdict drop)"])
    assert fate(two[0]).verdict == "drop" and fate(two[0]).accepts == (
        "table inet netctl chain forward: accept (handle 2)",)


def test_the_trace_table_matches_only_the_probe() -> None:
    spec = TraceSpec(4, "172.30.9.2", "172.30.9.1", "tcp", 8080, final="172.30.9.3", final_port=80)
    assert trace_rules(spec) == [
        "ip saddr 172.30.9.2 ip daddr 172.30.9.1 tcp dport 8080",
        "ip saddr 172.30.9.1 ip daddr 172.30.9.2 tcp sport 8080",
        "ip saddr 172.30.9.3 ip daddr 172.30.9.2 tcp sport 80",
        "ip daddr 172.30.9.2 meta l4proto icmp",
    ]
    text = render_table("netctl_doctor_0", TraceSpec(6, "fd00::2", "fd00:1::2", "icmp"))
    assert text == (
        "table inet netctl_doctor_0 {\n"
        "\tchain pre {\n\t\ttype filter hook prerouting priority -350; policy accept;\n"
        "\t\tip6 saddr fd00::2 ip6 daddr fd00:1::2 meta l4proto ipv6-icmp meta nftrace set 1\n"
        "\t\tip6 saddr fd00:1::2 ip6 daddr fd00::2 meta l4proto ipv6-icmp meta nftrace set 1\n\t}\n"
        "\tchain out {\n\t\ttype filter hook output priority -350; policy accept;\n"
        "\t\tip6 saddr fd00::2 ip6 daddr fd00:1::2 meta l4proto ipv6-icmp meta nftrace set 1\n"
        "\t\tip6 saddr fd00:1::2 ip6 daddr fd00::2 meta l4proto ipv6-icmp meta nftrace set 1\n\t}\n"
        "}\n")


def test_legacy_counters_that_rose() -> None:
    before = ("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [2:168]\n[0:0] -A FORWARD -s 10.0.0.2/32 -j DROP\n"
              "[5:420] -A FORWARD -j ACCEPT\n[5:420] -A FORWARD -j ACCEPT\nCOMMIT\n")
    after = ("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [3:252]\n[1:84] -A FORWARD -s 10.0.0.2/32 -j DROP\n"
             "[5:420] -A FORWARD -j ACCEPT\n[6:504] -A FORWARD -j ACCEPT\nCOMMIT\n")
    hits = legacy_hits(before, after)
    assert [(h.table, h.text, h.packets, h.drops) for h in hits] == [
        ("ip filter", ":FORWARD DROP", 1, True),
        ("ip filter", "-A FORWARD -s 10.0.0.2/32 -j DROP", 1, True),
        ("ip filter", "-A FORWARD -j ACCEPT", 1, False),  # the second of two equal lines
    ]
    assert hits[1].describe() == "iptables-legacy table ip filter: -A FORWARD -s 10.0.0.2/32 -j DROP (1 packet)"
