"""The outputs that README.md and docs/*.md show, made by running their
commands for real.

A page shows an output as a ```text block (or a ```json one, for a file a
command wrote) with ``<!-- output: NAME -->`` on the line just before it. NAME is registered with :func:`output` by one of the
``tests/outputs_*.py`` modules (one per page): a function that runs the
commands in fresh sandboxes and returns what they printed, tidied by
:meth:`Runs.tidy` (the sandbox's paths, the host name) so that it reads the
same on every machine.

``python tests/write_outputs.py`` writes the fresh outputs into the pages;
``tests/test_shown_outputs.py`` compares each page with a fresh run: the same
words, the figures within :data:`TOLERANCE`, the :data:`VOLATILE` parts
(dates, run names, timings) left out.
"""

import importlib
import math
import os
import re
import shutil
import socket
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from conftest import REAL_MNIST, REPO, SAMPLE, Sandbox

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
MODULES = (
    "outputs_readme",
    "outputs_monitoring",
    "outputs_launchers",
    "outputs_troubleshooting",
)
"""The modules that register the outputs (one per page that shows any: a
new one goes here)"""

FULL_MNIST = "the full MNIST (../shared/data/mnist)"
SLURM = "the test SLURM cluster (tests/slurm/start-cluster.sh)"
ROOT = "root (to mount a small tmpfs)"
SSHD = "sshd and tmux (apt-get install openssh-server tmux)"

TOLERANCE = {"rel_tol": 0.002, "abs_tol": 0.002}
"""How far a figure of a fresh run may be from the one shown (math.isclose)"""

VOLATILE = (
    r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?",  # dates and times
    r"\d\d-\d\d-\d\d \d\d:\d\d:\d\d",  # the same, as datamaestro writes them
    r"\b\d\d:\d\d:\d\d\b",  # times
    r"\b\d{8}_\d{6}\b",  # the name of a run of an experiment
)
"""What differs from run to run in every output (regular expressions)"""


class Output(NamedTuple):
    make: Callable[["Runs"], str]
    """Runs the commands and returns what they printed"""

    needs: tuple[str, ...]
    """What must be there to make it (FULL_MNIST, SLURM, ROOT, SSHD)"""

    volatile: tuple[str, ...]
    """What differs from run to run in this output, besides VOLATILE"""


OUTPUTS: dict[str, Output] = {}


def output(name: str, *, needs=(), volatile=()):
    """Registers the decorated function as the maker of the output NAME"""

    def register(make):
        assert name not in OUTPUTS, f"two outputs named {name}"
        OUTPUTS[name] = Output(make, tuple(needs), tuple(volatile))
        return make

    return register


def all_outputs() -> dict[str, Output]:
    for module in MODULES:
        importlib.import_module(module)
    return OUTPUTS


def missing(needs: tuple[str, ...]) -> list[str]:
    """What an output needs and this machine lacks"""
    lacking = []
    if FULL_MNIST in needs and not REAL_MNIST.exists():
        lacking.append(FULL_MNIST)
    if ROOT in needs and os.geteuid() != 0:
        lacking.append(ROOT)
    if SSHD in needs and not (Path("/usr/sbin/sshd").exists() and shutil.which("tmux")):
        lacking.append(SSHD)
    if SLURM in needs:
        from test_slurm import cluster_environment, controller_answers

        if not controller_answers(cluster_environment()["SLURM_CONF"])[0]:
            lacking.append(SLURM)
    return lacking


# --- Running the commands


