"""Deliver the plugin executables: thin scripts named exactly by CNI type.

They are never put on PATH (``/sbin/bridge`` belongs to iproute2): runtimes find them
through CNI_PATH. Each is written to a temporary name and renamed into place, so a runtime
never executes a half-written file (libcni retries ETXTBSY, but a torn file would run).
"""

from __future__ import annotations

import os
import site
import sys

import netplugins

from .registry import SHIM_MARKER, available


def _import_roots() -> list[str]:
    """Directories that must be on sys.path for our packages and their dependencies."""
    roots = [os.path.dirname(os.path.dirname(os.path.abspath(netplugins.__file__)))]
    for path in site.getsitepackages():
        if path not in roots:
            roots.append(path)
    return roots


def shim_text(ptype: str) -> str:
    """The executable for ``ptype``.

    ``-IS`` (one argument: a shebang passes one): isolated (no PYTHON* env, no user site) and no site import, which saves ~5 ms
    per call; the paths it needs are written in instead.
    """
    return (
        f"#!{sys.executable} -IS\n"
        f"{SHIM_MARKER} {ptype}\n"
        "import sys\n"
        f"sys.path[:0] = {_import_roots()!r}\n"
        "from netplugins.cni.shim import main\n"
        f"main({ptype!r})\n"
    )


def default_dir() -> str:
    """The directory inside the installed package that holds the executables."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "bin")


def compile_packages() -> None:
    """Write the bytecode of the packages a plugin process imports, where it is missing or
    stale, so that no plugin call compiles source (a call may run where ``__pycache__`` is
    not writable, and then would compile on every call). Directories that cannot be
    written are skipped: compiling is an optimisation, never a reason to fail."""
    # lazy: only when executables are (re)written
    import compileall

    root = os.path.dirname(os.path.dirname(os.path.abspath(netplugins.__file__)))
    for package in ("netplugins", "ipam", "dnsd"):
        path = os.path.join(root, package)
        if os.path.isdir(path):
            compileall.compile_dir(path, quiet=2, workers=1)


def install(directory: str) -> list[str]:
    """Write every plugin executable into ``directory``; return their paths. When one was
    written (a new or upgraded installation), compile our packages' bytecode too.

    Raises:
        OSError: when the directory cannot be written.
    """
    os.makedirs(directory, mode=0o755, exist_ok=True)
    written = []
    changed = False
    for ptype in sorted(available()):
        dest = os.path.join(directory, ptype)
        text = shim_text(ptype)
        try:
            with open(dest) as fh:
                if fh.read() == text:
                    written.append(dest)
                    continue
        except (OSError, UnicodeDecodeError):
            pass
        tmp = os.path.join(directory, f".{ptype}.tmp{os.getpid()}")
        with open(tmp, "w") as fh:
            fh.write(text)
        os.chmod(tmp, 0o755)
        os.rename(tmp, dest)
        written.append(dest)
        changed = True
    if changed:
        compile_packages()
    return written


def ensure_default_dir() -> str:
    """Make sure the package's own plugin directory is complete; return it."""
    directory = default_dir()
    install(directory)
    return directory
