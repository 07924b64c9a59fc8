"""Issue 13's input classes through the executables, in-process and through the warm daemon:
the right CNI code, a message, no traceback, nothing left behind (docs/errors.md)."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest
from cniutil import PluginRun, plugin_dir, run_plugin
from nsutil import Netns
from test_bridge_helpers import BridgeLab, link_names, make_lab, our_rules
from test_dnsreg_helpers import Chain

from netplugins.delivery import _import_roots
from netplugins.registry import PLUGINS

pytestmark = pytest.mark.netns


def refused(res: PluginRun, code: int, version: str = "1.0.0") -> dict:
    """The run failed with exit status 1, error object ``code``, and no traceback."""
    assert "Traceback" not in res.stderr, res.stderr
    assert res.rc == 1, (res.rc, res.stdout, res.stderr)
    err = res.json
    assert isinstance(err, dict) and set(err) <= {"cniVersion", "code", "msg", "details"}, err
    assert err["code"] == code and err["msg"] and err["cniVersion"] == version, err
    return err


def untouched(lab: BridgeLab, ctr: Netns, network: str, host_links: set[str]) -> None:
    assert link_names(lab.host) == host_links
    assert link_names(ctr) == {"lo"}
    assert lab.leases(network) == [] and lab.records(network) == []
    assert our_rules(lab.host) == []


def base_conf(ptype: str, tmp: Path, ctr: Netns) -> dict:
    conf: dict = {"cniVersion": "1.0.0", "name": "inputs", "type": ptype}
    if ptype in ("bridge", "host-local"):
        conf["ipam"] = {"type": "host-local", "ranges": [[{"subnet": "10.78.0.0/24"}]],
                        "dataDir": str(tmp / "ipam")}
    if ptype == "bridge":
        conf |= {"bridge": "br-inputs", "stateDir": str(tmp / "state"), "firewallDriver": "nftables"}
    if ptype == "container":
        conf |= {"container": "owner", "ownerNetns": ctr.path, "dataDir": str(tmp / "joins")}
    if ptype == "portmap":
        conf |= {"stateDir": str(tmp / "state"),
                 "runtimeConfig": {"portMappings": [{"hostPort": 18080, "containerPort": 80}]},
                 "prevResult": {"cniVersion": "1.0.0",
                                "interfaces": [{"name": "eth0", "sandbox": ctr.path}],
                                "ips": [{"address": "10.78.0.5/24", "interface": 0}]}}
    return conf


def files_under(tmp: Path) -> list[str]:
    return sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*") if p.is_file() and p.suffix != ".lock")


@pytest.mark.parametrize("ptype", sorted(PLUGINS))
def test_deeply_nested_json_is_code_6(ptype: str, host_ns: Netns, ctr_ns: Netns,
                                      plugin_env: dict[str, str]) -> None:
    """Was a traceback in-process and a dead daemon worker (code 11)."""
    inner = b"[" * 200_000 + b"]" * 200_000
    doc = b'{"cniVersion": "1.0.0", "name": "n", "type": "%s", "x": %s}' % (ptype.encode(), inner)
    res = run_plugin(host_ns, ptype, "ADD", doc, netns=ctr_ns.path, env=plugin_env)
    err = refused(res, 6, version="1.1.0")  # the version could not be read: the current one
    assert "deeply" in err["details"]


@pytest.mark.parametrize("var,value,code", [
    ("CNI_CONTAINERID", "ctr1\n", 4), ("CNI_IFNAME", "eth0\n", 4), ("CNI_IFNAME", "eth\udcff", 4),
    ("CNI_IFNAME", "\u00e9" * 8, 4), ("CNI_ARGS", "IgnoreUnknown=1;IP=\udcff", 4),
])
@pytest.mark.parametrize("ptype", ["host-local", "bridge", "loopback"])
def test_bad_environment_is_code_4(ptype: str, var: str, value: str, code: int, host_ns: Netns,
                                   ctr_ns: Netns, tmp_path: Path, plugin_env: dict[str, str]) -> None:
    """A newline after a container ID made a lease file named 'x\\n.db'; non-UTF-8 names
    were code 100."""
    conf = base_conf(ptype, tmp_path, ctr_ns)
    kw: dict = {"container_id": "ctr1", "ifname": "eth0", "cni_args": ""}
    kw[{"CNI_CONTAINERID": "container_id", "CNI_IFNAME": "ifname", "CNI_ARGS": "cni_args"}[var]] = value
    res = run_plugin(host_ns, ptype, "ADD", conf, netns=ctr_ns.path, env=plugin_env, **kw)
    err = refused(res, code)
    assert var in err["msg"]
    assert files_under(tmp_path) == [] and link_names(ctr_ns) == {"lo"}
    assert link_names(host_ns) == {"lo"}


@pytest.mark.parametrize("name", ["inputs\n", "in\nputs"])
def test_network_name_with_a_newline_is_code_7(name: str, host_ns: Netns, ctr_ns: Netns, tmp_path: Path,
                                               plugin_env: dict[str, str]) -> None:
    conf = base_conf("host-local", tmp_path, ctr_ns) | {"name": name}
    res = run_plugin(host_ns, "host-local", "ADD", conf, netns=ctr_ns.path, env=plugin_env)
    assert "network name" in refused(res, 7)["msg"]
    assert files_under(tmp_path) == []


@pytest.mark.parametrize("where", ["ipam.dataDir", "stateDir"])
def test_relative_path_is_code_7_and_writes_nowhere(where: str, host_ns: Netns, ctr_ns: Netns,
                                                    tmp_path: Path, plugin_env: dict[str, str]) -> None:
    """A relative dataDir was resolved against the plugin's working directory (pytest's
    here, / in the daemon's worker): two lease databases for one network."""
    rel = "i13b-relative-dir"
    lab = make_lab(host_ns, tmp_path, plugin_env)
    conf = lab.conf("rel", "10.79.0.0/24")
    if where == "stateDir":
        conf["stateDir"] = rel
    else:
        conf["ipam"]["dataDir"] = rel
    try:
        err = refused(lab.run("ADD", conf, ctr_ns, "ctr1"), 7)
        assert where.split(".")[-1] in err["msg"] and "absolute" in err["msg"]
        for cwd in (os.getcwd(), "/"):
            assert not os.path.exists(os.path.join(cwd, rel)), cwd
        # the bridge may be made before IPAM refuses the config (it stays, as after any ADD)
        expected = {"lo", "br-rel"} if where == "ipam.dataDir" else {"lo"}
        untouched(lab, ctr_ns, "rel", expected)
        res = lab.run("DEL", conf, ctr_ns, "ctr1")  # DEL cannot use the path either
        refused(res, 7)
        untouched(lab, ctr_ns, "rel", expected)
    finally:
        for cwd in (os.getcwd(), "/"):
            shutil.rmtree(os.path.join(cwd, rel), ignore_errors=True)


