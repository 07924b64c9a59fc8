"""``--format`` templates over inspect objects (runtime/format.py), as Docker's Go templates
print them: compact JSON, maps in key order, ``<nil>`` for null, "" for a missing index."""

from __future__ import annotations

from typing import Any

import pytest

from runtime.errors import NetctlError
from runtime.format import render

NET: dict[str, Any] = {
    "Name": "my_net2",
    "Id": "ab" * 32,
    "Internal": False,
    "IPAM": {"Driver": "default", "Config": [{"Subnet": "172.22.16.0/24", "Gateway": "172.22.16.1"}]},
    "Containers": {
        "ffff": {"Name": "web2", "IPv4Address": "172.22.16.3/24"},
        "0000": {"Name": "web1", "IPv4Address": "172.22.16.2/24"},
    },
    "Options": {"com.docker.network.bridge.name": "br-x"},
    "Labels": {},
    "EnableIPv6": False,
    "Status": None,
}


@pytest.mark.parametrize(("template", "expected"), [
    ("{{.Name}}", "my_net2"),
    ("name={{.Name}} internal={{.Internal}}", "name=my_net2 internal=false"),
    ("{{ .Name }}", "my_net2"),
    ("{{json .IPAM.Config}}", '[{"Subnet":"172.22.16.0/24","Gateway":"172.22.16.1"}]'),
    ("{{json .Labels}}", "{}"),
    ("{{json .Name}}", '"my_net2"'),
    ("{{range .Containers}}{{.Name}} {{end}}", "web1 web2 "),
    ("{{range .IPAM.Config}}{{.Subnet}}/{{.Gateway}}{{end}}", "172.22.16.0/24/172.22.16.1"),
    ("{{index .Options \"com.docker.network.bridge.name\"}}", "br-x"),
    ("{{index .Options \"missing\"}}", ""),
    ("{{.IPAM.Config}}", "[map[Gateway:172.22.16.1 Subnet:172.22.16.0/24]]"),
    ("{{.Options}}", "map[com.docker.network.bridge.name:br-x]"),
    ("{{.Status}}", "<nil>"),
    ("{{.EnableIPv6}}", "false"),
    ("{{.IPAM.Config[0].Subnet}}", "172.22.16.0/24"),
    (".IPAM.Config[0].Gateway", "172.22.16.1"),
    ("json .Labels", "{}"),
    ("no template at all", None),
])
def test_render(template: str, expected: str | None) -> None:
    if expected is None:
        with pytest.raises(NetctlError):
            render(template, NET)
        return
    assert render(template, NET) == expected


def test_nested_range() -> None:
    obj = {"Networks": {"b": {"Ips": ["10.0.0.2", "10.0.0.3"]}, "a": {"Ips": ["10.1.0.2"]}}}
    out = render("{{range .Networks}}[{{range .Ips}}{{.}},{{end}}]{{end}}", obj)
    assert out == "[10.1.0.2,][10.0.0.2,10.0.0.3,]"


def test_range_over_empty_and_null() -> None:
    assert render("a{{range .Containers}}x{{end}}b", {"Containers": {}}) == "ab"
    assert render("a{{range .Containers}}x{{end}}b", {"Containers": None}) == "ab"


@pytest.mark.parametrize("template", [
    "{{.NoSuchField}}",
    "{{.IPAM.Config[3].Subnet}}",
    "{{.Name.Deeper}}",
    "{{range .Containers}}{{.Name}}",          # no end
    "{{if .Internal}}yes{{end}}",              # unsupported action
    "{{Name}}",                                # not a path
])
def test_errors_are_netctl_errors(template: str) -> None:
    with pytest.raises(NetctlError) as exc:
        render(template, NET)
    assert exc.value.msg.startswith("template: ")
