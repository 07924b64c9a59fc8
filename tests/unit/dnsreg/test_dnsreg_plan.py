"""netctl-dns planning (pure): config, names, which addresses register, the result."""

from __future__ import annotations

import json
from typing import Any

import pytest

from netplugins.cni.errors import CniError
from netplugins.cni.types import DNS, Interface, IPConfig, Result
from netplugins.meta.dnsreg_plan import (
    OWNER,
    DnsRegConf,
    container_ips,
    dns_names,
    entry_file,
    parse_conf,
    plan_gc,
    plan_registration,
    plan_result,
)

CID = "0123456789abcdef0123"
NS = "/run/netns/c1"
#: what the reference bridge returns: bridge, host veth, container interface (index 2)
PREV = Result(interfaces=(Interface("br0", "02:00:00:00:00:01"), Interface("veth1", "02:00:00:00:00:02"),
                          Interface("eth0", "02:00:00:00:00:03", sandbox=NS)),
              ips=(IPConfig("10.1.0.5/24", "10.1.0.1", 2), IPConfig("fd00:1::5/64", "fd00:1::1", 2)),
              dns=DNS(nameservers=("192.0.2.53",), search=("corp.test",)))


def conf(**extra: Any) -> DnsRegConf:
    obj = {"cniVersion": "1.0.0", "name": "net1", "type": "netctl-dns", "dir": "/tmp/dns"} | extra
    return parse_conf(json.dumps(obj).encode())


def test_defaults_and_every_key() -> None:
    c = conf()
    assert (c.dir, c.upstreams, c.internal, c.listen, c.name) == ("/tmp/dns", (), False, (), "net1")
    c = conf(upstreams=["192.0.2.53", "2001:db8::53"], internal=True, listen=["10.1.0.1"],
             capabilities={"aliases": True}, someFutureKey=1)
    assert c.upstreams == ("192.0.2.53", "2001:db8::53") and c.internal and c.listen == ("10.1.0.1",)


@pytest.mark.parametrize("extra,word", [
    ({"dir": None}, "dir"), ({"dir": "relative"}, "dir"), ({"dir": 5}, "dir"),
    ({"upstreams": "192.0.2.53"}, "upstreams"), ({"upstreams": ["dns.example"]}, "dns.example"),
    ({"listen": [1]}, "listen"), ({"internal": "yes"}, "internal"), ({"name": "bad name"}, "network name"),
])
def test_invalid_config_is_code_7(extra: dict[str, Any], word: str) -> None:
    with pytest.raises(CniError) as exc:
        conf(**extra)
    assert exc.value.code == 7 and word in str(exc.value)


def test_dir_is_required() -> None:
    # no default: a config that lost it must not write to the host's own dnsd directory
    with pytest.raises(CniError) as exc:
        parse_conf(b'{"cniVersion": "1.0.0", "name": "n", "type": "netctl-dns"}')
    assert exc.value.code == 7 and "dir" in exc.value.msg


def test_names_order_and_sources() -> None:
    c = conf(runtimeConfig={"aliases": {"net1": ["web", "www"], "other": ["nope"]}},
             args={"cni": {"hostname": "host1", "aliases": ["extra"]}})
    assert dns_names(c.net, CID, {"K8S_POD_NAME": "pod1"}) == ("pod1", "web", "www", "extra", "host1", CID[:12])


@pytest.mark.parametrize("runtime_config,args,cni_args,names", [
    ({"aliases": {"other": ["nope"]}}, {}, {}, (CID[:12],)),
    ({"aliases": ["a1"]}, {}, {}, ("a1", CID[:12])),
    ({"aliases": {"net1": "web"}}, {"cni": {"aliases": "api"}}, {}, ("web", "api", CID[:12])),
    ({"aliases": {"net1": ["Pod1", "bad name", "a..b", "", ".", "tab\tx", 5, "ok"]}}, {},
     {"K8S_POD_NAME": "pod1"}, ("pod1", "ok", CID[:12])),
])
def test_names_edge_cases(runtime_config: dict, args: dict, cni_args: dict, names: tuple) -> None:
    c = conf(runtimeConfig=runtime_config, args=args)
    assert dns_names(c.net, CID, cni_args) == names


def test_short_container_id() -> None:
    assert dns_names(conf().net, "abc", {}) == ("abc",)


