"""The README's promises: short, the two commands exist, its links lead somewhere."""

from __future__ import annotations

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
README = (ROOT / "README.md").read_text()


def test_readme_is_short_and_names_the_two_commands() -> None:
    assert len(README.splitlines()) < 200
    first_screen = "\n".join(README.splitlines()[:40])
    for cmd in ("scripts/demo", "scripts/test"):
        assert cmd in first_screen
        assert os.access(ROOT / cmd, os.X_OK), cmd
    assert "sudo scripts" not in README  # the machine may have no sudo


def test_readme_links_lead_somewhere() -> None:
    links = re.findall(r"\]\(([^)#]+)\)", README)
    assert links
    # docs/agent.md is the integrator's (the per-host agent): it lands with that work
    missing = [link for link in links if not link.startswith("http") and link != "docs/agent.md"
               and not (ROOT / link).exists()]
    assert missing == []
    for doc in (ROOT / "docs").glob("*.md"):
        for link in re.findall(r"\]\(([^)#:]+)\)", doc.read_text()):
            assert (doc.parent / link).exists(), f"{doc.name}: {link}"
