"""Pick the renderer; SVG goes through Graphviz's ``dot -Tsvg``."""

from __future__ import annotations

import shutil
import subprocess

from ..errors import NetctlError
from .dot import render_dot
from .model import GraphModel
from .text import render_text

FORMATS = ("svg", "png", "dot", "text")


def dot_to(dot_text: str, fmt: str) -> bytes:
    """Run Graphviz: DOT text -> ``fmt`` (svg, png, ...).

    Raises:
        NetctlError: Graphviz is not installed or rejected the input.
    """
    exe = shutil.which("dot")
    if exe is None:
        raise NetctlError("Graphviz is not installed (no 'dot' command): use --format dot or text, "
                          "or install the graphviz package")
    try:
        res = subprocess.run([exe, f"-T{fmt}"], input=dot_text.encode(), capture_output=True, timeout=60)
    except subprocess.TimeoutExpired:
        raise NetctlError("Graphviz took more than 60 s") from None
    if res.returncode != 0:
        raise NetctlError(f"Graphviz failed: {res.stderr.decode(errors='replace').strip()}")
    return res.stdout


def render(model: GraphModel, fmt: str) -> str | bytes:
    """``model`` as ``fmt`` ("svg" and "png" give bytes, "dot" and "text" give text).

    Raises:
        NetctlError: unknown format, or Graphviz missing/failing for svg.
    """
    if fmt == "dot":
        return render_dot(model)
    if fmt == "text":
        return render_text(model)
    if fmt in ("svg", "png"):
        return dot_to(render_dot(model), fmt)
    raise NetctlError(f"unknown graph format {fmt!r}: use {', '.join(FORMATS)}")
