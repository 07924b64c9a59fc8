"""Which of apt's and dpkg's locks another process holds (``scripts/setup`` waits on it).

Prints the first held lock file and exits 0, or exits 1 when all are free. apt and dpkg
take fcntl (POSIX record) locks on these files; taking one and letting go at once is how
apt probes them too. Run with the system python3 (before the virtualenv exists).
"""

from __future__ import annotations

import fcntl
import os
import sys

LOCKS = ("/var/lib/dpkg/lock-frontend", "/var/lib/dpkg/lock",
         "/var/lib/apt/lists/lock", "/var/cache/apt/archives/lock")


def holder(paths: tuple[str, ...] = LOCKS) -> str | None:
    """The first of ``paths`` locked by another process (None: all free or absent)."""
    for path in paths:
        try:
            fd = os.open(path, os.O_RDWR)
        except OSError:
            continue
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return path
        finally:
            os.close(fd)  # closing drops our probe lock
    return None


def main(argv: list[str]) -> int:
    held = holder(tuple(argv) or LOCKS)
    if held is None:
        return 1
    print(held)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
