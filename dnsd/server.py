"""The dnsd process: sockets, the event loop, reloads, the pid file.

UDP, the hot path, runs one small thread per listen address: a blocking ``recvfrom``,
the wire fast path, ``sendto``, and again. Measured against an asyncio ``add_reader``
loop (and a raw epoll loop), the blocking loop costs the least CPU per wake-up and has
the lowest latency at moderate rates: no epoll_wait, no selector bookkeeping, no
EAGAIN round trip; the thread simply sleeps in the kernel until a datagram arrives.
Everything else runs on one asyncio loop in the main thread: forwarded queries (handed
over with ``call_soon_threadsafe``), TCP, reloads, signals, inotify. So a slow upstream
never holds up other queries, and the GIL is only contended when both have work.

Reload (SIGHUP, or an inotify event on the directory) builds a new ``Records``
snapshot and swaps one reference, then diffs the listen addresses: sockets whose
address stays are never closed (aardvark-dns#389 lost queries by re-creating every
socket on each SIGHUP); removed addresses are closed; new ones are bound, with
IP_FREEBIND so that a gateway address not configured yet (or still in IPv6 DAD) can be
bound anyway. When no listen address remains, dnsd re-checks under the control lock
(so that a concurrent ``ensure_running`` either sees it gone or its config is seen),
gives up its pid file and exits.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import resource
import signal
import socket
import sys
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dnsd import control, wire
from dnsd.config import ENTRIES, NETWORKS
from dnsd.forward import DEFAULT_TIMEOUT, forward, recv_exactly
from dnsd.records import Loader, Records
from dnsd.resolver import Forward, Resolver
from dnsd.upstreams import ResolvConf

if TYPE_CHECKING:
    from dnsd.inotify import DirWatcher

log = logging.getLogger(__name__)

#: seconds to wait for a UDP thread to notice that its listener was removed
UDP_JOIN = 1.0
#: concurrent forwarded queries (docker: 1024 per container); beyond it: REFUSED
MAX_FORWARDS = 512
#: concurrent TCP connections; beyond it new ones are closed at once
MAX_TCP = 128
#: a TCP connection idle this long is closed (RFC 7766 suggests seconds)
TCP_IDLE = 10.0
#: receive buffer of UDP listeners: absorbs bursts while a reload runs
RCVBUF = 4 << 20
#: seconds between attempts to bind addresses that failed
BIND_RETRY = 1.0

_IP_FREEBIND = getattr(socket, "IP_FREEBIND", 15)


@dataclass
class Listener:
    """The sockets of one listen address, and the thread serving its UDP socket."""

    ip: str
    udp: socket.socket
    tcp: socket.socket
    thread: threading.Thread

    def close(self, loop: asyncio.AbstractEventLoop) -> None:
        """Close both sockets; the UDP thread is woken by shutdown() and closes its own.

        close() alone would not wake a thread blocked in recvfrom (it would sleep on
        forever); shutdown() on a UDP socket does, even though it reports ENOTCONN.
        """
        loop.remove_reader(self.tcp.fileno())
        self.tcp.close()
        try:
            self.udp.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # ENOTCONN for unconnected UDP, but the wake-up happened
        self.thread.join(UDP_JOIN)


class Server:
    """dnsd for one configuration directory."""

    def __init__(
        self,
        dns_dir: str,
        port: int = 53,
        resolv_conf: str = "/etc/resolv.conf",
        upstream_timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.dns_dir = os.path.abspath(dns_dir)
        self.port = port
        self.upstream_timeout = upstream_timeout
        self.loader = Loader(self.dns_dir)
        self.resolver = Resolver(resolv_conf=ResolvConf(resolv_conf))
        self.listeners: dict[str, Listener] = {}
        self._bind_errors: dict[str, str] = {}
        self._retry: asyncio.TimerHandle | None = None
        self._reload_pending = False
        self._forwards = 0
        self._tcp_conns = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._last_error_log = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._done: asyncio.Future[int] | None = None

    # --- life cycle ----------------------------------------------------------------------

    def run(self) -> int:
        """Serve until SIGTERM/SIGINT or until no listen address remains; the exit code."""
        if not os.path.isdir(self.dns_dir):
            log.error("%s is not a directory", self.dns_dir)
            return 2
        for sub in (NETWORKS, ENTRIES):
            os.makedirs(os.path.join(self.dns_dir, sub), exist_ok=True)
        if not self._claim_pid():
            return 1
        _raise_nofile()
        # a reload holds the GIL for milliseconds; UDP threads waiting for it get it
        # after this interval instead of the default 5 ms
        sys.setswitchinterval(0.001)
        loop = self._loop = asyncio.new_event_loop()
        self._done = loop.create_future()
        watcher = None
        try:
            # lazy: ctypes (~2 ms) only once dnsd serves, not for its command line
            from dnsd.inotify import DirWatcher

            watcher = DirWatcher(self.dns_dir)
            loop.add_reader(watcher.fileno(), self._on_inotify, watcher)
        except OSError as exc:
            log.warning("no inotify (%s): reload on SIGHUP only", exc)
        try:
            self.reload()
            if not self._done.done():
                # handlers go in only now: "SIGHUP caught" tells control.py we serve;
                # the second reload catches writes made while we were binding
                loop.add_signal_handler(signal.SIGHUP, self.schedule_reload)
                loop.add_signal_handler(signal.SIGTERM, self.stop, 0)
                loop.add_signal_handler(signal.SIGINT, self.stop, 0)
                self.reload()
                log.info("serving %s on port %d", ", ".join(sorted(self.listeners)), self.port)
            code = loop.run_until_complete(self._done)
        finally:
            for lst in self.listeners.values():
                lst.close(loop)
            self.listeners.clear()
            if watcher is not None:
                watcher.close()
            # only our own entry goes: a successor may already have written its pid
            control.remove_pid(self.dns_dir, os.getpid())
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:  # let cancelled forwards and TCP clients unwind
                loop.run_until_complete(asyncio.gather(*self._tasks, return_exceptions=True))
            loop.close()
        return code

    def stop(self, code: int = 0) -> None:
        """End ``run`` with ``code``."""
        if self._done is not None and not self._done.done():
            log.info("stopping")
            self._done.set_result(code)

    def _claim_pid(self) -> bool:
        me = os.getpid()
        with control.control_lock(self.dns_dir):
            current = control.read_pid(self.dns_dir)
            if current is not None and current != me and control.is_dnsd_for(current, self.dns_dir):
                log.error("a dnsd for %s already runs as pid %d", self.dns_dir, current)
                return False
            if current != me:
                control.write_pid(self.dns_dir, me)
        return True

    # --- reload --------------------------------------------------------------------------

    def schedule_reload(self) -> None:
        """Coalesce reload triggers into one reload on the next loop iteration."""
        if not self._reload_pending and self._loop is not None:
            self._reload_pending = True
            self._loop.call_soon(self.reload)

    def _on_inotify(self, watcher: DirWatcher) -> None:
        if watcher.read():
            self.schedule_reload()

    def reload(self) -> None:
        """Build a new snapshot, swap it in, adjust listeners; exit if nothing is left."""
        self._reload_pending = False
        started = time.perf_counter()
        try:
            records = self.loader.load()
        except Exception:  # keep serving the previous snapshot rather than nothing
            log.exception("reload failed; keeping the previous configuration")
            return
        if self.resolver.resolv_conf is not None:
            self.resolver.resolv_conf.refresh(force=True)
        if not records.listen_ips:
            self._exit_if_still_empty()
            return
        self._apply(records)
        log.info(
            "reloaded: %d networks, %d listen addresses, %.1f ms",
            len(records.networks),
            len(records.listen_ips),
            (time.perf_counter() - started) * 1000,
        )

    def _apply(self, records: Records) -> None:
        self.resolver.records = records  # the swap: queries from now on see the new snapshot
        self._sync_listeners(records.listen_ips)

    def _exit_if_still_empty(self) -> None:
        with control.control_lock(self.dns_dir):
            records = self.loader.load()
            if records.listen_ips:  # a plugin wrote a network meanwhile: keep going
                self._apply(records)
                return
            # close while holding the lock, so a successor can bind the same addresses
            assert self._loop is not None
            for lst in self.listeners.values():
                lst.close(self._loop)
            self.listeners.clear()
            control.remove_pid(self.dns_dir, os.getpid())
        log.info("no listen address (left): exiting")
        self.stop(0)

    def _sync_listeners(self, wanted: frozenset[str]) -> None:
        assert self._loop is not None
        for ip in [ip for ip in self.listeners if ip not in wanted]:
            self.listeners.pop(ip).close(self._loop)
            log.info("stopped listening on %s", ip)
        for ip in list(self._bind_errors):
            if ip not in wanted:
                del self._bind_errors[ip]
        for ip in sorted(wanted):
            if ip in self.listeners:
                continue  # kept as it is: no query on it is lost
            try:
                self.listeners[ip] = self._bind(ip)
            except OSError as exc:
                if self._bind_errors.get(ip) != str(exc):
                    log.error("cannot listen on %s port %d: %s", ip, self.port, exc)
                self._bind_errors[ip] = str(exc)
                continue
            self._bind_errors.pop(ip, None)
            log.info("listening on %s port %d", ip, self.port)
        if self._bind_errors and self._retry is None:
            self._retry = self._loop.call_later(BIND_RETRY, self._retry_binds)

    def _retry_binds(self) -> None:
        self._retry = None
        self._sync_listeners(self.resolver.records.listen_ips)

    def _bind(self, ip: str) -> Listener:
        """Open the UDP and TCP sockets of one address (both or neither).

        Raises:
            OSError: if either cannot be bound.
        """
        assert self._loop is not None
        family = socket.AF_INET6 if ":" in ip else socket.AF_INET
        socks: list[socket.socket] = []
        try:
            for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM | socket.SOCK_NONBLOCK):
                # the UDP socket stays blocking: its thread sleeps in recvfrom
                sock = socket.socket(family, kind | socket.SOCK_CLOEXEC)
                socks.append(sock)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                # the gateway address may not be configured yet, or be in IPv6 DAD
                sock.setsockopt(socket.SOL_IP, _IP_FREEBIND, 1)
                if kind == socket.SOCK_STREAM:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                else:
                    _set_rcvbuf(sock)
                sock.bind((ip, self.port))
            socks[1].listen(128)
        except OSError:
            for sock in socks:
                sock.close()
            raise
        udp, tcp = socks
        self._loop.add_reader(tcp.fileno(), self._on_accept, tcp, ip)
        thread = threading.Thread(target=self._serve_udp, args=(udp, ip), name=f"udp-{ip}", daemon=True)
        thread.start()
        return Listener(ip, udp, tcp, thread)

    # --- UDP -----------------------------------------------------------------------------

    def _serve_udp(self, sock: socket.socket, listener: str) -> None:
        """The UDP thread of one listener: the hot path. Local answers are sent inline."""
        assert self._loop is not None
        recvfrom = sock.recvfrom
        sendto = sock.sendto
        handle = self.resolver.handle  # reads resolver.records afresh on every query
        hand_over = self._loop.call_soon_threadsafe
        while True:
            try:
                data, addr = recvfrom(4096)
            except InterruptedError:
                continue
            except OSError as exc:
                if sock.fileno() < 0:
                    break
                self._log_error("recvfrom on %s: %s", listener, exc)
                continue
            if addr is None:
                break  # shutdown(): the listener was removed
            try:
                reply = handle(data, addr[0], listener)
                if type(reply) is bytes:
                    sendto(reply, addr)
                elif isinstance(reply, Forward):
                    hand_over(self._start_forward, reply, sock, addr)
            except OSError as exc:  # a full send buffer, an unreachable client: drop
                if exc.errno not in (errno.EAGAIN, errno.ECONNREFUSED):
                    self._log_error("sendto %s: %s", addr, exc)
            except Exception:
                self._log_error("bug while answering %s", addr, exc_info=True)
        sock.close()

    def _start_forward(self, fwd: Forward, sock: socket.socket, addr: tuple[str, int]) -> None:
        """On the loop thread: forward a UDP query, or refuse it if too many are pending."""
        if self._forwards >= MAX_FORWARDS:
            try:
                sock.sendto(wire.build_error(fwd.query, fwd.q, wire.REFUSED), addr)
            except OSError:
                pass
            return
        self._forwards += 1  # counted here, not in the task, so a burst cannot overshoot
        self._spawn(self._forward_udp(fwd, sock, addr))

    async def _forward_udp(self, fwd: Forward, sock: socket.socket, addr: tuple[str, int]) -> None:
        try:
            reply = await forward(fwd, timeout=self.upstream_timeout)
        finally:
            self._forwards -= 1
        try:
            sock.sendto(reply, addr)
        except OSError:
            pass  # the listener closed meanwhile (network removed) or the client is gone

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        assert self._loop is not None
        task = self._loop.create_task(coro)
        self._tasks.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(self._tasks.discard)

    # --- TCP -----------------------------------------------------------------------------

    def _on_accept(self, sock: socket.socket, listener: str) -> None:
        try:
            conn, addr = sock.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:  # EMFILE and friends: keep serving UDP
            self._log_error("accept on %s: %s", listener, exc)
            return
        if self._tcp_conns >= MAX_TCP:
            conn.close()
            return
        conn.setblocking(False)
        self._tcp_conns += 1
        self._spawn(self._serve_tcp(conn, addr[0], listener))

    async def _serve_tcp(self, conn: socket.socket, peer: str, listener: str) -> None:
        """One TCP client: length-prefixed messages in sequence (RFC 7766), idle time-out."""
        assert self._loop is not None
        loop = self._loop
        try:
            while True:
                async with asyncio.timeout(TCP_IDLE):
                    size = int.from_bytes(await recv_exactly(loop, conn, 2), "big")
                    data = await recv_exactly(loop, conn, size)
                reply = self.resolver.handle(data, peer, listener, tcp=True)
                if isinstance(reply, Forward):
                    if self._forwards >= MAX_FORWARDS:
                        reply = wire.build_error(reply.query, reply.q, wire.REFUSED)
                    else:
                        self._forwards += 1
                        try:
                            reply = await forward(reply, timeout=self.upstream_timeout)
                        finally:
                            self._forwards -= 1
                if reply is None:
                    break  # not a DNS query: nothing sensible to say on this stream
                async with asyncio.timeout(TCP_IDLE):
                    await loop.sock_sendall(conn, len(reply).to_bytes(2, "big") + reply)
        except (TimeoutError, OSError, asyncio.IncompleteReadError):
            pass
        except Exception:
            self._log_error("bug on TCP connection from %s", peer, exc_info=True)
        finally:
            conn.close()
            self._tcp_conns -= 1

    # --- misc ----------------------------------------------------------------------------

    def _log_error(self, msg: str, *args: object, exc_info: bool = False) -> None:
        """Log at most one error per second: a flood of bad packets must not fill the disk."""
        now = time.monotonic()
        if now - self._last_error_log >= 1.0:
            self._last_error_log = now
            log.error(msg, *args, exc_info=exc_info)


def _set_rcvbuf(sock: socket.socket) -> None:
    # SO_RCVBUFFORCE (root) goes beyond net.core.rmem_max; fall back quietly
    try:
        sock.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_RCVBUFFORCE", 33), RCVBUF)
    except OSError:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
        except OSError:
            pass


def _raise_nofile() -> None:
    """Each forwarded query holds a socket: lift the soft fd limit to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 65536
    if soft != resource.RLIM_INFINITY and soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        except (ValueError, OSError):
            pass
