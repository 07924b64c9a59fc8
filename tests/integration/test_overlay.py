"""Overlay networks across three "hosts" (issue 15's test lab): etcd in its own namespace,
three host namespaces on one underlay bridge, each with its own NETCTL_ROOT and sync process.

One lab serves the tests that leave the cluster healthy; the failure tests (a host killed,
etcd stopped, a host restarted) get a lab of their own.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from cniutil import PluginRun, run_plugin
from netctlutil import no_answer, ping
from nsutil import Netns, wait_for
from overlaylab import Host, Lab, in_netns

pytestmark = [pytest.mark.netns,
              pytest.mark.skipif(shutil.which("etcd") is None, reason="etcd-server not installed")]


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    lab = Lab(3, ttl=10)
    try:
        yield lab
    finally:
        assert lab.close() == []


def resolves(host: Host, ctr: str, name: str) -> str:
    """The address ``name`` resolves to from ``ctr`` ("" if it does not)."""
    proc = host.netctl.exec(ctr, "getent", "hosts", name, check=False)
    return proc.stdout.split()[0] if proc.returncode == 0 and proc.stdout.split() else ""


def fdb(host: Host, dev: str) -> str:
    """The VXLAN device's own (tunnel) entries; not what the bridge learned on that port."""
    out = host.ns.run(["bridge", "fdb", "show", "dev", dev], check=False).stdout
    return "".join(line + "\n" for line in out.splitlines() if " dst " in line)


def test_create_on_host1_is_visible_on_host3(lab: Lab) -> None:
    h1, _h2, h3 = lab.hosts
    h1.run("create", "--driver", "overlay", "--subnet", "10.50.0.0/24", "ovvis")
    ls = h3.run("ls").stdout
    assert any(line.split()[1:5] == ["ovvis", "overlay", "global", "10.50.0.0/24"] for line in ls.splitlines()[1:])
    # the subnet is taken cluster-wide, the name too
    dup = h3.run("create", "--driver", "overlay", "--subnet", "10.50.0.128/25", "other", check=False)
    assert dup.returncode != 0 and "overlaps with overlay network 'ovvis'" in dup.stderr
    again = h3.run("create", "--driver", "overlay", "ovvis", check=False)
    assert again.returncode != 0 and "already exists" in again.stderr
    # VNIs are distinct
    h3.run("create", "--driver", "overlay", "ovvis2")
    vnis = {h1.netctl.inspect(n)["Options"]["vni"] for n in ("ovvis", "ovvis2")}
    assert len(vnis) == 2
    h1.run("rm", "ovvis2")
    assert wait_for(lambda: "ovvis2" not in h3.run("ls").stdout, timeout=5)


