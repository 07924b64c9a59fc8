"""nft commands through libnftables in-process and through the ``nft`` executable give the
same exit code, output and errors (netplugins/firewall/nftcli.py), in a throwaway namespace."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from nsutil import Netns

pytestmark = pytest.mark.netns

SCRIPT = r"""
import json, os, sys
sys.path.insert(0, sys.argv[1])
from netplugins.firewall.nftcli import find_nft, run_nft
os.environ["NETCTL_NFT"] = sys.argv[2]
nft = find_nft()
out = []
for args, stdin in json.loads(sys.argv[3]):
    r = run_nft(nft if args[0] != "BAD" else "/nonexistent/nft", args[1:] if args[0] == "BAD" else args, stdin)
    out.append([r.returncode, r.stdout, r.stderr])
print(json.dumps(out))
"""

TABLE = "inet nctest_lib"
STEPS: list[tuple[list[str], str | None]] = [
    (["-j", "list", "table", *TABLE.split()], None),          # absent: an error
    (["-f", "-"], f"add table {TABLE}\nadd chain {TABLE} c {{ type filter hook forward priority 0; }}\n"
                  f'add rule {TABLE} c ip saddr 10.9.0.1 accept comment "x"\n'),
    (["list", "table", *TABLE.split()], None),                 # text output
    (["-j", "list", "table", *TABLE.split()], None),           # JSON output
    (["-f", "-"], f"add rule {TABLE} nosuchchain accept\n"),    # refused transaction
    (["-f", "-"], f"delete table {TABLE}\n"),
]


def _run(ns: Netns, mode: str, steps: list[tuple[list[str], str | None]]) -> list[list[object]]:
    root = str(__import__("pathlib").Path(__file__).resolve().parents[2])
    res = subprocess.run(ns.cmd([sys.executable, "-c", SCRIPT, root, mode, json.dumps(steps)]),
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def _json_without_metainfo(text: str) -> list[object]:
    """The objects of a JSON listing without the version block and the handles (each run
    made the table anew, so the kernel numbered it anew)."""
    def strip(obj: object) -> object:
        if isinstance(obj, dict):
            return {k: strip(v) for k, v in obj.items() if k != "handle"}
        return [strip(v) for v in obj] if isinstance(obj, list) else obj
    return [strip(o) for o in json.loads(text)["nftables"] if "metainfo" not in o]


def test_library_and_executable_agree(host_ns: Netns) -> None:
    lib = _run(host_ns, "lib", STEPS)
    cli = _run(host_ns, "cli", STEPS)
    assert [r[0] for r in lib] == [r[0] for r in cli] == [1, 0, 0, 0, 1, 0]
    assert "No such file or directory" in lib[0][2] and "No such file or directory" in cli[0][2]
    assert lib[2][1] == cli[2][1] and "10.9.0.1" in lib[2][1]
    assert _json_without_metainfo(lib[3][1]) == _json_without_metainfo(cli[3][1])
    assert "nosuchchain" in lib[4][2] and "nosuchchain" in cli[4][2]
    assert host_ns.run(["nft", "list", "tables"]).stdout.strip() == ""


def test_a_missing_executable_is_not_bypassed(host_ns: Netns) -> None:
    """A driver pointed at an nft that does not exist fails as the executable would."""
    root = str(__import__("pathlib").Path(__file__).resolve().parents[2])
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from netplugins.firewall.nftcli import run_nft\n"
            "from netplugins.firewall.errors import FirewallError\n"
            "try:\n    run_nft('/nonexistent/nft', ['-f', '-'], 'add table inet nctest_x\\n')\n"
            "except FirewallError as e:\n    print('refused', e)\n")
    res = subprocess.run(host_ns.cmd([sys.executable, "-c", code, root]), capture_output=True,
                         text=True, timeout=60)
    assert res.stdout.startswith("refused cannot run /nonexistent/nft"), res.stdout + res.stderr
    assert host_ns.run(["nft", "list", "tables"]).stdout.strip() == ""
