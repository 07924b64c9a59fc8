"""The agent process (``netctl agent run``): one per host and state directory.

It owns the node's network state between plugin calls:

- **plugin calls**: the warm worker pool of netplugins.daemon on the plugin socket
  (workers fork from a process that has the plugins and their libraries imported);
- **dnsd**: started when a DNS-enabled network exists, restarted within ~0.2 s when it
  dies, with back-off when it keeps dying (supervise.py);
- **firewall**: the rules the plugins recorded are checked after every nftables change
  notification (nftwatch.py) and every few seconds, and restored when they differ
  (reconcile.py, run in a forked child so a slow ``nft`` never stalls the pool).

One thread; the loop sleeps in select() on a self-pipe (signals, SIGCHLD), the nftables
notification socket and the reconcile child's pipe. State for ``netctl agent status`` is
written to ``<run>/agent.json``. SIGTERM/SIGINT: stop accepting, let busy workers finish
their call, stop dnsd. When our code changes on disk, the agent re-executes itself and
keeps its listening socket (callers never see it closed).
"""

from __future__ import annotations

import ctypes
import gc
import json
import logging
import os
import select
import signal
import socket
import sys
import time
from dataclasses import dataclass, field

from dnsd import control
from dnsd.control import NUDGE as NUDGE_DNSD
from netplugins import daemon
from netplugins.firewall import desired
from runtime.paths import Paths

from . import files
from .nftwatch import NftWatch
from .reconcile import reconcile
from .supervise import ChildSupervisor, DnsdSupervisor, overlay_argv

log = logging.getLogger("netctl.agent")

#: dnsd is looked at this often (a dead one is replaced within about this long)
DNSD_TICK = 0.2
#: nftables notifications are coalesced for this long before a check
DEBOUNCE = 0.05
#: at most one reconcile pass started per this many seconds (our own repairs notify too)
MIN_GAP = 0.25
#: how long the PID of an exited worker still marks its nftables transactions as ours
OWN_PIDS_KEPT = 30.0
#: a check without any notification, as a safety net (nft hosts) ...
POLL_NFT = 10.0
#: ... and on hosts where rules live in iptables-legacy, which sends no notification
POLL_IPTABLES = 0.5
STATUS_EVERY = 1.0
CODE_CHECK_EVERY = 2.0
#: repairs remembered for ``status``
KEEP_REPAIRS = 20


@dataclass
class Options:
    """How the agent was started."""

    root: Paths
    socket_path: str
    spare: int = 4
    #: 0: never; else exit after this many idle seconds when there is nothing to own
    exit_when_idle: float = 0.0
    #: fds inherited from our previous image (re-exec) or from systemd
    listen_fd: int | None = None
    lock_fd: int | None = None
    activation: str = "self"
    started: float = field(default_factory=time.time)
    #: cluster store (etcd URL) for overlay networks; "" = none
    store: str = ""


@dataclass
class FirewallState:
    """The reconciler's side of the status."""

    watch: str = "none"
    passes: int = 0
    repairs_total: int = 0
    last: dict[str, object] = field(default_factory=dict)
    recent_repairs: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    uses_iptables: bool = False


