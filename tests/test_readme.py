"""The README and the guide pages of ``docs/`` are part of the product: their
excerpts must be in the files they name, each command they show must be run by
a test (or by CI), and their links must lead somewhere.

Conventions of the pages (README.md and every docs/*.md):

- a ```python or ```yaml block is an excerpt: just before it, an HTML comment
  ``<!-- from PATH -->`` (PATH from the repository root) names its file, in
  which its lines are verbatim and in order ("..." lines stand for omitted
  lines);
- every command of a ```bash block appears verbatim in a test file of tests/
  or in .ci/run, unless a comment just before the block says it needs a
  cluster;
- relative links lead to existing files, and ``#anchor`` links to headings
  of their target (GitHub's anchors).
"""

import re
from pathlib import Path
from typing import NamedTuple

import pytest
from conftest import REAL_MNIST, REPO, SAMPLE, Sandbox

README_PATH = REPO / "README.md"
DOCS = sorted((REPO / "docs").glob("*.md"))
PAGES = [README_PATH, *DOCS]
UNRUN = ("needs a cluster",)
"""Notes that excuse a command from being run (terminals and browsers are:
tests/test_interfaces.py)"""


def page_ids(pages: list[Path]) -> list[str]:
    return [page.relative_to(REPO).as_posix() for page in pages]


# --- Reading a page: its fenced blocks, and the prose around them


class Block(NamedTuple):
    note: str
    """The HTML comment on the line just before the block ("" if none)"""

    lang: str
    body: str
    """The lines of the block, each ending with a newline, without the
    indentation of its fence"""


FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
NOTE = re.compile(r"^\s*<!-- (?P<note>.*?) -->\s*$")


