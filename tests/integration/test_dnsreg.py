"""netctl-dns, the chained DNS registration plugin, in throwaway namespaces: chained after
the REFERENCE bridge + host-local (issue 14: two containers resolve each other by name, a
container of another network does not), after our bridge in-process and through the
agent (which then starts dnsd itself), DEL and GC leaving nothing in dnsd's directory, and
an ADD that fails leaving nothing either."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from cniutil import REFERENCE_DIR, plugin_mode
from netctlutil import Netctl, netctl_fixture  # noqa: F401 - the netctl fixture
from nsutil import Netns, pids_in_netns, wait_for
from test_dnsreg_helpers import Chain, dig

pytestmark = pytest.mark.netns

CID_A1 = "a1a1a1a1a1a10000000000000001"
CID_A2 = "a2a2a2a2a2a20000000000000002"
CID_B1 = "b1b1b1b1b1b10000000000000003"


@pytest.fixture(autouse=True)
def _reference_plugins() -> None:
    if not all(os.access(os.path.join(REFERENCE_DIR, p), os.X_OK) for p in ("bridge", "host-local")):
        pytest.fail("the reference plugins are missing: install containernetworking-plugins "
                    "(scripts/system-packages.txt)")


def test_reference_bridge_gets_scoped_names(host_ns: Netns, make_ns: Callable[..., Netns],
                                            tmp_path: Path) -> None:
    """The issue's test: reference bridge + reference host-local + netctl-dns."""
    chain = Chain(host_ns, tmp_path, "reference")
    a_main, b_main = chain.main_conf("refa", "10.131.0.0/24"), chain.main_conf("refb", "10.132.0.0/24")
    a_dns, b_dns = chain.dns_conf("refa"), chain.dns_conf("refb")
    a1, a2, b1 = make_ns(), make_ns(), make_ns()
    r1 = chain.add(a_main, a_dns, a1, CID_A1, cni_args="IgnoreUnknown=1;K8S_POD_NAME=web1")
    r2 = chain.add(a_main, dict(a_dns, runtimeConfig={"aliases": {"refa": ["db"]}}), a2, CID_A2,
                   cni_args="IgnoreUnknown=1;K8S_POD_NAME=web2")
    rb = chain.add(b_main, b_dns, b1, CID_B1, cni_args="IgnoreUnknown=1;K8S_POD_NAME=other1")
    ip1, ip2 = (r["ips"][0]["address"].split("/")[0] for r in (r1, r2))
    # the reference's result, with dnsd on the gateway first in its DNS servers
    assert r1["dns"]["nameservers"][0] == "10.131.0.1" and rb["dns"]["nameservers"][0] == "10.132.0.1"
    assert [i["name"] for i in r1["interfaces"]][0] == "br-refa"
    # dnsd runs inside the throwaway host, started by the plugin (no agent here)
    assert chain.dnsd_pid() in pids_in_netns(host_ns.path)

    assert wait_for(lambda: dig(a1, "10.131.0.1", "web2") == [ip2])
    assert dig(a2, "10.131.0.1", "web1") == [ip1]
    assert dig(a1, "10.131.0.1", "db") == [ip2]
    assert dig(a1, "10.131.0.1", CID_A2[:12]) == [ip2]
    # another network's container: not on its own network's dnsd, nor on refa's
    assert dig(b1, "10.132.0.1", "web1") == []
    assert dig(b1, "10.131.0.1", "web1") == []
    assert wait_for(lambda: dig(b1, "10.132.0.1", "other1") == [rb["ips"][0]["address"].split("/")[0]])

    # CHECK gets the ADD's parameters again (the spec), CNI_ARGS included
    for dns, ctr, cid, pod in ((a_dns, a1, CID_A1, "web1"), (b_dns, b1, CID_B1, "other1")):
        chain.check(dns, ctr, cid, cni_args=f"IgnoreUnknown=1;K8S_POD_NAME={pod}").ok()
    for main, dns, ctr, cid in ((a_main, a_dns, a1, CID_A1), (a_main, a_dns, a2, CID_A2),
                                (b_main, b_dns, b1, CID_B1)):
        chain.delete(main, dns, ctr, cid)
    assert chain.registered() == []
    chain.delete(b_main, b_dns, None, CID_B1)  # DEL twice, without a namespace
    # dnsd exits when no network is left to serve
    assert wait_for(lambda: not (tmp_path / "dns" / "dnsd.pid").exists(), timeout=10)


