"""One test per diagnosis, on hand-built facts (no root, no kernel)."""

from __future__ import annotations

from doctor_builders import (
    DB,
    LEGACY,
    SEALED,
    WEB1,
    WEB2,
    answer,
    cross_network,
    ctr,
    facts,
    host,
    host_with_link,
    intact,
    jump,
    lookup,
    outside,
    own,
    ping,
    replace,
    same_network,
    trace,
    traced,
    with_link,
)

from netplugins.nl.host import Neighbour, Route
from runtime.doctor.diagnose import diagnose
from runtime.doctor.facts import ProbeResult, RuleCheck, TargetFacts
from runtime.doctor.report import Hop, Report, render_text
from runtime.models import PortMapping


def hop(report: Report, name: str) -> Hop:
    h = next((h for h in report.hops if h.name == name), None)
    assert h is not None, f"no {name} hop in {[x.name for x in report.hops]}"
    return h


def failed(report: Report) -> list[str]:
    return [h.name for h in report.hops if h.status == "fail"]


def healthy_pair() -> tuple:  # type: ignore[type-arg]
    web1 = ctr("web1", WEB1, lookup("172.22.16.3"),
               neigh=(Neighbour(2, "172.22.16.3", "REACHABLE", "02:00:00:00:00:03"),))
    web2 = ctr("web2", WEB2, lookup("172.22.16.2"))
    return web1, web2


def test_healthy_same_network() -> None:
    web1, web2 = healthy_pair()
    r = diagnose(facts(web1, TargetFacts("container", "web2", web2),
                       host(WEB1, WEB2, trace=same_network(), rules=intact("my_net2")),
                       probe=ping("172.22.16.3"), dns=answer("web2", "172.22.16.1", "172.22.16.3")))
    assert r.verdict.ok, render_text(r)
    assert failed(r) == []
    assert r.verdict.summary.startswith("healthy: web1 reaches web2")
    assert hop(r, "firewall").summary == ('accepted: table inet netctl chain forward -> in-my_n: '
                                          'iifname "br-net2" accept comment "netctl net=my_net2" (handle 14)')
    assert hop(r, "dns").summary == "web2 → 172.22.16.3"
    assert r.verdict.fix is None


def test_different_networks() -> None:
    web1 = ctr("web1", WEB1, lookup("172.22.17.2", gw="172.22.16.1"))
    db = ctr("db", DB, lookup("172.22.16.2", gw="172.22.17.1"))
    r = diagnose(facts(web1, TargetFacts("container", "db", db), host(WEB1, DB, trace=cross_network()),
                       probe=ping("172.22.17.2", ok=False)))
    assert failed(r) == ["network", "firewall", "dns", "probe"]
    assert r.verdict.cause == "no-shared-network"
    assert r.verdict.summary == "web1 cannot reach db: they share no network, and traffic between networks is dropped"
    assert r.verdict.fix == "connect them: netctl connect other_net web1"
    fw = hop(r, "firewall")
    assert "chain forward -> in-othe: drop" in fw.summary and "netctl net=other_net" in fw.summary
    assert any(c.code == "isolation" for c in r.causes)


def test_different_networks_connects_the_default_bridge_one_to_the_user_network() -> None:
    legacy = ctr("legacy", LEGACY, lookup("172.22.16.2", gw="172.17.0.1"))
    web1 = ctr("web1", WEB1)
    r = diagnose(facts(legacy, TargetFacts("container", "web1", web1), host(WEB1, LEGACY),
                       probe=ping("172.22.16.2", ok=False)))
    assert r.verdict.fix == "connect them: netctl connect my_net2 legacy"


def test_icc_off() -> None:
    web1, web2 = healthy_pair()
    web1 = replace(web1, view=replace(web1.view, neighbours=(Neighbour(2, "172.22.16.3", "INCOMPLETE"),)))
    r = diagnose(facts(web1, TargetFacts("container", "web2", web2), host(WEB1, WEB2, isolated=True),
                       probe=ping("172.22.16.3", ok=False)))
    assert failed(r) == ["isolation", "neighbour", "probe"]
    assert r.verdict.cause == "icc-off"
    assert (r.verdict.fix or "").startswith("icc is off on my_net2")
    assert "veth1111aaaa isolated on, veth2222bbbb isolated on" in hop(r, "isolation").evidence


