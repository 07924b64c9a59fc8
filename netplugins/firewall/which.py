"""Finding a firewall command on PATH (``shutil.which`` without ``shutil``: importing it
costs ~2 ms in every plugin process, and this is all the plugins use of it)."""

from __future__ import annotations

import os

#: CNI runtimes may pass a short PATH; nft and iptables live in sbin on Debian
FALLBACK_PATH = "/usr/local/sbin:/usr/sbin:/sbin:/usr/bin:/bin"


def which(cmd: str, search_path: str | None = None) -> str | None:
    """The first executable file ``cmd`` in ``search_path`` (default: $PATH, then the
    sbin directories), or None."""
    folders = (search_path if search_path is not None
               else os.environ.get("PATH", "") + os.pathsep + FALLBACK_PATH).split(os.pathsep)
    for folder in folders:
        if folder:
            path = os.path.join(folder, cmd)
            if os.access(path, os.X_OK) and not os.path.isdir(path):
                return path
    return None
