"""End-to-end: ``netctl inspect`` / ``--format`` / ``ls`` / ``rm`` / ``prune``, the default
networks and the conflists on disk, against the real kernel state of the containers."""

from __future__ import annotations

import json
import os
import re

import pytest
from netctlutil import Netctl, netctl_fixture  # noqa: F401 - the netctl fixture
from nsutil import Netns

pytestmark = pytest.mark.netns

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def kernel_mac(n: Netctl, ctr: str, ifname: str) -> str:
    mac: str = json.loads(n.exec(ctr, "ip", "-j", "link", "show", ifname).stdout)[0]["address"]
    return mac


def test_network_inspect_has_dockers_shape(netctl: Netctl) -> None:
    net_id = netctl("create", "--subnet", "172.22.16.0/24", "--gateway", "172.22.16.1",
                    "--label", "team=net", "-o", "com.docker.network.bridge.name=br-seed",
                    "my_net2").stdout.strip()
    c1 = netctl.run_d("c1", "--network", "my_net2")
    c2 = netctl.run_d("c2", "--network", "my_net2")
    obj = netctl.inspect("my_net2")
    assert obj["Name"] == "my_net2"
    assert obj["Id"] == net_id and re.fullmatch(r"[0-9a-f]{64}", net_id)
    assert RFC3339.match(obj["Created"]), obj["Created"]
    assert obj["Driver"] == "bridge" and obj["Scope"] == "local"
    assert obj["IPAM"]["Config"] == [{"Subnet": "172.22.16.0/24", "Gateway": "172.22.16.1"}]
    assert obj["Internal"] is False
    assert obj["Options"]["com.docker.network.bridge.name"] == "br-seed"
    assert obj["Labels"] == {"team": "net"}
    assert set(obj["Containers"]) == {c1, c2}
    for cid, name in ((c1, "c1"), (c2, "c2")):
        entry = obj["Containers"][cid]
        assert entry["Name"] == name
        assert entry["IPv4Address"] == f"{netctl.ip(name, 'my_net2')}/24"
        assert entry["MacAddress"] == kernel_mac(netctl, name, "eth0")
    # the same object by ID prefix, and an internal network says so
    assert netctl.inspect(net_id[:12])["Name"] == "my_net2"
    netctl("create", "--internal", "inner")
    assert netctl.inspect("inner")["Internal"] is True


def test_container_inspect_lists_every_network(netctl: Netctl) -> None:
    netctl("create", "--subnet", "172.22.16.0/24", "my_net2")
    netctl.run_d("multi")
    netctl("connect", "--alias", "svc", "--alias", "api", "my_net2", "multi")
    info = netctl.inspect("multi")
    nets = info["NetworkSettings"]["Networks"]
    assert set(nets) == {"bridge", "my_net2"}
    for name, ifname, gw in (("bridge", "eth0", "172.17.0.1"), ("my_net2", "eth1", "172.22.16.1")):
        ep = nets[name]
        addrs = json.loads(netctl.exec("multi", "ip", "-j", "addr", "show", ifname).stdout)[0]
        v4 = [a for a in addrs["addr_info"] if a["family"] == "inet"]
        assert ep["IPAddress"] == v4[0]["local"] and ep["IPPrefixLen"] == v4[0]["prefixlen"]
        assert ep["MacAddress"] == addrs["address"]
        assert ep["Gateway"] == gw
        assert ep["NetworkID"] == netctl.inspect(name)["Id"]
    assert nets["my_net2"]["Aliases"] == ["svc", "api"]
    assert nets["bridge"]["Aliases"] == []
    assert info["State"]["Running"] is True and info["State"]["Pid"] > 0
    assert info["Name"] == "multi"