def split_page(text: str) -> tuple[list[Block], str]:
    """The fenced blocks of a Markdown text, and the text without them (an
    empty line in place of each block line)"""
    blocks, prose = [], []
    lines = text.split("\n")
    index = 0
    while index < len(lines):
        line = lines[index]
        opening = FENCE.match(line)
        # (an info string after backticks cannot hold backticks: inline code)
        if not opening or (opening["fence"][0] == "`" and "`" in opening["info"]):
            prose.append(line)
            index += 1
            continue
        indent, fence = len(opening["indent"]), opening["fence"]
        closing = re.compile(rf"^ *{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        end = index + 1
        while end < len(lines) and not closing.match(lines[end]):
            end += 1
        body = "".join(
            re.sub(rf"^ {{0,{indent}}}", "", body_line) + "\n"
            for body_line in lines[index + 1 : end]
        )
        note = NOTE.match(lines[index - 1]) if index > 0 else None
        [lang, *_] = opening["info"].split() or [""]
        blocks.append(Block(note["note"] if note else "", lang, body))
        prose += [""] * (end + 1 - index)
        index = end + 1
    # HTML comments are not shown: neither their links nor their headings count
    text = re.sub(r"<!--.*?-->", "", "\n".join(prose), flags=re.DOTALL)
    return blocks, text


def blocks(page: Path, lang: str) -> list[Block]:
    return [block for block in split_page(page.read_text())[0] if block.lang == lang]


def commands(body: str) -> list[str]:
    lines = (line.strip() for line in body.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


# --- Links and GitHub's anchors

INLINE_CODE = re.compile(r"(`+).+?\1", re.DOTALL)
LINK = re.compile(
    r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*(?:<(?P<angled>[^>]*)>|(?P<plain>[^)\s]+))"
    r"(?:\s+\"[^\"]*\")?\s*\)"
)
REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(?P<target>[^>\s]+)>?", re.MULTILINE)
HTML_LINK = re.compile(r"<(?:a|img)\b[^>]*?\b(?:href|src)=\"(?P<target>[^\"]+)\"")
HEADING = re.compile(
    r"^ {0,3}#{1,6}[ \t]+(?P<title>.*?)(?:[ \t]+#+)?[ \t]*$", re.MULTILINE
)
ABSOLUTE = re.compile(r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*:|//)")


def link_targets(page: Path) -> list[str]:
    """The targets of the links and images of a page (code excepted)"""
    prose = INLINE_CODE.sub("", split_page(page.read_text())[1])
    targets = [m["angled"] or m["plain"] for m in LINK.finditer(prose)]
    targets += [m["target"] for m in REFERENCE.finditer(prose)]
    return targets + [m["target"] for m in HTML_LINK.finditer(prose)]


def slug(title: str) -> str:
    """GitHub's anchor of a heading: the text shown, lowercase, punctuation
    but '-' and '_' removed, each space made '-'"""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", title)  # links: their text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "").lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """The anchors of the headings of a page (a repeated one gets -1, -2...)"""
    found, seen = set(), {}
    for match in HEADING.finditer(split_page(page.read_text())[1]):
        anchor = slug(match["title"])
        if anchor in seen:
            seen[anchor] += 1
            anchor = f"{anchor}-{seen[anchor]}"
        else:
            seen[anchor] = 0
        found.add(anchor)
    return found


def test_anchor_rules():
    assert slug("`data.py`: the dataset, with datamaestro") == (
        "datapy-the-dataset-with-datamaestro"
    )
    assert slug("Choosing: `XPKIT_LAUNCHER`") == "choosing-xpkit_launcher"
    assert slug("The local launcher's core policy") == "the-local-launchers-core-policy"
    assert slug("See [the docs](docs/a.md) now") == "see-the-docs-now"


# --- The checks, on every page


@pytest.mark.parametrize("page", PAGES, ids=page_ids(PAGES))
def test_excerpts_are_in_their_files(page):
    checked = 0
    for lang in ("python", "yaml"):
        for note, _, body in blocks(page, lang):
            if note == "settings written":
                continue  # compared with the set-up's output in test_tutorial.py
            assert note.startswith("from "), f"excerpt without its file:\n{body}"
            path = REPO / note.removeprefix("from ")
            assert path.is_file(), f"{note}: no such file"
            source = path.read_text()
            position = 0
            # "..." stands for lines left out; the other lines are verbatim
            for chunk in re.split(r"^\.\.\.\n", body, flags=re.MULTILINE):
                found = source.find(chunk, position)
                assert found >= 0, f"not in {note} (or out of order):\n{chunk}"
                position = found + len(chunk)
                checked += 1
    if page == README_PATH:
        assert checked > 0, "no excerpt found in the README: is the parser broken?"


@pytest.mark.parametrize("page", PAGES, ids=page_ids(PAGES))
def test_every_command_is_run_by_a_test(page):
    tests = "".join(
        path.read_text()
        for path in (REPO / "tests").glob("*.py")
        if path.name != "test_readme.py"
    )
    ci = (REPO / ".ci" / "run").read_text()
    unrun = []
    for note, _, body in blocks(page, "bash"):
        if note.startswith(UNRUN):
            continue
        if page == README_PATH and note == "quick start: run":  # run below
            continue
        for command in commands(body):
            # A job named in a command (task/identifier) is given by the test
            command = re.sub(r"mnist_xp\.learn\.\w+/[0-9a-f]{64}", "{job}", command)
            parts = command.split(" && ") if note == "quick start: tests" else [command]
            unrun += [part for part in parts if part not in tests and part not in ci]
    assert not unrun, f"commands no test runs: {unrun}"


@pytest.mark.parametrize("page", PAGES, ids=page_ids(PAGES))
def test_relative_links_lead_somewhere(page):
    broken = []
    for target in link_targets(page):
        if ABSOLUTE.match(target):
            continue
        path, _, anchor = target.partition("#")
        destination = (page.parent / path).resolve() if path else page
        if not destination.is_relative_to(REPO) or not destination.exists():
            broken.append(f"{target}: no such file in the repository")
        elif (
            anchor
            and destination.suffix == ".md"
            and anchor not in anchors(destination)
        ):
            where = destination.relative_to(REPO)
            broken.append(f"{target}: no heading #{anchor} in {where}")
    assert not broken, f"broken links in {page.name}: {broken}"


@pytest.mark.parametrize("page", DOCS, ids=page_ids(DOCS))
def test_guide_page_links_back_to_the_readme(page):
    targets = {
        (page.parent / t.partition("#")[0]).resolve() for t in link_targets(page)
    }
    assert README_PATH in targets, f"{page.name} has no link to the README"


def test_every_guide_page_is_linked_from_the_readme():
    linked = {
        (REPO / target.partition("#")[0]).resolve()
        for target in link_targets(README_PATH)
        if re.match(r"^(?:\./)?docs/[^/#]+\.md(?:#|$)", target)
    }
    unlinked = [page.name for page in DOCS if page not in linked]
    assert not unlinked, f"pages of docs/ the README does not link to: {unlinked}"


# --- The README's quick start, run as written


def test_quick_start(tmp_path):
    [(_, _, body)] = [
        b for b in blocks(README_PATH, "bash") if b.note == "quick start: run"
    ]
    [command] = commands(body)
    sandbox = Sandbox(tmp_path, mnist=REAL_MNIST if REAL_MNIST.exists() else SAMPLE)
    # As on a fresh machine: the system's python3, not the tests' environment
    bin_folder = str(REPO / ".venv" / "bin")
    sandbox.env["PATH"] = ":".join(
        p for p in sandbox.env["PATH"].split(":") if p != bin_folder
    )
    process = sandbox.run(command, timeout=1800)
    assert "accuracy" in process.stdout
    [results] = sandbox.results()
    assert results["accuracy"] > 0.5
