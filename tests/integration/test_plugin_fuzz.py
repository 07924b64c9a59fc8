"""Fuzz every plugin's stdin, environment and CNI_ARGS (issue 13, item 5).

Three ways in: in-process (``skel.run`` with the plugin's FUNCS, in a worker process inside
the throwaway host namespace), through the executables (NETCTL_PLUGIND=0), and through the
warm plugin daemon. Every run must answer with the spec's error object or a valid result
and the exit status that goes with it, never a traceback, never code 100 (a bug); an ADD
that succeeded must pass CHECK with its own result and be undone by its DEL; after every
example nothing is left: no veth, no container link, no lease, no record, no rule, no file
in the working directory or in / (fuzz_inputs.py).

Bounded for CI: 360 examples in-process and 144 through executables (half of them through
the daemon), 2 min 10 s on the shared 2-core machine under load (load average ~16);
NETCTL_FUZZ_SCALE multiplies the counts (e.g. 10 for a soak).
"""

from __future__ import annotations

import base64
import json
import os
import select
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cniutil import plugin_dir, plugin_mode
from fuzz_inputs import VERSIONS, FuzzLab, check_outcome, env_for, stdin_for
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nsutil import Netns

from netplugins.cni.skel import Outcome
from netplugins.registry import PLUGINS

pytestmark = pytest.mark.netns

WORKER = str(Path(__file__).with_name("fuzz_worker.py"))
SCALE = float(os.environ.get("NETCTL_FUZZ_SCALE", "1"))
STATS = os.environ.get("NETCTL_FUZZ_STATS", "")
Runner = Callable[[str, dict[str, str], bytes], Outcome]


def fuzz(examples: int) -> settings:
    return settings(max_examples=max(1, int(examples * SCALE)), deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))


#: the plugins' default state and lease directories: a config the fuzzer stripped of
#: ``stateDir`` / ``dataDir`` makes a plugin use them, so what appears there is removed
DEFAULT_DIRS = ("/run/netctl/bridge", "/run/netctl/ipam", "/run/netctl/locks")


def _entries(dirs: tuple[str, ...]) -> set[str]:
    found = set()
    for top in dirs:
        for dirpath, dirnames, files in os.walk(top):
            found.add(dirpath)
            found.update(os.path.join(dirpath, n) for n in dirnames + files)
    return found


@pytest.fixture
def lab(host_ns: Netns, ctr_ns: Netns, tmp_path: Path) -> Iterator[FuzzLab]:
    before = _entries(DEFAULT_DIRS)
    yield FuzzLab(host_ns, ctr_ns, tmp_path, plugin_dir())
    for path in sorted(_entries(DEFAULT_DIRS) - before, key=len, reverse=True):
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                os.rmdir(path)
            else:
                os.unlink(path)
        except OSError:
            pass