def test_format_templates(netctl: Netctl) -> None:
    netctl("create", "--subnet", "172.22.16.0/24", "--gateway", "172.22.16.1", "my_net2")
    netctl.run_d("web1", "--network", "my_net2")
    netctl.run_d("web2", "--network", "my_net2")
    assert netctl("inspect", "--format", "{{.Name}}", "my_net2").stdout == "my_net2\n"
    cfg = json.loads(netctl("inspect", "-f", "{{json .IPAM.Config}}", "my_net2").stdout)
    assert cfg == [{"Subnet": "172.22.16.0/24", "Gateway": "172.22.16.1"}]
    names = netctl("inspect", "-f", "{{range .Containers}}{{.Name}} {{end}}", "my_net2").stdout
    assert sorted(names.split()) == ["web1", "web2"]
    ip = netctl("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", "web1").stdout
    assert ip.strip() == netctl.ip("web1", "my_net2")
    bad = netctl("inspect", "-f", "{{.NoSuchField}}", "my_net2", check=False)
    assert bad.returncode != 0 and bad.stderr.startswith("Error: ") and "Traceback" not in bad.stderr


def test_default_networks_exist_and_stay(netctl: Netctl) -> None:
    # the very first command already sees them
    out = netctl("ls", "--format", "{{.Name}} {{.Driver}}").stdout.split("\n")
    assert {"bridge bridge", "host host", "none null"} <= set(out)
    assert netctl.inspect("bridge")["Options"]["com.docker.network.bridge.name"] == "netctl0"
    assert netctl.inspect("bridge")["IPAM"]["Config"][0]["Subnet"] == "172.17.0.0/16"
    for name in ("bridge", "host", "none"):
        proc = netctl("rm", name, check=False)
        assert proc.returncode != 0
        assert proc.stderr.strip() == f"Error: {name} is a pre-defined network and cannot be removed"
    assert netctl("prune", "-f").stdout.strip() == ""
    listed = netctl("ls", "-q").stdout.split()
    assert len(listed) == 3
    assert all(re.fullmatch(r"[0-9a-f]{12}", i) for i in listed)
    table = [row.split() for row in netctl("ls").stdout.splitlines()]
    assert table[0] == ["NETWORK", "ID", "NAME", "DRIVER", "SCOPE", "SUBNET", "STATUS"]
    rows = {r[1]: r for r in table[1:]}
    assert set(rows) == {"bridge", "host", "none"}
    assert rows["bridge"][2:] == ["bridge", "local", "172.17.0.0/16", "ready"]
    assert rows["bridge"][0] in listed


def test_rm_refused_while_in_use_then_removed(netctl: Netctl, host_ns: Netns) -> None:
    netctl("create", "--subnet", "172.22.16.0/24", "my_net2")
    netctl.run_d("user1", "--network", "my_net2")
    bridge = netctl.inspect("my_net2")["Options"]["com.docker.network.bridge.name"]
    proc = netctl("rm", "my_net2", check=False)
    assert proc.returncode != 0
    assert proc.stderr.startswith("Error: ") and "has active endpoints" in proc.stderr
    assert netctl.inspect("my_net2")["Name"] == "my_net2"
    conflist = netctl.path("lib", "net.d", "my_net2.conflist")
    assert os.path.exists(conflist)
    netctl("container", "rm", "-f", "user1")
    assert netctl("rm", "my_net2").stdout.strip() == "my_net2"
    assert not os.path.exists(conflist)
    links = {i["ifname"] for i in json.loads(host_ns.run(["ip", "-j", "link", "show"]).stdout)}
    assert bridge not in links
    gone = netctl("inspect", "my_net2", check=False)
    assert gone.returncode != 0 and gone.stderr.strip() == "Error: no such network or container: my_net2"


def test_prune_removes_only_unused_networks(netctl: Netctl) -> None:
    netctl("create", "unused1")
    netctl("create", "unused2")
    netctl("create", "busy")
    netctl.run_d("worker", "--network", "busy")
    out = netctl("prune", "-f").stdout.split("\n")
    assert out[0] == "Deleted Networks:"
    assert sorted(x for x in out[1:] if x) == ["unused1", "unused2"]
    names = set(netctl("ls", "--format", "{{.Name}}").stdout.split())
    assert names == {"bridge", "host", "none", "busy"}


