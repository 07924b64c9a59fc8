"""What the plugin fuzz tests feed and check (this module holds no tests).

A :class:`FuzzLab` holds a throwaway host namespace (the plugins run there), one container
namespace, the plugins' directories under tmp, and the invariants every run must keep:
:func:`check_outcome` (an error object or a valid result, the exit status that goes with
it, no traceback) and :meth:`FuzzLab.leftovers` (no link, lease, record, rule or file left).
Strategies build stdin from a valid config per plugin (values replaced, keys dropped or
added, bytes flipped, nesting thousands deep) and the CNI_* environment from valid values
and nasty ones. CNI_NETNS only ever names our namespaces or paths that cannot exist: a
fuzzer must not drive a plugin into the machine's own namespace.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import strategies as st
from nsutil import Netns

from netplugins.cni.skel import Outcome

COMMANDS = ("ADD", "DEL", "CHECK", "STATUS", "GC", "VERSION")
VERSIONS = ("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")
SUBNET, CTR_IP = "10.123.0.0/24", "10.123.0.5/24"
#: netctl-dns's container and gateway: the gateway is on the host's lo (see FuzzLab), so
#: that dnsd can answer there and CHECK after ADD passes without a bridge
DNS_CTR_IP, DNS_GW = "10.124.0.5/24", "10.124.0.1"
#: bytes that are not UTF-8 arrive as these (os.environ's surrogateescape)
NOT_UTF8 = ("\udcff", "\udc80", "\udce9")
SPECIALS = ("", "\n", "\t", " ", ".", "..", "/", ":", ";", "=", "\\", '"', "'", "*", "\u00e9",
            "\u2028", "\x01", "\x7f", *NOT_UTF8)


def _nasty_text() -> st.SearchStrategy[str]:
    plain = st.text(max_size=24)
    special = st.sampled_from(SPECIALS)
    return st.one_of(plain, special, st.builds(lambda a, b, c: a + b + c, plain, special, plain),
                     st.integers(16, 400).map(lambda n: "a" * n))


NASTY = _nasty_text()
#: relative to the plugins' working directory (empty, under tmp), never climbing out of it
_RELATIVE = NASTY.filter(lambda t: not t.startswith("/") and ".." not in t and ":" not in t)


def _no_nul(text: str) -> str:
    return text.replace("\x00", "")  # an environment cannot carry NUL


def _suffixed(valid: str) -> st.SearchStrategy[str]:
    """``valid`` with something nasty around it ("ctr1\\n", "\\udcffctr1" ...)."""
    return st.builds(lambda pre, post: pre + valid + post, st.sampled_from(("", "", *SPECIALS)),
                     st.sampled_from(SPECIALS))


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | NASTY,
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(NASTY, kids, max_size=3),
    max_leaves=8)


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path of a JSON document (dict keys and list indices)."""
    out = []
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    for key, value in items:
        out.append((*prefix, key))
        out.extend(_paths(value, (*prefix, key)))
    return out


def _set(doc: Any, path: tuple[Any, ...], value: Any, delete: bool = False) -> None:
    for key in path[:-1]:
        doc = doc[key]
    if delete:
        del doc[path[-1]]
    else:
        doc[path[-1]] = value


def _nest(depth: int) -> str:
    return "[" * depth + "]" * depth


def confine(doc: Any, home: str, allowed: frozenset[str]) -> Any:
    """``doc`` with every absolute path outside ``home`` (bar ``allowed``) moved under it.

    A mutated stateDir or dataDir is still an absolute path, which a plugin rightly creates:
    without this, "/tmp/x/state" flipped into "/tmK/x/state" would litter the machine, and
    an ownerNetns could name a namespace that is not ours.
    """
    if isinstance(doc, dict):
        return {k: confine(v, home, allowed) for k, v in doc.items()}
    if isinstance(doc, list):
        return [confine(v, home, allowed) for v in doc]
    if isinstance(doc, str) and doc.startswith("/") and doc not in allowed:
        norm = os.path.normpath(doc)
        if norm != home and not norm.startswith(home + "/"):
            return f"{home}/elsewhere{doc}"
    return doc