def test_registration_from_the_reference_bridge_result() -> None:
    reg = plan_registration(conf(), CID, "eth0", {"K8S_POD_NAME": "web1"}, PREV)
    assert reg is not None
    assert reg.listen == ("10.1.0.1", "fd00:1::1")
    assert reg.subnets == ("10.1.0.0/24", "fd00:1::/64")
    assert (reg.ipv4, reg.ipv6) == (("10.1.0.5",), ("fd00:1::5",))
    assert reg.names == ("web1", CID[:12])


def test_host_side_addresses_are_not_the_container() -> None:
    # an address on the host veth (interface 1) is no address of the container
    prev = PREV.with_changes(ips=(IPConfig("10.9.0.1/24", None, 1), IPConfig("10.1.0.5/24", "10.1.0.1", 2)))
    assert container_ips(prev, "eth0") == (IPConfig("10.1.0.5/24", "10.1.0.1", 2),)


def test_the_interface_named_cni_ifname_wins() -> None:
    prev = Result(interfaces=(Interface("net0", sandbox=NS), Interface("net1", sandbox=NS)),
                  ips=(IPConfig("10.1.0.5/24", "10.1.0.1", 0), IPConfig("10.2.0.5/24", "10.2.0.1", 1)))
    assert [ip.address for ip in container_ips(prev, "net1")] == ["10.2.0.5/24"]
    # no interface of that name: every sandbox interface's addresses
    assert len(container_ips(prev, "eth9")) == 2


def test_addresses_without_interface_index_all_count() -> None:
    prev = Result(ips=(IPConfig("10.1.0.5/24", "10.1.0.1"),))
    assert container_ips(prev, "eth0") == prev.ips


def test_nothing_to_register() -> None:
    # L2 only (no address) and no gateway without "listen": dnsd could not serve anything
    assert plan_registration(conf(), CID, "eth0", {}, PREV.with_changes(ips=())) is None
    no_gw = PREV.with_changes(ips=(IPConfig("10.1.0.5/24", None, 2),))
    assert plan_registration(conf(), CID, "eth0", {}, no_gw) is None
    # with "listen" the config says where dnsd answers
    reg = plan_registration(conf(listen=["10.1.0.254"]), CID, "eth0", {}, no_gw)
    assert reg is not None and reg.listen == ("10.1.0.254",)


def test_result_gets_dnsd_first_and_is_otherwise_unchanged() -> None:
    reg = plan_registration(conf(), CID, "eth0", {}, PREV)
    res = plan_result(PREV, reg)
    assert res.dns.nameservers == ("10.1.0.1", "fd00:1::1", "192.0.2.53")
    assert res.dns.search == ("corp.test",)
    assert (res.interfaces, res.ips, res.routes) == (PREV.interfaces, PREV.ips, PREV.routes)
    # a gateway already listed is not listed twice
    twice = PREV.with_changes(dns=DNS(nameservers=("10.1.0.1",)))
    assert plan_result(twice, reg).dns.nameservers == ("10.1.0.1", "fd00:1::1")
    assert plan_result(PREV, None) == PREV


def test_gc_plan_touches_only_our_stale_entries() -> None:
    entries = {
        entry_file("live", "eth0"): {"owner": OWNER},
        entry_file("gone", "eth0"): {"owner": OWNER},
        entry_file("live", "eth1"): {"owner": OWNER},   # same container, other interface
        entry_file("remote", "eth0"): {"id": "remote"},  # another host's (overlay sync)
    }
    assert plan_gc(entries, {("live", "eth0")}) == ["gone-eth0.json", "live-eth1.json"]
    assert plan_gc(entries, set()) == ["gone-eth0.json", "live-eth0.json", "live-eth1.json"]


def test_a_prev_result_with_a_bad_address_is_a_config_error_not_a_crash() -> None:
    # found by the fuzzer: an address that is no CIDR must get its own code, never 100
    bad = PREV.with_changes(ips=(IPConfig("10.1.0.5/99", "10.1.0.1", 2),))
    with pytest.raises(CniError) as err:
        plan_registration(conf(), CID, "eth0", {}, bad)
    assert err.value.code == 7 and "invalid address" in err.value.msg
    with pytest.raises(CniError) as err:  # a JSON null is not the string "None"
        Result.from_dict({"ips": [{"address": None, "gateway": "10.1.0.1", "interface": 0}]})
    assert err.value.code == 6
