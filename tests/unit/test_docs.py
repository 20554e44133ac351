"""Docs that cannot rot: every relative link and anchor in the README and docs/ resolves (an image
to an image file), every page of docs/ is reachable from the README, every `callvault` command line
they show is one the CLI accepts, and every `callvault` command named in their prose exists with
the options it is shown with."""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import pytest

from callvault_local.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
TITLE = r"(?:\s+\"[^\"]*\")?"
LINK = re.compile(rf"(?<!!)\[[^\]]*\]\(([^)\s]+){TITLE}\)|!\[[^\]]*\]\(([^)\s]+){TITLE}\)")
IMAGE = re.compile(rf"!\[[^\]]*\]\(([^)\s]+){TITLE}\)")
REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(\S+)", re.MULTILINE)  # [name]: target
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp"}
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


def _prose(path: Path) -> str:
    text = FENCE.sub("", path.read_text())
    return re.sub(r"`[^`\n]*`", "", text)  # a link shown as code is not a link


def _links(path: Path) -> list[str]:
    text = _prose(path)
    return [a or b for a, b in LINK.findall(text)] + REFERENCE.findall(text)


def _relative(target: str) -> bool:
    return not re.match(r"^[a-z][a-z0-9+.-]*:", target)  # https:, mailto:: not ours to check offline


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_and_anchors_resolve(doc: Path) -> None:
    broken = []
    for target in filter(_relative, _links(doc)):
        file_part, _, anchor = target.partition("#")
        linked = (doc.parent / file_part).resolve() if file_part else doc
        if not linked.is_relative_to(ROOT):
            broken.append(f"{target}: outside the repository")
        elif not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
            broken.append(f"{target}: no heading #{anchor} in {linked.relative_to(ROOT)}")
    assert not broken, f"{doc.relative_to(ROOT)}: " + "; ".join(broken)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_images_are_image_files(doc: Path) -> None:
    """An image link resolves to a picture (a link to a page or a folder shows nothing)."""
    wrong = [
        target
        for target in filter(_relative, IMAGE.findall(_prose(doc)))
        if not (doc.parent / target).is_file() or (doc.parent / target).suffix.lower() not in IMAGE_SUFFIXES
    ]
    assert not wrong, f"{doc.relative_to(ROOT)}: not an image file: {wrong}"


def test_the_readme_shows_an_image() -> None:
    assert IMAGE.search(_prose(ROOT / "README.md")), "the README lost its screenshot"


def test_the_readme_stays_a_front_page() -> None:
    """Read in about ten minutes: the reference belongs in docs/, by topic."""
    lines = len((ROOT / "README.md").read_text().splitlines())
    assert lines <= 250, f"README.md has {lines} lines: move the reference into docs/ and link it"


def test_every_page_is_reachable_from_the_readme() -> None:
    """A page of docs/ no link leads to is one nobody reads, and rots first."""
    reached, queue = set(), [ROOT / "README.md"]
    while queue:
        doc = queue.pop()
        if doc in reached:
            continue
        reached.add(doc)
        for target in filter(_relative, _links(doc)):
            linked = (doc.parent / target.partition("#")[0]).resolve()
            if linked.suffix == ".md" and linked.is_file():
                queue.append(linked)
    orphans = [str(doc.relative_to(ROOT)) for doc in DOCS if doc not in reached]
    assert not orphans, f"no link from the README leads to {orphans}"


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


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _mentions(path: Path) -> list[str]:
    """`callvault ...` in the prose: often a fragment (`callvault send FILE`, options shown as
    `[--since ISO8601]`), so not parsed whole; each is held to the commands and options it names."""
    text = FENCE.sub("", path.read_text())
    return re.findall(r"`(callvault [^`\n]+)`", text)


MENTIONS = [(doc, mention) for doc in DOCS for mention in _mentions(doc)]


@pytest.mark.parametrize(("doc", "mention"), MENTIONS, ids=[f"{d.name}:{m[:60]}" for d, m in MENTIONS])
def test_callvault_commands_named_in_prose_exist(doc: Path, mention: str) -> None:
    words = shlex.split(mention.replace("[", " ").replace("]", " "))[1:]
    parser = build_parser()
    named = ["callvault"]
    while words and not words[0].startswith("-") and (choices := _subcommands(parser)):
        if PLACEHOLDER.fullmatch(words[0]):  # `callvault <command> --help`: any command
            return
        if words[0] not in choices:
            pytest.fail(f"{doc.relative_to(ROOT)}: `{mention}`: no command {' '.join(named)} {words[0]}")
        named.append(words.pop(0))
        parser = choices[named[-1]]
    known = {option for action in parser._actions for option in action.option_strings}
    unknown = [word.split("=")[0] for word in words if word.startswith("--") and word.split("=")[0] not in known]
    assert not unknown, f"{doc.relative_to(ROOT)}: `{mention}`: {' '.join(named)} has no option {unknown}"