@pytest.mark.parametrize("mode", ["inproc", "daemon"])
def test_our_bridge_chained(mode: str, host_ns: Netns, make_ns: Callable[..., Netns],
                            tmp_path: Path) -> None:
    """Our bridge + netctl-dns, in-process and through the warm daemon; CHECK sees dnsd
    go down; GC removes the entries of attachments that are not valid, then the network."""
    with plugin_mode(mode, host_ns, tmp_path) as env:
        chain = Chain(host_ns, tmp_path, "ours", env)
        main, dns = chain.main_conf("ours1", "10.133.0.0/24"), chain.dns_conf("ours1")
        c1, c2 = make_ns(), make_ns()
        r1 = chain.add(main, dns, c1, CID_A1, cni_args="IgnoreUnknown=1;K8S_POD_NAME=n1")
        chain.add(main, dns, c2, CID_A2, cni_args="IgnoreUnknown=1;K8S_POD_NAME=n2")
        assert r1["dns"]["nameservers"] == ["10.133.0.1"]
        assert chain.entry("ours1", CID_A1)["names"] == ["n1", CID_A1[:12]]
        assert wait_for(lambda: dig(c2, "10.133.0.1", "n1") == [r1["ips"][0]["address"].split("/")[0]])
        chain.check(dns, c1, CID_A1, cni_args="IgnoreUnknown=1;K8S_POD_NAME=n1").ok()
        # the bridge knows nothing of names: its own files hold none
        state = [p.read_text() for p in (tmp_path / "state").rglob("*") if p.is_file()]
        assert not any("n1" in text for text in state)

        os.kill(chain.dnsd_pid(), 9)
        same = "IgnoreUnknown=1;K8S_POD_NAME=n1"
        assert wait_for(lambda: chain.check(dns, c1, CID_A1, cni_args=same).rc != 0)
        err = chain.check(dns, c1, CID_A1, cni_args=same).json
        assert err["code"] == 101 and "is down" in err["msg"]

        chain.gc(dns, [(CID_A2, "eth0")]).ok()
        assert chain.registered() == [f"entries/ours1/{CID_A2}-eth0.json", "networks/ours1.json"]
        chain.gc(dns, []).ok()
        assert chain.registered() == []
        for ctr, cid in ((c1, CID_A1), (c2, CID_A2)):
            chain.delete(main, dns, ctr, cid)
        assert chain.registered() == []


def test_failed_add_leaves_nothing(host_ns: Netns, ctr_ns: Netns, tmp_path: Path) -> None:
    """dnsd's directory cannot be made: code 5, no file, and the runtime's DEL of the
    chain (bridge included) leaves nothing either."""
    chain = Chain(host_ns, tmp_path, "ours")
    blocker = tmp_path / "dns-is-a-file"
    blocker.write_text("")
    main = chain.main_conf("fail1", "10.134.0.0/24")
    dns = chain.dns_conf("fail1", dir=str(blocker / "dns"))
    first = chain._main("ADD", main, ctr_ns, CID_A1).ok().json
    res = chain.dns("ADD", dict(dns, prevResult=first), ctr_ns, CID_A1)
    assert res.rc == 1 and res.json["code"] == 5 and "dnsd" in res.json["msg"]
    assert blocker.read_text() == ""
    chain.dns("DEL", dns, ctr_ns, CID_A1)  # a DEL that cannot reach the directory may fail,
    chain._main("DEL", main, ctr_ns, CID_A1).ok()  # the main plugin's must not
    assert not (tmp_path / "state" / "fail1").exists()


def test_dnsd_is_started_by_the_agent(host_ns: Netns, make_ns: Callable[..., Netns], tmp_path: Path) -> None:
    """With an agent supervising dnsd's directory, the plugin (in-process or in the
    agent's worker) leaves starting dnsd to it: the agent counts the start as its own,
    and restarts it when it dies."""
    root = tmp_path / "root"
    sock = str(tmp_path / "agent.sock")
    agent = host_ns.spawn([sys.executable, "-I", "-m", "runtime.agent", "run", "--socket", sock,
                           "--root-lib", str(root / "lib"), "--root-run", str(root / "run")],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd="/")
    assert wait_for(lambda: os.path.exists(sock) and (root / "run" / "dnsd" / "dnsd.supervisor").exists(),
                    timeout=30)

    def status() -> dict:
        try:
            return dict(json.loads((root / "run" / "agent.json").read_text()).get("dnsd") or {})
        except (OSError, ValueError):
            return {}

    try:
        for mode in ("inproc", "daemon"):
            env = {"NETCTL_PLUGIND": "0"} if mode == "inproc" else {"NETCTL_PLUGIND_SOCKET": sock}
            chain = Chain(host_ns, tmp_path / mode, "ours", env)
            chain.tmp.mkdir()
            main = chain.main_conf(f"ag{mode}", "10.135.0.0/24" if mode == "inproc" else "10.136.0.0/24")
            dns = chain.dns_conf(f"ag{mode}", dir=str(root / "run" / "dnsd"))
            c1 = make_ns()
            res = chain.add(main, dns, c1, CID_A1, cni_args="IgnoreUnknown=1;K8S_POD_NAME=x1")
            gw = res["dns"]["nameservers"][0]
            assert dig(c1, gw, "x1") == [res["ips"][0]["address"].split("/")[0]]
            assert wait_for(lambda: status().get("state") == "running" and status().get("restarts", 0) >= 1)
            chain.delete(main, dns, c1, CID_A1)
            # no network left: dnsd exits, and the agent does not start another
            assert wait_for(lambda: status().get("state") == "idle", timeout=10)
        assert status()["restarts"] == 2  # both starts were the agent's
    finally:
        agent.terminate()
        agent.wait(15)
    assert not (root / "run" / "dnsd" / "dnsd.supervisor").exists()


