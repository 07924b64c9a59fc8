"""Watch the configuration directory with inotify (ctypes, no dependency).

SIGHUP from the writer stays the documented reload trigger (as for aardvark-dns); the
watch is a second trigger so that a hand-edited directory, or a writer that forgot to
signal, is still seen within milliseconds. If inotify is unavailable the server logs it
and relies on SIGHUP alone.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import struct

from dnsd.config import ENTRIES, NETWORKS

log = logging.getLogger(__name__)

IN_MODIFY = 0x00000002
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ONLYDIR = 0x01000000
IN_ISDIR = 0x40000000
IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000

_FILES_MASK = (
    IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE
    | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR
)
_TOP_MASK = IN_CREATE | IN_MOVED_TO | IN_DELETE | IN_MOVED_FROM | IN_ONLYDIR
_EVENT = struct.Struct("iIII")


class DirWatcher:
    """inotify watches on ``dns_dir``, ``networks/``, ``entries/`` and each ``entries/<net>/``.

    Raises:
        OSError: from the constructor if inotify cannot be initialised.
    """

    def __init__(self, dns_dir: str) -> None:
        self.dns_dir = dns_dir
        self._libc = ctypes.CDLL(None, use_errno=True)
        fd = self._libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"inotify_init1: {os.strerror(err)}")
        self.fd: int = fd
        self._paths: dict[str, int] = {}  # path -> watch descriptor
        self.sync()

    def fileno(self) -> int:
        return self.fd

    def _add(self, path: str, mask: int) -> None:
        if path in self._paths:
            return
        wd = self._libc.inotify_add_watch(self.fd, os.fsencode(path), mask)
        if wd < 0:
            err = ctypes.get_errno()
            if err not in (errno.ENOENT, errno.ENOTDIR):
                log.warning("inotify_add_watch %s: %s", path, os.strerror(err))
            return
        self._paths[path] = wd

    def sync(self) -> None:
        """Make sure every directory that exists is watched (new network dirs included)."""
        self._add(self.dns_dir, _TOP_MASK)
        self._add(os.path.join(self.dns_dir, NETWORKS), _FILES_MASK)
        entries = os.path.join(self.dns_dir, ENTRIES)
        self._add(entries, _FILES_MASK)
        try:
            subdirs = os.listdir(entries)
        except OSError:
            subdirs = []
        for name in subdirs:
            self._add(os.path.join(entries, name), _FILES_MASK)

    def read(self) -> bool:
        """Drain pending events; True if the configuration may have changed."""
        changed = False
        rescan = False
        while True:
            try:
                buf = os.read(self.fd, 65536)
            except BlockingIOError:
                break
            except InterruptedError:
                continue
            if not buf:
                break
            off = 0
            while off + _EVENT.size <= len(buf):
                wd, mask, _cookie, length = _EVENT.unpack_from(buf, off)
                name = buf[off + _EVENT.size : off + _EVENT.size + length].rstrip(b"\0")
                off += _EVENT.size + length
                if mask & IN_Q_OVERFLOW:
                    changed = rescan = True
                elif wd == self._paths.get(self.dns_dir) and not mask & (IN_ISDIR | IN_IGNORED):
                    continue  # our own pid/lock/log files in the top directory
                elif mask & IN_IGNORED:
                    # the watched directory is gone (network removed): forget its watch
                    self._paths = {p: w for p, w in self._paths.items() if w != wd}
                    changed = True
                elif mask & IN_ISDIR:
                    changed = rescan = True
                elif name and not name.startswith(b"."):
                    changed = True  # temp files are dot files; the rename is what counts
                elif not name:
                    changed = True  # the directory itself was deleted or moved
        if rescan:
            self.sync()
        return changed

    def close(self) -> None:
        try:
            os.close(self.fd)
        except OSError:
            pass
