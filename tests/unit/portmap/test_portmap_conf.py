"""portmap's configuration: keys, portMappings, and the container address in prevResult."""

from __future__ import annotations

import json
from typing import Any

import pytest

from netplugins.cni.errors import CniError
from netplugins.cni.types import Interface, IPConfig, Result
from netplugins.firewall.ports import PortMapping
from netplugins.meta.portmap_conf import (
    DEFAULT_STATE_DIR,
    container_addresses,
    parse_mappings,
    parse_portmap_conf,
)


def conf(**extra: Any) -> bytes:
    return json.dumps({"cniVersion": "1.0.0", "name": "web", "type": "portmap", **extra}).encode()


def test_defaults_and_reference_keys() -> None:
    c = parse_portmap_conf(conf())
    assert (c.mappings, c.state_dir, c.driver, c.snat) == ((), DEFAULT_STATE_DIR, None, True)
    c = parse_portmap_conf(conf(backend="iptables", snat=False, markMasqBit=13, stateDir="/x"))
    assert (c.driver, c.snat, c.state_dir) == ("iptables", False, "/x")
    assert parse_portmap_conf(conf(backend="iptables", firewallDriver="nftables")).driver == "nftables"


def test_mappings_from_runtime_config() -> None:
    raw = [{"hostPort": 8080, "containerPort": 80},
           {"hostPort": 53, "containerPort": 53, "protocol": "UDP", "hostIP": "127.0.0.1"},
           {"hostPort": 8080, "containerPort": 80, "protocol": "tcp", "hostIP": ""}]
    c = parse_portmap_conf(conf(runtimeConfig={"portMappings": raw}))
    assert c.mappings == (PortMapping(8080, 80), PortMapping(53, 53, "udp", "127.0.0.1"))
    assert parse_mappings(None) == ()


@pytest.mark.parametrize("extra, words", [
    ({"runtimeConfig": {"portMappings": {"hostPort": 1}}}, "must be a list"),
    ({"runtimeConfig": {"portMappings": [7]}}, "must be an object"),
    ({"runtimeConfig": {"portMappings": [{"hostPort": 1, "containerPort": 1, "hostIP": 5}]}}, "strings"),
    ({"runtimeConfig": {"portMappings": [{"hostPort": 1.5, "containerPort": 1}]}}, "host port"),
    ({"conditionsV4": ["-s", "10.0.0.0/8"]}, "conditionsV4 is not supported"),
    ({"externalSetMarkChain": "X"}, "externalSetMarkChain is not supported"),
    ({"masqAll": True}, "masqAll"),
    ({"stateDir": "relative"}, "absolute"),
    ({"backend": "pf"}, "unknown firewall driver"),
    ({"snat": "yes"}, "snat"),
])
def test_bad_config_is_code_7(extra: dict[str, Any], words: str) -> None:
    with pytest.raises(CniError) as err:
        parse_portmap_conf(conf(**extra))
    assert err.value.code == 7 and words in str(err.value)


def test_teardown_tolerates_what_add_refuses() -> None:
    c = parse_portmap_conf(conf(runtimeConfig={"portMappings": "junk"}, stateDir="/s"), teardown=True)
    assert (c.mappings, c.state_dir) == ((), "/s")
    c = parse_portmap_conf(conf(conditionsV4=["-s", "x"], stateDir="rel", snat="no"), teardown=True)
    assert (c.mappings, c.state_dir, c.snat) == ((), DEFAULT_STATE_DIR, True)
    with pytest.raises(CniError):  # the common keys still have to make sense
        parse_portmap_conf(b'{"cniVersion": "1.0.0", "type": "portmap"}', teardown=True)


def test_container_address_is_on_the_sandbox_interface() -> None:
    prev = Result(
        interfaces=(Interface("br0"), Interface("veth1"), Interface("eth0", sandbox="/run/netns/c"),
                    Interface("eth1", sandbox="/run/netns/c")),
        ips=(IPConfig("10.0.0.9/24", interface=0),        # the bridge: not the container
             IPConfig("10.1.0.2/24", interface=3),        # another container interface
             IPConfig("10.88.1.2/24", interface=2),
             IPConfig("10.88.1.3/24", interface=2),        # only the first of a family
             IPConfig("fd88::2/64", interface=2),
             IPConfig("10.9.9.9/24"),                      # no interface index
             IPConfig("10.9.9.8/24", interface=9)),        # out of range
    )
    assert container_addresses(prev, "eth0") == ["10.88.1.2/24", "fd88::2/64"]
    assert container_addresses(prev, "eth1") == ["10.1.0.2/24"]
    no_sandbox = Result(interfaces=(Interface("eth0"),), ips=(IPConfig("10.0.0.2/24", interface=0),))
    assert container_addresses(no_sandbox, "eth0") == []