def test_containers_on_hosts_1_and_3_talk_by_name(lab: Lab) -> None:
    h1, h2, h3 = lab.hosts
    h1.run("create", "--driver", "overlay", "ovping")
    h1.netctl.run_d("web1", "--network", "ovping")
    h3.netctl.run_d("web3", "--network", "ovping", "--alias", "db")
    assert ping(h1.netctl, "web1", "web3")
    assert ping(h3.netctl, "web3", "web1")
    assert resolves(h1, "web1", "db") == h3.netctl.ip("web3", "ovping")
    # CNI CHECK of the attachment (bridge side, VXLAN device, lease in the store)
    h1.run("check", "web1")
    # egress leaves through the container's own host, masqueraded (etcd's namespace has
    # no route back to the overlay subnet)
    assert ping(h1.netctl, "web1", lab.etcd.addr)  # type: ignore[union-attr]
    # MTU: underlay 1500 - 50 on the VXLAN device and the container's interface
    vni = h1.netctl.inspect("ovping")["Options"]["vni"]
    link = json.loads(h1.ns.run(["ip", "-j", "link", "show", f"ovvx{vni}"]).stdout)
    assert link[0]["mtu"] == 1450
    # (not /sys: the container's sysfs is the machine's)
    assert " mtu 1450 " in h1.netctl.exec("web1", "ip", "-o", "link", "show", "eth0").stdout
    # inspect on any host lists the containers of every host with their node
    members = h3.netctl.inspect("ovping")["Containers"]
    assert sorted((m["Name"], m["Node"]) for m in members.values()) == [("web1", "host1"), ("web3", "host3")]
    # rm is refused while a host has a container on it, also on a host without one
    refused = h2.run("rm", "ovping", check=False)
    assert refused.returncode != 0 and "active endpoints (web1@host1, web3@host3)" in refused.stderr
    assert "ovping" in h2.run("ls").stdout
    # a removed container's name disappears everywhere within 2 s
    h3.run("container", "rm", "-f", "web3")
    t0 = time.monotonic()
    assert wait_for(lambda: resolves(h1, "web1", "web3") == "", timeout=2.0, interval=0.1), \
        f"still resolves after {time.monotonic() - t0:.1f}s"
    h1.run("container", "rm", "-f", "web1")
    h3.run("rm", "ovping")
    # on the host that removed it, the plugins' GC took the tunnel and then the bridge
    assert wait_for(lambda: f"ovvx{vni}" not in h3.ns.run(["ip", "-o", "link"]).stdout, timeout=10)
    assert f"ovbr{vni}" not in h3.ns.run(["ip", "-o", "link"]).stdout
    # removed by host 3: host 1's next netctl command forgets it, its sync process drops the tunnel
    assert "ovping" not in h1.run("ls").stdout
    assert wait_for(lambda: f"ovvx{vni}" not in h1.ns.run(["ip", "-o", "link"]).stdout, timeout=10)
    assert f"ovbr{vni}" not in h1.ns.run(["ip", "-o", "link"]).stdout


def test_two_overlays_and_a_local_bridge_cannot_reach_each_other(lab: Lab) -> None:
    h1, h2, _h3 = lab.hosts
    h1.run("create", "--driver", "overlay", "ova")
    h1.run("create", "--driver", "overlay", "ovb")
    h2.run("create", "loc")
    h1.netctl.run_d("a1", "--network", "ova")
    h2.netctl.run_d("a2", "--network", "ova")
    h2.netctl.run_d("b2", "--network", "ovb")
    h1.netctl.run_d("b1", "--network", "ovb")
    h2.netctl.run_d("l2", "--network", "loc")
    assert ping(h1.netctl, "a1", h2.netctl.ip("a2", "ova"))
    assert ping(h1.netctl, "b1", h2.netctl.ip("b2", "ovb"))
    assert no_answer(h1.netctl, "a1", h2.netctl.ip("b2", "ovb"))    # other overlay, other host
    assert no_answer(h1.netctl, "a1", h1.netctl.ip("b1", "ovb"))    # other overlay, same host
    assert no_answer(h2.netctl, "a2", h2.netctl.ip("l2", "loc"))    # overlay → local bridge
    assert no_answer(h2.netctl, "l2", h2.netctl.ip("a2", "ova"))    # local bridge → overlay
    assert resolves(h1, "a1", "b2") == ""                            # names scoped per network
    assert resolves(h1, "a1", "a2") == h2.netctl.ip("a2", "ova")
    for h, names in ((h1, ("a1", "b1")), (h2, ("a2", "b2", "l2"))):
        h.run("container", "rm", "-f", *names)
    h1.run("rm", "ova", "ovb")
    h2.run("rm", "loc")


def test_internal_overlay_reaches_peers_but_not_outside(lab: Lab) -> None:
    h1, h2, _h3 = lab.hosts
    h1.run("--store", lab.etcd.url, "create", "--driver", "overlay", "--internal", "ovint")  # type: ignore[union-attr]
    h1.netctl.run_d("i1", "--network", "ovint")
    h2.netctl.run_d("i2", "--network", "ovint")
    assert ping(h1.netctl, "i1", "i2")
    assert no_answer(h1.netctl, "i1", lab.etcd.addr)  # type: ignore[union-attr]
    h1.run("container", "rm", "-f", "i1")
    h2.run("container", "rm", "-f", "i2")
    h2.run("rm", "ovint")


