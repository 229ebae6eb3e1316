"""The README is part of the product: its excerpts must be in the files they
name, and each command it shows must be run by a test (or by CI)."""

import re

from conftest import REAL_MNIST, REPO, SAMPLE, Sandbox

README = (REPO / "README.md").read_text()

# A fenced block with the HTML comment just before it, if any
BLOCK = re.compile(
    r"(?:<!-- (?P<note>[^>]*) -->\n)?```(?P<lang>\w+)\n(?P<body>.*?)```", re.DOTALL
)
UNRUN = ("needs a cluster", "needs a terminal", "needs a browser")


def blocks(lang: str):
    for match in BLOCK.finditer(README):
        if match["lang"] == lang:
            yield match["note"] or "", match["body"]


def commands(body: str) -> list[str]:
    lines = (line.strip() for line in body.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def test_excerpts_are_in_their_files():
    checked = 0
    for lang in ("python", "yaml"):
        for note, body in blocks(lang):
            assert note.startswith("from "), f"excerpt without its file:\n{body}"
            source = (REPO / note.removeprefix("from ")).read_text()
            position = 0
            # "..." stands for lines left out; the other lines are verbatim
            for chunk in re.split(r"^\.\.\.\n", body, flags=re.MULTILINE):
                found = source.find(chunk, position)
                assert found >= 0, f"not in {note} (or out of order):\n{chunk}"
                position = found + len(chunk)
                checked += 1
    assert checked > 10


def test_every_command_is_run_by_a_test():
    tests = "".join(
        path.read_text()
        for path in (REPO / "tests").glob("*.py")
        if path.name != "test_readme.py"
    )
    ci = (REPO / ".ci" / "run").read_text()
    unrun = []
    for note, body in blocks("bash"):
        if note.startswith(UNRUN) or note == "quick start: run":  # the latter: below
            continue
        for command in commands(body):
            # A job named in a command (task/identifier) is given by the test
            command = re.sub(r"mnist_xp\.learn\.\w+/[0-9a-f]{64}", "{job}", command)
            parts = command.split(" && ") if note == "quick start: tests" else [command]
            unrun += [part for part in parts if part not in tests and part not in ci]
    assert not unrun, f"commands no test runs: {unrun}"


def test_quick_start(tmp_path):
    [(_, body)] = [b for b in blocks("bash") if b[0] == "quick start: run"]
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
