"""Benchmark: our plugins exactly as a runtime calls them, against the reference, one run.

    sudo .venv/bin/python bench/cni_bench.py --mode inproc [--runs 60] [--only seq,chain,...]
    sudo .venv/bin/python bench/cni_bench.py --mode daemon [--socket PATH]

Every call is a fresh process (``nsenter --net=<host> <exe>``, the same for both sides)
with the environment a runtime gives: CNI_COMMAND/CONTAINERID/NETNS/IFNAME/ARGS
(``IgnoreUnknown=1``), the config on stdin, CNI_PATH = our directory + /usr/lib/cni for
ours and /usr/lib/cni for the reference. Ours and the reference alternate call by call
(who goes first alternates too), each in its own throwaway host namespace, so a change in
the machine's load hits both alike; figures are medians and the ratio is ours / reference.

Besides wall time, each sample carries the CPU (user + system) it cost: the plugin
processes' (and what they ran), plus in daemon mode the agent's and its reaped workers'
since the side's previous sample. CPU is what a loaded machine runs short of, and its ratio
moves much less with the machine's load than wall time does.

``--mode`` says how our executables run: ``inproc`` = no agent (NETCTL_PLUGIND=0, every
call imports and runs the plugin in its own process, as with a runtime that only execs
plugins); ``daemon`` = through a plugin daemon listening on ``--socket`` (default: the
agent, ``netctl agent run``, started inside our throwaway host namespace).

Workloads (``--only``, comma separated; default all but scale/nets):
  seq    bridge + host-local: N containers ADDed one after the other, then their DELs
  lo     loopback ADD+DEL, N times
  hl50   50 host-local ADDs started at once on a fresh network: wall time, ``--rounds``
  br20   20 bridge ADDs started at once on a fresh bridge: wall time, ``--rounds``
  chain  what a runtime runs per container (containerd's go-cni, replayed): ADD loopback,
         bridge + host-local, portmap (one published port, prevResult from bridge); DEL in
         reverse order with CNI_NETNS empty, as go-cni sends it once the sandbox is gone;
         then the firewall lines left behind per container are counted
  scale  ``--scale`` (1000) containers on one network: p50 of the first 50 ADDs against
         the last 50, and firewall lines per container
  nets   ADD p50 on the 1st network of a host against the 50th (49 others, one container each)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from harness import ROOT, base_env, summary  # type: ignore[import-not-found]
from nsutil import Netns, netns, wait_for  # type: ignore[import-not-found]

REF_DIR = "/usr/lib/cni"
PREFIX = "nctest-cb"


@dataclass
class Side:
    """One side of the comparison: ours (in a mode) or the reference."""

    label: str
    ours: bool
    pdir: str
    env: dict[str, str]
    ifname: str
    host: Netns
    tmp: str
    samples: dict[str, list[float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    #: CPU (user + system, ms) of this side's plugin processes since the last ``add``
    cpu_acc: float = 0.0
    cpu: dict[str, list[float]] = field(default_factory=dict)
    #: the agent serving this side (daemon mode): its CPU and its reaped workers' count too
    agent_pid: int | None = None
    agent_mark: float = 0.0

    def add(self, what: str, ms: float) -> None:
        """One sample: wall ``ms``, and the CPU spent since the previous sample (the plugin
        processes', plus the agent's and its workers' in daemon mode)."""
        self.samples.setdefault(what, []).append(ms)
        cpu = self.cpu_acc
        if self.agent_pid is not None:
            now = agent_cpu(self.agent_pid)
            cpu += now - self.agent_mark
            self.agent_mark = now
        self.cpu.setdefault(what, []).append(cpu)
        self.cpu_acc = 0.0

    def restart_cpu(self) -> None:
        """Forget CPU spent so far (set-up and clean-up calls between samples)."""
        self.cpu_acc = 0.0
        if self.agent_pid is not None:
            self.agent_mark = agent_cpu(self.agent_pid)

    def path(self) -> str:
        return f"{self.pdir}:{REF_DIR}" if self.ours else REF_DIR


def agent_cpu(pid: int) -> float:
    """CPU ms of process ``pid`` and of its children it has reaped (its workers)."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    # utime, stime, cutime, cstime: fields 14-17 of proc(5), counted from the state field (3)
    ticks = sum(int(x) for x in fields[11:15])
    return ticks * 1000.0 / os.sysconf("SC_CLK_TCK")


def children_cpu() -> float:
    """CPU ms of every child process of ours reaped so far (and of their reaped children)."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (ru.ru_utime + ru.ru_stime) * 1000.0


def call(side: Side, ptype: str, command: str, conf: dict[str, object], cid: str, netns_path: str,
         check: bool = True) -> tuple[float, bytes]:
    """One plugin process, timed from fork to exit (ms), and its stdout."""
    env = base_env() | side.env | {
        "CNI_COMMAND": command, "CNI_CONTAINERID": cid, "CNI_NETNS": netns_path,
        "CNI_IFNAME": side.ifname, "CNI_PATH": side.path(), "CNI_ARGS": "IgnoreUnknown=1"}
    exe = os.path.join(side.pdir if side.ours else REF_DIR, ptype)
    c0 = children_cpu()
    t0 = time.perf_counter()
    proc = subprocess.run(side.host.cmd([exe]), input=json.dumps(conf).encode(), env=env, capture_output=True)
    ms = (time.perf_counter() - t0) * 1e3
    side.cpu_acc += children_cpu() - c0
    if check and proc.returncode:
        raise SystemExit(f"{side.label}: {ptype} {command} {cid} failed: {proc.stdout.decode(errors='replace')}"
                         f" {proc.stderr.decode(errors='replace')[-500:]}")
    return ms, proc.stdout


def turns(sides: list[Side], i: int) -> list[Side]:
    """The sides in the order of round ``i`` (who goes first alternates)."""
    return sides if i % 2 == 0 else sides[::-1]


# --- configs --------------------------------------------------------------------------------

def bridge_conf(side: Side, name: str, bridge: str, subnet: str) -> dict[str, object]:
    conf: dict[str, object] = {
        "cniVersion": "1.0.0", "name": name, "type": "bridge", "bridge": bridge,
        "isGateway": True, "ipMasq": True,
        "ipam": {"type": "host-local", "ranges": [[{"subnet": subnet}]],
                 "dataDir": os.path.join(side.tmp, "ipam")}}
    if side.ours:
        # the agent's own state directory (<run>/bridge): what it reconciles, as on a host
        conf["stateDir"] = os.path.join(side.tmp, "run", "bridge")
    return conf


def portmap_conf(side: Side, name: str, prev: object, port: int) -> dict[str, object]:
    conf: dict[str, object] = {
        "cniVersion": "1.0.0", "name": name, "type": "portmap", "capabilities": {"portMappings": True},
        "runtimeConfig": {"portMappings": [{"hostPort": port, "containerPort": 80, "protocol": "tcp"}]},
        "prevResult": prev}
    if side.ours:
        # the agent's own state directory (<run>/bridge): what it reconciles, as on a host
        conf["stateDir"] = os.path.join(side.tmp, "run", "bridge")
    return conf


def loopback_conf() -> dict[str, object]:
    return {"cniVersion": "1.0.0", "name": "lo", "type": "loopback"}


# --- namespaces -----------------------------------------------------------------------------

@contextmanager
def containers(n: int) -> Iterator[list[str]]:
    """``n`` container namespaces, made and removed with one ``ip -batch`` each."""
    names = [f"{PREFIX}c-{secrets.token_hex(4)}" for _ in range(n)]
    subprocess.run(["ip", "-batch", "-"], input="".join(f"netns add {x}\n" for x in names).encode(), check=True)
    try:
        yield [f"/run/netns/{x}" for x in names]
    finally:
        subprocess.run(["ip", "-batch", "-"], input="".join(f"netns del {x}\n" for x in names).encode(),
                       check=False, capture_output=True)


def firewall_lines(host: Netns) -> int:
    """Lines of firewall state in ``host``: nft ruleset plus both iptables flavours."""
    total = 0
    for argv in (["nft", "list", "ruleset"], ["iptables-legacy-save"], ["iptables-nft-save"]):
        out = host.run(argv, check=False).stdout
        total += sum(1 for line in out.splitlines()
                     if line.strip() and not line.startswith(("#", ":")) and line.strip() not in ("}", "COMMIT"))
    return total


# --- workloads ------------------------------------------------------------------------------

def seq(sides: list[Side], ctrs: list[str]) -> None:
    confs = {s.label: bridge_conf(s, "seqnet", "brseq0", "10.77.0.0/16") for s in sides}
    for i, c in enumerate(ctrs):
        for s in turns(sides, i):
            s.add("bridge ADD", call(s, "bridge", "ADD", confs[s.label], f"seq{i}", c)[0])
    for i, c in enumerate(ctrs):
        for s in turns(sides, i):
            s.add("bridge DEL", call(s, "bridge", "DEL", confs[s.label], f"seq{i}", c)[0])


def lo(sides: list[Side], ctrs: list[str]) -> None:
    for i, c in enumerate(ctrs):
        for s in turns(sides, i):
            a = call(s, "loopback", "ADD", loopback_conf(), f"lo{i}", c)[0]
            d = call(s, "loopback", "DEL", loopback_conf(), f"lo{i}", c)[0]
            s.add("loopback ADD+DEL", a + d)


def at_once(side: Side, ptype: str, conf: dict[str, object], ctrs: list[str], tag: str) -> float:
    """One process per container started together; wall time until the last exits (ms)."""
    stdin = json.dumps(conf).encode()
    side.restart_cpu()
    c0 = children_cpu()
    t0 = time.perf_counter()
    procs = []
    for i, c in enumerate(ctrs):
        env = base_env() | side.env | {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": f"{tag}{i}", "CNI_NETNS": c,
                                       "CNI_IFNAME": side.ifname, "CNI_PATH": side.path(),
                                       "CNI_ARGS": "IgnoreUnknown=1"}
        exe = os.path.join(side.pdir if side.ours else REF_DIR, ptype)
        procs.append(subprocess.Popen(side.host.cmd([exe]), env=env, stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    outs = [p.communicate(stdin) for p in procs]
    wall = (time.perf_counter() - t0) * 1e3
    side.cpu_acc += children_cpu() - c0
    if side.agent_pid is not None:
        time.sleep(0.3)  # the agent reaps the last workers: their CPU then counts
    bad = [o[0] for p, o in zip(procs, outs, strict=True) if p.returncode]
    if bad:
        raise SystemExit(f"{side.label}: {len(bad)} concurrent {ptype} ADDs failed: {bad[0][:300]!r}")
    return wall


def hl50(sides: list[Side], ctrs: list[str], rounds: int) -> None:
    for r in range(rounds):
        for s in turns(sides, r):
            conf = bridge_conf(s, f"hl{r}", "unused", f"10.{100 + r}.0.0/24")
            s.add("50 host-local ADDs at once (wall)", at_once(s, "host-local", conf, ctrs[:50], f"hl{r}-"))


def br20(sides: list[Side], ctrs: list[str], rounds: int) -> None:
    for r in range(rounds):
        for s in turns(sides, r):
            conf = bridge_conf(s, f"par{r}", f"brpar{r}", f"10.{120 + r}.0.0/16")
            s.add("20 bridge ADDs at once (wall)", at_once(s, "bridge", conf, ctrs[:20], f"par{r}-"))
            for i, c in enumerate(ctrs[:20]):
                call(s, "bridge", "DEL", conf, f"par{r}-{i}", c)


def chain(sides: list[Side], ctrs: list[str]) -> None:
    before = {s.label: firewall_lines(s.host) for s in sides}
    prevs: dict[tuple[str, int], object] = {}
    for i, c in enumerate(ctrs):
        for s in turns(sides, i):
            t = call(s, "loopback", "ADD", loopback_conf(), f"ch{i}", c)[0]
            ms, out = call(s, "bridge", "ADD", bridge_conf(s, "chainnet", "brchain0", "10.78.0.0/16"), f"ch{i}", c)
            prev = json.loads(out)
            t += ms
            t += call(s, "portmap", "ADD", portmap_conf(s, "chainnet", prev, 20000 + i), f"ch{i}", c)[0]
            prevs[(s.label, i)] = prev
            s.add("chain ADD (loopback, bridge, portmap)", t)
    for i, _c in enumerate(ctrs):
        for s in turns(sides, i):
            prev = prevs[(s.label, i)]
            # go-cni's teardown once the sandbox namespace is gone: CNI_NETNS empty
            t = call(s, "portmap", "DEL", portmap_conf(s, "chainnet", prev, 20000 + i), f"ch{i}", "")[0]
            conf = bridge_conf(s, "chainnet", "brchain0", "10.78.0.0/16") | {"prevResult": prev}
            t += call(s, "bridge", "DEL", conf, f"ch{i}", "")[0]
            t += call(s, "loopback", "DEL", loopback_conf() | {"prevResult": prev}, f"ch{i}", "")[0]
            s.add("chain DEL (CNI_NETNS empty)", t)
    for s in sides:
        left = firewall_lines(s.host) - before[s.label]
        s.notes.append(f"firewall lines left after {len(ctrs)} chain ADD+DELs: {left}")


def scale(sides: list[Side], ctrs: list[str]) -> None:
    n = len(ctrs)
    confs = {s.label: bridge_conf(s, "scalenet", "brscale0", "10.79.0.0/16") for s in sides}
    base = {s.label: firewall_lines(s.host) for s in sides}
    after_first: dict[str, int] = {}
    per: dict[str, list[float]] = {s.label: [] for s in sides}
    for i, c in enumerate(ctrs):
        for s in turns(sides, i):
            per[s.label].append(call(s, "bridge", "ADD", confs[s.label], f"sc{i}", c)[0])
        if i == 0:
            after_first = {s.label: firewall_lines(s.host) for s in sides}
    w = min(50, n // 4)
    for s in sides:
        s.samples[f"ADD, containers 1-{w}"] = per[s.label][:w]
        s.samples[f"ADD, containers {n - w + 1}-{n}"] = per[s.label][-w:]
        grown = firewall_lines(s.host) - after_first[s.label]
        s.notes.append(f"firewall lines: {after_first[s.label] - base[s.label]} for the network's first container,"
                       f" then {grown / max(n - 1, 1):.2f} per further container")
    for i, c in enumerate(ctrs):
        for s in turns(sides, i):
            call(s, "bridge", "DEL", confs[s.label], f"sc{i}", c)


def nets(sides: list[Side], ctrs: list[str], count: int = 50) -> None:
    """ADD p50 on the host's only network against its 50th.

    ``ctrs``: 2 * m measured containers, then one for each network in between. The 1st
    network is measured before the others exist and again after they are removed (half of
    its samples each), so that a drift in the machine's load between the phases does not
    pass for a cost of having many networks.
    """
    m = (len(ctrs) - (count - 2)) // 2
    half = m // 2

    def conf(s: Side, net: int) -> dict[str, object]:
        return bridge_conf(s, f"net{net}", f"brn{net}", f"10.{net}.0.0/16")

    def measure(net: int, label: str, group: list[str], first: int = 0) -> None:
        for i, c in enumerate(group, start=first):
            for s in turns(sides, i):
                s.add(label, call(s, "bridge", "ADD", conf(s, net), f"n{net}-{i}", c)[0])

    alone = f"ADD on the 1st network ({2 * half} containers)"
    measure(1, alone, ctrs[:half])
    fillers = {net: ctrs[2 * m + net - 2] for net in range(2, count)}
    for net, c in fillers.items():
        for s in sides:
            call(s, "bridge", "ADD", conf(s, net), f"n{net}-0", c)
    measure(count, f"ADD on the {count}th network ({m} containers)", ctrs[m:2 * m])
    for i, c in enumerate(ctrs[m:2 * m]):
        for s in sides:
            call(s, "bridge", "DEL", conf(s, count), f"n{count}-{i}", c)
    for net, c in fillers.items():
        for s in sides:
            call(s, "bridge", "DEL", conf(s, net), f"n{net}-0", c)
    measure(1, alone, ctrs[m:m + half], first=half)


# --- driver ---------------------------------------------------------------------------------

def start_daemon(host: Netns, tmp: str) -> tuple[str, int]:
    """The agent (``netctl agent run``) inside ``host``, as a host runs it, with its state in
    ``tmp`` (where our side's configs put their stateDir, so its reconciler watches them)."""
    sock = os.path.join(tmp, "plugind.sock")
    code = (f"import sys; sys.path.insert(0, {str(ROOT)!r}); from runtime.agent.__main__ import main; "
            "sys.exit(main(sys.argv[1:]))")
    proc = host.spawn([sys.executable, "-I", "-c", code, "run", "--socket", sock, "--root-lib",
                os.path.join(tmp, "lib"), "--root-run", os.path.join(tmp, "run")], cwd="/",
               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not wait_for(lambda: os.path.exists(sock), timeout=20):
        raise SystemExit("the agent did not start")
    return sock, proc.pid  # nsenter execs the agent: the same process


WORKLOADS: dict[str, Callable[..., None]] = {"seq": seq, "lo": lo, "hl50": hl50, "br20": br20,
                                             "chain": chain, "scale": scale, "nets": nets}


def report(sides: list[Side], opts: argparse.Namespace) -> None:
    """A table per side of ours against the reference (the last side): medians, ratio."""
    ref = sides[-1]
    print(f"# {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.uname().nodename}, {os.cpu_count()} CPUs,"
          f" load {os.getloadavg()[0]:.1f}; mode={opts.mode}; runs={opts.runs}, rounds={opts.rounds}")
    for ours in sides[:-1]:
        print(f"\n{ours.label + ' vs reference':<46} {'ours p50':>10} {'ref p50':>10} {'ratio':>7}   (n ours/ref)")
        for what, mine in ours.samples.items():
            theirs = ref.samples.get(what, [])
            if not theirs:
                continue
            a, b = statistics.median(mine), statistics.median(theirs)
            print(f"{what:<46} {a:8.1f}ms {b:8.1f}ms {a / b:6.2f}x   ({len(mine)}/{len(theirs)};"
                  f" p95 {summary(mine)['p95']:.0f}/{summary(theirs)['p95']:.0f})")
        print(f"\n{'CPU (user+sys) of the same samples':<46} {'ours p50':>10} {'ref p50':>10} {'ratio':>7}"
              f"   {'(ours: agent+workers share)' if ours.agent_pid else ''}")
        for what, mine in ours.cpu.items():
            theirs = ref.cpu.get(what, [])
            if not theirs or what not in ours.samples or len(mine) < 3:
                continue
            a, b = statistics.median(mine), statistics.median(theirs)
            if b <= 0:
                continue
            print(f"{what:<46} {a:8.1f}ms {b:8.1f}ms {a / b:6.2f}x")
    print()
    keys = [k for k in ref.samples if k.startswith("ADD, containers ")]
    if len(keys) == 2:
        for s in sides:
            first, last = (statistics.median(s.samples[k]) for k in keys)
            print(f"{s.label}: scale, {keys[1]} / {keys[0]} ADD p50 = {last / first:.2f}x")
    keys = [k for k in ref.samples if k.startswith("ADD on the ")]
    if len(keys) == 2:
        for s in sides:
            first, last = (statistics.median(s.samples[k]) for k in keys)
            print(f"{s.label}: networks, {keys[1].split(' (')[0]} / 1st ADD p50 = {last / first:.2f}x")
    for s in sides:
        for note in s.notes:
            print(f"{s.label}: {note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=["inproc", "daemon"], default="inproc")
    parser.add_argument("--socket", help="daemon mode: an already running daemon's socket")
    parser.add_argument("--runs", type=int, default=60, help="calls per side in seq, lo, chain (>= 50)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of the concurrent workloads")
    parser.add_argument("--scale", type=int, default=1000)
    parser.add_argument("--only", default="seq,lo,hl50,br20,chain")
    parser.add_argument("--tmp", help="where IPAM data and state go (default: the system temp dir)")
    parser.add_argument("--plugins", metavar="DIR", help="our executables from DIR instead (e.g. another"
                        " checkout's netplugins/bin)")
    parser.add_argument("--baseline", metavar="DIR", help="also measure the executables in DIR (another"
                        " checkout's netplugins/bin, without the agent) in the same run: before/after figures")
    opts = parser.parse_args()
    if not os.path.exists(os.path.join(REF_DIR, "bridge")):
        raise SystemExit(f"the reference plugins are not in {REF_DIR} (Debian: containernetworking-plugins)")
    from netplugins.delivery import ensure_default_dir

    pdir = os.path.abspath(opts.plugins) if opts.plugins else ensure_default_dir()
    chosen = [w for w in opts.only.split(",") if w]
    for w in chosen:
        if w not in WORKLOADS:
            raise SystemExit(f"unknown workload {w!r}; choose from {', '.join(WORKLOADS)}")
    need = max([opts.runs, 50 if {"hl50", "br20"} & set(chosen) else 0]
               + ([opts.scale] if "scale" in chosen else []) + ([2 * opts.runs + 48] if "nets" in chosen else []))
    with ExitStack() as stack:
        sides = []
        # (label, our executables or None for the reference, mode)
        wanted: list[tuple[str, str | None, str]] = [(f"ours ({opts.mode})", pdir, opts.mode)]
        if opts.baseline:
            wanted.append(("baseline (inproc)", os.path.abspath(opts.baseline), "inproc"))
        wanted.append(("reference", None, ""))
        for n, (label, exe_dir, mode) in enumerate(wanted):
            host = stack.enter_context(netns(f"{PREFIX}h"))
            tmp = stack.enter_context(tempfile.TemporaryDirectory(dir=opts.tmp))
            env: dict[str, str] = {}
            if mode == "inproc":
                env["NETCTL_PLUGIND"] = "0"
            agent = None
            if mode == "daemon":
                if opts.socket:
                    env["NETCTL_PLUGIND_SOCKET"] = opts.socket
                else:
                    env["NETCTL_PLUGIND_SOCKET"], agent = start_daemon(host, tmp)
            sides.append(Side(label, exe_dir is not None, exe_dir or REF_DIR, env, f"eth{n}", host, tmp,
                              agent_pid=agent))
        ctrs = stack.enter_context(containers(need))
        for w in chosen:
            fn = WORKLOADS[w]
            for s in sides:
                s.restart_cpu()
            if w in ("hl50", "br20"):
                fn(sides, ctrs, opts.rounds)
            elif w == "scale":
                fn(sides, ctrs[:opts.scale])
            elif w == "nets":
                fn(sides, ctrs[:2 * opts.runs + 48])
            else:
                fn(sides, ctrs[:opts.runs])
        report(sides, opts)


if __name__ == "__main__":
    main()
