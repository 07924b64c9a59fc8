"""End-to-end: bad input to ``netctl``. Each case must give one clear line on stderr that
starts with "Error:", a non-zero exit status, no traceback, and change nothing: the
records, conflists, cached results, leases, namespaces, mounts, plugin records and the
host's links are compared before and after.

One throwaway host namespace serves the whole module (building the scene takes a few
seconds); the cases only fail, so they cannot disturb one another, and each one proves it
left the scene as it found it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

import pytest
from netctlutil import Netctl
from nsutil import Netns

pytestmark = pytest.mark.netns


@pytest.fixture(scope="module")
def scene() -> Iterator[Netctl]:
    """my_net2 (172.22.16.0/24) with web1 on it, j1 joined to web1, b1 on the default bridge,
    an 'auto' network without --subnet, and two files that cannot be executed."""
    host = Netns.create("nctest-host")
    n = Netctl(host)
    try:
        n("create", "--subnet", "172.22.16.0/24", "--gateway", "172.22.16.1", "my_net2")
        n("create", "auto")
        n.run_d("web1", "--network", "my_net2")
        n.run_d("j1", "--network", "container:web1")
        n.run_d("b1")
        with open(n.path("not-executable"), "w") as fh:
            fh.write("#!/bin/sh\necho never\n")
        with open(n.path("bad-format"), "wb") as fh:
            fh.write(b"\x7fELF\x00garbage")
        os.chmod(n.path("bad-format"), 0o755)
        yield n
    finally:
        n.cleanup()
        host.delete()


SLEEP = ("--", "sleep", "600")

# (id, argv, a phrase the error must contain); "{root}" is the scene's NETCTL_ROOT
CASES = [
    # unknown network or container
    ("run-unknown-network", ["run", "-d", "--network", "nope", *SLEEP], "network nope not found"),
    ("connect-unknown-network", ["connect", "nope", "b1"], "network nope not found"),
    ("rm-unknown-network", ["rm", "nope"], "network nope not found"),
    ("inspect-unknown", ["inspect", "nope"], "no such network or container: nope"),
    ("exec-unknown-container", ["exec", "nope", "--", "true"], "no such container: nope"),
    ("stop-unknown-container", ["stop", "nope"], "no such container: nope"),
    ("container-rm-unknown", ["container", "rm", "nope"], "no such container: nope"),
    ("connect-unknown-container", ["connect", "my_net2", "nope"], "no such container: nope"),
    ("disconnect-unknown-container", ["disconnect", "my_net2", "nope"], "no such container: nope"),
    ("check-unknown-container", ["check", "nope"], "no such container: nope"),
    ("join-unknown-container", ["run", "-d", "--network", "container:nope", *SLEEP],
     "no such container: nope"),
    # duplicates
    ("duplicate-container", ["run", "-d", "--name", "web1", *SLEEP], "name 'web1' is already in use"),
    ("duplicate-network", ["create", "my_net2"], "network with name my_net2 already exists"),
    ("duplicate-default-network", ["create", "bridge"], "network with name bridge already exists"),
    ("connect-twice", ["connect", "my_net2", "web1"], "already exists in network my_net2"),
    # invalid names and values
    ("network-name-space", ["create", "bad name"], "invalid network name"),
    ("network-name-slash", ["create", "bad/name"], "invalid network name"),
    ("container-name-slash", ["run", "-d", "--name=bad/name", *SLEEP], "invalid container name"),
    ("container-name-dash", ["run", "-d", "--name=-bad", *SLEEP], "invalid container name"),
    ("container-name-one-char", ["run", "-d", "--name=x", *SLEEP], "invalid container name"),
    ("subnet-garbage", ["create", "--subnet", "garbage", "gnet"], "garbage"),
    ("subnet-host-bits", ["create", "--subnet", "10.77.0.1/24", "hnet"], "10.77.0.1/24"),
    ("ip-garbage", ["run", "-d", "--network", "my_net2", "--ip", "300.1.1.1", *SLEEP], "300.1.1.1"),
    ("unknown-option", ["create", "-o", "no.such.option=1", "onet"], "unknown option"),
    # subnets and gateways
    ("overlap-user-network", ["create", "--subnet", "172.22.16.128/25", "ovl"], "overlaps"),
    ("overlap-default-bridge", ["create", "--subnet", "172.17.5.0/24", "ovl"], "overlaps"),
    ("gateway-outside-subnet", ["create", "--subnet", "10.99.0.0/24", "--gateway", "10.98.0.1", "gw1"],
     "10.98.0.1"),
    # static addresses (Docker's rules)
    ("ip-outside-subnet", ["run", "-d", "--network", "my_net2", "--ip", "172.18.0.8", *SLEEP],
     "does not belong to any of this network's subnets"),
    ("ip-without-user-subnet", ["run", "-d", "--network", "auto", "--ip", "172.18.0.8", *SLEEP],
     "networks with user configured subnets"),
    ("ip-on-default-bridge", ["run", "-d", "--ip", "172.17.0.8", *SLEEP],
     "supported on user defined networks only"),
    ("ip-taken", ["run", "-d", "--network", "my_net2", "--ip", "172.22.16.2", *SLEEP],
     "172.22.16.2 is already in use by container web1 (interface eth0)"),
    # in use / modes
    ("rm-network-in-use", ["rm", "my_net2"], "has active endpoints"),
    ("connect-joined-container", ["connect", "my_net2", "j1"],
     "container sharing network namespace with another container or host cannot be connected"),
    ("connect-joined-container-bridge", ["connect", "bridge", "j1"],
     "cannot be connected to any other network"),
    ("disconnect-not-connected", ["disconnect", "my_net2", "b1"], "is not connected to network my_net2"),
    # commands that cannot run
    ("run-missing-command", ["run", "--", "no-such-command"], "executable file not found"),
    ("run-d-missing-command", ["run", "-d", "--network", "my_net2", "--", "no-such-command"],
     "executable file not found"),
    ("run-not-executable", ["run", "-d", "--", "{root}/not-executable"], "permission denied"),
    ("run-no-such-file", ["run", "-d", "--", "{root}/no-such-file"], "no such file or directory"),
    ("run-bad-format", ["run", "-d", "--network", "my_net2", "--", "{root}/bad-format"], "bad-format"),
    ("run-no-command", ["run", "-d"], "no command given"),
    ("exec-missing-command", ["exec", "web1", "--", "no-such-command"], "executable file not found"),
]


@pytest.mark.parametrize(("argv", "phrase"), [pytest.param(a, p, id=i) for i, a, p in CASES])
def test_bad_input_is_one_clear_error_and_changes_nothing(scene: Netctl, argv: list[str], phrase: str) -> None:
    argv = [a.replace("{root}", scene.root) for a in argv]
    before = scene.snapshot()
    proc = scene(*argv, check=False)
    assert proc.returncode != 0, proc.stdout
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), proc.stderr
    assert phrase in lines[0]
    assert "Traceback" not in proc.stderr + proc.stdout
    assert scene.snapshot() == before


def test_missing_commands_exit_like_a_shell(scene: Netctl) -> None:
    assert scene("run", "--", "no-such-command", check=False).returncode == 127
    assert scene("exec", "web1", "--", "no-such-command", check=False).returncode == 127
    assert scene("run", "-d", "--", scene.path("bad-format"), check=False).returncode == 126


def test_the_scene_still_works(scene: Netctl) -> None:
    """After all the failures, the scene is intact: web1 and j1 share a namespace that
    still reaches the gateway, b1 still runs, nothing was left half-attached."""
    assert scene("exec", "j1", "--", "ping", "-c", "1", "-W", "2", "172.22.16.1").returncode == 0
    assert scene("check", "web1").stdout.strip() == "ok"
    assert scene("check", "b1").stdout.strip() == "ok"
    names = scene("ps", "--quiet").stdout.split()
    assert len(names) == 3


def test_run_exits_as_docker_run(scene: Netctl) -> None:
    """125: netctl itself failed; 126: the command cannot be invoked; 127: not found."""
    assert scene("run", "-d", "--network", "nope", *SLEEP, check=False).returncode == 125
    assert scene("run", "-d", "--name", "web1", *SLEEP, check=False).returncode == 125
    assert scene("run", "--no-such-flag", *SLEEP, check=False).returncode == 125
    assert scene("run", "-d", "--", scene.path("not-executable"), check=False).returncode == 126
    assert scene("run", "-d", "--", scene.path("no-such-file"), check=False).returncode == 127
    # the command's own status passes through
    assert scene("run", "--rm", "--", "sh", "-c", "exit 3", check=False).returncode == 3


def test_conflicts_name_containers_by_name(scene: Netctl) -> None:
    proc = scene("run", "-d", "--network", "my_net2", "--ip", "172.22.16.2", *SLEEP, check=False)
    assert "container web1" in proc.stderr
    assert not re.search(r"[0-9a-f]{64}|cid=", proc.stderr), proc.stderr
    scene.run_d("pub1", "-p", "18080:80")
    proc = scene("run", "-d", "-p", "18080:80", *SLEEP, check=False)
    assert proc.returncode == 125 and "container pub1" in proc.stderr
    assert not re.search(r"[0-9a-f]{64}|cid=", proc.stderr), proc.stderr
    scene("container", "rm", "-f", "pub1")
