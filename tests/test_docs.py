"""The README and docs/ hold: every relative link resolves (a file that exists, and a
heading of it where the link names one), and every --flag of a documented
``python runners/...`` or ``python benchmarks/...`` command is one that script's --help
lists."""
import re
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import pytest

from patches.vendor import PROJECT_ROOT

PAGES = [PROJECT_ROOT / "README.md", *sorted((PROJECT_ROOT / "docs").rglob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
COMMAND = re.compile(r"python ((?:runners|benchmarks)/[\w/]+\.py)((?:\\\n|[^\n`|])*)")  # continued lines too
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")


def heading_anchors(page: Path) -> set[str]:
    """GitHub's anchors of the page's headings: lower case, punctuation dropped, spaces as -."""
    headings = [line.lstrip("#").strip() for line in page.read_text().splitlines() if line.startswith("#")]
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


def relative_links(page: Path) -> list[str]:
    return [target for target in LINK.findall(page.read_text()) if not re.match(r"[a-z]+:", target)]


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(PROJECT_ROOT)))
def test_every_relative_link_resolves(page):
    broken = []
    for target in relative_links(page):
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists() or (anchor and linked.suffix == ".md" and anchor not in heading_anchors(linked)):
            broken.append(target)
    assert broken == []


@lru_cache(maxsize=None)
def help_flags(script: str) -> frozenset[str]:
    """The flags ``python <script> --help`` lists."""
    shown = subprocess.run([sys.executable, script, "--help"], cwd=PROJECT_ROOT, capture_output=True, text=True,
                           timeout=300)
    assert shown.returncode == 0, f"{script} --help: {shown.stderr[-500:]}"
    return frozenset(FLAG.findall(shown.stdout))


def documented_commands() -> list[tuple[str, str, str]]:
    """(page, script, the command's flags text) of every documented command."""
    return [(str(page.relative_to(PROJECT_ROOT)), script, flags) for page in PAGES
            for script, flags in COMMAND.findall(page.read_text())]


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted({script for _, script, _ in documented_commands()}))
def test_every_documented_flag_is_in_the_scripts_help(script):
    unknown = sorted({f"{page}: {flag}" for page, documented, flags in documented_commands() if documented == script
                      for flag in FLAG.findall(flags) if flag not in help_flags(script)})
    assert unknown == []