class Runs:
    """Fresh sandboxes under ``root``, and the scenarios already run (an
    output that needs what another one ran asks :meth:`once`)"""

    def __init__(self, root: Path):
        self.root = root
        self.sandboxes: list[Sandbox] = []
        self.scenarios: dict[Callable, object] = {}

    def sandbox(self, name: str, mnist: Path = SAMPLE) -> Sandbox:
        """A fresh sandbox (HOME and workspace set up) for one scenario"""
        folder = self.root / name
        assert not folder.exists(), f"two sandboxes named {name}"
        sandbox = Sandbox(folder, mnist=mnist)
        self.sandboxes.append(sandbox)
        return sandbox

    def once(self, scenario: Callable[["Runs"], object]):
        """What ``scenario(self)`` returns, run the first time only"""
        if scenario not in self.scenarios:
            self.scenarios[scenario] = scenario(self)
        return self.scenarios[scenario]

    def tidy(self, text: str) -> str:
        """The text with the paths of the sandboxes and of this repository,
        and the host name, as on the pages' machine"""
        for sandbox in self.sandboxes:
            root = sandbox.home.parent
            text = text.replace(str(sandbox.workspace), "/home/me/experiments/mnist-xp")
            text = text.replace(str(sandbox.home), "/home/me")
            text = text.replace(str(root), "/tmp/me")
        text = text.replace(str(REPO), "/home/me/mnist-xp")
        text = text.replace(str(REAL_MNIST), "/home/me/mnist")
        host = socket.gethostname()
        if host in ("localhost", "vm"):  # ("localhost" is in outputs as such)
            return text
        return re.sub(rf"\b{re.escape(host)}\b", "vm", text)


def lines_with(text: str, *patterns: str) -> str:
    """The lines of ``text`` that match one of the regular expressions"""
    return "".join(
        line + "\n"
        for line in text.splitlines()
        if any(re.search(pattern, line) for pattern in patterns)
    )


# --- Comparing a page with a fresh run

FIGURE = re.compile(r"\d+\.\d+(?:e[-+]?\d+)?")
TOKEN = re.compile(rf"{FIGURE.pattern}|\S")
"""A figure, or any other character but spaces (column widths change with
the figures)"""


def masked(text: str, volatile: tuple[str, ...]) -> str:
    for pattern in (*VOLATILE, *volatile):
        text = re.sub(pattern, "…", text)
    return text


def difference(shown: str, fresh: str, volatile: tuple[str, ...] = ()) -> str:
    """Where the fresh output departs from the one shown ("" if nowhere): a
    figure further than TOLERANCE, or anything else not the same"""
    shown_lines = masked(shown, volatile).strip("\n").splitlines()
    fresh_lines = masked(fresh, volatile).strip("\n").splitlines()
    for number, (was, now) in enumerate(zip(shown_lines, fresh_lines), 1):
        old, new = TOKEN.findall(was), TOKEN.findall(now)
        same = len(old) == len(new) and all(
            a == b
            or (
                FIGURE.fullmatch(a)
                and FIGURE.fullmatch(b)
                and math.isclose(float(a), float(b), **TOLERANCE)
            )
            for a, b in zip(old, new)
        )
        if not same:
            return f"line {number}:\n  shown: {was}\n  fresh: {now}"
    if len(shown_lines) != len(fresh_lines):
        return (
            f"{len(shown_lines)} lines shown, {len(fresh_lines)} in a fresh run:\n"
            + "\n".join(
                fresh_lines[len(shown_lines) :] or shown_lines[len(fresh_lines) :]
            )
        )
    return ""


# --- The blocks of the pages

LANGS = ("text", "json")
"""The blocks that show outputs (a ```json block: a file a command wrote)"""

BLOCK = re.compile(
    r"^(?P<indent> *)<!-- output: (?P<name>[\w-]+) -->\n"
    rf"(?P=indent)```(?P<lang>{'|'.join(LANGS)})\n(?P<body>.*?)^(?P=indent)```$",
    re.MULTILINE | re.DOTALL,
)


def shown(page: Path) -> dict[str, str]:
    """The outputs a page shows, by name"""
    found = {}
    for match in BLOCK.finditer(page.read_text()):
        indent = len(match["indent"])
        body = re.sub(rf"^ {{0,{indent}}}", "", match["body"], flags=re.MULTILINE)
        assert match["name"] not in found, f"{page.name} shows {match['name']} twice"
        found[match["name"]] = body
    return found


def write(page: Path, fresh: dict[str, str]) -> list[str]:
    """Writes the fresh outputs into the page's blocks of the same names; the
    names written"""
    written = []

    def replace(match):
        if match["name"] not in fresh:
            return match[0]
        written.append(match["name"])
        indent = match["indent"]
        body = "".join(
            f"{indent}{line}\n" if line else "\n"
            for line in fresh[match["name"]].strip("\n").splitlines()
        )
        note = f"{indent}<!-- output: {match['name']} -->"
        return f"{note}\n{indent}```{match['lang']}\n{body}{indent}```"

    page.write_text(BLOCK.sub(replace, page.read_text()))
    return written
