"""``netctl doctor`` and the firewall: the kernel's trace names the rule that decides, in
any table, and the drivers' check says when netctl's own rules are gone.

All rules here are added inside the throwaway host namespace only. Every ``doctor``
call also asserts that its temporary trace table is gone (``NetctlHost.doctor``).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable

import pytest
from nsutil import Netns
from test_doctor_support import OUTSIDE_PEER, REPO, NetctlHost, failed, hop

pytestmark = pytest.mark.netns


def _handle(summary: str) -> str:
    m = re.search(r"\(handle (\d+)\)$", summary)
    assert m, summary
    return m.group(1)


def test_an_admins_own_table_drops_one_container(host: NetctlHost, make_ns: Callable[..., Netns]) -> None:
    host.outside(make_ns)
    host.netctl("create", "--subnet", "172.30.13.0/24", "front")
    host.sleeper("web1", "--network", "front")
    host.sleeper("web2", "--network", "front")
    # after netctl's forward chain (priority 0): netctl accepts, the admin's chain still drops
    host.ns.run(["nft", "-f", "-"], input=(
        "table inet admin {\n chain screen {\n  type filter hook forward priority 10; policy accept;\n"
        f'  ip saddr {host.ip("web1")} ip daddr {OUTSIDE_PEER} counter drop comment "no web1 outside"\n }}\n}}\n'))
    rc, r = host.doctor("web1", OUTSIDE_PEER)
    assert rc == 3
    assert failed(r) == ["firewall", "probe"]
    fw = hop(r, "firewall")
    assert fw["summary"].startswith(f"dropped: table inet admin chain screen: ip saddr {host.ip('web1')} ")
    assert 'drop comment "no web1 outside"' in fw["summary"]
    # what netctl accepted on the way is evidence: it did not decide
    assert any("table inet netctl chain forward -> out-" in e and "accept" in e for e in fw["evidence"])
    assert r["verdict"]["cause"] == "firewall-rule"
    assert r["verdict"]["summary"].startswith("web1 cannot reach 10.99.0.2: table inet admin chain screen drops it")
    handle = _handle(fw["summary"])
    assert r["verdict"]["fix"].endswith(f"nft delete rule inet admin screen handle {handle}")
    rc, r = host.doctor("web2", OUTSIDE_PEER)  # the admin's rule is about web1 only
    assert rc == 0, r["verdict"]
    host.ns.run(["nft", "delete", "rule", "inet", "admin", "screen", "handle", handle])
    rc, r = host.doctor("web1", OUTSIDE_PEER)
    assert rc == 0, r["verdict"]


def test_an_iptables_nft_rule_in_filter_forward(host: NetctlHost, make_ns: Callable[..., Netns]) -> None:
    host.outside(make_ns)
    host.netctl("create", "--subnet", "172.30.14.0/24", "front")
    host.sleeper("web1", "--network", "front")
    host.ns.run(["iptables-nft", "-I", "FORWARD", "-s", host.ip("web1"), "-p", "tcp", "--dport", "8080",
                 "-j", "REJECT"])
    host.ns.run(["iptables-nft", "-A", "FORWARD", "-s", host.ip("web1"), "-p", "icmp", "-j", "DROP"])
    rc, r = host.doctor("web1", OUTSIDE_PEER)
    assert rc == 3
    fw = hop(r, "firewall")
    assert fw["status"] == "fail"
    assert fw["summary"].startswith("dropped: table ip filter chain FORWARD: ")
    assert f"ip saddr {host.ip('web1')} " in fw["summary"] and fw["summary"].split(" (handle")[0].endswith("drop")
    assert r["verdict"]["cause"] == "firewall-rule"
    assert "table ip filter chain FORWARD drops it" in r["verdict"]["summary"]
    # a REJECT rule (another protocol) is named as well
    rc, r = host.doctor("web1", f"{OUTSIDE_PEER}:8080")
    assert rc == 3
    assert hop(r, "firewall")["summary"].startswith("dropped: table ip filter chain FORWARD: ")
    assert "reject" in hop(r, "firewall")["summary"]


def test_forward_policy_drop_in_a_foreign_table(host: NetctlHost, make_ns: Callable[..., Netns]) -> None:
    host.outside(make_ns)
    host.netctl("create", "--subnet", "172.30.15.0/24", "front")
    host.sleeper("web1", "--network", "front")
    host.ns.run(["iptables-nft", "-P", "FORWARD", "DROP"])  # as Docker sets it
    rc, r = host.doctor("web1", OUTSIDE_PEER)
    assert rc == 3
    assert hop(r, "firewall")["summary"] == "dropped: table ip filter chain FORWARD: policy drop"
    assert r["verdict"]["cause"] == "firewall-policy"


def test_an_iptables_legacy_rule_is_named_by_its_counter(host: NetctlHost, make_ns: Callable[..., Netns]) -> None:
    host.outside(make_ns)
    host.netctl("create", "--subnet", "172.30.18.0/24", "front")
    host.sleeper("web1", "--network", "front")
    ip = host.ip("web1")
    host.ns.run(["iptables-legacy", "-A", "FORWARD", "-s", ip, "-d", OUTSIDE_PEER, "-j", "DROP"])
    rc, r = host.doctor("web1", OUTSIDE_PEER)
    assert rc == 3
    fw = hop(r, "firewall")
    assert fw["summary"] == (f"dropped (its counter rose during the probe): iptables-legacy table ip filter: "
                             f"-A FORWARD -s {ip}/32 -d {OUTSIDE_PEER}/32 -j DROP (1 packet)")
    assert any(e.startswith("iptables-legacy tables (ip filter) run too") for e in fw["evidence"])
    assert r["verdict"]["fix"] == (f"remove or change that rule: iptables-legacy -t filter -D FORWARD -s {ip}/32 "
                                   f"-d {OUTSIDE_PEER}/32 -j DROP")
    host.ns.run(r["verdict"]["fix"].removeprefix("remove or change that rule: ").split())
    rc, r = host.doctor("web1", OUTSIDE_PEER)
    assert rc == 0, r["verdict"]


def test_flushed_ruleset(host: NetctlHost) -> None:
    host.netctl("create", "--subnet", "172.30.16.0/24", "front")
    host.netctl("create", "--subnet", "172.30.17.0/24", "back")
    host.sleeper("web1", "--network", "front")
    host.sleeper("db", "--network", "back")
    rc, r = host.doctor("web1", "db")
    assert rc == 3 and r["verdict"]["cause"] == "no-shared-network"  # isolation holds
    host.without_agent()  # the agent would restore the rules within a second
    host.ns.run(["nft", "flush", "ruleset"])
    rc, r = host.doctor("web1", "db")
    assert rc == 3, r["verdict"]
    assert r["probe"]["outcome"] == "ok"  # it gets through now: nothing isolates the networks
    fw = hop(r, "firewall")
    assert fw["status"] == "fail"
    assert fw["summary"].startswith("netctl's firewall rules for network front, network back are missing or altered")
    assert any(e == "missing or altered: network back: table inet netctl is missing" for e in fw["evidence"])
    v = r["verdict"]
    assert not v["ok"] and v["cause"] == "firewall-rules-missing"
    assert v["summary"].startswith("web1 reaches db, but netctl's firewall rules for network front, network back")
    assert v["summary"].endswith("isolation between networks is not enforced")
    assert v["fix"] == "netctl firewall reload"
    # a path inside one network is not called healthy either
    host.sleeper("web2", "--network", "front")
    rc, r = host.doctor("web1", "web2")
    assert rc == 3 and r["verdict"]["cause"] == "firewall-rules-missing"


def test_an_isolation_rule_deleted_by_hand(host: NetctlHost) -> None:
    host.netctl("create", "--subnet", "172.30.19.0/24", "front")
    host.netctl("create", "--subnet", "172.30.20.0/24", "back")
    host.sleeper("web1", "--network", "front")
    host.sleeper("db", "--network", "back")
    host.without_agent()  # the agent would restore the rule within a second
    listing = host.ns.run(["nft", "-a", "list", "table", "inet", "netctl"]).stdout
    chain, handle = "", ""
    for line in listing.splitlines():
        m = re.match(r"\s*chain (in-\w+) ", line)
        chain = m.group(1) if m else chain
        m = re.match(r'\s*drop comment "netctl net=back" # handle (\d+)', line)
        if m:
            handle = m.group(1)
            break
    assert handle, listing
    host.ns.run(["nft", "delete", "rule", "inet", "netctl", chain, "handle", handle])
    rc, r = host.doctor("web1", "db")
    assert rc == 3 and r["probe"]["outcome"] == "ok"
    assert r["verdict"]["cause"] == "firewall-rules-missing"
    assert r["verdict"]["summary"] == ("web1 reaches db, but netctl's firewall rules for network back are missing "
                                       "or altered: isolation between networks is not enforced")
    assert (f'missing or altered: network back: chain {chain}: rule missing: drop comment "netctl net=back"'
            in hop(r, "firewall")["evidence"])


def test_an_ipv6_target_is_diagnosed_with_ipv6_evidence(host: NetctlHost, make_ns: Callable[..., Netns]) -> None:
    out = host.outside(make_ns)
    host.ns.run(["ip", "addr", "add", "fd00:99::1/64", "dev", "out0", "nodad"])
    out.run(["ip", "addr", "add", "fd00:99::2/64", "dev", "eth0", "nodad"])
    host.netctl("create", "--ipv6", "--subnet", "172.30.21.0/24", "--subnet", "fd00:21::/64", "dual")
    host.sleeper("web1", "--network", "dual")
    out.run(["ip", "-6", "route", "add", "fd00:21::/64", "via", "fd00:99::1"])
    rc, r = host.doctor("web1", "fd00:99::2")
    assert rc == 0, r["verdict"]
    assert hop(r, "forwarding")["summary"] == "net.ipv6.conf.all.forwarding = 1 on the host"
    assert "→ fd00:99::2" in " ".join(hop(r, "firewall")["evidence"])  # the ip6 trace saw it
    host.ns.run(["iptables-nft", "-P", "FORWARD", "DROP"])  # IPv4 only: IPv6 still passes
    rc, r = host.doctor("web1", "fd00:99::2")
    assert rc == 0, r["verdict"]
    host.ns.run(["ip6tables-nft", "-P", "FORWARD", "DROP"])
    rc, r = host.doctor("web1", "fd00:99::2")
    assert rc == 3
    assert hop(r, "firewall")["summary"] == "dropped: table ip6 filter chain FORWARD: policy drop"
    host.ns.run(["ip6tables-nft", "-P", "FORWARD", "ACCEPT"])
    host.ns.run(["sysctl", "-qw", "net.ipv6.conf.all.forwarding=0"])  # IPv4 forwarding stays on
    rc, r = host.doctor("web1", "fd00:99::2")
    assert rc == 3
    assert hop(r, "forwarding")["summary"].startswith("net.ipv6.conf.all.forwarding = 0 on the host")
    assert r["verdict"]["fix"] == "turn it back on: sysctl -w net.ipv6.conf.all.forwarding=1"


def test_the_trace_table_goes_also_when_the_probe_is_interrupted(host_ns: Netns) -> None:
    script = (
        "from netplugins.firewall.trace import TraceSpec\n"
        "from netplugins.firewall.tracer import traced\n"
        "def send():\n"
        "    raise KeyboardInterrupt\n"
        "try:\n"
        "    traced(TraceSpec(4, '10.0.0.2', '10.0.0.3', 'icmp'), send)\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted')\n")
    res = host_ns.run([sys.executable, "-c", script], env={"PYTHONPATH": str(REPO), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    assert res.stdout.strip() == "interrupted", res.stderr
    assert "netctl_doctor_" not in host_ns.run(["nft", "list", "tables"]).stdout