def _overlay_conf(host: Host, net: str) -> dict[str, object]:
    with open(host.netctl.path("lib", "net.d", f"{net}.conflist")) as fh:
        conflist = json.load(fh)
    conf = dict(conflist["plugins"][0])
    conf.update({"cniVersion": "1.0.0", "name": net})
    return conf


def test_60_concurrent_adds_over_3_hosts_get_60_addresses(lab: Lab) -> None:
    h1 = lab.hosts[0]
    h1.run("create", "--driver", "overlay", "ovmany")
    for h in lab.hosts:
        h.run("ls")  # mirror the network there
    jobs = []
    spaces: list[Netns] = []
    try:
        for i in range(60):
            host = lab.hosts[i % 3]
            ns = Netns.create("nctest-c")
            spaces.append(ns)
            jobs.append((host, ns, f"{i:02d}" * 32))

        def add(job: tuple[Host, Netns, str]) -> PluginRun:
            host, ns, cid = job
            env = {"NETCTL_PLUGIND": "1", "NETCTL_PLUGIND_SOCKET": host.netctl.path("run", "plugind.sock")}
            return run_plugin(host.ns, "overlay", "ADD", _overlay_conf(host, "ovmany"), container_id=cid,
                              netns=ns.path, env=env)

        with ThreadPoolExecutor(60) as pool:
            runs = list(pool.map(add, jobs))
        failed = [r for r in runs if r.rc != 0]
        assert not failed, failed[:3]
        addrs = [r.json["ips"][0]["address"] for r in runs]
        assert len(set(addrs)) == 60
        members = h1.netctl.inspect("ovmany")["Containers"]
        assert len(members) == 60
        assert {m["Node"] for m in members.values()} == {"host1", "host2", "host3"}
        # every host learns the 40 containers of the others
        dev = f"ovvx{h1.netctl.inspect('ovmany')['Options']['vni']}"
        for h in lab.hosts:
            assert wait_for(lambda h=h: fdb(h, dev).count(" dst ") == 40, timeout=10), fdb(h, dev)
    finally:
        for host, ns, cid in jobs:
            run_plugin(host.ns, "overlay", "DEL", _overlay_conf(host, "ovmany"), container_id=cid, netns=ns.path)
        for ns in spaces:
            ns.delete()
    h1.run("rm", "ovmany")


def test_doctor_names_the_missing_tunnel_entry_and_a_restarted_syncd_repairs_it(lab: Lab) -> None:
    h1, h2, _h3 = lab.hosts
    h1.run("create", "--driver", "overlay", "ovdoc")
    h1.netctl.run_d("d1", "--network", "ovdoc")
    h2.netctl.run_d("d2", "--network", "ovdoc")
    ok = h1.run("doctor", "d1", "d2")
    assert "✔ tunnel entry" in ok.stdout and "✔ tunnel route" in ok.stdout
    graph = h1.run("graph", "--format", "text").stdout
    assert f"d2  {h2.netctl.ip('d2', 'ovdoc')}  on host2, through the VXLAN tunnel to {h2.addr}" in graph
    # the sync process dies and someone deletes the entry: doctor says which one is missing
    h1.kill_syncd()
    vni = h1.netctl.inspect("ovdoc")["Options"]["vni"]
    mac = h2.netctl.inspect("d2")["NetworkSettings"]["Networks"]["ovdoc"]["MacAddress"]
    h1.ns.run(["bridge", "fdb", "del", mac, "dev", f"ovvx{vni}", "dst", h2.addr, "self"])
    bad = h1.run("doctor", "d1", "d2", check=False)
    assert bad.returncode == 3
    assert f"ovvx{vni} has no forwarding entry for d2 on host2 ({h2.addr})" in bad.stdout
    # restarted, it re-syncs the kernel from the store
    h1.start_syncd()
    assert wait_for(lambda: mac in fdb(h1, f"ovvx{vni}"), timeout=10)
    assert ping(h1.netctl, "d1", "d2")
    h1.run("container", "rm", "-f", "d1")
    h2.run("container", "rm", "-f", "d2")
    h1.run("rm", "ovdoc")


