"""The skeleton's dispatch, version handling and error mapping, with a fake plugin."""

from __future__ import annotations

import json

import pytest
from goldenutil import assert_golden

from netplugins.cni.errors import CniError
from netplugins.cni.skel import CmdArgs, PluginFuncs, run
from netplugins.cni.types import Interface, IPConfig, Result, Route
from netplugins.cni.version import SUPPORTED_VERSIONS

RESULT = Result(
    interfaces=(Interface("br0", "aa:bb:cc:00:00:01"), Interface("veth1", "aa:bb:cc:00:00:02"),
                Interface("eth0", "aa:bb:cc:00:00:03", sandbox="/run/netns/c", mtu=1500)),
    ips=(IPConfig("10.1.0.5/24", "10.1.0.1", 2), IPConfig("fd00::5/64", "fd00::1", 2)),
    routes=(Route("0.0.0.0/0", "10.1.0.1"), Route("::/0", priority=10)),
)


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, CmdArgs]] = []

    def funcs(self, fail: CniError | Exception | None = None) -> PluginFuncs:
        def add(args: CmdArgs) -> Result:
            self.calls.append(("ADD", args))
            if fail:
                raise fail
            return RESULT

        def other(name: str):  # type: ignore[no-untyped-def]
            def fn(args: CmdArgs) -> None:
                self.calls.append((name, args))
                if fail:
                    raise fail
            return fn

        return PluginFuncs(add=add, delete=other("DEL"), check=other("CHECK"),
                           status=other("STATUS"), gc=other("GC"), about="fake")


def env(cmd: str) -> dict[str, str]:
    return {"CNI_COMMAND": cmd, "CNI_CONTAINERID": "c1", "CNI_NETNS": "/run/netns/c",
            "CNI_IFNAME": "eth0", "CNI_PATH": "/bin"}


def conf(version: str = "1.0.0", **extra: object) -> bytes:
    return json.dumps({"cniVersion": version, "name": "net1", "type": "fake", **extra}).encode()


def test_version_command() -> None:
    out = run(Recorder().funcs(), {"CNI_COMMAND": "VERSION"}, b'{"cniVersion": "0.4.0"}')
    assert out.exit_code == 0
    assert json.loads(out.stdout) == {"cniVersion": "0.4.0", "supportedVersions": list(SUPPORTED_VERSIONS)}


@pytest.mark.parametrize("version", SUPPORTED_VERSIONS)
def test_add_prints_result_in_requested_version(version: str) -> None:
    out = run(Recorder().funcs(), env("ADD"), conf(version))
    assert out.exit_code == 0
    got = json.loads(out.stdout)
    assert_golden(f"cni/result-{version}.json", got)
    has_version = all("version" in ip for ip in got["ips"])
    assert has_version == (version in ("0.3.0", "0.3.1", "0.4.0"))


@pytest.mark.parametrize("version", ["0.2.0", "2.0.0", "1.0"])
def test_unsupported_config_version_is_code_1(version: str) -> None:
    out = run(Recorder().funcs(), env("ADD"), conf(version))
    assert out.exit_code != 0
    err = json.loads(out.stdout)
    assert err["code"] == 1
    assert err["cniVersion"] == version
    assert version in err["details"]


def test_undecodable_stdin_is_code_6() -> None:
    out = run(Recorder().funcs(), env("ADD"), b"{not json")
    assert json.loads(out.stdout)["code"] == 6
    assert out.exit_code != 0


def test_error_object_shape() -> None:
    out = run(Recorder().funcs(CniError(7, "invalid config: x", "more")), env("ADD"), conf())
    assert json.loads(out.stdout) == {"cniVersion": "1.0.0", "code": 7, "msg": "invalid config: x",
                                      "details": "more"}
    assert out.stderr.strip()  # a log line on stderr


def test_unexpected_exception_is_code_100_without_traceback() -> None:
    out = run(Recorder().funcs(RuntimeError("boom")), env("ADD"), conf())
    err = json.loads(out.stdout)
    assert err["code"] == 100 and "boom" in err["details"]
    assert b"Traceback" not in out.stderr + out.stdout


def test_check_needs_040() -> None:
    rec = Recorder()
    out = run(rec.funcs(), env("CHECK"), conf("0.3.1"))
    assert json.loads(out.stdout)["code"] == 1
    assert rec.calls == []
    assert run(rec.funcs(), env("CHECK"), conf("0.4.0")).exit_code == 0


@pytest.mark.parametrize("cmd", ["GC", "STATUS"])
def test_gc_status_need_110(cmd: str) -> None:
    rec = Recorder()
    assert json.loads(run(rec.funcs(), {"CNI_COMMAND": cmd}, conf("1.0.0")).stdout)["code"] == 1
    out = run(rec.funcs(), {"CNI_COMMAND": cmd}, conf("1.1.0"))
    assert out.exit_code == 0 and out.stdout == b""
    assert [c for c, _ in rec.calls] == [cmd]


def test_del_and_check_print_nothing() -> None:
    for cmd in ("DEL", "CHECK"):
        out = run(Recorder().funcs(), env(cmd), conf())
        assert out.exit_code == 0 and out.stdout == b""


def test_capabilities_key_tolerated() -> None:
    out = run(Recorder().funcs(), env("ADD"), conf(capabilities={"portMappings": True}))
    assert out.exit_code == 0


def test_unknown_cni_args_need_ignore_unknown() -> None:
    e = env("ADD") | {"CNI_ARGS": "K8S_POD_NAME=x"}
    assert json.loads(run(Recorder().funcs(), e, conf()).stdout)["code"] == 4
    e["CNI_ARGS"] = "IgnoreUnknown=1;K8S_POD_NAME=x"
    assert run(Recorder().funcs(), e, conf()).exit_code == 0


def test_env_error_before_plugin_runs() -> None:
    rec = Recorder()
    e = env("ADD")
    e["CNI_IFNAME"] = "x" * 16
    out = run(rec.funcs(), e, conf())
    assert json.loads(out.stdout)["code"] == 4
    assert rec.calls == []


def test_prev_result_roundtrip() -> None:
    for version in SUPPORTED_VERSIONS:
        assert Result.from_dict(RESULT.to_dict(version)).ips == RESULT.ips
