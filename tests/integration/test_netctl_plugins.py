"""A third-party plugin in a network's chain: the Debian reference `tuning` after ours.

The reference plugins stop at CNI 1.0.0, so this also proves the version negotiation: the
conflist offers 1.1.0, 1.0.0 and 0.4.0, and netctl picks the highest every plugin speaks.
"""

from __future__ import annotations

import json
import os

import pytest
from netctlutil import Netctl, netctl_fixture  # noqa: F401 - the netctl fixture

pytestmark = pytest.mark.netns

TUNING = "/usr/lib/cni/tuning"


@pytest.mark.skipif(not os.path.exists(TUNING), reason="containernetworking-plugins not installed")
def test_reference_tuning_in_the_chain(netctl: Netctl) -> None:
    netctl.extra_env["NETCTL_CNI_PATH"] = "/usr/lib/cni"
    plugin = json.dumps({"type": "tuning", "sysctl": {"net.ipv4.conf.eth0.arp_filter": "1"}})
    netctl("create", "--subnet", "10.61.0.0/24", "--plugin", plugin, "tuned")
    conf = json.loads(open(netctl.path("lib", "net.d", "tuned.conflist")).read())
    assert [p["type"] for p in conf["plugins"]][-1] == "tuning"
    netctl.run_d("tt1", "--network", "tuned")
    assert netctl.exec("tt1", "cat", "/proc/sys/net/ipv4/conf/eth0/arp_filter").stdout.strip() == "1"
    assert netctl("check", "tt1").returncode == 0
    listing = netctl("ls").stdout
    assert "tuned" in listing and "ready" in listing.split("tuned", 1)[1].splitlines()[0]
    bridge = netctl.inspect("tuned")["Options"]["com.docker.network.bridge.name"]
    netctl("container", "rm", "-f", "tt1")
    netctl("rm", "tuned")
    assert netctl.leases() == []
    # the reference tuning has no GC (CNI 1.0): the bridge plugin's GC still removes the bridge
    assert bridge not in netctl.host.run(["ip", "-o", "link", "show"]).stdout


def test_plugin_option_errors(netctl: Netctl) -> None:
    bad = netctl("create", "--plugin", "{nope", "n1", check=False)
    assert bad.returncode != 0 and bad.stderr.startswith("Error: invalid --plugin")
    missing = netctl("create", "--plugin", '{"type": "no-such-plugin"}', "n2", check=False)
    assert missing.returncode != 0 and "no-such-plugin" in missing.stderr
    assert "n1" not in netctl("ls").stdout and "n2" not in netctl("ls").stdout


@pytest.mark.skipif(not os.path.exists(TUNING), reason="containernetworking-plugins not installed")
def test_add_failing_mid_chain_leaves_nothing(netctl: Netctl) -> None:
    """tuning fails after our bridge made eth0 and took a lease: both are given back."""
    netctl.extra_env["NETCTL_CNI_PATH"] = "/usr/lib/cni"
    plugin = json.dumps({"type": "tuning", "sysctl": {"net.ipv4.conf.eth0.no_such_knob": "1"}})
    netctl("create", "--subnet", "10.62.0.0/24", "--plugin", plugin, "broken")
    before = netctl.snapshot()
    bad = netctl("run", "-d", "--name", "b1", "--network", "broken", "--", "sleep", "600", check=False)
    assert bad.returncode != 0 and "no_such_knob" in bad.stderr
    assert netctl.leases() == []
    after = netctl.snapshot()
    # the network's bridge is made by the first ADD and stays with the network; no veth
    assert [ln for ln in after["host-links"] if not ln.startswith("br-")] == before["host-links"]
    assert after["cni-cache"] == before["cni-cache"]
