"""netctl's conflists and plugins driven by libcni 1.1.2, the library of containerd 1.6/1.7
and podman's CNI backend (Debian 12's golang-github-appc-cni-dev, built offline in GOPATH
mode against /usr/share/gocode): libcni before 1.2 reads only the top-level "cniVersion"
and rejects a result version it does not know ("unsupported CNI result version 1.1.0").

tests/interop/libcni/main.go is the client: ADD, CHECK and DEL of one attachment.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cniutil import plugin_dir
from netctlutil import Netctl, netctl_fixture  # noqa: F401 - the netctl fixture
from nsutil import Netns

pytestmark = pytest.mark.netns

GOCODE = "/usr/share/gocode"
LIBCNI = f"{GOCODE}/src/github.com/containernetworking/cni/libcni"
CLIENT_SRC = Path(__file__).resolve().parents[1] / "interop" / "libcni" / "main.go"


@pytest.fixture(scope="module")
def libcni_client(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The client, built from the Debian libcni sources (no network: GOPROXY=off)."""
    if shutil.which("go") is None or not os.path.isdir(LIBCNI):
        msg = "golang-go and golang-github-appc-cni-dev are needed (scripts/system-packages.txt)"
        if os.environ.get("CI"):
            pytest.fail(msg)  # CI installs them: a skip there would hide the interop test
        pytest.skip(msg)
    out = tmp_path_factory.mktemp("libcni")
    env = dict(os.environ, GO111MODULE="off", GOPATH=GOCODE, GOCACHE=str(out / "cache"),
               GOPROXY="off", GOFLAGS="", CGO_ENABLED="0", GOENV="off")
    exe = str(out / "libcni-client")
    proc = subprocess.run(["go", "build", "-o", exe, str(CLIENT_SRC)], env=env, cwd=str(out),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return exe


@pytest.fixture
def ctr_ns() -> Iterator[Netns]:
    ns = Netns.create("nctest")
    try:
        yield ns
    finally:
        ns.delete()


def run_client(netctl: Netctl, exe: str, verb: str, conflist: str, ns: Netns,
               cid: str = "libcni0001") -> subprocess.CompletedProcess[str]:
    env = dict(netctl.env, CNI_PATH=plugin_dir(), CNI_CACHE_DIR=netctl.path("libcni-cache"))
    return subprocess.run(netctl.host.cmd([exe, verb, conflist, cid, ns.path, "eth0"]), env=env,
                          capture_output=True, text=True, timeout=120)


def test_libcni_1_1_runs_netctl_conflist(netctl: Netctl, libcni_client: str, ctr_ns: Netns) -> None:
    netctl("create", "--subnet", "172.22.40.0/24", "--gateway", "172.22.40.1", "compat")
    conflist = netctl.path("lib", "net.d", "compat.conflist")
    conf = json.loads(Path(conflist).read_text())
    assert conf["cniVersion"] == "1.0.0" and conf["cniVersions"][0] == "1.1.0"

    add = run_client(netctl, libcni_client, "ADD", conflist, ctr_ns)
    assert add.returncode == 0, add.stdout + add.stderr
    result = json.loads(add.stdout)
    assert result["cniVersion"] == "1.0.0"
    assert [ip["address"] for ip in result["ips"]] == ["172.22.40.2/24"]
    addrs = json.loads(ctr_ns.run(["ip", "-j", "addr", "show", "eth0"]).stdout)[0]["addr_info"]
    assert "172.22.40.2" in [a["local"] for a in addrs]
    assert netctl.leases() == [("compat", "172.22.40.2", "libcni0001", "eth0")]

    check = run_client(netctl, libcni_client, "CHECK", conflist, ctr_ns)
    assert check.returncode == 0, check.stdout + check.stderr

    delete = run_client(netctl, libcni_client, "DEL", conflist, ctr_ns)
    assert delete.returncode == 0, delete.stdout + delete.stderr
    assert netctl.leases() == []
    links = json.loads(ctr_ns.run(["ip", "-j", "link", "show"]).stdout)
    assert [link["ifname"] for link in links] == ["lo"]


def test_libcni_1_1_rejects_a_1_1_0_conflist(netctl: Netctl, libcni_client: str, ctr_ns: Netns,
                                             tmp_path: Path) -> None:
    """Why the top-level version matters: the same conflist saying 1.1.0 fails with
    libcni 1.1.2 (what containerd 1.7 users saw)."""
    netctl("create", "--subnet", "172.22.41.0/24", "old")
    conf = json.loads(Path(netctl.path("lib", "net.d", "old.conflist")).read_text())
    conf["cniVersion"] = "1.1.0"
    path = tmp_path / "old.conflist"
    path.write_text(json.dumps(conf))
    add = run_client(netctl, libcni_client, "ADD", str(path), ctr_ns)
    assert add.returncode != 0
    assert "1.1.0" in add.stdout, add.stdout
    run_client(netctl, libcni_client, "DEL", str(path), ctr_ns)


def test_conflists_of_an_older_netctl_are_rewritten(netctl: Netctl) -> None:
    """A network created before the change ("cniVersion": "1.1.0") is fixed on its next use,
    so containerd sees a 1.0.0 conflist without the user re-creating the network."""
    netctl("create", "--subnet", "172.22.46.0/24", "aged")
    path = Path(netctl.path("lib", "net.d", "aged.conflist"))
    conf = json.loads(path.read_text())
    conf["cniVersion"] = "1.1.0"
    path.write_text(json.dumps(conf))
    netctl.run_d("a1", "--network", "aged")
    assert json.loads(path.read_text())["cniVersion"] == "1.0.0"