@pytest.mark.parametrize("ipam_type", ["bridge", "portmap", "loopback", "ptp"])
def test_ipam_type_that_is_not_an_ipam_plugin_is_code_7(ipam_type: str, host_ns: Netns, ctr_ns: Netns,
                                                        tmp_path: Path, plugin_env: dict[str, str]) -> None:
    """``ipam.type: bridge`` made the bridge delegate to itself until the stack ran out."""
    lab = make_lab(host_ns, tmp_path, plugin_env)
    conf = lab.conf("selfipam", None, ipam={"type": ipam_type})
    err = refused(lab.run("ADD", conf, ctr_ns, "ctr1"), 7)
    assert f"ipam.type {ipam_type!r} is not an IPAM plugin" in err["msg"]
    untouched(lab, ctr_ns, "selfipam", {"lo"})
    refused(lab.run("DEL", conf, ctr_ns, "ctr1"), 7)


@pytest.mark.parametrize("level", ["verbose", "\udcff", "-5", "DEBUG2"])
def test_invalid_log_level_is_ignored_with_a_warning(level: str, host_ns: Netns, ctr_ns: Netns,
                                                      plugin_env: dict[str, str]) -> None:
    conf = {"cniVersion": "1.0.0", "name": "lo-net", "type": "loopback"}
    env = plugin_env | {"NETCTL_LOG_LEVEL": level}
    res = run_plugin(host_ns, "loopback", "ADD", conf, netns=ctr_ns.path, ifname="lo", env=env)
    assert res.rc == 0, res.stderr
    assert res.json["interfaces"][0]["name"] == "lo"
    assert "ignoring invalid NETCTL_LOG_LEVEL" in res.stderr and "Traceback" not in res.stderr
    # and the error path still answers
    refused(run_plugin(host_ns, "loopback", "ADD", b"{", netns=ctr_ns.path, ifname="lo", env=env), 6,
            version="1.1.0")
    run_plugin(host_ns, "loopback", "DEL", conf, netns=ctr_ns.path, ifname="lo", env=env).ok()


