"""The ipam section as host-local reads it (pure parsing, no store)."""

from __future__ import annotations

from typing import Any

import pytest

from ipam.config import DEFAULT_DATA_DIR, RouteConf, data_dir_of, load_ipam_config
from ipam.errors import ConfigError
from ipam.ranges import address as IPAddress
from ipam.resolvconf import parse_resolv_conf


def conf(**ipam: Any) -> dict[str, Any]:
    return {"cniVersion": "1.0.0", "name": "n", "type": "bridge", "ipam": {"type": "host-local", **ipam}}


def test_defaults() -> None:
    c = load_ipam_config(conf(ranges=[[{"subnet": "10.1.0.0/24"}]]), {})
    assert c.network == "n"
    assert c.data_dir == DEFAULT_DATA_DIR == "/run/netctl/ipam"
    assert c.requested == (None,)
    assert c.routes == () and c.resolv_conf == ""
    assert data_dir_of(conf(dataDir="/var/lib/x")) == "/var/lib/x"
    with pytest.raises(ConfigError, match="invalid dataDir"):
        data_dir_of(conf(dataDir=5))


def test_order_of_range_sets() -> None:
    raw = conf(subnet="10.2.0.0/24", ranges=[[{"subnet": "10.3.0.0/24"}]])
    raw["runtimeConfig"] = {"ipRanges": [[{"subnet": "10.1.0.0/24"}]]}
    c = load_ipam_config(raw, {})
    assert [rs.subnets() for rs in c.range_sets] == ["10.1.0.0/24", "10.2.0.0/24", "10.3.0.0/24"]


def test_requested_addresses_go_to_their_range_set() -> None:
    raw = conf(ranges=[[{"subnet": "10.1.0.0/24"}], [{"subnet": "fd00::/64"}]])
    c = load_ipam_config(raw, {"IP": "fd00::9,10.1.0.9"})
    assert c.requested == (IPAddress("10.1.0.9"), IPAddress("fd00::9"))
    # args.cni.ips present: CNI_ARGS IP is ignored
    raw["args"] = {"cni": {"ips": ["10.1.0.7"]}}
    assert load_ipam_config(raw, {"IP": "10.1.0.9"}).requested == (IPAddress("10.1.0.7"), None)
    # the same address twice is one request
    raw["runtimeConfig"] = {"ips": ["10.1.0.7/24"]}
    assert load_ipam_config(raw, {}).requested == (IPAddress("10.1.0.7"), None)


def test_routes() -> None:
    c = load_ipam_config(conf(ranges=[[{"subnet": "10.1.0.0/24"}]],
                              routes=[{"dst": "0.0.0.0/0"}, {"dst": "10.9.0.0/16", "gw": "10.1.0.254"}]), {})
    assert c.routes == (RouteConf("0.0.0.0/0"), RouteConf("10.9.0.0/16", "10.1.0.254"))
    for bad, msg in (({"gw": "1.2.3.4"}, "expected an object with dst"), ("x", "expected an object"),
                     ({"dst": "10.0.0.0/8", "gw": "x"}, "invalid route gw 'x'")):
        with pytest.raises(ConfigError, match=msg):
            load_ipam_config(conf(ranges=[[{"subnet": "10.1.0.0/24"}]], routes=[bad]), {})


def test_resolv_conf_parsing() -> None:
    rc = parse_resolv_conf("nameserver 1.1.1.1\nnameserver\ndomain a\ndomain b\nsearch x y\nsearch z\n"
                           "options rotate\n  # indented comment\n")
    assert rc.nameservers == ("1.1.1.1",)
    assert rc.domain == "b"
    assert rc.search == ("x", "y", "z")
    assert rc.options == ("rotate",)
