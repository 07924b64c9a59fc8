"""Inspect objects in Docker's shape (runtime/inspect.py), built from stored CNI results."""

from __future__ import annotations

import re
from typing import Any

from runtime.inspect import container_json, network_json
from runtime.models import Container, Endpoint, Network, PortMapping, Subnet

NET = Network(id="a" * 64, name="my_net2", driver="bridge", created="2026-01-01T00:00:00Z",
              bridge="br-aaaaaaaaaaaa", subnets=[Subnet("172.22.16.0/24", "172.22.16.1")],
              labels={"team": "net"}, user_subnet=True)
DEFAULT = Network(id="b" * 64, name="bridge", driver="bridge", created="2026-01-01T00:00:00Z",
                  bridge="netctl0", subnets=[Subnet("172.17.0.0/16", "172.17.0.1")], dns=False, builtin=True)
NONE = Network(id="c" * 64, name="none", driver="null", created="2026-01-01T00:00:00Z", builtin=True, dns=False)
DUAL = Network(id="d" * 64, name="dual", driver="bridge", created="2026-01-01T00:00:00Z", bridge="br-d",
               subnets=[Subnet("172.22.18.0/24", "172.22.18.1", "172.22.18.128/25"),
                        Subnet("fd00:18::/64", "fd00:18::1")], ipv6=True)


def bridge_result(addrs: list[tuple[str, str]], mac: str, ifname: str = "eth0") -> dict[str, Any]:
    """A bridge plugin result: bridge, host veth, container interface; ips on the last."""
    return {
        "cniVersion": "1.1.0",
        "interfaces": [{"name": "br-x", "mac": "aa:aa:aa:aa:aa:aa"},
                       {"name": "veth1234", "mac": "bb:bb:bb:bb:bb:bb"},
                       {"name": ifname, "mac": mac, "sandbox": "/run/netctl/netns/x"}],
        "ips": [{"address": a, "gateway": g, "interface": 2} for a, g in addrs],
        "routes": [{"dst": "0.0.0.0/0"}],
    }


def ctr(cid: str, name: str, endpoints: list[Endpoint], **kw: Any) -> Container:
    return Container(id=cid * 64, name=name, created="2026-01-01T00:00:01Z", command=["sleep", "600"],
                     hostname=(cid * 12), network_mode=kw.pop("network_mode", endpoints[0].network),
                     netns=f"/run/netctl/netns/{cid * 64}", pid=kw.pop("pid", 4242), state="running",
                     endpoints=endpoints, **kw)


WEB1 = ctr("1", "web1", [
    Endpoint("my_net2", "eth0", aliases=["db"], ip="172.22.16.8",
             result=bridge_result([("172.22.16.8/24", "172.22.16.1")], "02:00:00:00:00:08")),
    Endpoint("bridge", "eth1", result=bridge_result([("172.17.0.5/16", "172.17.0.1")], "02:00:00:00:00:05", "eth1")),
], ports=[PortMapping(8080, 80, "tcp", ""), PortMapping(5353, 53, "udp", "127.0.0.1")])
WEB2 = ctr("2", "web2", [Endpoint("my_net2", "eth0",
                                  result=bridge_result([("172.22.16.3/24", "172.22.16.1")], "02:00:00:00:00:03"))])
OTHER = ctr("3", "other", [Endpoint("bridge", "eth0",
                                    result=bridge_result([("172.17.0.2/16", "172.17.0.1")], "02:00:00:00:00:02"))])
NONEC = ctr("4", "nonec", [Endpoint("none", "lo")])
JOINER = ctr("5", "joiner", [Endpoint("container:web1", "joined", result={"cniVersion": "1.1.0"})],
             network_mode=f"container:{'1' * 64}")
DUALC = ctr("6", "dualc", [Endpoint("dual", "eth0", result=bridge_result(
    [("172.22.18.130/24", "172.22.18.1"), ("fd00:18::2/64", "fd00:18::1")], "02:00:00:00:00:99"))])
ALL = [WEB1, WEB2, OTHER, NONEC, JOINER, DUALC]
NETS = {n.name: n for n in (NET, DEFAULT, NONE, DUAL)}