FAKE_IPAM = """#!/bin/sh
cat >/dev/null
case "$CNI_COMMAND" in
ADD) echo '{"cniVersion": "1.0.0", "ips": [{"address": "10.76.0.5/24", "gateway": "10.76.0.1"}]}' ;;
DEL) echo '{"cniVersion": "1.0.0", "code": 5, "msg": "fake-ipam cannot release its lease"}'; exit 1 ;;
*) exit 0 ;;
esac
"""


def test_failed_rollback_is_reported_and_logged(host_ns: Netns, ctr_ns: Netns, tmp_path: Path,
                                                plugin_env: dict[str, str]) -> None:
    """The ADD fails after IPAM; releasing the lease fails too: the error says so."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "fake-ipam").write_text(FAKE_IPAM)
    (bindir / "fake-ipam").chmod(0o755)
    host_ns.run(["ip", "link", "add", "br-rb", "type", "bridge"])
    host_ns.run(["ip", "addr", "add", "10.99.0.1/24", "dev", "br-rb"])
    lab = make_lab(host_ns, tmp_path, plugin_env)
    lab.path = f"{bindir}:{plugin_dir()}"
    conf = lab.conf("rb", None, bridge="br-rb", ipam={"type": "fake-ipam"})
    err = refused(lab.run("ADD", conf, ctr_ns, "ctr1"), 7)
    assert "already has an IP address" in err["msg"]
    assert ("rollback incomplete: failed to release the fake-ipam lease: "
            "fake-ipam cannot release its lease") in err["details"]
    res = lab.run("ADD", conf, ctr_ns, "ctr1")
    assert "rollback: failed to release the fake-ipam lease" in res.stderr  # logged as well
    assert link_names(ctr_ns) == {"lo"} and link_names(host_ns) == {"lo", "br-rb"}


@pytest.mark.parametrize("boom", ["raise MemoryError('simulated')", "raise RecursionError('simulated')",
                                  "def broken(:\n", "import no_such_module_i13b"])
@pytest.mark.parametrize("daemon", ["0", "unreachable"])
def test_plugin_module_that_fails_to_import(boom: str, daemon: str, host_ns: Netns, tmp_path: Path) -> None:
    """The executable still prints an error object (code 100) and exits 1."""
    fake = tmp_path / "fake" / "ipam"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "hostlocal.py").write_text(boom + "\n")
    exe = tmp_path / "host-local"
    exe.write_text(f"#!{sys.executable} -IS\n"
                   "import sys\n"
                   f"sys.path[:0] = {[str(tmp_path / 'fake'), *_import_roots()]!r}\n"
                   "from netplugins.cni.shim import main\n"
                   "main('host-local')\n")
    exe.chmod(0o755)
    env = {"NETCTL_PLUGIND": "0"} if daemon == "0" else {
        "NETCTL_PLUGIND": "1", "NETCTL_PLUGIND_SOCKET": str(tmp_path / "no-daemon.sock")}
    conf = {"cniVersion": "0.4.0", "name": "n", "type": "host-local", "ipam": {}}
    res = run_plugin(host_ns, "host-local", "ADD", conf, env=env, exe=str(exe), netns="/x")
    err = refused(res, 100, version="0.4.0")
    assert "failed to run the plugin" in err["msg"]
    assert err["details"].split(":")[0] in ("MemoryError", "RecursionError", "SyntaxError",
                                            "ModuleNotFoundError")


def test_about_text_without_cni_command(host_ns: Netns) -> None:
    """Run by hand (no CNI_COMMAND), with a bad log level: the about text, no traceback."""
    res = run_plugin(host_ns, "bridge", "", b"", env={"NETCTL_LOG_LEVEL": "nonsense", "CNI_COMMAND": ""})
    assert res.rc == 0 and "CNI protocol versions supported" in res.stderr
    assert "Traceback" not in res.stderr


@pytest.mark.parametrize("cni_args,extra,kept", [
    ("IgnoreUnknown=1;K8S_POD_NAME=web\n", {}, ["ctr1"]),
    ("", {"runtimeConfig": {"aliases": {"dnsbad": ["db", "my db", "x\ny"]}}}, ["db", "ctr1"]),
])
def test_names_dns_cannot_hold_are_skipped(cni_args: str, extra: dict, kept: list[str], host_ns: Netns,
                                           ctr_ns: Netns, tmp_path: Path, plugin_env: dict[str, str]) -> None:
    """A pod name or alias with a newline or blank is no DNS name: skipped by netctl-dns
    (as netavark does), the other names registered, nothing left after DEL."""
    chain = Chain(host_ns, tmp_path, "ours", dict(plugin_env))
    main, dns = chain.main_conf("dnsbad", "10.75.0.0/24"), chain.dns_conf("dnsbad", **extra)
    chain.add(main, dns, ctr_ns, "ctr1", cni_args=cni_args)
    try:
        assert chain.entry("dnsbad", "ctr1")["names"] == kept
    finally:
        chain.delete(main, dns, ctr_ns, "ctr1", cni_args=cni_args)
    assert chain.registered() == []
    make_lab(host_ns, tmp_path).assert_clean("dnsbad", expect_links={"lo", "br-dnsbad"})


@pytest.mark.parametrize("closed", [0, 2])
def test_closed_stdin_or_stderr(closed: int, host_ns: Netns, plugin_env: dict[str, str]) -> None:
    """Started without stdin: code 5. Without stderr: still exactly one error object."""
    import subprocess

    env = {"PATH": os.environ["PATH"], "CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c1", "CNI_IFNAME": "lo",
           "CNI_NETNS": "/run/netns/nctest-absent", **plugin_env}
    proc = subprocess.run(host_ns.cmd([os.path.join(plugin_dir(), "loopback")]), env=env,
                          input=None if closed == 0 else b'{"cniVersion": "1.0.0", "name": "n", "type": "loopback"}',
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE if closed != 2 else None,
                          preexec_fn=lambda: os.close(closed), timeout=60)
    assert proc.returncode == 1
    err = json.loads(proc.stdout)  # one object: a second one would not parse
    assert err["code"] == (5 if closed == 0 else 104), err
    assert b"Traceback" not in (proc.stderr or b"")


def test_check_of_an_l2_only_network_with_ipmasq(host_ns: Netns, ctr_ns: Netns, tmp_path: Path,
                                                  plugin_env: dict[str, str]) -> None:
    """Found by the fuzzer: ADD of a network without IPAM sets no rules up (no subnet), and
    CHECK then asked for them ("table inet netctl is missing")."""
    lab = make_lab(host_ns, tmp_path, plugin_env)
    conf = lab.conf("l2only", None, ipMasq=True)
    res = lab.add(conf, ctr_ns, "ctr1")
    lab.check(conf, res, ctr_ns, "ctr1").ok()
    lab.delete(conf, ctr_ns, "ctr1")
    lab.assert_clean("l2only", expect_links={"lo", "br-l2only"})