def test_internal_network_to_outside() -> None:
    sealed = ctr("sealed", SEALED, replace(lookup("10.99.0.2"), dev=None, kind="unreachable",
                                           error="Network is unreachable"))
    r = diagnose(facts(sealed, TargetFacts("address", "10.99.0.2", address="10.99.0.2"),
                       host(SEALED, lookups=(lookup("10.99.0.2", dev="out0"),), trace=trace()),
                       probe=ProbeResult("icmp", "10.99.0.2", None, "unreachable", "Network is unreachable")))
    assert failed(r) == ["network", "route", "probe"]
    assert r.verdict.cause == "internal"
    assert r.verdict.summary == "sealed cannot reach 10.99.0.2: internal_net is internal: no traffic leaves it"
    assert r.verdict.fix == "connect sealed to a network that is not internal as well: netctl connect my_net2 sealed"
    assert "internal networks get no default route" in hop(r, "route").summary
    # the probe never reached the host: the kernel has no verdict, and doctor invents none
    assert hop(r, "firewall").status == "info"
    assert hop(r, "firewall").summary.startswith("no probe packet reached the host's firewall")


def test_internal_network_guard_drops_what_leaves() -> None:
    sealed = ctr("sealed", SEALED, lookup("10.99.0.2", gw="172.22.18.1"))
    guard = trace(*traced("172.22.18.2", "10.99.0.2", "br-int", "out0",
                          "inet netctl forward rule iifname vmap @forward-guard # handle 7 (verdict jump guard-inte)",
                          'inet netctl guard-inte rule drop comment "netctl net=internal_net" # handle 30 '
                          "(verdict drop)"))
    r = diagnose(facts(sealed, TargetFacts("address", "10.99.0.2", address="10.99.0.2"),
                       host(SEALED, lookups=(lookup("10.99.0.2", dev="out0"),), trace=guard),
                       probe=ping("10.99.0.2", ok=False)))
    assert hop(r, "firewall").summary == ('dropped: table inet netctl chain forward -> guard-inte: '
                                          'drop comment "netctl net=internal_net" (handle 30)')
    assert any(c.code == "internal" for c in r.causes)


def test_source_interface_down() -> None:
    web1, web2 = healthy_pair()
    web1 = with_link(web1, "eth0", up=False, lower_up=False)
    web1 = replace(web1, view=replace(web1.view, routes=(), lookups=(
        replace(lookup("172.22.16.3"), dev=None, kind="unreachable", error="Network is unreachable"),)))
    r = diagnose(facts(web1, TargetFacts("container", "web2", web2), host(WEB1, WEB2),
                       probe=ProbeResult("icmp", "172.22.16.3", None, "unreachable", "Network is unreachable")))
    assert failed(r)[:2] == ["interface", "route"]
    assert r.verdict.cause == "link-down"
    assert r.verdict.summary == "web1 cannot reach web2: eth0 in web1 is down"
    assert r.verdict.fix == "bring it up: netctl exec web1 -- ip link set eth0 up"
    assert "its routes are gone" in hop(r, "route").summary


def test_target_interface_down() -> None:
    web1, web2 = healthy_pair()
    web2 = with_link(web2, "eth0", up=False, lower_up=False)
    r = diagnose(facts(web1, TargetFacts("container", "web2", web2), host(WEB1, WEB2),
                       probe=ping("172.22.16.3", ok=False)))
    assert failed(r) == ["target interface", "probe"]
    assert r.verdict.fix == "bring it up: netctl exec web2 -- ip link set eth0 up"


