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
    "{{template \"x\"}}",                     # unsupported action
    "{{Name}}",                                # not a path
])
def test_errors_are_netctl_errors(template: str) -> None:
    with pytest.raises(NetctlError) as exc:
        render(template, NET)
    assert exc.value.msg.startswith("template: ")


CTR: dict[str, Any] = {
    "Name": "web1",
    "Args": ["-c", "sleep 600"],
    "NetworkSettings": {"Networks": {
        "net1": {"IPAddress": "10.1.0.2", "Aliases": ["a", "b"]},
        "bridge": {"IPAddress": "172.17.0.2", "Aliases": []},
    }},
}


@pytest.mark.parametrize(("template", "expected"), [
    ('{{(index .NetworkSettings.Networks "net1").IPAddress}}', "10.1.0.2"),
    ('{{index .NetworkSettings.Networks "net1" | json}}', '{"IPAddress":"10.1.0.2","Aliases":["a","b"]}'),
    ('{{json (index .NetworkSettings.Networks "bridge").Aliases}}', "[]"),
    ('{{join .Args " "}}', "-c sleep 600"),
    ('{{.Args | join ","}}', None),  # join(sep, list): Go's type error too
    ("{{range $name, $n := .NetworkSettings.Networks}}{{$name}}={{$n.IPAddress}} {{end}}",
     "bridge=172.17.0.2 net1=10.1.0.2 "),
    ("{{range $i, $a := .Args}}{{$i}}:{{$a}};{{end}}", "0:-c;1:sleep 600;"),
    ("{{range .NetworkSettings.Networks}}{{$.Name}}@{{.IPAddress}} {{end}}",
     "web1@172.17.0.2 web1@10.1.0.2 "),
    ("{{$n := .Name}}{{range .Args}}{{$n}} {{end}}", "web1 web1 "),
    ("{{range .NetworkSettings.Networks}}{{join .Aliases \",\"}}|{{end}}", "|a,b|"),
    ("{{if .Args}}has{{else}}none{{end}}", "has"),
    ('{{with index .NetworkSettings.Networks "net1"}}{{.IPAddress}}{{end}}', "10.1.0.2"),
    ("{{range .Missing2}}x{{else}}empty{{end}}", None),
    ("{{len .Args}} {{upper .Name}} {{printf \"%s-%d\" .Name 3}}", "2 WEB1 web1-3"),
    ("a {{- \" b \" -}} c", "a b c"),
    ('{{eq .Name "web1"}} {{ne .Name "web1"}}', "true false"),
])
def test_go_template_features(template: str, expected: str | None) -> None:
    if expected is None:
        with pytest.raises(NetctlError):
            render(template, CTR)
        return
    assert render(template, CTR) == expected


@pytest.mark.parametrize(("template", "where"), [
    ("{{.Name", ":1:1:"),
    ("{{.Name}", ":1:1:"),
    ("{.Name}}", ":1:7:"),
    ("ok {{range .Args}}x", ":1:4:"),
    ("x {{end}}", ":1:5:"),
    ("{{nosuchfunc .Name}}", ":1:3:"),
    ("{{.Name | }}", ":1:"),
    ("line one\n  {{(index .X \"a\"}}", ":2:5:"),
    ("{{$undefined}}", ":1:3:"),
    ("{{and}}", ":1:3:"),
])
def test_malformed_templates_say_where_and_never_echo(template: str, where: str) -> None:
    with pytest.raises(NetctlError) as exc:
        render(template, CTR)
    msg = exc.value.msg
    assert msg.startswith("template: ") and where in msg, msg
    assert template.strip() not in msg
    assert exc.value.code == 1
