"""Each class of bad input (issue 13) gets its CNI code and a message, from every plugin.

In-process through ``skel.run`` with each plugin's FUNCS; the inputs are refused before
any kernel access, so no namespace is needed. The same classes through the executables
and the daemon: tests/integration/test_plugin_inputs.py.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from netplugins.cni import lastresort
from netplugins.cni.errors import CniError
from netplugins.cni.netconf import check_path, decode_json
from netplugins.cni.rollback import Rollback
from netplugins.cni.skel import PluginFuncs, log_level, run
from netplugins.registry import IPAM_PLUGINS, NOT_IPAM, PLUGINS, load_funcs

ENV = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c1", "CNI_NETNS": "/run/netns/i13b-absent",
       "CNI_IFNAME": "eth0", "CNI_PATH": "/nonexistent"}


def conf(ptype: str, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"cniVersion": "1.0.0", "name": "net1", "type": ptype}
    if ptype in ("bridge", "host-local"):
        out["ipam"] = {"type": "host-local", "subnet": "10.9.0.0/24", "dataDir": "/nonexistent/ipam"}
    if ptype == "container":
        out |= {"container": "owner", "ownerNetns": "/run/netns/i13b-absent"}
    out.update(extra)
    return out


def outcome(ptype: str, stdin: bytes | dict[str, Any], **env: str) -> tuple[int, dict[str, Any]]:
    data = stdin if isinstance(stdin, bytes) else json.dumps(stdin).encode()
    out = run(load_funcs(ptype), {**ENV, **env}, data)
    assert out.exit_code == 1, out
    err = json.loads(out.stdout)
    assert set(err) <= {"cniVersion", "code", "msg", "details"} and err["msg"]
    assert b"Traceback" not in out.stderr
    return err["code"], err


@pytest.mark.parametrize("ptype", sorted(PLUGINS))
@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_deeply_nested_json_is_code_6(ptype: str, depth: int) -> None:
    inner = b"[" * depth + b"]" * depth
    for doc in (inner, b'{"cniVersion": "1.0.0", "name": "n", "type": "t", "x": ' + inner + b"}",
                b'{"a":' * depth + b"1" + b"}" * depth):
        code, err = outcome(ptype, doc)
        assert code == 6, err


@pytest.mark.parametrize("ptype", sorted(PLUGINS))
@pytest.mark.parametrize("var,value", [
    ("CNI_CONTAINERID", "c1\n"), ("CNI_CONTAINERID", "c1\ndel"), ("CNI_CONTAINERID", "\nc1"),
    ("CNI_IFNAME", "eth\udcff"), ("CNI_IFNAME", "eth0\n"), ("CNI_IFNAME", "\u00e9" * 8),
    ("CNI_IFNAME", "e\x01"), ("CNI_NETNS", "/run/netns/\udcff"), ("CNI_ARGS", "IP=\udcff"),
    ("CNI_PATH", "/opt/\udcff"),
])
def test_bad_environment_is_code_4(ptype: str, var: str, value: str) -> None:
    code, err = outcome(ptype, conf(ptype), **{var: value})
    assert code == 4, err
    assert var in err["msg"]


@pytest.mark.parametrize("ptype", sorted(PLUGINS))
@pytest.mark.parametrize("name", ["net1\n", "net1\nx", "\nnet1", "net\x00"])
def test_network_name_matches_whole_string(ptype: str, name: str) -> None:
    code, err = outcome(ptype, conf(ptype, name=name))
    assert code == 7 and "network name" in err["msg"], err


@pytest.mark.parametrize("ptype,section,key", [
    ("host-local", "ipam", "dataDir"),  # bridge: integration/test_plugin_inputs.py
    ("host-local", "ipam", "resolvConf"), ("bridge", None, "stateDir"),
    ("portmap", None, "stateDir"), ("container", None, "dataDir"),
    ("container", None, "ownerNetns"),
])
@pytest.mark.parametrize("path", ["relative/dir", "./x", "x", "/abs/\udcff", "/abs/\x00nul"])
@pytest.mark.parametrize("command", ["ADD", "DEL"])
def test_relative_or_broken_path_is_code_7(ptype: str, section: str | None, key: str, path: str,
                                           command: str) -> None:
    c = conf(ptype, runtimeConfig={"portMappings": [{"hostPort": 8080, "containerPort": 80}]})
    if command == "DEL" and (ptype, key) in (("portmap", "stateDir"), ("host-local", "resolvConf")):
        pytest.skip("DEL does not use this key (portmap's falls back: ADD wrote nothing with it)")
    (c[section] if section else c)[key] = path
    code, err = outcome(ptype, c, CNI_COMMAND=command)
    assert code == 7, err
    assert key in err["msg"] + err.get("details", "")


@pytest.mark.parametrize("ipam_type", sorted(NOT_IPAM))
@pytest.mark.parametrize("command", ["ADD", "DEL", "CHECK"])
def test_ipam_type_that_is_not_an_ipam_plugin_is_code_7(ipam_type: str, command: str) -> None:
    c = conf("bridge", ipam={"type": ipam_type}, prevResult={"cniVersion": "1.0.0"})
    code, err = outcome("bridge", c, CNI_COMMAND=command)
    assert code == 7 and ipam_type in err["msg"] and "not an IPAM plugin" in err["msg"], err


def test_ipam_plugins_are_not_refused() -> None:
    assert IPAM_PLUGINS <= set(PLUGINS) and not IPAM_PLUGINS & NOT_IPAM
    assert {"host-local", "static", "dhcp"}.isdisjoint(NOT_IPAM)


def test_delegating_to_our_own_non_ipam_plugin_is_code_7(tmp_path: Path) -> None:
    """A file named like an IPAM plugin that is our bridge (a link, a copy) is refused
    before it could delegate to itself."""
    from netplugins.cni.invoke import delegate
    from netplugins.delivery import shim_text

    exe = tmp_path / "my-ipam"
    exe.write_text(shim_text("bridge"))
    exe.chmod(0o755)
    with pytest.raises(CniError) as exc:
        delegate("my-ipam", "ADD", json.dumps(conf("bridge")).encode(), ENV, (str(tmp_path),))
    assert exc.value.code == 7 and "not an IPAM plugin" in exc.value.msg


@pytest.mark.parametrize("value,expected", [
    (None, logging.WARNING), ("", logging.WARNING), ("debug", logging.DEBUG), ("INFO", logging.INFO),
    (" error ", logging.ERROR), ("10", 10),
])
def test_log_level_valid(value: str | None, expected: int) -> None:
    assert log_level(value) == (expected, "")


@pytest.mark.parametrize("value", ["verbose", "-1", "DEBUG2", "\udcff", "1e9", "Level 5", "9999"])
def test_log_level_invalid_is_ignored_with_a_complaint(value: str) -> None:
    level, complaint = log_level(value)
    assert level == logging.WARNING and "NETCTL_LOG_LEVEL" in complaint
    logging.getLogger().setLevel(level)  # what the daemon's worker does: must not raise


def test_decode_json_depth() -> None:
    with pytest.raises(CniError) as exc:
        decode_json(b"[" * 50_000)
    assert exc.value.code == 6 and "deeply" in exc.value.details


@pytest.mark.parametrize("value", ["rel", "", None, 5, "/a\x00b", "/\udcff"])
def test_check_path_refuses(value: object) -> None:
    with pytest.raises(CniError) as exc:
        check_path(value, "stateDir")
    assert exc.value.code == 7 and "stateDir" in exc.value.msg


class Boom(Exception):
    pass


def _funcs(exc: BaseException) -> PluginFuncs:
    def add(_args: object) -> Any:
        raise exc

    return PluginFuncs(add=add, delete=add)


@pytest.mark.parametrize("exc", [MemoryError(), RecursionError("deep"), Boom("x"), ValueError("\udcff")])
def test_run_turns_any_exception_into_code_100(exc: BaseException) -> None:
    out = run(_funcs(exc), ENV, json.dumps(conf("t")).encode())
    err = json.loads(out.stdout)
    assert out.exit_code == 1 and err["code"] == 100 and type(exc).__name__ in err["details"]
    assert err["cniVersion"] == "1.0.0"


def test_lastresort_error_json() -> None:
    doc = json.loads(lastresort.error_json(b'{"cniVersion": "0.4.0", "x": [[[', 100, "m", "d"))
    assert doc == {"cniVersion": "0.4.0", "code": 100, "msg": "m", "details": "d"}
    # a version that does not look like one is not echoed
    assert json.loads(lastresort.error_json(b'{"cniVersion": "\\"}', 100, "m"))["cniVersion"] == "1.1.0"


# --- rollback -----------------------------------------------------------------------------

def _fails(what: str) -> None:
    raise OSError(f"{what} is stuck")


def test_rollback_failure_is_in_the_error_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    done: list[str] = []
    with pytest.raises(CniError) as exc, Rollback() as undo:
        undo.undo("release the lease", done.append, "lease")
        undo.undo("delete the veth vethx", _fails, "vethx")
        undo.undo("remove the record", done.append, "record")
        raise CniError(101, "netlink said no", "EPERM")
    assert done == ["record", "lease"]  # reverse order, carried on past the failure
    err = exc.value
    assert err.code == 101 and err.msg == "netlink said no"
    assert err.details == "EPERM; rollback incomplete: failed to delete the veth vethx: OSError: vethx is stuck"
    assert "failed to delete the veth vethx" in caplog.text


def test_rollback_failure_on_a_bug_becomes_a_note_in_code_100() -> None:
    def add(_args: object) -> Any:
        with Rollback() as undo:
            undo.undo("release the lease", _fails, "lease")
            raise KeyError("bug")

    out = run(PluginFuncs(add=add, delete=add), ENV, json.dumps(conf("t")).encode())
    err = json.loads(out.stdout)
    assert err["code"] == 100
    assert "KeyError" in err["details"] and "rollback incomplete: failed to release the lease" in err["details"]


def test_rollback_after_success_runs_nothing() -> None:
    done: list[str] = []
    with Rollback() as undo:
        undo.undo("x", done.append, "x")
        undo.pop_all()
    assert done == [] and undo.failures == []


@pytest.mark.parametrize("name", ["net1\n", "net1\nx", "\nnet1"])
def test_names_match_whole_strings_everywhere(name: str) -> None:
    """The firewall's and netctl's name rules too: ``$`` accepted a trailing newline."""
    from netplugins.firewall.errors import FirewallError
    from netplugins.firewall.plan import validate_network_name
    from runtime import containers, networks, state

    with pytest.raises(FirewallError):
        validate_network_name(name)
    for pattern in (networks.NAME_RE, containers.NAME_RE, state._SAFE_NAME):
        assert pattern.fullmatch(name) is None
        assert pattern.fullmatch(name.replace("\n", "")) is not None