def _confined_bytes(data: bytes, home: str, allowed: frozenset[str]) -> bytes:
    """Byte-level mutants: when the plugin's decoder would read them, confine them too."""
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        return data  # the plugin cannot decode it either: it can name no path
    safe = confine(doc, home, allowed)
    return data if safe == doc else json.dumps(safe).encode()


@st.composite
def stdin_for(draw: st.DrawFn, base: dict[str, Any], mutate: bool = True, *, home: str,
              allowed: frozenset[str]) -> bytes:
    """A config: ``base`` itself, or (``mutate``) changed, broken, or not JSON at all; any
    absolute path in it stays under ``home`` (see :func:`confine`)."""
    return _confined_bytes(draw(_stdin(base, mutate)), home, allowed)


@st.composite
def _stdin(draw: st.DrawFn, base: dict[str, Any], mutate: bool) -> bytes:
    kind = "valid" if not mutate else draw(st.sampled_from(
        ["version", "replace", "replace", "replace", "drop", "add", "nest", "bytes", "flip", "truncate"]))
    conf = copy.deepcopy(base)
    if kind == "version":
        conf["cniVersion"] = draw(st.sampled_from(VERSIONS) | NASTY)
    elif kind in ("replace", "drop"):
        for _ in range(draw(st.integers(1, 3))):
            paths = _paths(conf)
            if not paths:
                break
            path = draw(st.sampled_from(paths))
            _set(conf, path, draw(JSON_VALUES), delete=kind == "drop")
    elif kind == "add":
        _set(conf, (draw(NASTY),), draw(JSON_VALUES))
    elif kind == "nest":
        depth = draw(st.sampled_from([50, 900, 5_000, 100_000]))
        text = json.dumps(conf)
        return (text[:-1] + f', "deep": {_nest(depth)}}}').encode()
    elif kind == "bytes":
        return draw(st.binary(max_size=300))
    data = json.dumps(conf).encode()
    if kind == "flip":
        at = draw(st.integers(0, len(data) - 1))
        data = data[:at] + bytes([draw(st.integers(0, 255))]) + data[at + 1:]
    elif kind == "truncate":
        data = data[:draw(st.integers(0, len(data) - 1))]
    return data