def test_network_shape() -> None:
    obj = network_json(NET, ALL)
    assert obj["Name"] == "my_net2" and obj["Id"] == "a" * 64 and obj["Created"] == "2026-01-01T00:00:00Z"
    assert obj["Driver"] == "bridge" and obj["Scope"] == "local"
    assert obj["IPAM"] == {"Driver": "default", "Options": {},
                           "Config": [{"Subnet": "172.22.16.0/24", "Gateway": "172.22.16.1"}]}
    assert obj["Internal"] is False and obj["EnableIPv6"] is False
    assert obj["Options"] == {"com.docker.network.bridge.name": "br-aaaaaaaaaaaa"}
    assert obj["Labels"] == {"team": "net"}
    assert "Status" not in obj
    assert set(obj["Containers"]) == {WEB1.id, WEB2.id}
    assert obj["Containers"][WEB1.id] == {
        "Name": "web1", "EndpointID": obj["Containers"][WEB1.id]["EndpointID"],
        "MacAddress": "02:00:00:00:00:08", "IPv4Address": "172.22.16.8/24", "IPv6Address": ""}
    assert re.fullmatch(r"[0-9a-f]{64}", obj["Containers"][WEB1.id]["EndpointID"])
    assert obj["Containers"][WEB2.id]["IPv4Address"] == "172.22.16.3/24"


def test_network_variants() -> None:
    assert network_json(DEFAULT, ALL)["Containers"][OTHER.id]["MacAddress"] == "02:00:00:00:00:02"
    assert set(network_json(DEFAULT, ALL)["Containers"]) == {WEB1.id, OTHER.id}
    none = network_json(NONE, ALL)
    assert none["Driver"] == "null" and none["IPAM"]["Config"] == [] and none["Options"] == {}
    assert none["Containers"][NONEC.id]["IPv4Address"] == ""
    dual = network_json(DUAL, ALL, status="ready")
    assert dual["Status"] == "ready" and dual["EnableIPv6"] is True
    assert dual["IPAM"]["Config"][0]["IPRange"] == "172.22.18.128/25"
    assert "IPRange" not in dual["IPAM"]["Config"][1]
    entry = dual["Containers"][DUALC.id]
    assert entry["IPv4Address"] == "172.22.18.130/24" and entry["IPv6Address"] == "fd00:18::2/64"
    # endpoint IDs differ per network and per container, and are stable
    assert network_json(NET, ALL)["Containers"][WEB1.id]["EndpointID"] != \
        network_json(DEFAULT, ALL)["Containers"][WEB1.id]["EndpointID"]
    assert network_json(NET, ALL) == network_json(NET, ALL)


def test_container_networks() -> None:
    obj = container_json(WEB1, NETS, running=True)
    nets = obj["NetworkSettings"]["Networks"]
    assert set(nets) == {"my_net2", "bridge"}
    mine = nets["my_net2"]
    assert mine["IPAddress"] == "172.22.16.8" and mine["IPPrefixLen"] == 24
    assert mine["Gateway"] == "172.22.16.1" and mine["MacAddress"] == "02:00:00:00:00:08"
    assert mine["Aliases"] == ["db"] and mine["IPAMConfig"] == {"IPv4Address": "172.22.16.8"}
    assert mine["NetworkID"] == NET.id
    assert mine["EndpointID"] == network_json(NET, ALL)["Containers"][WEB1.id]["EndpointID"]
    assert mine["DNSNames"] == ["web1", "db", "1" * 12]
    on_default = nets["bridge"]
    assert on_default["IPAddress"] == "172.17.0.5" and on_default["IPPrefixLen"] == 16
    assert on_default["Gateway"] == "172.17.0.1" and on_default["IPAMConfig"] is None
    assert on_default["DNSNames"] is None        # no embedded DNS on the default bridge
    assert obj["NetworkSettings"]["Ports"] == {
        "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}],
        "53/udp": [{"HostIp": "127.0.0.1", "HostPort": "5353"}]}
    assert obj["State"] == {"Status": "running", "Running": True, "Pid": 4242, "ExitCode": 0}
    assert obj["Name"] == "web1" and obj["Path"] == "sleep" and obj["Args"] == ["600"]
    assert obj["HostConfig"]["NetworkMode"] == "my_net2"


def test_container_variants() -> None:
    stopped = container_json(WEB2, NETS, running=False)
    assert stopped["State"]["Running"] is False and stopped["State"]["Pid"] == 0
    dual = container_json(DUALC, NETS, running=True)["NetworkSettings"]["Networks"]["dual"]
    assert dual["IPAddress"] == "172.22.18.130" and dual["GlobalIPv6Address"] == "fd00:18::2"
    assert dual["GlobalIPv6PrefixLen"] == 64
    none = container_json(NONEC, NETS, running=True)["NetworkSettings"]["Networks"]
    assert set(none) == {"none"} and none["none"]["IPAddress"] == "" and none["none"]["Gateway"] == ""
    # Docker: a container that joined another one's namespace has no networks of its own
    joined = container_json(JOINER, NETS, running=True)
    assert joined["NetworkSettings"]["Networks"] == {}
    assert joined["HostConfig"]["NetworkMode"] == f"container:{'1' * 64}"