def test_host_veth_down_and_not_enslaved() -> None:
    web1, web2 = healthy_pair()
    down = host_with_link(host(WEB1, WEB2), "veth2222bbbb", up=False)
    r = diagnose(facts(web1, TargetFacts("container", "web2", web2), down, probe=ping("172.22.16.3", ok=False)))
    assert r.verdict.cause == "link-down"
    assert r.verdict.fix == "bring it up: ip link set veth2222bbbb up"
    loose = host_with_link(host(WEB1, WEB2), "veth1111aaaa", master=0)
    r = diagnose(facts(web1, TargetFacts("container", "web2", web2), loose, probe=ping("172.22.16.3", ok=False)))
    assert r.verdict.cause == "not-enslaved"
    assert r.verdict.fix == "put it back: ip link set veth1111aaaa master br-net2"


def test_route_deleted() -> None:
    web1 = ctr("web1", WEB1, replace(lookup("10.99.0.2"), dev=None, kind="unreachable",
                                     error="Network is unreachable"))
    web1 = replace(web1, view=replace(web1.view, routes=(Route("172.22.16.0/24", 2),)))
    r = diagnose(facts(web1, TargetFacts("address", "10.99.0.2", address="10.99.0.2"),
                       host(WEB1, lookups=(lookup("10.99.0.2", dev="out0"),)),
                       probe=ProbeResult("icmp", "10.99.0.2", None, "unreachable", "Network is unreachable")))
    assert failed(r) == ["route", "probe"]
    assert r.verdict.cause == "route-missing"
    assert r.verdict.summary == "web1 cannot reach 10.99.0.2: the route default via 172.22.16.1 dev eth0 is missing in web1"
    assert r.verdict.fix == "put it back: netctl exec web1 -- ip route add default via 172.22.16.1 dev eth0"


def test_ip_forward_off() -> None:
    web1 = ctr("web1", WEB1, lookup("10.99.0.2", gw="172.22.16.1"))
    r = diagnose(facts(web1, TargetFacts("address", "10.99.0.2", address="10.99.0.2"),
                       host(WEB1, lookups=(lookup("10.99.0.2", dev="out0"),), ip_forward=False),
                       probe=ping("10.99.0.2", ok=False)))
    assert failed(r) == ["forwarding", "probe"]
    assert r.verdict.cause == "ip-forward-off"
    assert r.verdict.fix == "turn it back on: sysctl -w net.ipv4.ip_forward=1"


def test_external_healthy_names_the_out_chain() -> None:
    web1 = ctr("web1", WEB1, lookup("10.99.0.2", gw="172.22.16.1"))
    r = diagnose(facts(web1, TargetFacts("address", "10.99.0.2", address="10.99.0.2"),
                       host(WEB1, lookups=(lookup("10.99.0.2", dev="out0"),), trace=outside()),
                       probe=ping("10.99.0.2")))
    assert r.verdict.ok, render_text(r)
    assert "-> out-my_n: accept" in hop(r, "firewall").summary
    assert any(e.startswith("masqueraded: table inet netctl chain postrouting -> nat-my_n: ")
               for e in hop(r, "firewall").evidence)
    assert hop(r, "host route").summary == "the host sends 10.99.0.2 out out0"


def test_forward_policy_drop_in_a_foreign_table() -> None:
    web1 = ctr("web1", WEB1, lookup("10.99.0.2", gw="172.22.16.1"))
    r = diagnose(facts(web1, TargetFacts("address", "10.99.0.2", address="10.99.0.2"),
                       host(WEB1, lookups=(lookup("10.99.0.2", dev="out0"),),
                            trace=outside("ip filter FORWARD policy drop")),
                       probe=ping("10.99.0.2", ok=False)))
    assert r.verdict.cause == "firewall-policy"
    assert r.verdict.summary == "web1 cannot reach 10.99.0.2: the policy of table ip filter chain FORWARD is drop"
    assert hop(r, "firewall").summary == "dropped: table ip filter chain FORWARD: policy drop"