@dataclass
class FuzzLab:
    """The namespaces and directories of one fuzz test; plugins run in ``host``."""

    host: Netns
    ctr: Netns
    tmp: Path
    plugin_dir: str

    def __post_init__(self) -> None:
        for d in (self.ipam, self.state, self.joins, self.cwd):
            d.mkdir(parents=True, exist_ok=True)
        self.root_before = set(os.listdir("/"))
        self.host.run(["ip", "addr", "add", f"{DNS_GW}/32", "dev", "lo"], check=False)

    @property
    def ipam(self) -> Path:
        return self.tmp / "ipam"

    @property
    def state(self) -> Path:
        return self.tmp / "state"

    @property
    def joins(self) -> Path:
        return self.tmp / "joins"

    @property
    def dns(self) -> Path:
        return self.tmp / "dns"

    @property
    def cwd(self) -> Path:
        """The plugins' working directory: a relative path would write here (or in /)."""
        return self.tmp / "cwd"

    def base_conf(self, ptype: str, version: str) -> dict[str, Any]:
        """A config of ``ptype`` that succeeds as it is."""
        conf: dict[str, Any] = {"cniVersion": version, "name": "fuzz", "type": ptype}
        ipam = {"type": "host-local", "ranges": [[{"subnet": SUBNET}]], "dataDir": str(self.ipam)}
        if ptype == "host-local":
            conf["ipam"] = ipam
        elif ptype == "bridge":
            conf |= {"bridge": "br-fuzz", "isGateway": True, "ipMasq": True, "ipam": ipam,
                     "stateDir": str(self.state), "firewallDriver": "nftables"}
        elif ptype == "container":
            conf |= {"container": "owner1", "ownerNetns": self.ctr.path, "dataDir": str(self.joins)}
        elif ptype == "portmap":
            conf |= {"stateDir": str(self.state), "firewallDriver": "nftables",
                     "runtimeConfig": {"portMappings": [
                         {"hostPort": 18080, "containerPort": 80, "protocol": "tcp"}]},
                     "prevResult": {"cniVersion": version,
                                    "interfaces": [{"name": "eth0", "sandbox": self.ctr.path}],
                                    "ips": [{"address": CTR_IP, "interface": 0}]}}
        elif ptype == "netctl-dns":
            # nothing is forwarded anywhere: the upstream is a TEST-NET address without a route
            conf |= {"dir": str(self.dns), "upstreams": ["192.0.2.53"],
                     "prevResult": {"cniVersion": version,
                                    "interfaces": [{"name": "eth0", "sandbox": self.ctr.path}],
                                    "ips": [{"address": DNS_CTR_IP, "gateway": DNS_GW, "interface": 0}]}}
        return conf

    def base_env(self, ptype: str) -> dict[str, str]:
        return {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "fz1",
                "CNI_IFNAME": "lo" if ptype == "loopback" else "eth0",
                "CNI_NETNS": "/proc/self/ns/net" if ptype == "host" else self.ctr.path,
                "CNI_PATH": self.plugin_dir, "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin")}

    def netns_values(self) -> st.SearchStrategy[str]:
        """Only our namespaces, or paths that cannot name one (never the machine's own)."""
        own = self.ctr.path
        return st.one_of(st.sampled_from([own, "/proc/self/ns/net", "", "/proc/self/status", "/dev/null",
                                          f"{own}/x", f"{own}\n", f"{own}\udcff"]),
                         _RELATIVE, NASTY.map(lambda t: f"/nonexistent-i13b/{t}"))

    def allowed_paths(self) -> frozenset[str]:
        """Absolute paths outside tmp a config may keep: our namespaces."""
        return frozenset({self.ctr.path, "/proc/self/ns/net"})

    # --- what must never be left behind ---------------------------------------------------

    def _lines(self, ns: Netns, argv: list[str]) -> list[str]:
        return [line for line in ns.run(argv, check=False).stdout.splitlines() if line.strip()]

    def leftovers(self, ptype: str) -> list[str]:
        """Everything a plugin left: veths, container links, leases, records, rules, files."""
        left = [f"host veth: {line}" for line in self._lines(self.host, ["ip", "-o", "link", "show", "type", "veth"])]
        left += [f"container link: {line}" for line in self._lines(self.ctr, ["ip", "-o", "link", "show"])
                 if ": lo:" not in line]
        for db in self.ipam.glob("*.db"):
            con = sqlite3.connect(db)
            try:
                rows = con.execute("SELECT address, container_id, ifname FROM leases").fetchall()
            except sqlite3.Error as exc:
                rows = [f"unreadable: {exc}"]
            finally:
                con.close()
            left += [f"lease in {db.name}: {row}" for row in rows]
        for d in (self.state, self.joins):
            left += [f"record: {p}" for p in d.rglob("*") if p.is_file() and p.suffix != ".lock"]
        for sub in ("networks", "entries"):  # dnsd's own files (pid, log, locks) may stay
            left += [f"DNS registration: {p}" for p in (self.dns / sub).rglob("*") if p.is_file()]
        left += [f"file in the working directory: {p}" for p in self.cwd.rglob("*")]
        left += [f"new entry in /: {n}" for n in set(os.listdir("/")) - self.root_before]
        fw = self.host.run(["nft", "list", "ruleset"], check=False).stdout
        fw += self.host.run(["iptables-legacy-save"], check=False).stdout
        for line in fw.splitlines():
            # per-attachment entries carry "cid="; the bridge's per-network rules go with
            # the last attachment, and no attachment outlives an example
            if "cid=" in line or (ptype == "bridge" and "netctl" in line.lower() and not line.startswith("#")):
                left.append(f"firewall: {line.strip()}")
        return left

    def scrub(self) -> None:
        """Remove what the plugins made (bridges too), so the next example starts clean."""
        for kind in ("veth", "bridge"):
            for line in self._lines(self.host, ["ip", "-o", "link", "show", "type", kind]):
                name = line.split(":")[1].strip().split("@")[0]
                self.host.run(["ip", "link", "delete", name], check=False)
        for line in self._lines(self.ctr, ["ip", "-o", "link", "show"]):
            name = line.split(":")[1].strip().split("@")[0]
            if name != "lo":
                self.ctr.run(["ip", "link", "delete", name], check=False)
        for d in (self.ipam, self.state, self.joins, self.cwd):
            shutil.rmtree(d, ignore_errors=True)
            d.mkdir(parents=True)
        for sub in ("networks", "entries"):
            shutil.rmtree(self.dns / sub, ignore_errors=True)
        self.host.run(["nft", "flush", "ruleset"], check=False)


