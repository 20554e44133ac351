"""Docs that cannot rot: every relative link and anchor in the README and docs/ resolves, and
every `callvault` command line they show is one the CLI accepts."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from callvault_local.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)|!\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.DOTALL | re.MULTILINE)
PLACEHOLDER = re.compile(r"<([A-Za-z][\w .-]*)>")


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower-cased, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip()).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = FENCE.sub("", path.read_text())
    seen: dict[str, int] = {}
    anchors = set()
    for heading in re.findall(r"^#{1,6} (.+)$", text, re.MULTILINE):
        slug = _slug(heading)
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def _links(path: Path) -> list[str]:
    text = FENCE.sub("", path.read_text())
    text = re.sub(r"`[^`\n]*`", "", text)  # a link shown as code is not a link
    return [a or b for a, b in LINK.findall(text)]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_and_anchors_resolve(doc: Path) -> None:
    broken = []
    for target in _links(doc):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:: not ours to check offline
            continue
        file_part, _, anchor = target.partition("#")
        linked = (doc.parent / file_part).resolve() if file_part else doc
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
            broken.append(f"{target}: no heading #{anchor} in {linked.relative_to(ROOT)}")
    assert not broken, f"{doc.relative_to(ROOT)}: " + "; ".join(broken)


def _command_lines(path: Path) -> list[str]:
    lines: list[str] = []
    for block in FENCE.findall(path.read_text()):
        joined = re.sub(r"\\\n\s*", " ", block)  # a command continued over lines is one
        for line in joined.splitlines():
            line = line.strip().removeprefix("$ ")
            if line.startswith("callvault "):
                lines.append(line)
    return lines


COMMANDS = [(doc, line) for doc in DOCS for line in _command_lines(doc)]


def test_the_docs_show_commands() -> None:
    assert len(COMMANDS) >= 5, "the command-line check found (almost) nothing to check"


@pytest.mark.parametrize(("doc", "line"), COMMANDS, ids=[f"{d.name}:{line[:60]}" for d, line in COMMANDS])
def test_callvault_command_lines_parse(doc: Path, line: str) -> None:
    command = line.split(" | ")[0]  # a pipeline: only the callvault part is ours
    words = shlex.split(PLACEHOLDER.sub(r"\1", command), comments=True)
    try:
        build_parser().parse_args(words[1:])
    except SystemExit as refused:
        if refused.code not in (0, None):  # --help / --version exit 0
            pytest.fail(f"{doc.relative_to(ROOT)}: the CLI refuses `{line}`")