def test_a_foreign_rule_after_our_accept_drops() -> None:
    web1 = ctr("web1", WEB1, lookup("10.99.0.2", gw="172.22.16.1"))
    admin = "inet admin screen rule ip saddr 172.22.16.2 counter packets 3 bytes 252 drop # handle 5 (verdict drop)"
    r = diagnose(facts(web1, TargetFacts("address", "10.99.0.2", address="10.99.0.2"),
                       host(WEB1, lookups=(lookup("10.99.0.2", dev="out0"),), trace=outside(admin)),
                       probe=ping("10.99.0.2", ok=False)))
    fw = hop(r, "firewall")
    assert fw.summary == "dropped: table inet admin chain screen: ip saddr 172.22.16.2 counter drop (handle 5)"
    assert any("out-my_n: accept" in e for e in fw.evidence)  # ours accepted; accept is not final
    assert r.verdict.cause == "firewall-rule"
    assert (r.verdict.fix or "").endswith("nft delete rule inet admin screen handle 5")


def test_the_kernel_could_not_trace() -> None:
    web1 = ctr("web1", WEB1, lookup("10.99.0.2", gw="172.22.16.1"))
    r = diagnose(facts(web1, TargetFacts("address", "10.99.0.2", address="10.99.0.2"),
                       host(WEB1, lookups=(lookup("10.99.0.2", dev="out0"),),
                            trace=trace(error="nft is not installed", legacy=("ip filter",))),
                       probe=ping("10.99.0.2", ok=False)))
    fw = hop(r, "firewall")
    assert fw.status == "info" and fw.summary == "the kernel's verdict could not be traced"
    assert fw.evidence[0] == "trace: nft is not installed"
    assert any(e.startswith("iptables-legacy tables (ip filter) run too") for e in fw.evidence)
    assert r.verdict.cause == "unexplained"


def test_a_legacy_rule_that_counted_the_failed_probe() -> None:
    from netplugins.firewall.trace import LegacyHit

    web1 = ctr("web1", WEB1, lookup("10.99.0.2", gw="172.22.16.1"))
    hit = LegacyHit("ip filter", "-A FORWARD -s 172.22.16.2/32 -j REJECT --reject-with icmp-port-unreachable", 1)
    r = diagnose(facts(web1, TargetFacts("address", "10.99.0.2", address="10.99.0.2"),
                       host(WEB1, lookups=(lookup("10.99.0.2", dev="out0"),),
                            trace=replace(outside(), legacy_tables=("ip filter",), legacy=(hit,))),
                       probe=ping("10.99.0.2", ok=False)))
    assert hop(r, "firewall").summary.startswith("dropped (its counter rose during the probe): iptables-legacy")
    assert r.verdict.fix == ("remove or change that rule: iptables-legacy -t filter -D FORWARD -s 172.22.16.2/32 "
                             "-j REJECT --reject-with icmp-port-unreachable")


def test_missing_netctl_rules_are_never_healthy() -> None:
    web1 = ctr("web1", WEB1, lookup("172.22.17.2", gw="172.22.16.1"))
    db = ctr("db", DB, lookup("172.22.16.2", gw="172.22.17.1"))
    gone = (RuleCheck("network my_net2", "nftables", ("table inet netctl is missing",)),
            RuleCheck("network other_net", "nftables", ("table inet netctl is missing",)))
    r = diagnose(facts(web1, TargetFacts("container", "db", db),
                       host(WEB1, DB, rules=gone, trace=trace(*traced("172.22.16.2", "172.22.17.2", "br-net2",
                                                                          "br-other"))),
                       probe=ping("172.22.17.2")))
    assert not r.verdict.ok
    assert r.verdict.cause == "firewall-rules-missing"
    assert r.verdict.summary == ("web1 reaches db, but netctl's firewall rules for network my_net2, network "
                                 "other_net are missing or altered: isolation between networks is not enforced")
    assert r.verdict.fix == "netctl firewall reload"
    fw = hop(r, "firewall")
    assert fw.status == "fail"
    assert "missing or altered: network other_net: table inet netctl is missing" in fw.evidence


