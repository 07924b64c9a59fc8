"""bridge plugin configuration: every key, defaults, MAC precedence, errors (pure, no root)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from netplugins.cni.errors import CniError
from netplugins.main.bridge_conf import (
    DEFAULT_BRIDGE,
    DEFAULT_STATE_DIR,
    BridgeConf,
    parse_bridge_conf,
)


def parse(extra: dict[str, Any] | None = None, cni_args: dict[str, str] | None = None, **kw: Any) -> BridgeConf:
    obj: dict[str, Any] = {"cniVersion": "1.0.0", "name": "net1", "type": "bridge"}
    obj.update(extra or {})
    obj.update(kw)
    return parse_bridge_conf(json.dumps(obj).encode(), cni_args)


def error(extra: dict[str, Any], cni_args: dict[str, str] | None = None) -> CniError:
    with pytest.raises(CniError) as exc:
        parse(extra, cni_args)
    return exc.value


def test_defaults() -> None:
    conf = parse()
    assert conf.name == "net1"
    assert conf.bridge == DEFAULT_BRIDGE == "cni0"
    assert (conf.is_gateway, conf.is_default_gateway, conf.force_address, conf.ip_masq) == (False,) * 4
    assert (conf.mtu, conf.hairpin, conf.promisc, conf.ipam_type, conf.mac) == (0, False, False, "", "")
    assert conf.dns.is_empty()
    # our extensions
    assert conf.isolate is True and conf.internal is False and conf.icc is True
    assert conf.firewall_driver is None
    assert conf.state_dir == DEFAULT_STATE_DIR == "/run/netctl/bridge"


def test_every_key() -> None:
    conf = parse({
        "bridge": "br-test", "isGateway": True, "forceAddress": True, "ipMasq": True, "mtu": 1400,
        "hairpinMode": True, "ipam": {"type": "host-local", "subnet": "10.1.0.0/24"},
        "dns": {"nameservers": ["10.1.0.53"], "domain": "example.test", "search": ["a.test"],
                "options": ["ndots:2"]},
        "isolate": False, "icc": False, "firewallDriver": "iptables", "stateDir": "/tmp/x",
        "capabilities": {"mac": True}, "someFutureKey": {"x": 1},
    })
    assert conf.bridge == "br-test"
    assert conf.is_gateway and not conf.is_default_gateway and conf.force_address and conf.ip_masq
    assert conf.mtu == 1400 and conf.hairpin and not conf.promisc
    assert conf.ipam_type == "host-local"
    assert conf.dns.nameservers == ("10.1.0.53",) and conf.dns.domain == "example.test"
    assert conf.dns.search == ("a.test",) and conf.dns.options == ("ndots:2",)
    assert not conf.isolate and not conf.icc and not conf.internal
    assert conf.firewall_driver == "iptables"
    assert conf.state_dir == "/tmp/x"


def test_default_gateway_implies_gateway() -> None:
    conf = parse(isDefaultGateway=True)
    assert conf.is_gateway and conf.is_default_gateway


def test_promisc_alone() -> None:
    assert parse(promiscMode=True).promisc


def test_internal_never_masquerades() -> None:
    conf = parse(internal=True, ipMasq=True)
    assert conf.internal and not conf.ip_masq


@pytest.mark.parametrize("driver", ["nftables", "iptables", "none"])
def test_firewall_drivers(driver: str) -> None:
    assert parse(firewallDriver=driver).firewall_driver == driver


def test_empty_firewall_driver_means_auto() -> None:
    assert parse(firewallDriver="").firewall_driver is None


@pytest.mark.parametrize("backend", ["iptables", "nftables"])
def test_reference_ipmasq_backend_picks_the_driver(backend: str) -> None:
    assert parse(ipMasqBackend=backend).firewall_driver == backend
    # our own key wins when both are given
    assert parse(ipMasqBackend=backend, firewallDriver="none").firewall_driver == "none"


def test_null_values_mean_default() -> None:
    conf = parse({"bridge": None, "mtu": None, "isGateway": None, "ipam": None, "stateDir": None})
    assert conf.bridge == DEFAULT_BRIDGE and conf.mtu == 0 and not conf.is_gateway
    assert conf.ipam_type == "" and conf.state_dir == DEFAULT_STATE_DIR


def test_ipam_without_type_is_l2_only() -> None:
    assert parse(ipam={}).ipam_type == ""


def test_mtu_bounds_are_inclusive() -> None:
    assert parse(mtu=68).mtu == 68
    assert parse(mtu=65535).mtu == 65535


# --- MAC sources --------------------------------------------------------------------------

RT_MAC = "02:00:00:00:00:01"
ARGS_MAC = "02:00:00:00:00:02"
ENV_MAC = "02:00:00:00:00:03"


@pytest.mark.parametrize("runtime,args,env,want", [
    (RT_MAC, ARGS_MAC, ENV_MAC, RT_MAC),
    (None, ARGS_MAC, ENV_MAC, ARGS_MAC),
    (None, None, ENV_MAC, ENV_MAC),
    (None, None, None, ""),
    (RT_MAC, None, ENV_MAC, RT_MAC),
])
def test_mac_precedence(runtime: str | None, args: str | None, env: str | None, want: str) -> None:
    extra: dict[str, Any] = {}
    if runtime:
        extra["runtimeConfig"] = {"mac": runtime}
    if args:
        extra["args"] = {"cni": {"mac": args}}
    conf = parse(extra, {"MAC": env} if env else {})
    assert conf.mac == want


def test_mac_is_lowercased() -> None:
    assert parse(runtimeConfig={"mac": "02:AB:CD:EF:00:11"}).mac == "02:ab:cd:ef:00:11"


@pytest.mark.parametrize("where,mac,word", [
    ("runtime", "zz:00:00:00:00:01", "runtimeConfig.mac"),
    ("args", "02:00:00:00:00", "args.cni.mac"),
    ("env", "0200.0000.0001", "CNI_ARGS MAC"),
    ("env", "01:00:5e:00:00:01", "multicast"),
    ("runtime", "00:00:00:00:00:00", "all zero"),
    ("args", 12, "args.cni.mac"),
])
def test_invalid_mac(where: str, mac: Any, word: str) -> None:
    extra: dict[str, Any] = {}
    env: dict[str, str] = {}
    if where == "runtime":
        extra["runtimeConfig"] = {"mac": mac}
    elif where == "args":
        extra["args"] = {"cni": {"mac": mac}}
    else:
        env["MAC"] = mac
    err = error(extra, env)
    assert err.code == 7 and word in str(err)


# --- errors -------------------------------------------------------------------------------

@pytest.mark.parametrize("extra,words", [
    ({"hairpinMode": True, "promiscMode": True}, ["hairpin", "promiscuous"]),
    ({"mtu": 67}, ["mtu", "67", "out of range"]),
    ({"mtu": 65536}, ["mtu", "65536", "out of range"]),
    ({"mtu": -1}, ["mtu"]),
    ({"mtu": "1500"}, ["mtu"]),
    ({"mtu": True}, ["mtu"]),
    ({"bridge": "a" * 16}, ["bridge name"]),
    ({"bridge": "br/0"}, ["bridge name"]),
    ({"bridge": "br 0"}, ["bridge name"]),
    ({"bridge": "br:0"}, ["bridge name"]),
    ({"bridge": ".."}, ["bridge name"]),
    ({"bridge": 'br"0'}, ["bridge name"]),
    ({"bridge": 7}, ["bridge name"]),
    ({"isGateway": "yes"}, ["isGateway"]),
    ({"isDefaultGateway": 1}, ["isDefaultGateway"]),
    ({"forceAddress": "true"}, ["forceAddress"]),
    ({"ipMasq": 0}, ["ipMasq"]),
    ({"hairpinMode": "on"}, ["hairpinMode"]),
    ({"promiscMode": "on"}, ["promiscMode"]),
    ({"isolate": "no"}, ["isolate"]),
    ({"internal": 1}, ["internal"]),
    ({"icc": "off"}, ["icc"]),
    ({"ipam": "host-local"}, ["ipam"]),
    ({"ipam": {"type": 5}}, ["ipam.type"]),
    ({"dns": ["10.0.0.1"]}, ["dns"]),
    ({"dns": {"nameservers": 5}}, ["dns"]),
    ({"firewallDriver": "pf"}, ["firewallDriver", "pf"]),
    ({"ipMasqBackend": "pf"}, ["ipMasqBackend", "pf"]),
    ({"stateDir": "relative/dir"}, ["stateDir"]),
    ({"stateDir": 5}, ["stateDir"]),
])
def test_invalid_config(extra: dict[str, Any], words: list[str]) -> None:
    err = error(extra)
    assert err.code == 7
    for word in words:
        assert word in str(err), f"{word!r} not in {err}"


@pytest.mark.parametrize("extra,key", [
    ({"vlan": 100}, "vlan"),
    ({"vlanTrunk": [{"id": 5}]}, "vlanTrunk"),
    ({"macspoofchk": True}, "macspoofchk"),
])
def test_reference_features_we_lack_are_refused(extra: dict[str, Any], key: str) -> None:
    # silently ignoring them would give a container less isolation than its config asks for
    err = error(extra)
    assert err.code == 2 and key in err.msg


@pytest.mark.parametrize("value", [{"dir": "/run/netctl/dnsd"}, {}, None])
def test_embedded_dns_moved_to_the_dns_plugin(value: Any) -> None:
    # the bridge no longer registers names: a config that asks for it learns what does
    err = error({"embeddedDNS": value})
    assert err.code == 2 and "embeddedDNS" in err.msg and "netctl-dns" in err.details


@pytest.mark.parametrize("extra", [{"vlan": 0}, {"vlanTrunk": []}, {"macspoofchk": False}])
def test_reference_features_at_their_default_are_fine(extra: dict[str, Any]) -> None:
    parse(extra)


def test_not_json_is_code_6() -> None:
    with pytest.raises(CniError) as exc:
        parse_bridge_conf(b"{nope")
    assert exc.value.code == 6


def test_missing_name_is_code_7() -> None:
    with pytest.raises(CniError) as exc:
        parse_bridge_conf(b'{"cniVersion": "1.0.0", "type": "bridge"}')
    assert exc.value.code == 7


@pytest.mark.parametrize("extra", [
    {"hairpinMode": True, "promiscMode": True}, {"mtu": 5}, {"vlan": 3}, {"bridge": "x" * 20},
    {"runtimeConfig": {"mac": "nope"}}, {"firewallDriver": "pf"}, {"dns": []},
])
def test_teardown_ignores_what_only_add_uses(extra: dict[str, Any]) -> None:
    # DEL follows a failed ADD too: it must not fail for a key it does not act on
    obj = {"cniVersion": "1.0.0", "name": "net1", "type": "bridge", "stateDir": "/tmp/st",
           "ipam": {"type": "host-local"}, "embeddedDNS": {"dir": "/tmp/dns"}} | extra
    # embeddedDNS too: containers added by an older version are still deleted
    conf = parse_bridge_conf(json.dumps(obj).encode(), teardown=True)
    assert (conf.name, conf.ipam_type, conf.state_dir) == ("net1", "host-local", "/tmp/st")
    assert conf.bridge == DEFAULT_BRIDGE and conf.mtu == 0 and conf.mac == ""
    with pytest.raises(CniError):
        parse_bridge_conf(json.dumps(obj).encode())


@pytest.mark.parametrize("extra", [
    {"ipam": "x"}, {"stateDir": "rel"}, {"name": "bad name"},
])
def test_teardown_still_checks_what_it_needs(extra: dict[str, Any]) -> None:
    obj = {"cniVersion": "1.0.0", "name": "net1", "type": "bridge"} | extra
    with pytest.raises(CniError) as exc:
        parse_bridge_conf(json.dumps(obj).encode(), teardown=True)
    assert exc.value.code == 7