def test_advertise_defaults_to_the_default_routes_source(lab: Lab) -> None:
    from netplugins.overlay.vxlan import default_source

    for host in lab.hosts:
        assert in_netns(host.ns.path, default_source) == host.addr


def test_overlay_without_store_is_refused(lab: Lab) -> None:
    host = lab.hosts[0]
    env = dict(host.netctl.extra_env)
    try:
        host.netctl.extra_env.pop("NETCTL_STORE")
        proc = host.run("create", "--driver", "overlay", "nostore", check=False)
        assert proc.returncode != 0
        assert "overlay networks need a cluster store" in proc.stderr
        assert host.run("create", "plainbr").returncode == 0
        host.run("rm", "plainbr")
    finally:
        host.netctl.extra_env.clear()
        host.netctl.extra_env.update(env)


# --- failures: a lab each -------------------------------------------------------------

@pytest.fixture
def lab_ttl3() -> Iterator[Lab]:
    lab = Lab(3, ttl=3)
    try:
        yield lab
    finally:
        assert lab.close() == []


def test_dead_host_is_reclaimed_after_ttl_and_resyncs_when_back(lab_ttl3: Lab) -> None:
    h1, h2, h3 = lab_ttl3.hosts
    h1.run("create", "--driver", "overlay", "--subnet", "10.60.0.0/24", "ovdie")
    h1.netctl.run_d("c1", "--network", "ovdie")
    h2.netctl.run_d("c2", "--network", "ovdie")
    h3.netctl.run_d("c3", "--network", "ovdie")
    ip2 = h2.netctl.ip("c2", "ovdie")
    mac2 = h2.netctl.inspect("c2")["NetworkSettings"]["Networks"]["ovdie"]["MacAddress"]
    vni = h1.netctl.inspect("ovdie")["Options"]["vni"]
    assert ping(h1.netctl, "c1", "c2") and ping(h3.netctl, "c3", "c1")
    # host 2 dies: its sync process is killed and its underlay goes dark
    h2.kill_syncd()
    h2.ns.run(["ip", "link", "set", "ul0", "down"])
    t0 = time.monotonic()
    assert mac2 in fdb(h1, f"ovvx{vni}")
    assert wait_for(lambda: mac2 not in fdb(h1, f"ovvx{vni}") and mac2 not in fdb(h3, f"ovvx{vni}") and
                    resolves(h1, "c1", "c2") == "" and resolves(h3, "c3", "c2") == "" and
                    "host2" not in json.dumps(h1.netctl.inspect("ovdie")["Containers"]), timeout=10)
    gone_after = time.monotonic() - t0
    assert gone_after >= 1.0, "reclaimed before the TTL could have run out"
    assert h2.netctl.ip("c2", "ovdie") == ip2  # host 2 itself keeps its container
    neigh = h1.ns.run(["ip", "neigh", "show", "dev", f"ovvx{vni}"]).stdout
    assert not [line for line in neigh.splitlines() if line.split()[:1] == [ip2]]
    # hosts 1 and 3 are unaffected
    assert ping(h1.netctl, "c1", "c3") and resolves(h3, "c3", "c1") == h1.netctl.ip("c1", "ovdie")
    # host 2 comes back: its sync process re-registers and republishes c2
    h2.ns.run(["ip", "link", "set", "ul0", "up"])
    h2.start_syncd()
    assert wait_for(lambda: resolves(h1, "c1", "c2") == ip2, timeout=10)
    assert wait_for(lambda: ping(h1.netctl, "c1", "c2"), timeout=5)
    assert ping(h2.netctl, "c2", "c3")