def test_ipv6_forwarding_is_read_for_ipv6() -> None:
    web1 = ctr("web1", WEB1, lookup("2001:db8::2", gw="172.22.16.1"))
    r = diagnose(facts(web1, TargetFacts("address", "2001:db8::2", address="2001:db8::2"),
                       host(WEB1, ip_forward=True, ip6_forward=False), probe=ping("2001:db8::2", ok=False)))
    assert hop(r, "forwarding").summary.startswith("net.ipv6.conf.all.forwarding = 0 on the host")
    assert r.verdict.fix == "turn it back on: sysctl -w net.ipv6.conf.all.forwarding=1"


def test_name_on_the_default_bridge() -> None:
    legacy = ctr("legacy", LEGACY, lookup("172.17.0.3"))
    legacy2 = ctr("legacy2", replace(LEGACY, addresses=("172.17.0.3/16",), host_veth="veth6666ffff"))
    r = diagnose(facts(legacy, TargetFacts("container", "legacy2", legacy2),
                       host(LEGACY, replace(LEGACY, host_veth="veth6666ffff")), probe=ping("172.17.0.3")))
    assert failed(r) == ["dns"]
    assert not r.verdict.ok
    assert r.verdict.cause == "no-dns-default-bridge"
    assert r.verdict.summary == ("legacy reaches legacy2 at 172.17.0.3, but not by name: "
                                 "legacy is on the default bridge, which has no DNS")
    assert (r.verdict.fix or "").startswith("use a user-defined network: netctl create NET")


def test_target_on_the_default_bridge_has_no_name_for_a_user_network() -> None:
    web1 = ctr("web1", WEB1, lookup("172.17.0.2", gw="172.22.16.1"))
    legacy = ctr("legacy", LEGACY)
    r = diagnose(facts(web1, TargetFacts("container", "legacy", legacy), host(WEB1, LEGACY),
                       probe=ping("172.17.0.2", ok=False)))
    assert hop(r, "dns").summary == "legacy is on the default bridge, which has no DNS"
    assert r.verdict.cause == "no-shared-network"


def test_dnsd_down_and_unknown_name() -> None:
    web1, web2 = healthy_pair()
    r = diagnose(facts(web1, TargetFacts("container", "web2", web2), host(WEB1, WEB2, dnsd_running=False),
                       probe=ping("172.22.16.3")))
    assert r.verdict.cause == "dnsd-down" and not r.verdict.ok
    assert r.verdict.fix is not None and r.verdict.fix.startswith("start the agent, which keeps it running")
    supervised = host(WEB1, WEB2, dnsd_running=False)
    supervised = replace(supervised, dnsd=replace(supervised.dnsd, supervisor=4343))
    r = diagnose(facts(web1, TargetFacts("container", "web2", web2), supervised, probe=ping("172.22.16.3")))
    assert r.verdict.fix == "the agent (pid 4343) restarts it: if it stays down, netctl agent status says why"
    r = diagnose(facts(web1, TargetFacts("container", "web2", web2), host(WEB1, WEB2),
                       probe=ping("172.22.16.3"), dns=answer("web2", "172.22.16.1")))
    assert r.verdict.cause == "dns-failed"


def test_unknown_name() -> None:
    web1, _ = healthy_pair()
    r = diagnose(facts(web1, TargetFacts("name", "nosuch"), host(WEB1), dns=answer("nosuch", "172.22.16.1")))
    assert r.verdict.cause == "unknown-name"
    assert r.probe is None


def test_alias_resolves_to_the_container() -> None:
    web1, web2 = healthy_pair()
    r = diagnose(facts(web1, TargetFacts("name", "db", web2), host(WEB1, WEB2), probe=ping("172.22.16.3"),
                       dns=answer("db", "172.22.16.1", "172.22.16.3")))
    assert r.verdict.ok
    assert hop(r, "target").summary.startswith("db is a name of web2")


def published(host_ip: str) -> tuple:  # type: ignore[type-arg]
    port = PortMapping(8080, 80, "tcp", host_ip)
    web2 = replace(ctr("web2", WEB2), ports=(port,))
    web1 = ctr("web1", WEB1, lookup("172.22.16.1"))
    return web1, web2, TargetFacts("hostport", "host:8080", web2, port=8080, mapping=port)