class Agent:
    """The loop and everything it owns."""

    def __init__(self, opts: Options) -> None:
        self.opts = opts
        self.paths = opts.root
        self.stopping = False
        self.reexec = False
        self.pool: daemon.WorkerPool | None = None
        self.srv: socket.socket | None = None
        self.lock_fd = -1
        self.dnsd = DnsdSupervisor(self.paths.dnsd)
        # overlay networks: the sync process keeps this node's lease in the store and
        # programs the VXLAN devices from its watch (runtime/overlay/syncd.py)
        self.overlay = ChildSupervisor(
            "overlay sync", overlay_argv(opts.store, self.paths.lib, self.paths.run),
            os.path.join(self.paths.run, "overlay-sync.log")) if opts.store else None
        self.fw = FirewallState()
        self.nft: NftWatch | None = None
        self.rec_pid = 0
        #: workers and reconcile children that exited lately, by PID (when they did): the
        #: nftables transactions they made are ours (see _own)
        self.recent_own: dict[int, float] = {}
        self.rec_fd = -1
        self.rec_buf = b""
        self.dirty = True  # adopt: check everything once at start
        self.due = 0.0
        self.last_pass = -MIN_GAP
        self.last_call = time.monotonic()
        self.status_dirty = True
        #: a DNS plugin asked for dnsd (control.NUDGE): look at it now, not at the next tick
        self.dnsd_asked = False

    # --- set-up ---------------------------------------------------------------------
    def _listen(self) -> socket.socket:
        if self.opts.listen_fd is not None:
            sock = socket.socket(fileno=self.opts.listen_fd)
            os.set_inheritable(sock.fileno(), False)
            return sock
        return daemon.bind_socket(self.opts.socket_path)

    def setup(self) -> None:
        """Lock, preload, listen, subscribe. Raises: OSError (another agent, bind failure)."""
        if self.opts.lock_fd is not None:
            self.lock_fd = self.opts.lock_fd
            os.set_inheritable(self.lock_fd, False)
        else:
            self.lock_fd = daemon.single_instance(self.opts.socket_path)
        os.makedirs(self.paths.run, mode=0o755, exist_ok=True)
        loaded = daemon.preload()
        self.stamp = daemon.code_stamp()
        self.srv = self._listen()
        try:
            self.nft = NftWatch()
            self.fw.watch = "nftables notifications"
        except OSError as exc:
            log.info("no nftables notifications (%s): polling every %.1fs", exc, POLL_IPTABLES)
            self.fw.watch = "polling"
        _become_subreaper()  # a dnsd started by a worker is re-parented to us when it exits
        # keep the preloaded heap out of the collector so forked workers don't copy its pages
        gc.freeze()
        self.pool = daemon.WorkerPool(self.srv, self.opts.spare)
        daemon.CLOSE_IN_CHILDREN.add(self.lock_fd)
        if self.nft is not None:
            daemon.CLOSE_IN_CHILDREN.add(self.nft.fileno())
        files.write_pid(self.paths, os.getpid())
        log.info("agent %d serving %s (%s), plugins %s, state %s", os.getpid(),
                 self.opts.socket_path, self.opts.activation, ", ".join(loaded), self.paths.run)

    # --- the loop -------------------------------------------------------------------
    def run(self) -> None:
        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
        daemon.CLOSE_IN_CHILDREN.update((wake_r, wake_w))

        def stop(_signo: int, _frame: object) -> None:
            self.stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGHUP, lambda *_: self._mark_dirty(0.0))
        signal.signal(NUDGE_DNSD, lambda *_: setattr(self, "dnsd_asked", True))
        self.dnsd.claim(os.getpid())  # only now: before the handler the nudge would kill us
        next_dnsd = next_status = 0.0
        next_code = time.monotonic() + CODE_CHECK_EVERY
        assert self.pool is not None
        try:
            while not self.stopping:
                now = time.monotonic()
                if not self.pool.fill():
                    time.sleep(0.05)
                self._reap()
                if now >= next_dnsd or self.dnsd_asked:
                    next_dnsd, self.dnsd_asked = now + DNSD_TICK, False
                    event = self.dnsd.tick(now)
                    if event:
                        log.log(logging.WARNING if "gone" in event or "cannot" in event
                                else logging.INFO, "%s", event)
                        self.status_dirty = True
                    if self.overlay is not None:
                        event = self.overlay.tick(now)
                        if event:
                            log.info("%s", event)
                            self.status_dirty = True
                poll = POLL_IPTABLES if self.fw.uses_iptables or self.nft is None else POLL_NFT
                if not self.dirty and now - self.last_pass >= poll:
                    self._mark_dirty(0.0)
                if self.dirty and not self.rec_pid and now >= max(self.due, self.last_pass + MIN_GAP):
                    self._start_pass()
                if now >= next_status and self.status_dirty:
                    next_status = now + STATUS_EVERY
                    self._write_status()
                if now >= next_code:
                    next_code = now + CODE_CHECK_EVERY
                    if daemon.code_stamp() != self.stamp:
                        log.info("our code changed on disk: re-executing (the socket stays open)")
                        self.reexec = True
                        break
                if self._idle_exit(now):
                    log.info("nothing to own and no call for %.0fs: exiting", self.opts.exit_when_idle)
                    break
                self._wait(wake_r, now, next_dnsd)
        finally:
            self._shutdown()

    def _wait(self, wake_r: int, now: float, next_dnsd: float) -> None:
        assert self.pool is not None
        fds = [wake_r, self.pool.notify_fd]
        if self.nft is not None:
            fds.append(self.nft.fileno())
        if self.rec_fd >= 0:
            fds.append(self.rec_fd)
        timeout = max(0.0, next_dnsd - now)
        if self.dirty and not self.rec_pid:
            timeout = min(timeout, max(0.0, max(self.due, self.last_pass + MIN_GAP) - now))
        if self.pool.wanted():
            timeout = min(timeout, 0.05)
        try:
            ready, _, _ = select.select(fds, [], [], timeout)
        except InterruptedError:
            return
        if self.pool.notify_fd in ready:
            self.pool.taken()  # the loop's next turn forks the replacements
        if wake_r in ready:
            try:
                while os.read(wake_r, 512):
                    pass
            except BlockingIOError:
                pass
        if self.nft is not None and self.nft.fileno() in ready:
            if self.nft.drain(self._own):
                self._mark_dirty(DEBOUNCE)
        if self.rec_fd >= 0 and self.rec_fd in ready:
            self._read_pass()

    def _own(self, pid: int) -> bool:
        """Whether ``pid`` is (or lately was) a worker or reconcile pass of ours: its
        firewall changes are a plugin call's or a repair's, the desired state itself, so
        they need no check (foreign ones do)."""
        assert self.pool is not None
        if pid in self.pool.workers or pid == self.rec_pid:
            return True
        exited = self.recent_own.get(pid)
        return exited is not None and time.monotonic() - exited < OWN_PIDS_KEPT

    def _remember_own(self, pid: int) -> None:
        now = time.monotonic()
        self.recent_own[pid] = now
        if len(self.recent_own) > 256:
            self.recent_own = {p: t for p, t in self.recent_own.items() if now - t < OWN_PIDS_KEPT}

    def _mark_dirty(self, delay: float) -> None:
        if not self.dirty:
            self.due = time.monotonic() + delay
        self.dirty = True

    def _reap(self) -> None:
        assert self.pool is not None
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if not pid:
                return
            if self.pool.reaped(pid):
                self._remember_own(pid)
                self.last_call = time.monotonic()
                self.status_dirty = True
            elif pid == self.rec_pid:
                self._remember_own(pid)
                self._read_pass(final=True)
                self.rec_pid = 0
            elif self.overlay is not None and (event := self.overlay.exited(pid, status)):
                log.warning("%s", event)
                self.status_dirty = True
            # anything else: a dnsd or an orphan re-parented to us; reaping it is all

    def _idle_exit(self, now: float) -> bool:
        if not self.opts.exit_when_idle or now - self.last_call < self.opts.exit_when_idle:
            return False
        return not self._owns_anything()

    def _owns_anything(self) -> bool:
        policies, _ = desired.load_policies(self.paths.bridge_state)
        ports = os.path.join(self.paths.bridge_state, "_portmap")
        return bool(policies) or control.wanted(self.paths.dnsd) or _nonempty(ports)

    # --- reconcile passes -------------------------------------------------------------
    def _start_pass(self) -> None:
        self.dirty = False
        self.last_pass = time.monotonic()
        if self.nft is not None:
            self.nft.drain()  # what happened so far is covered by this pass
            self.nft.forget()
        r, w = os.pipe2(os.O_CLOEXEC)
        pid = daemon.fork_child()
        if pid == 0:
            code = 0
            try:
                os.close(r)
                report = reconcile(self.paths.bridge_state)
                data = report.to_dict()
                data["uses_iptables"] = _uses_iptables(self.paths.bridge_state)
                os.write(w, json.dumps(data).encode())
            except BaseException:  # noqa: BLE001 - a child must never return into the loop
                code = 1
            finally:
                os._exit(code)
        os.close(w)
        if pid < 0:
            os.close(r)
            self._mark_dirty(1.0)
            return
        os.set_blocking(r, False)
        self.rec_pid, self.rec_fd, self.rec_buf = pid, r, b""

    def _read_pass(self, final: bool = False) -> None:
        if self.rec_fd < 0:
            return
        while True:
            try:
                chunk = os.read(self.rec_fd, 65536)
            except BlockingIOError:
                if not final:
                    return
                time.sleep(0.001)
                continue
            if not chunk:
                break
            self.rec_buf += chunk
        os.close(self.rec_fd)
        self.rec_fd = -1
        try:
            data = json.loads(self.rec_buf) if self.rec_buf else None
        except ValueError:
            data = None
        self.rec_buf = b""
        self.fw.passes += 1
        self.status_dirty = True
        if not isinstance(data, dict):
            self.fw.failures = ["the reconcile pass crashed (see the agent's log)"]
            self._mark_dirty(1.0)
            return
        self.fw.uses_iptables = bool(data.pop("uses_iptables", False))
        repairs = [str(r) for r in data.get("repairs", [])]
        failures = [str(f) for f in data.get("failures", [])]
        self.fw.last = {"time": data.get("started"), "duration_ms": round(float(data.get("duration_ms", 0)), 1),
                        "networks": data.get("networks"),
                        "attachments_with_ports": data.get("attachments_with_ports"),
                        "repairs": len(repairs), "failures": len(failures),
                        "notes": data.get("notes", [])}
        self.fw.failures = failures
        for line in repairs:
            log.warning("firewall repaired: %s", line)
        for line in failures:
            log.error("firewall repair failed: %s", line)
        self.fw.repairs_total += len(repairs)
        self.fw.recent_repairs = (self.fw.recent_repairs + [
            f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.localtime(float(data.get('started') or 0)))} {r}"
            for r in repairs])[-KEEP_REPAIRS:]
        if failures:
            self._mark_dirty(1.0)  # try again soon, not in a tight loop

    # --- status and shutdown ----------------------------------------------------------
    def _write_status(self) -> None:
        assert self.pool is not None
        self.status_dirty = False
        files.write_status(self.paths, {
            "pid": os.getpid(), "started": self.opts.started, "socket": self.opts.socket_path,
            "activation": self.opts.activation, "root": {"lib": self.paths.lib, "run": self.paths.run},
            "workers": {"spare": self.opts.spare, "ready": len(self.pool.idle),
                        "busy": len(self.pool.workers) - len(self.pool.idle),
                        "calls_served": self.pool.served},
            "dnsd": self.dnsd.to_dict(),
            "overlay": self.overlay.to_dict() if self.overlay is not None else None,
            "store": self.opts.store or None,
            "firewall": {"watch": self.fw.watch, "passes": self.fw.passes,
                         "repairs_total": self.fw.repairs_total, "last_pass": self.fw.last,
                         "recent_repairs": self.fw.recent_repairs, "failures": self.fw.failures},
        })

    def _shutdown(self) -> None:
        assert self.pool is not None and self.srv is not None
        if self.rec_pid:
            _kill(self.rec_pid)
        if self.reexec:
            self.pool.stop(grace=0.0, wait=False)  # idle workers exit; busy ones finish
            if self.overlay is not None:
                self.overlay.stop()  # the new image starts its own
            _reexec(self.opts, self.srv.fileno(), self.lock_fd)
        if self.opts.activation != "systemd":
            try:
                os.unlink(self.opts.socket_path)
            except FileNotFoundError:
                pass
        self.srv.close()
        self.pool.stop()
        if self.overlay is not None:
            self.overlay.stop()
        self.dnsd.release(os.getpid())
        try:
            if control.stop(self.paths.dnsd):
                log.info("dnsd stopped")
        except OSError as exc:
            log.warning("cannot stop dnsd: %s", exc)
        files.clear(self.paths, os.getpid())
        os.close(self.lock_fd)
        log.info("agent %d stopped", os.getpid())