class InProcess:
    """A :mod:`fuzz_worker` inside the host namespace: ``skel.run`` with no executable."""

    def __init__(self, lab: FuzzLab) -> None:
        self.log = open(lab.tmp / "worker.stderr", "wb")  # noqa: SIM115 - closed in close()
        self.proc = lab.host.spawn([sys.executable, "-I", WORKER], stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, stderr=self.log, cwd=lab.cwd)

    def __call__(self, ptype: str, env: dict[str, str], stdin: bytes) -> Outcome:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        req = {"ptype": ptype, "env": env, "stdin": base64.b64encode(stdin).decode()}
        self.proc.stdin.write(json.dumps(req).encode() + b"\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], 120)
        assert ready, "the in-process worker did not answer within 120 s"
        line = self.proc.stdout.readline()
        assert line, f"the in-process worker died (exit {self.proc.poll()})"
        answer = json.loads(line)
        assert "raised" not in answer, f"skel.run raised:\n{answer['raised']}"
        return Outcome(answer["rc"], base64.b64decode(answer["stdout"]), base64.b64decode(answer["stderr"]))

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.log.close()


def executable(lab: FuzzLab, mode_env: dict[str, str]) -> Runner:
    """Exec our executable for ``ptype`` in the host namespace, as a runtime would."""
    def run(ptype: str, env: dict[str, str], stdin: bytes) -> Outcome:
        proc = subprocess.run(lab.host.cmd([os.path.join(lab.plugin_dir, ptype)]), input=stdin,
                              env=env | mode_env, capture_output=True, timeout=120, cwd=lab.cwd)
        return Outcome(proc.returncode, proc.stdout, proc.stderr)

    return run


def one_example(lab: FuzzLab, ptype: str, env: dict[str, str], stdin: bytes, run: Runner,
                is_exec: bool) -> Outcome:
    """Run one input; check the answer, undo a successful ADD, then check nothing is left."""
    try:
        out = run(ptype, env, stdin)
        doc = check_outcome(env, out, executable=is_exec)
        if STATS:  # what the examples reached: which commands, which codes (for tuning, not asserted)
            with open(STATS, "a") as fh:
                code = doc.get("code", 0) if isinstance(doc, dict) and out.exit_code else 0
                fh.write(f"{ptype} {'exec' if is_exec else 'inproc'} {env.get('CNI_COMMAND', '')!r} {code}\n")
        if out.exit_code == 0 and env.get("CNI_COMMAND") == "ADD":
            conf = json.loads(stdin)
            if conf.get("cniVersion") not in ("0.3.0", "0.3.1"):
                # what ADD built, CHECK must find (the spec: CHECK with the ADD's result)
                check_env = dict(env, CNI_COMMAND="CHECK")
                checked = run(ptype, check_env, json.dumps(dict(conf, prevResult=doc)).encode())
                check_outcome(check_env, checked, executable=is_exec)
                assert checked.exit_code == 0, ("CHECK after a successful ADD failed", checked)
            del_env = dict(env, CNI_COMMAND="DEL")
            undone = run(ptype, del_env, stdin)
            check_outcome(del_env, undone, executable=is_exec)
            assert undone.exit_code == 0, ("DEL after a successful ADD failed", undone)
    finally:
        left = lab.leftovers(ptype)
        if left:
            lab.scrub()  # the next example (or the shrinker's replay) starts clean
    assert not left, left
    return out


def fuzz_plugin(lab: FuzzLab, ptype: str, run: Runner, is_exec: bool, examples: int) -> None:
    @fuzz(examples)
    @given(data=st.data())
    def body(data: st.DataObject) -> None:
        version = data.draw(st.sampled_from(VERSIONS), label="cniVersion")
        # the environment, stdin, or both: one at a time reaches past the first check
        focus = data.draw(st.sampled_from(["env", "stdin", "both"]), label="focus")
        env = data.draw(env_for(lab, ptype, mutations=0 if focus == "stdin" else 2), label="env")
        stdin = data.draw(stdin_for(lab.base_conf(ptype, version), mutate=focus != "env",
                                    home=str(lab.tmp), allowed=lab.allowed_paths()), label="stdin")
        one_example(lab, ptype, env, stdin, run, is_exec)

    body()


@pytest.mark.parametrize("ptype", sorted(PLUGINS))
def test_fuzz_in_process(ptype: str, lab: FuzzLab) -> None:
    worker = InProcess(lab)
    try:
        fuzz_plugin(lab, ptype, worker, is_exec=False, examples=60)
    finally:
        worker.close()


@pytest.fixture(params=["inproc", "daemon"])
def mode_env(request: pytest.FixtureRequest, host_ns: Netns, tmp_path: Path) -> Iterator[dict[str, str]]:
    with plugin_mode(request.param, host_ns, tmp_path) as env:
        yield env


@pytest.mark.parametrize("ptype", sorted(PLUGINS))
def test_fuzz_executable(ptype: str, lab: FuzzLab, mode_env: dict[str, str]) -> None:
    fuzz_plugin(lab, ptype, executable(lab, mode_env), is_exec=True, examples=12)


def test_valid_inputs_succeed_and_leave_nothing(lab: FuzzLab) -> None:
    """The fuzzers' starting points really work: the invariants are not vacuous."""
    worker = InProcess(lab)
    try:
        # overlay's ADD needs a cluster store and this host's sync process: its valid path
        # is proven in the overlay lab (test_overlay.py); here it must fail cleanly only
        for ptype in sorted(set(PLUGINS) - {"overlay"}):
            stdin = json.dumps(lab.base_conf(ptype, "1.0.0")).encode()
            out = one_example(lab, ptype, lab.base_env(ptype), stdin, worker, False)
            assert out.exit_code == 0, (ptype, out)
    finally:
        worker.close()
