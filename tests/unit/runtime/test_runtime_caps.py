"""Docker's capability rules (runtime/caps.py) and the launcher's options (pure)."""

from __future__ import annotations

import pytest

from runtime import caps, process
from runtime.errors import NetctlError
from runtime.launch import parse_args
from runtime.models import Container

TOP = 40  # CAP_CHECKPOINT_RESTORE: a kernel that knows every capability we name


def test_default_is_dockers_set() -> None:
    got = caps.effective(last=TOP)
    assert set(got) == set(caps.DEFAULT) and len(got) == 14
    for absent in ("CAP_NET_ADMIN", "CAP_SYS_ADMIN", "CAP_SYS_MODULE", "CAP_SYS_PTRACE", "CAP_SYS_TIME"):
        assert absent not in got
    # sorted by number, as the kernel lists them
    assert [caps.NUMBERS[c] for c in got] == sorted(caps.NUMBERS[c] for c in got)


@pytest.mark.parametrize("name", ["net_admin", "NET_ADMIN", "CAP_NET_ADMIN", "cap_net_admin", " Net_Admin "])
def test_names_with_or_without_prefix_any_case(name: str) -> None:
    assert "CAP_NET_ADMIN" in caps.effective([name], last=TOP)
    assert caps.normalize([name], "--cap-add") == ["CAP_NET_ADMIN"]


def test_add_and_drop() -> None:
    got = caps.effective(["SYS_TIME"], ["chown", "CAP_KILL"], last=TOP)
    assert "CAP_SYS_TIME" in got and "CAP_CHOWN" not in got and "CAP_KILL" not in got
    assert len(got) == 13


def test_all() -> None:
    every = caps.all_caps(TOP)
    assert len(every) == 41
    assert caps.effective(["ALL"], last=TOP) == every
    assert caps.effective(["all"], ["net_admin"], last=TOP) == tuple(c for c in every if c != "CAP_NET_ADMIN")
    assert caps.effective(["kill"], ["ALL"], last=TOP) == ("CAP_KILL",)
    assert caps.effective([], ["ALL"], last=TOP) == ()
    # privileged wins over everything, as in Docker
    assert caps.effective([], ["ALL"], privileged=True, last=TOP) == every


def test_an_older_kernel_grants_only_what_it_knows() -> None:
    assert caps.effective(["ALL"], last=37)[-1] == "CAP_AUDIT_READ"
    assert "CAP_BPF" not in caps.effective(["bpf"], last=37)


@pytest.mark.parametrize("bad", ["NET_WIZARD", "", "CAP_", "net admin", "CAP_NET_ADMIN\n"])
def test_unknown_name_is_a_clear_error(bad: str) -> None:
    with pytest.raises(NetctlError, match="unknown capability"):
        caps.effective([bad] if bad != "CAP_NET_ADMIN\n" else ["CAP_NET_ADMIN\nX"], last=TOP)


def test_decode_mask() -> None:
    assert caps.decode_mask(0) == ()
    assert caps.decode_mask((1 << 12) | 1) == ("CAP_CHOWN", "CAP_NET_ADMIN")
    assert caps.decode_mask(1 << 50) == ("CAP_50",)


def _ctr(**kw: object) -> Container:
    c = Container(id="a" * 64, name="c", created="", command=["sleep", "1"], hostname="h",
                  network_mode="n", netns="/run/netctl/netns/x")
    for k, v in kw.items():
        setattr(c, k, v)
    return c


def test_launcher_gets_numbers_or_all() -> None:
    assert process.caps_arg(_ctr(privileged=True)) == "all"
    nums = [int(n) for n in process.caps_arg(_ctr(cap_add=["CAP_NET_ADMIN"])).split(",")]
    assert 12 in nums and 21 not in nums
    assert process.caps_arg(_ctr(cap_drop=["ALL"])) == ""


def test_launch_argv_hides_state_and_round_trips() -> None:
    hide = process.hidden_dirs(["/tmp/r/lib", "/tmp/r/run", "/run/netctl"])
    assert hide[0] == ("/run", True)
    assert ("/var/lib/netctl", False) in hide and ("/tmp/r/lib", False) in hide
    argv = process.launch_argv(_ctr(cap_add=["CAP_NET_ADMIN"]), "bridge", "/tmp/r/lib/containers/a",
                               "/tmp/r/lib/containers/a", 5, hide)
    opts = parse_args(argv[argv.index("--pidfile"):])
    assert opts.cmd == ["sleep", "1"] and opts.lock_fd == 5
    assert opts.caps is not None and 12 in opts.caps
    assert opts.hide_rw == ["/run"]
    assert opts.hide == [d for d, rw in hide if not rw]
    ex = process.exec_argv(_ctr(pid=42, privileged=True), ["ip", "a"])
    eopts = parse_args(ex[ex.index("--enter"):])
    assert eopts.enter == 42 and eopts.caps is None and eopts.cmd == ["ip", "a"]


def test_launcher_without_caps_keeps_none() -> None:
    assert parse_args(["--pidfile", "p", "--", "true"]).caps == set()
    with pytest.raises(SystemExit):
        parse_args(["--pidfile", "p", "--caps", "x", "--", "true"])
