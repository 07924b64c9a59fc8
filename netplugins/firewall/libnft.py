"""libnftables in this process: the library the ``nft`` command is a thin front end of.

Each ``nft`` run costs a fork and an exec of a binary with seven shared libraries (~3.5 ms
on the 2-core test VM, against ~0.3 ms for the same command through the library; figure in
bench/README.md, "nft in-process"). A bridge ADD reads and writes the table, so that is
two runs per container start. The binding is a handful of ctypes declarations, the same
ones Debian's ``python3-nftables`` makes (that module is not on PyPI and lives outside our
virtualenv).

A context is made per command and freed after it: its netlink socket then belongs to the
network namespace the caller is in at that moment (a worker of the agent enters the
runtime's namespace after it was forked), and no state is shared between commands.
"""

from __future__ import annotations

import ctypes

#: enum nft_output_flags in <nftables/libnftables.h>: NFT_CTX_OUTPUT_JSON
OUTPUT_JSON = 1 << 4
SONAME = "libnftables.so.1"

_lib: ctypes.CDLL | None = None
_tried = False


def _declare(lib: ctypes.CDLL) -> None:
    ptr, cstr = ctypes.c_void_p, ctypes.c_char_p
    lib.nft_ctx_new.restype = ptr
    lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
    lib.nft_ctx_free.argtypes = [ptr]
    lib.nft_ctx_output_set_flags.argtypes = [ptr, ctypes.c_uint]
    lib.nft_ctx_buffer_output.argtypes = [ptr]
    lib.nft_ctx_buffer_error.argtypes = [ptr]
    lib.nft_ctx_get_output_buffer.restype = cstr
    lib.nft_ctx_get_output_buffer.argtypes = [ptr]
    lib.nft_ctx_get_error_buffer.restype = cstr
    lib.nft_ctx_get_error_buffer.argtypes = [ptr]
    lib.nft_run_cmd_from_buffer.argtypes = [ptr, cstr]


def library() -> ctypes.CDLL | None:
    """The loaded library, or None when this host has none (then ``nft`` is run)."""
    global _lib, _tried
    if not _tried:
        _tried = True
        try:
            lib = ctypes.CDLL(SONAME)
            _declare(lib)
            _lib = lib
        except (OSError, AttributeError):
            _lib = None
    return _lib


def run(lib: ctypes.CDLL, command: str, json: bool = False) -> tuple[int, str, str]:
    """Run one nft command line or script (one transaction, as ``nft -f``).

    Returns (exit code as the ``nft`` command gives it: 0 or 1, output, error text).

    Raises:
        MemoryError: the library could not allocate a context.
    """
    ctx = lib.nft_ctx_new(0)
    if not ctx:
        raise MemoryError("nft_ctx_new failed")
    try:
        if json:
            lib.nft_ctx_output_set_flags(ctx, OUTPUT_JSON)
        lib.nft_ctx_buffer_output(ctx)
        lib.nft_ctx_buffer_error(ctx)
        rc = lib.nft_run_cmd_from_buffer(ctx, command.encode())
        out = (lib.nft_ctx_get_output_buffer(ctx) or b"").decode(errors="replace")
        err = (lib.nft_ctx_get_error_buffer(ctx) or b"").decode(errors="replace")
    finally:
        lib.nft_ctx_free(ctx)
    return (1 if rc else 0), out, err
