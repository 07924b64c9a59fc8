"""Driver choice, the null and fake drivers, the lock, and the iptables helpers (no kernel)."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

import pytest

from netplugins.firewall import FirewallDriver, FirewallError, NetworkPolicy, get_driver
from netplugins.firewall.driver import ENV_DRIVER, detect_driver_name, get_port_driver
from netplugins.firewall.fake import FakeDriver
from netplugins.firewall.iptables import convert_rule, dispatch_group, save_string
from netplugins.firewall.iptables_driver import IptablesDriver
from netplugins.firewall.iptc_table import _norm_addr, run_forked
from netplugins.firewall.lock import file_lock
from netplugins.firewall.nftables import NftablesDriver
from netplugins.firewall.null import NullDriver
from netplugins.firewall.plan import Match, Rule
from netplugins.firewall.ports_ipt_driver import IptablesPortsDriver
from netplugins.firewall.ports_nft import NftPortsDriver

POLICY = NetworkPolicy("web", "br-web", ("10.1.0.0/24",))


def fake_bin(tmp_path: Path, links: dict[str, str]) -> str:
    """A directory where each name links to an executable file called like its target."""
    d = tmp_path / "bin"
    d.mkdir()
    for name, target in links.items():
        real = d / target
        if not real.exists():
            real.write_text("#!/bin/sh\nexit 0\n")
            real.chmod(0o755)
        if name != target:
            (d / name).symlink_to(real)
    return str(d)


@pytest.mark.parametrize(
    "links, expected",
    [
        ({"iptables": "xtables-nft-multi", "nft": "nft"}, "nftables"),
        ({"iptables": "xtables-nft-multi"}, "nftables"),
        ({"iptables": "xtables-legacy-multi", "nft": "nft"}, "iptables"),
        ({"iptables": "xtables-multi"}, "iptables"),
        ({"nft": "nft"}, "nftables"),
    ],
)
def test_detection_reads_the_iptables_symlink(
    tmp_path: Path, links: dict[str, str], expected: str
) -> None:
    assert detect_driver_name(fake_bin(tmp_path, links)) == expected


def test_detection_without_any_tool_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FirewallError, match=f"{ENV_DRIVER}=none"):
        detect_driver_name(fake_bin(tmp_path, {}))


def test_argument_beats_environment() -> None:
    env = {ENV_DRIVER: "iptables"}
    assert isinstance(get_driver(environ=env), IptablesDriver)
    assert isinstance(get_driver("none", environ=env), NullDriver)
    assert isinstance(get_driver(environ={ENV_DRIVER: "NFTables"}), NftablesDriver)
    assert isinstance(get_port_driver(environ=env), IptablesPortsDriver)
    assert isinstance(get_port_driver("nftables", environ=env), NftPortsDriver)


def test_unknown_driver_name() -> None:
    with pytest.raises(FirewallError, match="unknown firewall driver 'pf'"):
        get_driver(environ={ENV_DRIVER: "pf"})
    with pytest.raises(FirewallError, match="unknown firewall driver 'pf'"):
        get_port_driver(environ={ENV_DRIVER: " pf "})
    with pytest.raises(FirewallError, match="cannot publish ports"):
        get_port_driver(environ={ENV_DRIVER: "none"})


def test_the_environment_is_ours_by_default() -> None:
    # what the plugins do: no environ argument, the process environment decides
    code = ("import netplugins.firewall.driver as d; "
            "print(type(d.get_driver()).__name__, type(d.get_port_driver()).__name__)")
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, ENV_DRIVER: "iptables"},
                         check=True, capture_output=True, text=True)
    assert out.stdout.split() == ["IptablesDriver", "IptablesPortsDriver"]


def test_lock_path_reaches_the_driver(tmp_path: Path) -> None:
    drv = get_driver("nftables", lock_path=str(tmp_path / "x.lock"))
    assert isinstance(drv, NftablesDriver) and drv.lock_path == str(tmp_path / "x.lock")


def test_every_driver_satisfies_the_protocol() -> None:
    for drv in (NftablesDriver(), IptablesDriver(), NullDriver(), FakeDriver()):
        assert isinstance(drv, FirewallDriver)


def test_null_driver_does_nothing_but_validates() -> None:
    drv = NullDriver()
    drv.setup_network(POLICY)
    assert drv.check_network(POLICY) == [] and drv.list_networks() == set()
    with pytest.raises(FirewallError):
        drv.teardown_network("no spaces allowed")


def test_fake_driver_records_and_fails_on_demand() -> None:
    drv = FakeDriver()
    assert drv.check_network(POLICY) == ["network 'web' has no rules"]
    drv.setup_network(POLICY)
    drv.setup_network(NetworkPolicy("db", "br-db", ("10.2.0.0/24", "fd02::/64"), internal=True))
    assert drv.check_network(POLICY) == []
    assert drv.dump() == (
        "db bridge=br-db subnets=10.2.0.0/24,fd02::/64 masquerade=yes internal=yes isolate=yes\n"
        "web bridge=br-web subnets=10.1.0.0/24 masquerade=yes internal=no isolate=yes"
    )
    drv.teardown_network("web")
    drv.teardown_network("web")
    assert drv.list_networks() == {"db"}
    drv.fail_on.add("setup_network")
    with pytest.raises(FirewallError, match="fake failure"):
        drv.setup_network(POLICY)
    assert drv.calls[-1] == ("setup_network", "web")


def test_missing_nft_binary_is_a_clear_error(tmp_path: Path) -> None:
    drv = NftablesDriver(str(tmp_path / "fw.lock"), nft=str(tmp_path / "no-such-nft"))
    with pytest.raises(FirewallError, match="cannot run"):
        drv.setup_network(POLICY)


def test_lock_times_out_while_held(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "fw.lock"
    with file_lock(str(path)):
        assert path.exists()
        # flock conflicts between two open file descriptions, even in one process
        with pytest.raises(FirewallError, match="timed out"):
            with file_lock(str(path), timeout=0.05):
                pass
    with file_lock(str(path), timeout=0.05):
        fd = os.open(path, os.O_RDWR)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)


def test_iptables_save_formatting() -> None:
    assert save_string("netctl") == "netctl"
    assert save_string("netctl net=web") == '"netctl net=web"'
    assert save_string('a"b') == '"a\\"b"'
    assert [
        dispatch_group(t) for t in ("NETCTL-GUARD-1", "NETCTL-IN-1", "NETCTL-OUT-1", "ACCEPT")
    ] == [0, 1, 2, 1]
    assert _norm_addr("10.0.0.0/255.255.255.0", 4) == "10.0.0.0/24"
    assert _norm_addr("!fd00::/ffff:ffff:ffff:ffff::", 6) == "!fd00::/64"
    assert _norm_addr("0.0.0.0/0.0.0.0", 4) is None
    assert _norm_addr("10.0.0.1", 4) == "10.0.0.1/32"


def test_iptables_rule_with_two_interface_conditions_is_refused() -> None:
    rule = Rule((Match("iif", "a"), Match("iif", "b", negate=True)), "drop", "netctl net=x")
    with pytest.raises(FirewallError, match="two in_if conditions"):
        convert_rule(rule, 4, "filter", "NETCTL-IN-x")


def _boom() -> None:
    raise FirewallError("child said no", "details here")


def _crash() -> None:
    raise KeyError("oops")


def _die() -> None:
    os._exit(3)


def test_run_forked_returns_and_raises() -> None:
    assert run_forked(sum, [1, 2, 3]) == 6
    with pytest.raises(FirewallError, match="child said no: details here"):
        run_forked(_boom)
    with pytest.raises(FirewallError, match="KeyError"):
        run_forked(_crash)
    with pytest.raises(FirewallError, match="worker died"):
        run_forked(_die)


def test_hot_path_imports_stay_cheap() -> None:
    # choosing drivers and teardown on a host without legacy tables must not load iptc
    code = (
        "import sys, netplugins.firewall as fw; fw.get_driver('iptables'); fw.get_driver('nftables');"
        "import netplugins.firewall.iptables;"
        "assert 'iptc' not in sys.modules, 'iptc imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
