"""End-to-end: ``netctl`` network modes, static addresses, isolation, DNS, joined namespaces
and the way out (MASQUERADE), each test in its own throwaway host namespace.

The seed scenarios of issue 5. Every command is the real ``netctl`` (``python -m
runtime.cli``) run through ``nsenter --net=<throwaway host>`` with a private NETCTL_ROOT;
traffic only goes between namespaces the test made.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable

import pytest
from netctlutil import Netctl, netctl_fixture, no_answer, ping  # noqa: F401 - the netctl fixture
from nsutil import Netns, connect, wait_for

pytestmark = pytest.mark.netns

SUBNET = "172.22.16.0/24"
GATEWAY = "172.22.16.1"


def link_names(text: str) -> set[str]:
    """Interface names from ``ip -j link`` output."""
    return {link["ifname"] for link in json.loads(text)}


def create_my_net2(n: Netctl, *extra: str) -> None:
    n("create", "--driver", "bridge", "--subnet", SUBNET, "--gateway", GATEWAY, *extra, "my_net2")


def test_none_has_only_loopback(netctl: Netctl) -> None:
    netctl.run_d("nonec", "--network", "none")
    links = link_names(netctl.exec("nonec", "ip", "-j", "link", "show").stdout)
    assert links == {"lo"}
    state = json.loads(netctl.exec("nonec", "ip", "-j", "link", "show", "lo").stdout)[0]
    assert "UP" in state["flags"]
    settings = netctl.inspect("nonec")["NetworkSettings"]
    assert list(settings["Networks"]) == ["none"]
    assert settings["Networks"]["none"]["IPAddress"] == ""


def test_host_sees_the_host_interfaces(netctl: Netctl, host_ns: Netns) -> None:
    # something to see besides lo: a bridge network with one container
    netctl.run_d("onbridge")
    netctl.run_d("hostc", "--network", "host")
    inside = json.loads(netctl.exec("hostc", "ip", "-j", "addr", "show").stdout)
    outside = json.loads(host_ns.run(["ip", "-j", "addr", "show"]).stdout)
    assert {i["ifname"] for i in inside} == {i["ifname"] for i in outside}
    assert "netctl0" in {i["ifname"] for i in inside}
    addrs = {(i["ifname"], a["local"]) for i in inside for a in i.get("addr_info", [])}
    assert ("netctl0", "172.17.0.1") in addrs
    assert netctl.inspect("hostc")["HostConfig"]["NetworkMode"] == "host"


def test_subnet_gateway_and_static_ip(netctl: Netctl) -> None:
    create_my_net2(netctl)
    netctl.run_d("first", "--network", "my_net2")
    assert netctl.ip("first", "my_net2") == "172.22.16.2"
    gw = netctl.inspect("first")["NetworkSettings"]["Networks"]["my_net2"]["Gateway"]
    assert gw == GATEWAY
    netctl.run_d("fixed", "--network", "my_net2", "--ip", "172.22.16.8")
    assert netctl.ip("fixed", "my_net2") == "172.22.16.8"
    out = netctl.exec("fixed", "ip", "-j", "addr", "show", "eth0").stdout
    assert {a["local"] for a in json.loads(out)[0]["addr_info"] if a["family"] == "inet"} == {"172.22.16.8"}
    assert ping(netctl, "first", "172.22.16.8")


def test_static_ip_outside_the_subnet_is_refused(netctl: Netctl) -> None:
    create_my_net2(netctl)
    proc = netctl("run", "-d", "--name", "bad", "--network", "my_net2", "--ip", "172.18.0.8",
                  "--", "sleep", "600", check=False)
    assert proc.returncode != 0
    assert proc.stderr.startswith("Error: ")
    assert "does not belong to any of this network's subnets" in proc.stderr
    assert netctl("ps", "-a", "-q").stdout.strip() == ""


def test_static_ip_needs_a_user_subnet(netctl: Netctl) -> None:
    netctl("create", "auto_net")
    proc = netctl("run", "-d", "--network", "auto_net", "--ip", "172.18.0.8", "--", "sleep", "600",
                  check=False)
    assert proc.returncode != 0
    assert proc.stderr.strip() == ("Error: user specified IP address is supported only when "
                                   "connecting to networks with user configured subnets")
    proc = netctl("run", "-d", "--ip", "172.17.0.8", "--", "sleep", "600", check=False)
    assert proc.returncode != 0
    assert proc.stderr.strip() == "Error: user specified IP address is supported on user defined networks only"
    assert netctl("ps", "-a", "-q").stdout.strip() == ""


def test_isolation_between_networks_and_connect(netctl: Netctl) -> None:
    create_my_net2(netctl)
    netctl.run_d("a1", "--network", "my_net2")
    netctl.run_d("a2", "--network", "my_net2")
    netctl.run_d("b1")  # default bridge
    a1, a2 = netctl.ip("a1", "my_net2"), netctl.ip("a2", "my_net2")
    b1 = netctl.ip("b1", "bridge")
    assert ping(netctl, "a1", a2) and ping(netctl, "a2", a1)
    assert no_answer(netctl, "b1", a1)
    assert no_answer(netctl, "a1", b1)
    netctl("connect", "my_net2", "b1")
    b1_on_2 = netctl.ip("b1", "my_net2")
    assert b1_on_2.startswith("172.22.16.")
    assert ping(netctl, "b1", a1)
    assert ping(netctl, "a1", b1_on_2)
    links = link_names(netctl.exec("b1", "ip", "-j", "link", "show").stdout)
    assert links == {"lo", "eth0", "eth1"}
    # and disconnect takes it back: interface, address and lease gone, isolated again
    netctl("disconnect", "my_net2", "b1")
    assert link_names(netctl.exec("b1", "ip", "-j", "link", "show").stdout) == {"lo", "eth0"}
    assert set(netctl.inspect("b1")["NetworkSettings"]["Networks"]) == {"bridge"}
    assert b1_on_2 not in {a for _, a, _, _ in netctl.leases()}
    assert no_answer(netctl, "b1", a1)


def test_dns_on_user_network_not_on_default_bridge(netctl: Netctl) -> None:
    create_my_net2(netctl)
    netctl.run_d("web1", "--network", "my_net2")
    netctl.run_d("web2", "--network", "my_net2", "--alias", "db")
    netctl.run_d("b1")
    netctl.run_d("b2")
    web2 = netctl.ip("web2", "my_net2")
    hosts = netctl.exec("web1", "getent", "hosts", "web2").stdout.split()
    assert hosts[0] == web2
    assert netctl.exec("web1", "getent", "hosts", "db").stdout.split()[0] == web2
    assert ping(netctl, "web1", "web2")
    resolv = netctl.exec("web1", "cat", "/etc/resolv.conf").stdout
    assert f"nameserver {GATEWAY}" in resolv
    # default bridge: no embedded DNS, so b2's name is unknown to b1
    assert netctl.exec("b1", "getent", "hosts", "b2", check=False).returncode != 0
    assert no_answer(netctl, "b1", "b2")
    assert netctl.exec("b1", "getent", "hosts", "web1", check=False).returncode != 0


def test_container_mode_shares_the_namespace(netctl: Netctl) -> None:
    netctl.run_d("web1", cmd=("socat", "TCP-LISTEN:8080,fork,reuseaddr", "SYSTEM:echo hi"))
    netctl.run_d("joiner", "--network", "container:web1")
    own = json.loads(netctl.exec("web1", "ip", "-j", "addr", "show").stdout)
    joined = json.loads(netctl.exec("joiner", "ip", "-j", "addr", "show").stdout)
    assert [(i["ifname"], i["address"]) for i in own] == [(i["ifname"], i["address"]) for i in joined]

    def answer() -> str:
        proc = netctl.exec("joiner", "socat", "-T", "2", "-", "TCP:127.0.0.1:8080", check=False)
        return proc.stdout.strip()

    assert wait_for(lambda: answer() == "hi", timeout=10)
    info = netctl.inspect("joiner")
    web1_id = netctl.inspect("web1")["Id"]
    assert info["HostConfig"]["NetworkMode"] == f"container:{web1_id}"


@pytest.fixture
def outside(netctl: Netctl, host_ns: Netns, make_ns: Callable[..., Netns]) -> Netns:
    """An 'outside' namespace joined to the throwaway host: host 192.0.2.1, outside 192.0.2.2."""
    out = make_ns("nctest-out")
    connect(host_ns, out, "up0", "eth0")
    host_ns.run(["ip", "addr", "add", "192.0.2.1/24", "dev", "up0"])
    out.run(["ip", "addr", "add", "192.0.2.2/24", "dev", "eth0"])
    # the outside replies with the address it saw the connection come from
    out.spawn(["socat", "TCP-LISTEN:9000,fork,reuseaddr", "SYSTEM:echo $SOCAT_PEERADDR"])
    assert wait_for(lambda: "9000" in out.run(["ss", "-ltnH"]).stdout, timeout=10)
    return out


def test_masquerade_to_the_outside_and_internal_stays_in(netctl: Netctl, host_ns: Netns,
                                                          outside: Netns) -> None:
    create_my_net2(netctl)
    netctl("create", "--internal", "--subnet", "172.22.17.0/24", "inside")
    netctl.run_d("out1", "--network", "my_net2")
    # NET_ADMIN: the test plays a container that adds a route by hand
    netctl.run_d("in1", "--network", "inside", "--cap-add", "NET_ADMIN")
    assert host_ns.run(["sysctl", "-n", "net.ipv4.ip_forward"]).stdout.strip() == "1"
    seen = netctl.exec("out1", "socat", "-T", "3", "-", "TCP:192.0.2.2:9000").stdout.strip()
    assert seen == "192.0.2.1", "the outside must see the host's address (MASQUERADE)"
    assert ping(netctl, "out1", "192.0.2.2")
    # internal: no default route, so the outside is unreachable ...
    routes = json.loads(netctl.exec("in1", "ip", "-j", "route", "show").stdout)
    assert all(r["dst"] != "default" for r in routes)
    assert no_answer(netctl, "in1", "192.0.2.2")
    # ... and adding one by hand does not help: the host drops what leaves the subnet
    netctl.exec("in1", "ip", "route", "add", "default", "via", "172.22.17.1")
    assert no_answer(netctl, "in1", "192.0.2.2")
    proc = netctl.exec("in1", "socat", "-T", "2", "-", "TCP:192.0.2.2:9000,connect-timeout=2",
                       check=False)
    assert proc.stdout.strip() == ""


def test_foreground_run_passes_the_exit_status_on(netctl: Netctl) -> None:
    proc = netctl("run", "--rm", "--network", "none", "--", "sh", "-c", "echo out; exit 3", check=False)
    assert proc.returncode == 3 and proc.stdout == "out\n"
    assert netctl("ps", "-a", "-q").stdout.strip() == ""
    proc = netctl("run", "--name", "once", "--", "sh", "-c", "hostname; ip -o -4 addr show eth0")
    assert proc.stdout.split("\n")[1].split()[3].startswith("172.17.")
    info = netctl.inspect("once")
    assert info["State"]["Status"] == "exited" and info["State"]["ExitCode"] == 0
    assert proc.stdout.split("\n")[0] == info["Config"]["Hostname"]
    # an exited container holds no address and no namespace
    assert netctl.leases() == [] and os.listdir(netctl.path("run", "netns")) == []
    listed = netctl("ps", "-a").stdout.splitlines()
    assert len(listed) == 2 and "exited" in listed[1]


def test_stop_says_what_it_waits_for(netctl: Netctl) -> None:
    """A plain sleep ignores SIGTERM as PID 1: stop waits its grace period, and says so."""
    netctl.run_d("sleepy")
    proc = netctl("stop", "-t", "2", "sleepy")
    assert proc.stdout.strip() == "sleepy"
    assert "waiting up to 2s for sleepy to exit after SIGTERM" in proc.stderr
    # a stop that needs no waiting stays quiet
    netctl.run_d("quick", cmd=("sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done"))
    proc = netctl("stop", "-t", "5", "quick")
    assert proc.stderr == ""
