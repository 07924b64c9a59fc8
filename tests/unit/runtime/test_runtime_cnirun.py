"""The CNI runtime (runtime/cnirun.py) against fake plugin executables: an ADD that fails
in the middle of a chain DELs what already ran, in reverse order, with the last result."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from runtime.cnirun import CNI, PluginError, RuntimeConf, cache_entries
from runtime.containers import published_in_caches

# a plugin that logs every call (command + stdin) and fails ADD when its conf says so
FAKE = """#!/bin/sh
stdin=$(cat)
printf '%s %s %s\\n' "$CNI_COMMAND" "$(basename "$0")" "$stdin" >> "$LOG"
case "$CNI_COMMAND" in
VERSION) echo '{"cniVersion":"1.1.0","supportedVersions":["1.0.0","1.1.0"]}' ;;
GC) echo "kept something" >&2 ;;
ADD)
  case "$stdin" in
  *'"fail": true'*) echo '{"cniVersion":"1.1.0","code":100,"msg":"boom"}'; exit 1 ;;
  esac
  echo '{"cniVersion":"1.1.0","ips":[{"address":"10.0.0.2/24"}],"by":"'$(basename "$0")'"}' ;;
esac
"""


@pytest.fixture
def cni(tmp_path: Path) -> CNI:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name in ("first", "second", "third"):
        exe = bindir / name
        exe.write_text(FAKE)
        exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return CNI([str(bindir)], str(tmp_path / "cache"),
               dict(os.environ, LOG=str(tmp_path / "log")))


def calls(tmp_path: Path) -> list[tuple[str, str, dict]]:
    out = []
    for line in (tmp_path / "log").read_text().splitlines():
        cmd, ptype, stdin = line.split(" ", 2)
        if cmd != "VERSION":
            out.append((cmd, ptype, json.loads(stdin)))
    return out


def test_add_failing_mid_chain_dels_what_ran(cni: CNI, tmp_path: Path) -> None:
    conflist = {"cniVersion": "1.0.0", "cniVersions": ["1.1.0", "1.0.0"], "name": "n",
                "plugins": [{"type": "first"}, {"type": "second", "fail": True}, {"type": "third"}]}
    rt = RuntimeConf("cid", "/run/netns/x", "eth0")
    with pytest.raises(PluginError, match="boom"):
        cni.add(conflist, rt)
    seen = calls(tmp_path)
    assert [(c, p) for c, p, _ in seen] == [("ADD", "first"), ("ADD", "second"),
                                            ("DEL", "second"), ("DEL", "first")]
    # the DELs carry the last good result (first's) as prevResult, at the negotiated version
    for _cmd, _, stdin in seen[2:]:
        assert stdin["prevResult"]["by"] == "first"
        assert stdin["cniVersion"] == "1.1.0"
    assert not os.path.exists(cni.cache_path("n", rt))


def test_add_that_succeeds_dels_nothing(cni: CNI, tmp_path: Path) -> None:
    conflist = {"cniVersion": "1.0.0", "cniVersions": ["1.1.0", "1.0.0"], "name": "n",
                "plugins": [{"type": "first"}, {"type": "third"}]}
    rt = RuntimeConf("cid", "/run/netns/x", "eth0")
    assert cni.add(conflist, rt)["by"] == "third"
    assert [(c, p) for c, p, _ in calls(tmp_path)] == [("ADD", "first"), ("ADD", "third")]
    assert os.path.exists(cni.cache_path("n", rt))


def test_negotiation_uses_cni_versions_over_the_top_level_version(cni: CNI) -> None:
    conflist = {"cniVersion": "1.0.0", "cniVersions": ["1.1.0", "1.0.0", "0.4.0"], "name": "n",
                "plugins": [{"type": "first"}]}
    assert cni.negotiate(conflist) == "1.1.0"
    assert cni.negotiate({"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "first"}]}) == "1.0.0"


def test_gc_passes_on_what_the_plugins_said(cni: CNI, tmp_path: Path) -> None:
    conflist = {"cniVersion": "1.0.0", "cniVersions": ["1.1.0"], "name": "n", "plugins": [{"type": "first"}]}
    notes: list[str] = []
    assert cni.gc(conflist, set(), notes) == []
    assert notes == ["first: kept something"]


def _cache(d: Path, name: str, entry: dict) -> None:
    (d / "results").mkdir(parents=True, exist_ok=True)
    (d / "results" / name).write_text(json.dumps({"kind": "cniCacheV1", **entry}))


def test_published_ports_come_from_every_cache(cni: CNI, tmp_path: Path) -> None:
    rt = RuntimeConf("cid", "/run/netns/x", "eth0", capability_args={
        "portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]})
    cni.add({"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "first"}]}, rt)
    other = tmp_path / "other"
    # containerd/nerdctl: capabilityArgs; a runtime that put runtimeConfig into the config
    _cache(other, "a-1-eth0", {"capabilityArgs": {"portMappings": [{"hostPort": 49153, "protocol": "UDP"}]}})
    conf = {"name": "b", "plugins": [{"type": "portmap", "runtimeConfig": {
        "portMappings": [{"hostPort": 49154, "containerPort": 80}]}}]}
    _cache(other, "b-2-eth0", {"config": base64.b64encode(json.dumps(conf).encode()).decode()})
    _cache(other, "c-3-eth0", {"config": "not base64 json", "capabilityArgs": {"portMappings": "junk"}})
    (other / "results" / "garbage").write_text("{")
    assert len(cache_entries(str(other))) == 3
    assert published_in_caches([cni.cache_dir, str(other), str(tmp_path / "absent")]) == {
        (8080, "tcp"), (49153, "udp"), (49154, "tcp")}


def test_gc_skips_only_the_plugins_without_gc(cni: CNI, tmp_path: Path) -> None:
    old = tmp_path / "bin" / "old"
    old.write_text(FAKE.replace('"supportedVersions":["1.0.0","1.1.0"]', '"supportedVersions":["1.0.0"]'))
    old.chmod(0o755)
    conflist = {"cniVersion": "1.0.0", "cniVersions": ["1.1.0", "1.0.0"], "name": "n",
                "plugins": [{"type": "first"}, {"type": "old"}]}
    assert cni.gc(conflist, set()) == []
    assert [(c, p, d["cniVersion"]) for c, p, d in calls(tmp_path)] == [("GC", "first", "1.1.0")]
    # a conflist that allows no 1.1 version is not GCed at all (libcni)
    assert cni.gc(dict(conflist, cniVersions=["1.0.0"]), set()) == []
    assert len(calls(tmp_path)) == 1


def test_gc_hands_extra_keys_to_every_plugin(cni: CNI, tmp_path: Path) -> None:
    """netctl's periodic GC says the network stays (netctl.dev/keep-network); network rm
    does not."""
    conflist = {"cniVersion": "1.0.0", "cniVersions": ["1.1.0"], "name": "n",
                "plugins": [{"type": "first"}, {"type": "third"}]}
    assert cni.gc(conflist, {("c1", "eth0")}, extra={"netctl.dev/keep-network": True}) == []
    assert cni.gc(conflist, set()) == []
    seen = calls(tmp_path)
    assert [(p, d.get("netctl.dev/keep-network")) for _, p, d in seen] == [
        ("first", True), ("third", True), ("first", None), ("third", None)]
    assert seen[0][2]["cni.dev/valid-attachments"] == [{"containerID": "c1", "ifname": "eth0"}]
