"""The launcher's mount isolation on its own (runtime/launch.py ``isolate_mounts``).

Each case runs in a forked child that first unshares its mount namespace and makes it
private: every mount it makes dies with it, the machine's mounts never change. The /etc
it rewires is a directory of the test's (``etc_root``), so the case of a resolv.conf that
is a symlink into a hidden directory (systemd-resolved's) is tested on any machine.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

import pytest
from nsutil import can_use_netns

from runtime import launch

pytestmark = pytest.mark.skipif(not can_use_netns(), reason="needs root")


def _in_private_mount_ns(check) -> None:  # type: ignore[no-untyped-def]
    """Run ``check()`` in a child with a private mount namespace; fail with its error."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(rfd)
        try:
            launch._check(launch._libc.unshare(launch.CLONE_NEWNS), "unshare")
            launch._mount("none", "/", None, launch.MS_REC | launch.MS_PRIVATE)
            check()
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            os.write(wfd, repr(exc).encode())
            os._exit(1)
        os._exit(0)
    os.close(wfd)
    with os.fdopen(rfd) as fh:
        err = fh.read()
    _, status = os.waitpid(pid, 0)
    assert status == 0 and not err, err


def test_hidden_dirs_and_a_resolv_conf_symlink_into_one(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "resolve").mkdir(parents=True)
    (run / "resolve" / "stub.conf").write_text("nameserver 127.0.0.53\n")
    (run / "plugind.sock").write_text("")  # stands in for a socket
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "hosts").write_text("127.0.0.1 localhost\n")
    os.symlink(run / "resolve" / "stub.conf", etc / "resolv.conf")
    mine = tmp_path / "container"
    mine.mkdir()
    (mine / "hosts").write_text("10.0.0.2 c1\n")
    (mine / "resolv.conf").write_text("nameserver 10.0.0.1\n")
    (mine / "hostname").write_text("c1\n")  # etc has no hostname: not mounted

    def check() -> None:
        launch.isolate_mounts([str(run)], str(mine), etc_root=str(etc))
        assert (etc / "hosts").read_text() == "10.0.0.2 c1\n"
        assert (etc / "resolv.conf").read_text() == "nameserver 10.0.0.1\n"
        assert not (run / "plugind.sock").exists()
        assert os.listdir(run) == ["resolve"]
        try:
            (run / "x").write_text("")
        except OSError as exc:
            assert exc.errno == 30  # EROFS: nothing can be planted there
        else:
            raise AssertionError("the hidden directory is writable")
        # netctl's in-place rewrites still show (same inode)
        with open(mine / "resolv.conf", "r+") as fh:
            fh.truncate(0)
            fh.write("nameserver 10.0.0.9\n")
        assert (etc / "resolv.conf").read_text() == "nameserver 10.0.0.9\n"

    _in_private_mount_ns(check)

    def check_rw() -> None:
        launch.isolate_mounts([], str(mine), etc_root=str(etc), hide_rw=[str(run)])
        assert (etc / "resolv.conf").read_text() == "nameserver 10.0.0.9\n"
        assert os.listdir(run) == ["resolve"]
        (run / "x.pid").write_text("1\n")  # writable, and private

    _in_private_mount_ns(check_rw)
    assert not (run / "x.pid").exists()
    # the test's (and the machine's) view is unchanged
    assert (run / "plugind.sock").exists()
    assert (etc / "resolv.conf").read_text() == "nameserver 127.0.0.53\n"


def test_host_mode_keeps_the_hosts_file_behind_a_hidden_symlink(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "resolve").mkdir(parents=True)
    (run / "resolve" / "stub.conf").write_text("nameserver 192.0.2.53\n")
    (run / "secret").write_text("x")
    etc = tmp_path / "etc"
    etc.mkdir()
    os.symlink(run / "resolve" / "stub.conf", etc / "resolv.conf")

    def check() -> None:
        launch.isolate_mounts([str(run)], "", etc_root=str(etc))
        assert (etc / "resolv.conf").read_text() == "nameserver 192.0.2.53\n"
        assert not (run / "secret").exists()

    _in_private_mount_ns(check)


def test_capabilities_are_dropped_in_a_child(tmp_path: Path) -> None:
    def check() -> None:
        launch.drop_capabilities({13})  # CAP_NET_RAW only
        with open("/proc/self/status") as fh:
            fields = dict(line.rstrip("\n").split(":\t", 1) for line in fh if ":\t" in line)
        assert int(fields["CapEff"], 16) == 1 << 13
        assert int(fields["CapBnd"], 16) == 1 << 13
        assert int(fields["CapInh"], 16) == 0
        assert fields["NoNewPrivs"] == "1"
        # and it sticks: no capability to mount any more
        assert launch._libc.mount(b"none", b"/", None, launch.MS_REC | launch.MS_PRIVATE, None) != 0
        assert ctypes.get_errno() == 1  # EPERM

    _in_private_mount_ns(check)