def test_results_without_sandbox_index() -> None:
    """Results of plugins that give no ``interface`` index (or an out-of-range one)."""
    result = {"interfaces": [{"name": "eth0", "mac": "02:00:00:00:00:77", "sandbox": "/x"}],
              "ips": [{"address": "10.9.0.2/24", "gateway": "10.9.0.1"},
                      {"address": "10.9.1.2/24", "interface": 7}]}
    c = ctr("7", "odd", [Endpoint("my_net2", "eth0", result=result)])
    entry = network_json(NET, [c])["Containers"][c.id]
    assert entry["MacAddress"] == "02:00:00:00:00:77" and entry["IPv4Address"] == "10.9.0.2/24"
    empty = ctr("8", "empty", [Endpoint("my_net2", "eth0", result={})])
    assert network_json(NET, [empty])["Containers"][empty.id]["IPv4Address"] == ""


# the keys `docker container inspect` has (Docker 20.10) that users' scripts read
DOCKER_SETTINGS_KEYS = {
    "Bridge", "SandboxID", "HairpinMode", "LinkLocalIPv6Address", "LinkLocalIPv6PrefixLen",
    "Ports", "SandboxKey", "SecondaryIPAddresses", "SecondaryIPv6Addresses", "EndpointID",
    "Gateway", "GlobalIPv6Address", "GlobalIPv6PrefixLen", "IPAddress", "IPPrefixLen",
    "IPv6Gateway", "MacAddress", "Networks"}
DOCKER_ENDPOINT_KEYS = {
    "IPAMConfig", "Links", "Aliases", "NetworkID", "EndpointID", "Gateway", "IPAddress",
    "IPPrefixLen", "IPv6Gateway", "GlobalIPv6Address", "GlobalIPv6PrefixLen", "MacAddress",
    "DriverOpts"}


def test_container_has_dockers_network_settings_keys() -> None:
    obj = container_json(WEB1, NETS, running=True, etc_dir="/var/lib/netctl/containers/x")
    settings = obj["NetworkSettings"]
    assert DOCKER_SETTINGS_KEYS <= set(settings)
    for ep in settings["Networks"].values():
        assert DOCKER_ENDPOINT_KEYS <= set(ep)
        assert ep["Links"] is None and ep["DriverOpts"] is None
    # the top-level address fields are the default bridge's endpoint (eth1 here)
    assert settings["IPAddress"] == "172.17.0.5" and settings["IPPrefixLen"] == 16
    assert settings["Gateway"] == "172.17.0.1" and settings["MacAddress"] == "02:00:00:00:00:05"
    assert settings["EndpointID"] == settings["Networks"]["bridge"]["EndpointID"]
    assert re.fullmatch(r"[0-9a-f]{64}", settings["SandboxID"])
    assert settings["SandboxKey"] == WEB1.netns and settings["HairpinMode"] is False
    assert settings["Bridge"] == "" and settings["SecondaryIPAddresses"] is None
    host = obj["HostConfig"]
    assert host["PortBindings"] == {"80/tcp": [{"HostIp": "", "HostPort": "8080"}],
                                    "53/udp": [{"HostIp": "127.0.0.1", "HostPort": "5353"}]}
    assert host["PublishAllPorts"] is False and host["Dns"] == [] and host["ExtraHosts"] is None
    assert obj["ResolvConfPath"] == "/var/lib/netctl/containers/x/resolv.conf"
    assert obj["HostsPath"] == "/var/lib/netctl/containers/x/hosts"
    assert obj["HostnamePath"] == "/var/lib/netctl/containers/x/hostname"


def test_top_level_fields_empty_off_the_default_bridge_and_ipv6_gateway() -> None:
    settings = container_json(DUALC, NETS, running=True)["NetworkSettings"]
    assert settings["IPAddress"] == "" and settings["Gateway"] == "" and settings["EndpointID"] == ""
    assert settings["Networks"]["dual"]["IPv6Gateway"] == "fd00:18::1"


def test_default_bridge_options_as_docker_shows_them() -> None:
    opts = network_json(DEFAULT, [])["Options"]
    assert opts == {
        "com.docker.network.bridge.default_bridge": "true",
        "com.docker.network.bridge.enable_icc": "true",
        "com.docker.network.bridge.enable_ip_masquerade": "true",
        "com.docker.network.bridge.host_binding_ipv4": "0.0.0.0",
        "com.docker.network.bridge.name": "netctl0",
        "com.docker.network.driver.mtu": "1500",
    }
    # a user network shows only what it was given (plus its bridge name), as Docker
    assert network_json(NET, [])["Options"] == {"com.docker.network.bridge.name": "br-aaaaaaaaaaaa"}