def test_published_on_loopback_only() -> None:
    web1, web2, target = published("127.0.0.1")
    r = diagnose(facts(web1, target, host(WEB1, WEB2), proto="tcp",
                       probe=ProbeResult("tcp", "172.22.16.1", 8080, "refused", "Connection refused")))
    assert "published port" in failed(r)
    assert r.verdict.cause == "port-loopback"
    assert r.verdict.summary == ("web1 cannot reach host:8080: port 8080 is published on 127.0.0.1 only: "
                                 "the host itself can reach it, web1 cannot")
    assert (r.verdict.fix or "").startswith("publish it on every address (netctl run -p 8080:80 ...)")


def test_published_port_rule_missing_and_present() -> None:
    web1, web2, target = published("")
    gone = (RuleCheck("published ports of web2", "nftables", ("hostports: element tcp . 8080 is missing",)),)
    r = diagnose(facts(web1, target, host(WEB1, WEB2, rules=gone), proto="tcp",
                       probe=ProbeResult("tcp", "172.22.16.1", 8080, "refused", "Connection refused")))
    assert r.verdict.cause == "port-rule-missing"
    assert r.verdict.fix == "netctl firewall reload"
    assert "published ports of web2: hostports: element tcp . 8080 is missing" in hop(r, "published port").evidence
    fw = trace(*traced("172.22.16.2", "172.22.16.1", "br-net2", "br-net2",
                       "inet netctl-ports prerouting rule fib daddr type local dnat ip to ip daddr . tcp dport "
                       "map @hostports # handle 4 (verdict accept)",
                       jump("in", "my_net2"), own("in", "my_net2", "ct status dnat accept", "accept", 12),
                       proto="tcp"))
    r = diagnose(facts(web1, target, host(WEB1, WEB2, trace=fw), proto="tcp",
                       probe=ProbeResult("tcp", "172.22.16.1", 8080, "ok", "connected", 0.2)))
    assert r.verdict.ok, render_text(r)
    assert hop(r, "published port").summary == "172.22.16.1:8080 is DNATed to 172.22.16.3:80"
    assert "ct status dnat accept" in hop(r, "firewall").summary
    r = diagnose(facts(web1, target, host(WEB1, WEB2, trace=fw), proto="tcp",
                       probe=ProbeResult("tcp", "172.22.16.1", 8080, "refused", "Connection refused")))
    assert r.verdict.cause == "not-listening"
    assert r.verdict.fix == "start a server on tcp port 80 in web2"


def test_nothing_publishes_the_port() -> None:
    web1, _, _ = published("")
    r = diagnose(facts(web1, TargetFacts("hostport", "host:9", port=9), host(WEB1), proto="tcp"))
    assert r.verdict.cause == "port-unpublished"


def test_not_listening() -> None:
    web1, web2 = healthy_pair()
    r = diagnose(facts(web1, replace(TargetFacts("container", "web2", web2), port=80), host(WEB1, WEB2),
                       proto="tcp", probe=ProbeResult("tcp", "172.22.16.3", 80, "refused", "Connection refused"),
                       dns=answer("web2", "172.22.16.1", "172.22.16.3")))
    assert r.verdict.cause == "not-listening"
    assert r.verdict.summary == ("web1 cannot reach web2: web2 refused tcp port 80: the path is open, "
                                 "but nothing listens")


def test_observed_success_wins_over_inference() -> None:
    web1, web2 = healthy_pair()
    r = diagnose(facts(web1, TargetFacts("container", "web2", web2), host(WEB1, WEB2, isolated=True),
                       probe=ping("172.22.16.3"), dns=answer("web2", "172.22.16.1", "172.22.16.3")))
    assert r.verdict.ok
    assert "although icc is off" in r.verdict.summary