def test_dead_hosts_addresses_can_be_reused(lab_ttl3: Lab) -> None:
    h1, h2, _h3 = lab_ttl3.hosts
    h1.run("create", "--driver", "overlay", "--subnet", "10.61.0.0/24", "ovreuse")
    h2.netctl.run_d("old", "--network", "ovreuse", "--ip", "10.61.0.50")
    taken = h1.run("run", "-d", "--name", "new", "--network", "ovreuse", "--ip", "10.61.0.50",
                   "--", "sleep", "600", check=False)
    assert taken.returncode != 0 and "already in use" in taken.stderr
    h2.kill_syncd()
    h2.ns.run(["ip", "link", "set", "ul0", "down"])
    assert wait_for(lambda: h1.run("run", "-d", "--name", "new", "--network", "ovreuse", "--ip", "10.61.0.50",
                                   "--", "sleep", "600", check=False).returncode == 0, timeout=12, interval=0.5)
    # host 2 returns: its container's address belongs to someone else now; the newcomer keeps it
    h2.ns.run(["ip", "link", "set", "ul0", "up"])
    h2.start_syncd()
    time.sleep(1)
    members = h1.netctl.inspect("ovreuse")["Containers"]
    assert [(m["Name"], m["Node"]) for m in members.values()] == [("new", "host1")]
    assert "held by another container" in h2.log()


def test_etcd_down_add_fails_with_code_11_and_traffic_continues(lab_ttl3: Lab) -> None:
    h1, _h2, h3 = lab_ttl3.hosts
    h1.run("create", "--driver", "overlay", "ovetcd")
    h1.netctl.run_d("e1", "--network", "ovetcd")
    h3.netctl.run_d("e3", "--network", "ovetcd")
    assert ping(h1.netctl, "e1", "e3")
    assert lab_ttl3.etcd is not None
    lab_ttl3.etcd.stop()
    conf = _overlay_conf(h1, "ovetcd")
    ns = Netns.create("nctest-c")
    try:
        run = run_plugin(h1.ns, "overlay", "ADD", conf, container_id="ee" * 32, netns=ns.path)
        assert run.rc != 0
        err = run.json
        assert err["code"] == 11, err
        assert lab_ttl3.etcd.url in err["msg"] and "unreachable" in err["msg"]
        # nothing left behind by the failed ADD
        assert not os.path.exists(h1.netctl.path("run", "overlay", "endpoints", "ovetcd", f"{'ee' * 64}-eth0.json"))
        from netplugins.main.bridge_plan import host_veth_name

        assert host_veth_name("ee" * 64, "eth0") not in h1.ns.run(["ip", "-o", "link"]).stdout
        assert "eth0" not in ns.run(["ip", "-o", "link"]).stdout
        proc = h1.run("run", "-d", "--name", "e2", "--network", "ovetcd", "--", "sleep", "60", check=False)
        assert proc.returncode != 0 and lab_ttl3.etcd.url in proc.stderr
        # running containers keep talking, by address and by name, past the TTL
        time.sleep(lab_ttl3.hosts[0].ttl + 1)
        assert ping(h1.netctl, "e1", "e3") and ping(h3.netctl, "e3", "e1")
    finally:
        run_plugin(h1.ns, "overlay", "DEL", conf, container_id="ee" * 32, netns=ns.path)
        ns.delete()
    # etcd returns: the hosts register again (new leases) and ADDs work
    lab_ttl3.etcd.start()
    assert wait_for(lambda: h1.run("run", "-d", "--name", "e2", "--network", "ovetcd", "--", "sleep", "60",
                                   check=False).returncode == 0, timeout=15, interval=0.5)
    assert ping(h3.netctl, "e3", "e2")
    members = h1.netctl.inspect("ovetcd")["Containers"]
    assert sorted(m["Name"] for m in members.values()) == ["e1", "e2", "e3"]