def test_each_network_is_a_cni_conflist(netctl: Netctl) -> None:
    netctl("create", "--subnet", "172.22.16.0/24", "--gateway", "172.22.16.1", "my_net2")
    netctl("create", "--internal", "--subnet", "172.22.17.0/24", "inner")
    confdir = netctl.path("lib", "net.d")
    assert sorted(os.listdir(confdir)) == sorted(
        f"{n}.conflist" for n in ("bridge", "host", "none", "my_net2", "inner"))
    with open(os.path.join(confdir, "my_net2.conflist")) as fh:
        conf = json.load(fh)
    assert conf["name"] == "my_net2" and conf["cniVersion"] == "1.0.0"
    assert conf["cniVersions"][0] == "1.1.0"
    bridge = conf["plugins"][0]
    assert bridge["type"] == "bridge"
    assert bridge["bridge"] == netctl.inspect("my_net2")["Options"]["com.docker.network.bridge.name"]
    assert bridge["ipam"]["ranges"] == [[{"subnet": "172.22.16.0/24", "gateway": "172.22.16.1"}]]
    assert bridge["ipMasq"] is True and bridge["isDefaultGateway"] is True
    with open(os.path.join(confdir, "inner.conflist")) as fh:
        inner = json.load(fh)["plugins"][0]
    assert inner["ipMasq"] is False and inner["isDefaultGateway"] is False
    assert "routes" not in inner["ipam"]
    with open(os.path.join(confdir, "none.conflist")) as fh:
        assert [p["type"] for p in json.load(fh)["plugins"]] == ["loopback"]


def test_check_passes_then_fails_after_address_removed(netctl: Netctl) -> None:
    netctl("create", "--subnet", "172.22.16.0/24", "my_net2")
    netctl.run_d("healthy", "--network", "my_net2", "--cap-add", "NET_ADMIN")
    proc = netctl("check", "healthy")
    assert proc.stdout.strip() == "ok"
    ip = netctl.ip("healthy", "my_net2")
    netctl.exec("healthy", "ip", "addr", "del", f"{ip}/24", "dev", "eth0")
    proc = netctl("check", "healthy", check=False)
    assert proc.returncode != 0
    assert "my_net2" in proc.stdout + proc.stderr
    assert ip in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr


def test_prune_asks_unless_forced(netctl: Netctl) -> None:
    netctl("create", "spare")
    no = netctl("prune", input="n\n")
    assert "Are you sure you want to continue? [y/N]" in no.stdout
    assert "spare" in netctl("ls", "--format", "{{.Name}}").stdout.split()
    # no answer at all (stdin closed) is a no too
    netctl("prune", input="")
    assert "spare" in netctl("ls", "--format", "{{.Name}}").stdout.split()
    yes = netctl("prune", input="y\n")
    assert yes.stdout.splitlines()[-1] == "spare"
    assert "spare" not in netctl("ls", "--format", "{{.Name}}").stdout.split()


def test_rm_removes_the_lease_database(netctl: Netctl) -> None:
    """A network created again with the same name and subnet starts at .2 (Docker): the
    network's last GC makes host-local delete its lease database. While the network
    lives, even ``netctl gc`` with no container left keeps the round-robin position."""
    from runtime.paths import Paths

    ipam_dir = Paths.from_env({"NETCTL_ROOT": netctl.path()}).ipam
    db = os.path.join(ipam_dir, "again.db")
    netctl("create", "--subnet", "172.22.42.0/24", "again")
    netctl.run_d("a1", "--network", "again")
    netctl.run_d("a2", "--network", "again")
    assert netctl.ip("a2", "again") == "172.22.42.3"
    netctl("container", "rm", "-f", "a1", "a2")
    netctl("gc")  # GC of a live network with no valid attachment
    assert os.path.exists(db)
    netctl.run_d("a4", "--network", "again")
    assert netctl.ip("a4", "again") == "172.22.42.4"  # not .2 again (Docker)
    netctl("container", "rm", "-f", "a4")
    netctl("rm", "again")
    assert not os.path.exists(db)
    assert not [n for n in os.listdir(ipam_dir) if n.startswith("again.db")]  # -wal, -shm, .lock
    netctl("create", "--subnet", "172.22.42.0/24", "again")
    netctl.run_d("a3", "--network", "again")
    assert netctl.ip("a3", "again") == "172.22.42.2"


