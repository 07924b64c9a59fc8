"""CNI_* environment parsing: every bad input gets code 4 (or 3) naming the variable."""

from __future__ import annotations

import pytest

from netplugins.cni.env import check_known_args, parse_cni_args, parse_env, validate_ifname
from netplugins.cni.errors import INVALID_ENV, UNKNOWN_CONTAINER, CniError

BASE = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c1", "CNI_NETNS": "/run/netns/x",
        "CNI_IFNAME": "eth0", "CNI_PATH": "/opt/cni/bin:/usr/lib/cni"}


def env(**kw: str | None) -> dict[str, str]:
    out = dict(BASE)
    for k, v in kw.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = v
    return out


def test_valid_add() -> None:
    args = parse_env(env(CNI_ARGS="IgnoreUnknown=1;IP=10.0.0.5"), b"{}")
    assert args.command == "ADD"
    assert args.container_id == "c1"
    assert args.ifname == "eth0"
    assert args.path == ("/opt/cni/bin", "/usr/lib/cni")
    assert args.args == {"IgnoreUnknown": "1", "IP": "10.0.0.5"}


@pytest.mark.parametrize("missing", ["CNI_CONTAINERID", "CNI_IFNAME", "CNI_NETNS"])
def test_missing_var_named(missing: str) -> None:
    with pytest.raises(CniError) as exc:
        parse_env(env(**{missing: None}))
    assert exc.value.code == INVALID_ENV
    assert missing in exc.value.msg


def test_all_missing_named_together() -> None:
    with pytest.raises(CniError) as exc:
        parse_env({"CNI_COMMAND": "ADD"})
    assert exc.value.msg == "required env variables [CNI_CONTAINERID, CNI_IFNAME, CNI_NETNS] missing"


def test_del_needs_no_netns() -> None:
    assert parse_env(env(CNI_COMMAND="DEL", CNI_NETNS=None)).netns == ""


@pytest.mark.parametrize("cmd", ["GC", "STATUS", "VERSION"])
def test_commands_without_attachment(cmd: str) -> None:
    assert parse_env({"CNI_COMMAND": cmd}).command == cmd


@pytest.mark.parametrize("bad", ["", "BOGUS", "add"])
def test_bad_command(bad: str) -> None:
    with pytest.raises(CniError) as exc:
        parse_env(env(CNI_COMMAND=bad))
    assert exc.value.code == INVALID_ENV
    assert "CNI_COMMAND" in exc.value.msg


def test_empty_container_id_is_unknown_container() -> None:
    with pytest.raises(CniError) as exc:
        parse_env(env(CNI_CONTAINERID=""))
    assert exc.value.code == UNKNOWN_CONTAINER


@pytest.mark.parametrize("cid", ["-abc", "a b", "a/b", "ab$"])
def test_container_id_regex(cid: str) -> None:
    with pytest.raises(CniError) as exc:
        parse_env(env(CNI_CONTAINERID=cid))
    assert exc.value.code == INVALID_ENV
    assert "CNI_CONTAINERID" in exc.value.msg


@pytest.mark.parametrize("name", ["a" * 16, "eth/0", "eth:0", "eth 0", "eth\t0", ".", "..", ""])
def test_bad_ifname(name: str) -> None:
    with pytest.raises(CniError) as exc:
        validate_ifname(name)
    assert exc.value.code == INVALID_ENV
    assert "CNI_IFNAME" in exc.value.msg


def test_ifname_of_15_is_fine() -> None:
    validate_ifname("a" * 15)


def test_relative_netns_refused() -> None:
    with pytest.raises(CniError) as exc:
        parse_env(env(CNI_NETNS="run/netns/x"))
    assert "CNI_NETNS" in exc.value.msg


def test_cni_args_malformed() -> None:
    with pytest.raises(CniError) as exc:
        parse_cni_args("IgnoreUnknown=1;novalue")
    assert exc.value.code == INVALID_ENV and "CNI_ARGS" in exc.value.msg


def test_ignore_unknown_semantics() -> None:
    known = frozenset({"IP"})
    check_known_args({"IP": "1.2.3.4"}, known)
    check_known_args({"IgnoreUnknown": "1", "K8S_POD_NAME": "x"}, known)
    check_known_args({"IgnoreUnknown": "true", "K8S_POD_NAME": "x"}, known)
    with pytest.raises(CniError) as exc:
        check_known_args({"K8S_POD_NAME": "x"}, known)
    assert exc.value.code == INVALID_ENV and "K8S_POD_NAME" in exc.value.msg
    with pytest.raises(CniError):
        check_known_args({"IgnoreUnknown": "0", "K8S_POD_NAME": "x"}, known)