@st.composite
def env_for(draw: st.DrawFn, lab: FuzzLab, ptype: str, mutations: int = 2) -> dict[str, str]:
    """The CNI_* variables of ``ptype`` (ADD mostly) with up to ``mutations`` of them dropped
    or replaced by something nasty: more at once would only ever test the first check."""
    env = lab.base_env(ptype)
    env["CNI_COMMAND"] = draw(st.sampled_from(("ADD", "ADD", "ADD", *COMMANDS)))
    pairs = st.lists(st.tuples(st.sampled_from(["IP", "MAC", "K8S_POD_NAME", "IgnoreUnknown"]) | NASTY,
                               st.sampled_from(["1", "10.123.0.9", "0a:58:0a:7b:00:09", "true"]) | NASTY),
                     max_size=3)
    choices = {
        "CNI_COMMAND": st.sampled_from(["add", "DEL\n", "ADD ADD"]) | NASTY,
        "CNI_CONTAINERID": st.sampled_from(["fz2", "Fz-3.x_y"]) | _suffixed("fz1") | NASTY,
        "CNI_IFNAME": st.sampled_from(["net1", "\u00e9" * 8, "a" * 16, "eth0:1"]) | _suffixed("eth0") | NASTY,
        "CNI_NETNS": lab.netns_values(),
        # only our plugins' directory or paths holding nothing: ipam.type "sh" must not find /bin/sh
        "CNI_PATH": st.lists(st.sampled_from(["", "/nonexistent-i13b", lab.plugin_dir]) | _RELATIVE,
                             max_size=3).map(":".join),
        "CNI_ARGS": pairs.map(lambda kv: ";".join(f"{k}={v}" for k, v in kv)) | NASTY,
        "NETCTL_LOG_LEVEL": st.sampled_from(["debug", "INFO", "verbose", "7"]) | NASTY,
    }
    for _ in range(draw(st.integers(0, mutations))):
        var = draw(st.sampled_from(sorted(choices)))
        if draw(st.integers(0, 3)) == 0:
            env.pop(var, None)
        else:
            env[var] = _no_nul(draw(choices[var]))
    return env


def check_outcome(env: dict[str, str], out: Outcome, *, executable: bool) -> dict[str, Any] | None:
    """The invariants of every run; returns the decoded stdout (None when empty).

    An error: exit status 1 and the spec's error object. A success: exit status 0 and a
    result for ADD, the versions for VERSION, nothing for the rest. Never a traceback.
    """
    stderr = out.stderr.decode(errors="replace")
    assert "Traceback" not in stderr, stderr
    command = env.get("CNI_COMMAND", "")
    if executable and not command:
        # run by hand: the about text on stderr, nothing on stdout (the reference's skel)
        assert out.exit_code == 0 and out.stdout == b"" and "CNI protocol" in stderr, out
        return None
    doc = json.loads(out.stdout) if out.stdout.strip() else None
    if out.exit_code != 0:
        assert out.exit_code == 1, out
        assert isinstance(doc, dict) and set(doc) <= {"cniVersion", "code", "msg", "details"}, doc
        assert isinstance(doc["code"], int) and doc["code"] > 0, doc
        # 100 is "internal error": a bad input must get its own code, not show a bug
        assert doc["code"] != 100, doc
        assert isinstance(doc["msg"], str) and doc["msg"], doc
        assert isinstance(doc["cniVersion"], str) and isinstance(doc.get("details", ""), str), doc
        return doc
    if command == "ADD":
        assert isinstance(doc, dict) and doc.get("cniVersion") in VERSIONS, doc
        for key in ("interfaces", "ips", "routes"):
            assert isinstance(doc.get(key, []), list), doc
    elif command == "VERSION":
        assert isinstance(doc, dict) and doc["supportedVersions"], doc
    else:
        assert command in COMMANDS and doc is None, (command, out)
    return doc
