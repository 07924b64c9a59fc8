"""Network config parsing: the common keys and their errors."""

from __future__ import annotations

import json

import pytest

from netplugins.cni.errors import CniError
from netplugins.cni.gc import valid_attachments
from netplugins.cni.netconf import load_netconf


def test_common_keys() -> None:
    conf = load_netconf(json.dumps({
        "cniVersion": "0.4.0", "name": "n1", "type": "bridge",
        "prevResult": {"cniVersion": "0.4.0", "ips": [{"version": "4", "address": "10.0.0.2/24"}]},
        "runtimeConfig": {"portMappings": []}, "args": {"cni": {"ips": ["10.0.0.9"]}},
        "capabilities": {"portMappings": True}, "somethingElse": 1,
    }).encode())
    assert conf.prev_result is not None and conf.prev_result.ips[0].address == "10.0.0.2/24"
    assert conf.cni_args() == {"ips": ["10.0.0.9"]}
    assert conf.raw["somethingElse"] == 1


@pytest.mark.parametrize("obj,code", [
    ({"name": "n", "type": "t"}, 7),
    ({"cniVersion": "1.0.0", "type": "t"}, 7),
    ({"cniVersion": "1.0.0", "name": "bad name", "type": "t"}, 7),
    ({"cniVersion": "1.0.0", "name": "n", "type": "a/b"}, 7),
    ({"cniVersion": "1.0.0", "name": "n", "type": "t", "runtimeConfig": []}, 7),
    ({"cniVersion": "1.0.0", "name": "n", "type": "t", "prevResult": []}, 6),
    ({"cniVersion": "x.y", "name": "n", "type": "t"}, 6),
])
def test_invalid(obj: dict, code: int) -> None:
    with pytest.raises(CniError) as exc:
        load_netconf(json.dumps(obj).encode())
    assert exc.value.code == code


def test_valid_attachments_both_keys() -> None:
    new = {"cni.dev/valid-attachments": [{"containerID": "a", "ifname": "eth0"}]}
    old = {"cni.dev/attachments": [{"containerID": "b", "ifname": "eth1"}]}
    assert valid_attachments(json.dumps(new).encode()) == {("a", "eth0")}
    assert valid_attachments(json.dumps(old).encode()) == {("b", "eth1")}
    assert valid_attachments(b'{"cni.dev/valid-attachments": []}') == set()
    with pytest.raises(CniError):
        valid_attachments(b"{}")
    with pytest.raises(CniError):
        valid_attachments(b'{"cni.dev/valid-attachments": [1]}')
