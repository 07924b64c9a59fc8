"""netctl-dns's commands against dnsd's real files in tmp_path and a fake dnsd (no
process is started here; tests/integration/test_dnsreg.py runs the real one)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from dnsd.control import DnsdError
from netplugins.cni.errors import CniError
from netplugins.cni.skel import CmdArgs, run
from netplugins.meta import dnsreg
from netplugins.meta.dnsreg import Dnsd

PREV = {"cniVersion": "1.0.0",
        "interfaces": [{"name": "br0"}, {"name": "veth1"}, {"name": "eth0", "sandbox": "/run/netns/c1"}],
        "ips": [{"address": "10.1.0.5/24", "gateway": "10.1.0.1", "interface": 2}],
        "dns": {"nameservers": ["192.0.2.53"]}}


@dataclass
class FakeDnsd(Dnsd):
    """Records what the plugin asked of dnsd; ``fail`` makes serve() fail."""

    fail: bool = False
    up: bool = True
    deaf: bool = False
    calls: list[str] = field(default_factory=list)

    def serve(self, dns_dir: str) -> None:
        self.calls.append("serve")
        if self.fail:
            raise DnsdError("dnsd exited during start-up: boom")

    def reload(self, dns_dir: str) -> None:
        self.calls.append("reload")

    def running(self, dns_dir: str) -> bool:
        return self.up

    def supervised(self, dns_dir: str) -> bool:
        return False

    def answers(self, dns_dir: str, server: str, name: str) -> bool:
        self.calls.append(f"ask {server} {name}")
        return not self.deaf


def stdin(tmp: Path, prev: dict | None = PREV, **extra: Any) -> bytes:
    obj: dict[str, Any] = {"cniVersion": "1.0.0", "name": "net1", "type": "netctl-dns",
                           "dir": str(tmp / "dns"), "runtimeConfig": {"aliases": {"net1": ["www"]}}}
    if prev is not None:
        obj["prevResult"] = prev
    return json.dumps(obj | extra).encode()


def args(command: str, data: bytes, cid: str = "ctr1", **kw: Any) -> CmdArgs:
    return CmdArgs(command=command, container_id=cid, ifname="eth0", netns="/run/netns/c1",
                   args={"K8S_POD_NAME": "web1"}, stdin=data, **kw)


def files(tmp: Path) -> list[str]:
    d = tmp / "dns"
    return sorted(str(p.relative_to(d)) for sub in ("networks", "entries") for p in (d / sub).rglob("*")
                  if p.is_file())


def test_add_writes_network_and_entry_and_puts_dnsd_first(tmp_path: Path) -> None:
    fake = FakeDnsd()
    res = dnsreg.cmd_add(args("ADD", stdin(tmp_path, upstreams=["192.0.2.9"])), fake)
    assert res.dns.nameservers == ("10.1.0.1", "192.0.2.53")
    assert [ip.address for ip in res.ips] == ["10.1.0.5/24"]
    net = json.loads((tmp_path / "dns/networks/net1.json").read_text())
    assert net == {"name": "net1", "listen": ["10.1.0.1"], "subnets": ["10.1.0.0/24"], "internal": False,
                   "upstreams": ["192.0.2.9"]}
    entry = json.loads((tmp_path / "dns/entries/net1/ctr1-eth0.json").read_text())
    assert entry["names"] == ["web1", "www", "ctr1"] and entry["ipv4"] == ["10.1.0.5"]
    assert entry["owner"] == "netctl-dns"
    assert fake.calls == ["serve"]


def test_add_without_prev_result_is_code_7(tmp_path: Path) -> None:
    with pytest.raises(CniError) as exc:
        dnsreg.cmd_add(args("ADD", stdin(tmp_path, prev=None)), FakeDnsd())
    assert exc.value.code == 7 and "prevResult" in exc.value.msg
    assert not (tmp_path / "dns").exists()


def test_add_with_nothing_to_serve_passes_prev_result_through(tmp_path: Path) -> None:
    prev = dict(PREV, ips=[{"address": "10.1.0.5/24", "interface": 2}])  # no gateway
    res = dnsreg.cmd_add(args("ADD", stdin(tmp_path, prev=prev)), FakeDnsd())
    assert res.dns.nameservers == ("192.0.2.53",)
    assert files(tmp_path) == []


def test_failed_dnsd_start_rolls_back(tmp_path: Path) -> None:
    fake = FakeDnsd(fail=True)
    # a second container keeps the network: the rollback must leave it and its entry alone
    dnsreg.cmd_add(args("ADD", stdin(tmp_path), cid="other"), FakeDnsd())
    with pytest.raises(CniError) as exc:
        dnsreg.cmd_add(args("ADD", stdin(tmp_path)), fake)
    assert exc.value.code == 5 and "boom" in exc.value.details
    assert files(tmp_path) == ["entries/net1/other-eth0.json", "networks/net1.json"]
    assert fake.calls == ["serve", "reload"]  # dnsd is told after the files went
    dnsreg.cmd_del(args("DEL", stdin(tmp_path), cid="other"), FakeDnsd())
    with pytest.raises(CniError):
        dnsreg.cmd_add(args("ADD", stdin(tmp_path)), FakeDnsd(fail=True))
    assert files(tmp_path) == []


def test_unwritable_directory_is_code_5_and_leaves_nothing(tmp_path: Path) -> None:
    (tmp_path / "dns").write_text("a file where the directory should be")
    with pytest.raises(CniError) as exc:
        dnsreg.cmd_add(args("ADD", stdin(tmp_path)), FakeDnsd())
    assert exc.value.code == 5 and "dns" in exc.value.msg


def test_del_is_idempotent_and_needs_no_prev_result_or_netns(tmp_path: Path) -> None:
    fake = FakeDnsd()
    dnsreg.cmd_add(args("ADD", stdin(tmp_path)), fake)
    dnsreg.cmd_add(args("ADD", stdin(tmp_path), cid="ctr2"), fake)
    bare = CmdArgs(command="DEL", container_id="ctr1", ifname="eth0", stdin=stdin(tmp_path, prev=None))
    dnsreg.cmd_del(bare, fake)
    assert files(tmp_path) == ["entries/net1/ctr2-eth0.json", "networks/net1.json"]
    dnsreg.cmd_del(bare, fake)  # DEL twice
    dnsreg.cmd_del(args("DEL", stdin(tmp_path), cid="ctr2"), fake)
    assert files(tmp_path) == []  # the last entry takes the network with it
    assert "serve" not in fake.calls[2:]  # DEL never starts dnsd


def test_check(tmp_path: Path) -> None:
    fake = FakeDnsd()
    res = dnsreg.cmd_add(args("ADD", stdin(tmp_path)), fake)
    prev = res.to_dict("1.0.0")
    dnsreg.cmd_check(args("CHECK", stdin(tmp_path, prev=prev)), fake)
    assert "ask 10.1.0.1 web1" in fake.calls
    with pytest.raises(CniError) as exc:
        dnsreg.cmd_check(args("CHECK", stdin(tmp_path, prev=prev)), FakeDnsd(up=False))
    assert exc.value.code == 101 and "embedded DNS of network 'net1' is down" in exc.value.msg
    with pytest.raises(CniError) as exc:
        dnsreg.cmd_check(args("CHECK", stdin(tmp_path, prev=prev)), FakeDnsd(deaf=True))
    assert "does not answer on 10.1.0.1" in exc.value.msg
    os.unlink(tmp_path / "dns/entries/net1/ctr1-eth0.json")
    with pytest.raises(CniError) as exc:
        dnsreg.cmd_check(args("CHECK", stdin(tmp_path, prev=prev)), fake)
    assert "no DNS entry for ctr1/eth0" in exc.value.msg


def test_gc_removes_only_stale_entries_of_ours(tmp_path: Path) -> None:
    from dnsd import config as dnsconf

    fake = FakeDnsd()
    for cid in ("keep", "gone1", "gone2"):
        dnsreg.cmd_add(args("ADD", stdin(tmp_path), cid=cid), fake)
    # another host's container, written by the overlay's sync process: not ours to collect
    dnsconf.write_entry(str(tmp_path / "dns"), "net1", "remote", "eth0", ["r1"], ["10.1.0.99"], [])
    gc = stdin(tmp_path, prev=None) [:-1] + b', "cni.dev/valid-attachments": [{"containerID": "keep", "ifname": "eth0"}]}'
    dnsreg.cmd_gc(CmdArgs(command="GC", stdin=gc), fake)
    assert files(tmp_path) == ["entries/net1/keep-eth0.json", "entries/net1/remote-eth0.json",
                               "networks/net1.json"]
    with pytest.raises(CniError) as exc:  # the key is required: guessing "none valid" is dangerous
        dnsreg.cmd_gc(CmdArgs(command="GC", stdin=stdin(tmp_path, prev=None)), fake)
    assert exc.value.code == 7


def test_status(tmp_path: Path) -> None:
    st = CmdArgs(command="STATUS", stdin=stdin(tmp_path, prev=None, cniVersion="1.1.0"))
    dnsreg.cmd_status(st, FakeDnsd(up=False))  # no DNS network yet: ready
    dnsreg.cmd_add(args("ADD", stdin(tmp_path)), FakeDnsd())
    dnsreg.cmd_status(st, FakeDnsd())
    with pytest.raises(CniError) as exc:
        dnsreg.cmd_status(st, FakeDnsd(up=False))
    assert exc.value.code == 51 and "dnsd is not running" in exc.value.msg
    (tmp_path / "blocked").write_text("")
    blocked = CmdArgs(command="STATUS", stdin=stdin(tmp_path, prev=None, dir=str(tmp_path / "blocked")))
    with pytest.raises(CniError) as exc:
        dnsreg.cmd_status(blocked, FakeDnsd())
    assert exc.value.code == 50


def test_skeleton_answers_version_and_errors_as_json(tmp_path: Path) -> None:
    out = run(dnsreg.FUNCS, {"CNI_COMMAND": "VERSION"}, b'{"cniVersion": "1.1.0"}')
    assert json.loads(out.stdout)["supportedVersions"][-1] == "1.1.0"
    env = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c1", "CNI_IFNAME": "eth0", "CNI_NETNS": "/x",
           "CNI_PATH": "/nonexistent"}
    out = run(dnsreg.FUNCS, env, stdin(tmp_path, prev=None))
    assert out.exit_code == 1 and json.loads(out.stdout)["code"] == 7
    out = run(dnsreg.FUNCS, env | {"CNI_ARGS": "FOO=1"}, stdin(tmp_path))
    assert out.exit_code == 1 and json.loads(out.stdout)["code"] == 4  # unknown CNI_ARGS key