def test_files_for_dnsd(host_ns: Netns, make_ns: Callable[..., Netns], tmp_path: Path) -> None:
    """What ADD writes (was the bridge plugin's embeddedDNS test): the network's listen
    address, subnets, upstreams; the entry's names (aliases of other networks ignored);
    DEL keeps the network while a container is left on it."""
    chain = Chain(host_ns, tmp_path, "ours")
    main = chain.main_conf("dnsnet", "10.120.0.0/24")
    dns = chain.dns_conf("dnsnet", runtimeConfig={"aliases": {"dnsnet": ["www", "api"], "other": ["elsewhere"]}})
    a, b = make_ns(), make_ns()
    res = chain.add(main, dns, a, CID_A1, cni_args="IgnoreUnknown=1;K8S_POD_NAME=web1")
    ip1 = res["ips"][0]["address"].split("/")[0]
    net = json.loads((chain.dns_dir / "networks" / "dnsnet.json").read_text())
    assert net == {"name": "dnsnet", "listen": ["10.120.0.1"], "subnets": ["10.120.0.0/24"],
                   "internal": False, "upstreams": ["192.0.2.53"]}
    entry = chain.entry("dnsnet", CID_A1)
    assert entry["names"] == ["web1", "www", "api", CID_A1[:12]] and entry["ipv4"] == [ip1]
    chain.add(main, dict(dns, runtimeConfig={}), b, CID_A2, cni_args="IgnoreUnknown=1;K8S_POD_NAME=db1")
    assert dig(b, "10.120.0.1", "www") == [ip1]
    chain.delete(main, dns, a, CID_A1)
    assert chain.registered() == [f"entries/dnsnet/{CID_A2}-eth0.json", "networks/dnsnet.json"]
    assert wait_for(lambda: dig(b, "10.120.0.1", "web1") == [])
    chain.delete(main, dns, b, CID_A2)
    assert chain.registered() == []



def test_netctl_rewrites_a_conflist_of_the_embedded_dns_era(netctl: Netctl) -> None:
    """A conflist an older netctl stored (the bridge's embeddedDNS, no netctl-dns) is
    rendered again before use: names keep working, and entries in the old bridge's format
    are removed by netctl-dns's DEL (same files)."""
    netctl("create", "--subnet", "172.30.40.0/24", "olddns")
    netctl.run_d("o1", "--network", "olddns")
    path = Path(netctl.path("lib", "net.d", "olddns.conflist"))
    conf = json.loads(path.read_text())
    assert [p["type"] for p in conf["plugins"]] == ["bridge", "netctl-dns", "portmap"]
    # what netctl wrote before netctl-dns existed
    conf["plugins"] = [p for p in conf["plugins"] if p["type"] != "netctl-dns"]
    conf["plugins"][0]["embeddedDNS"] = {"dir": netctl.path("run", "dnsd")}
    path.write_text(json.dumps(conf))
    netctl.run_d("o2", "--network", "olddns")
    assert [p["type"] for p in json.loads(path.read_text())["plugins"]] == ["bridge", "netctl-dns", "portmap"]
    assert netctl.exec("o1", "getent", "hosts", "o2").stdout.split()[0] == netctl.ip("o2", "olddns")
    # o1's entry as the old bridge wrote it (no owner): netctl-dns's DEL removes it all the same
    for entry in Path(netctl.path("run", "dnsd", "entries", "olddns")).glob("*.json"):
        data = json.loads(entry.read_text())
        data.pop("owner", None)
        entry.write_text(json.dumps(data))
    netctl("container", "rm", "-f", "o1", "o2")
    entries = Path(netctl.path("run", "dnsd", "entries"))
    assert not entries.exists() or not any(entries.rglob("*.json"))


def test_reference_ptp_gets_names_too(host_ns: Netns, make_ns: Callable[..., Netns], tmp_path: Path) -> None:
    """The reference ptp (a veth per container, the gateway on the host end): netctl-dns
    needs only the container's addresses and gateway from its result."""
    chain = Chain(host_ns, tmp_path, "reference", main_type="ptp")
    main = {"cniVersion": "1.0.0", "name": "refptp", "type": "ptp", "ipMasq": False,
            "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.137.0.0/24"}]],
                     "dataDir": str(tmp_path / "ipam")}}
    dns = chain.dns_conf("refptp")
    p1, p2 = make_ns(), make_ns()
    r1 = chain.add(main, dns, p1, CID_A1, cni_args="IgnoreUnknown=1;K8S_POD_NAME=pt1")
    r2 = chain.add(main, dns, p2, CID_A2, cni_args="IgnoreUnknown=1;K8S_POD_NAME=pt2")
    gw = r1["ips"][0]["gateway"]
    assert r1["dns"]["nameservers"][0] == gw
    assert wait_for(lambda: dig(p1, gw, "pt2") == [r2["ips"][0]["address"].split("/")[0]])
    assert dig(p2, gw, "pt1") == [r1["ips"][0]["address"].split("/")[0]]
    chain.delete(main, dns, p1, CID_A1)
    chain.delete(main, dns, p2, CID_A2)
    assert chain.registered() == []