def _nonempty(directory: str) -> bool:
    try:
        return any(True for _ in os.scandir(directory))
    except OSError:
        return False


def _uses_iptables(state_dir: str) -> bool:
    policies, _ = desired.load_policies(state_dir)
    return any(p.driver == "iptables" for p in policies)


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


PR_SET_CHILD_SUBREAPER = 36


def _become_subreaper() -> None:
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _reexec(opts: Options, listen_fd: int, lock_fd: int) -> None:
    """Replace this process with a fresh agent that keeps the socket and the lock."""
    os.set_inheritable(listen_fd, True)
    os.set_inheritable(lock_fd, True)
    argv = [sys.executable, "-I", "-m", "runtime.agent", "run", "--socket", opts.socket_path,
            "--root-lib", opts.root.lib, "--root-run", opts.root.run, "--spare", str(opts.spare),
            "--exit-when-idle", str(opts.exit_when_idle), "--inherit-fds", f"{listen_fd},{lock_fd}",
            "--activation", opts.activation, "--started", str(opts.started)]
    if opts.store:
        argv += ["--store", opts.store]
    sys.stderr.flush()
    os.chdir("/")
    # ignored stays ignored across exec: a nudge before the new image's handler is harmless
    signal.signal(NUDGE_DNSD, signal.SIG_IGN)
    os.execv(sys.executable, argv)


def systemd_listen_fd() -> int | None:
    """fd 3 when systemd passed us one listening socket (socket activation), else None."""
    if os.environ.get("LISTEN_PID") != str(os.getpid()):
        return None
    try:
        count = int(os.environ.get("LISTEN_FDS", "0"))
    except ValueError:
        return None
    for key in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        os.environ.pop(key, None)  # not for our children
    return 3 if count >= 1 else None


def serve(opts: Options) -> int:
    """Run the agent until stopped; the exit status.

    Raises nothing: a start-up failure (another agent holds the socket, cannot bind) is
    logged and gives status 1.
    """
    # the supervisor record may still name us (re-exec): a nudge is harmless until run()
    signal.signal(NUDGE_DNSD, signal.SIG_IGN)
    agent = Agent(opts)
    try:
        agent.setup()
    except OSError as exc:
        log.error("%s", exc)
        return 1
    agent.run()
    return 0