def test_container_inspect_verb_and_docker_keys(netctl: Netctl) -> None:
    netctl("create", "--subnet", "172.22.43.0/24", "net1")
    netctl.run_d("dual", "-p", "8080:80")
    netctl("connect", "net1", "dual")
    obj = json.loads(netctl("container", "inspect", "dual").stdout)[0]
    settings = obj["NetworkSettings"]
    # top level: the default bridge's endpoint, as the kernel has it
    addrs = json.loads(netctl.exec("dual", "ip", "-j", "addr", "show", "eth0").stdout)[0]
    v4 = [a for a in addrs["addr_info"] if a["family"] == "inet"][0]
    assert settings["IPAddress"] == v4["local"] and settings["IPPrefixLen"] == v4["prefixlen"]
    assert settings["MacAddress"] == addrs["address"] and settings["Gateway"] == "172.17.0.1"
    assert settings["SandboxKey"] and os.path.exists(settings["SandboxKey"])
    assert obj["HostConfig"]["PortBindings"] == {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}
    for key in ("ResolvConfPath", "HostsPath", "HostnamePath"):
        assert os.path.isfile(obj[key]), key
    assert netctl.exec("dual", "cat", "/etc/hostname").stdout == open(obj["HostnamePath"]).read()
    tmpl = '{{(index .NetworkSettings.Networks "net1").IPAddress}}'
    assert netctl("container", "inspect", "-f", tmpl, "dual").stdout.strip() == "172.22.43.2"
    tmpl = "{{range $n, $e := .NetworkSettings.Networks}}{{$n}}={{$e.IPAddress}};{{end}}"
    assert netctl("inspect", "-f", tmpl, "dual").stdout.strip() == \
        f"bridge={settings['IPAddress']};net1=172.22.43.2;"
    assert netctl("inspect", "-f", '{{join .Args ","}}', "dual").stdout.strip() == "600"
    # container inspect is for containers only
    proc = netctl("container", "inspect", "net1", check=False)
    assert proc.returncode == 1 and proc.stderr.strip() == "Error: no such container: net1"


def test_malformed_format_exits_1_with_the_position(netctl: Netctl) -> None:
    netctl.run_d("fmt1")
    for tmpl in ("{{.Name", "{{.Name}", "{{range .Args}}x", "{{nosuch .Name}}"):
        proc = netctl("inspect", "-f", tmpl, "fmt1", check=False)
        assert proc.returncode == 1, tmpl
        assert proc.stdout == ""
        assert re.match(r"Error: template: :1:\d+: ", proc.stderr), proc.stderr
        assert tmpl not in proc.stderr


def test_static_ip_does_not_move_the_dynamic_cursor(netctl: Netctl) -> None:
    """Docker: .2, .3, a static .50, then .4 (not .51)."""
    netctl("create", "--subnet", "172.22.45.0/24", "cur")
    netctl.run_d("d1", "--network", "cur")
    netctl.run_d("d2", "--network", "cur")
    netctl.run_d("st", "--network", "cur", "--ip", "172.22.45.50")
    netctl.run_d("d3", "--network", "cur")
    assert [netctl.ip(n, "cur") for n in ("d1", "d2", "st", "d3")] == \
        ["172.22.45.2", "172.22.45.3", "172.22.45.50", "172.22.45.4"]
