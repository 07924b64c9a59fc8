"""The bridge plugin's embedded DNS registration: files for dnsd, the gateway as nameserver,
names that resolve from another container, and removal on DEL."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from nsutil import Netns, pids_in_netns, wait_for
from test_bridge_helpers import make_lab

pytestmark = pytest.mark.netns

CID1 = "a1b2c3d4e5f60000000000000001"
CID2 = "f6e5d4c3b2a10000000000000002"


def dig(ns: Netns, server: str, name: str) -> list[str]:
    res = ns.run(["dig", f"@{server}", name, "A", "+short", "+time=1", "+tries=2"], check=False)
    return [line for line in res.stdout.split() if line and line[0].isdigit()]


def test_dns_registration(host_ns: Netns, make_ns: Callable[..., Netns], tmp_path: Path,
                          plugin_env: dict[str, str]) -> None:
    lab = make_lab(host_ns, tmp_path, plugin_env)
    dns = lab.dns_dir
    # an upstream inside the test's own address space: nothing may be forwarded elsewhere
    conf = lab.conf("dnsnet", "10.120.0.0/24", isDefaultGateway=True,
                    embeddedDNS={"dir": str(dns), "upstreams": ["192.0.2.53"]},
                    runtimeConfig={"aliases": {"dnsnet": ["www", "api"], "other": ["elsewhere"]}})
    a, b = make_ns(), make_ns()
    res = lab.add(conf, a, CID1, cni_args="IgnoreUnknown=1;K8S_POD_NAME=web1")
    ip1 = res["ips"][0]["address"].split("/")[0]
    assert res["dns"]["nameservers"][0] == "10.120.0.1"
    net = json.loads((dns / "networks" / "dnsnet.json").read_text())
    assert net["listen"] == ["10.120.0.1"] and net["subnets"] == ["10.120.0.0/24"]
    assert net["upstreams"] == ["192.0.2.53"] and net["internal"] is False
    entry = json.loads((dns / "entries" / "dnsnet" / f"{CID1}-eth0.json").read_text())
    assert entry["names"] == ["web1", "www", "api", CID1[:12]]
    assert entry["ipv4"] == [ip1]
    # dnsd runs inside the (throwaway) host namespace, started by the plugin
    pid = int((dns / "dnsd.pid").read_text())
    assert pid in pids_in_netns(host_ns.path)

    res2 = lab.add(dict(conf, runtimeConfig={}), b, CID2, cni_args="IgnoreUnknown=1;K8S_POD_NAME=db1")
    ip2 = res2["ips"][0]["address"].split("/")[0]
    assert wait_for(lambda: dig(a, "10.120.0.1", "db1") == [ip2])
    assert dig(b, "10.120.0.1", "web1") == [ip1]
    assert dig(b, "10.120.0.1", "www") == [ip1]
    assert dig(b, "10.120.0.1", CID1[:12]) == [ip1]

    lab.delete(conf, a, CID1)
    assert not (dns / "entries" / "dnsnet" / f"{CID1}-eth0.json").exists()
    assert (dns / "networks" / "dnsnet.json").exists()  # db1 is still on the network
    assert wait_for(lambda: dig(b, "10.120.0.1", "web1") == [])
    lab.delete(conf, b, CID2)
    assert not (dns / "networks" / "dnsnet.json").exists()
    assert not (dns / "entries" / "dnsnet").exists()
    lab.delete(conf, b, CID2)  # DEL twice
    lab.assert_clean("dnsnet")


def test_dns_without_gateway_registers_nothing(host_ns: Netns, ctr_ns: Netns, tmp_path: Path) -> None:
    lab = make_lab(host_ns, tmp_path)
    conf = lab.conf("dnsnogw", "10.121.0.0/24", isGateway=False, embeddedDNS={"dir": str(lab.dns_dir)})
    res = lab.add(conf, ctr_ns, CID1)
    # without a gateway address on the bridge there is nowhere for dnsd to listen
    assert res["dns"] == {}
    assert not (lab.dns_dir / "networks" / "dnsnogw.json").exists()
    lab.delete(conf, ctr_ns, CID1)
    lab.assert_clean("dnsnogw")