def test_unexplained_failure() -> None:
    web1, web2 = healthy_pair()
    r = diagnose(facts(web1, TargetFacts("container", "web2", web2), host(WEB1, WEB2),
                       probe=ping("172.22.16.3", ok=False), dns=answer("web2", "172.22.16.1", "172.22.16.3")))
    assert r.verdict.cause == "unexplained" and not r.verdict.ok


def test_stopped_source_and_target() -> None:
    web1, web2 = healthy_pair()
    r = diagnose(facts(replace(web1, running=False, view=None), TargetFacts("container", "web2", web2),
                       host(WEB1, WEB2)))
    assert [h.name for h in r.hops] == ["source"]
    assert r.verdict.cause == "not-running"
    r = diagnose(facts(web1, TargetFacts("container", "web2", replace(web2, running=False, view=None)),
                       host(WEB1, WEB2)))
    assert r.verdict.summary == "web1 cannot reach web2: web2 is not running"


def test_bridged_traffic_without_br_netfilter_skips_the_firewall() -> None:
    web1, web2 = healthy_pair()
    r = diagnose(facts(web1, TargetFacts("container", "web2", web2), host(WEB1, WEB2, bridge_nf=False),
                       probe=ping("172.22.16.3"), dns=answer("web2", "172.22.16.1", "172.22.16.3")))
    assert "skips the IP firewall" in hop(r, "firewall").summary


def test_report_text_and_json() -> None:
    web1 = ctr("web1", WEB1, lookup("172.22.17.2", gw="172.22.16.1"))
    db = ctr("db", DB)
    r = diagnose(facts(web1, TargetFacts("container", "db", db), host(WEB1, DB),
                       probe=ping("172.22.17.2", ok=False)))
    text = render_text(r)
    assert text.splitlines()[0] == "netctl doctor: web1 → db (icmp)"
    assert "  ✘ network" in text and "  ✔ route" in text
    assert text.splitlines()[-2].startswith("verdict: ✘ web1 cannot reach db")
    assert text.splitlines()[-1] == "fix: connect them: netctl connect other_net web1"
    data = r.to_json()
    assert data["verdict"]["ok"] is False and data["verdict"]["cause"] == "no-shared-network"
    assert [h["name"] for h in data["hops"]][:3] == ["source", "target", "network"]
    assert data["probe"]["outcome"] == "timeout"
    import json

    json.dumps(data)  # plain data all the way down


def test_route_back_missing_in_the_target() -> None:
    web1 = ctr("web1", WEB1, lookup("172.22.17.2", gw="172.22.16.1"))
    db = ctr("db", DB, replace(lookup("172.22.16.2"), dev=None, kind="unreachable", error="Network is unreachable"))
    assert db.view is not None
    db = replace(db, view=replace(db.view, routes=(Route("172.22.17.0/24", 2),)))
    r = diagnose(facts(web1, TargetFacts("container", "db", db), host(WEB1, DB), probe=ping("172.22.17.2", ok=False)))
    assert hop(r, "route").status == "fail"
    assert "db has no route back to 172.22.16.2" in hop(r, "route").summary
    back = next(c for c in r.causes if c.code == "no-route-back")
    assert back.fix == "put it back: netctl exec db -- ip route add default via 172.22.17.1 dev eth0"
    assert r.verdict.cause == "no-shared-network"  # the more fundamental problem is named first


def test_namespace_that_cannot_be_entered() -> None:
    web1, web2 = healthy_pair()
    gone = ProbeResult("icmp", "172.22.16.3", None, "error", "nsenter: reassociate to namespace 'ns/net' failed")
    r = diagnose(facts(replace(web1, view=None), TargetFacts("container", "web2", web2), host(WEB1, WEB2),
                       probe=gone))
    assert r.verdict.cause == "netns-gone"
    assert r.verdict.fix == "recreate it: netctl container rm -f web1, then netctl run --name web1 ..."
    r = diagnose(facts(web1, TargetFacts("container", "web2", replace(web2, view=None)), host(WEB1, WEB2),
                       probe=ping("172.22.16.3", ok=False)))
    assert r.verdict.summary == "web1 cannot reach web2: web2's network namespace is gone"
