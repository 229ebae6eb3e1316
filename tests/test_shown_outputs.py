"""The outputs the pages show are those of a fresh run (shown_outputs.py):
every ```text or ```json block is one of them, and each agrees with its commands run
again now, through the script that writes them."""

import os
import re
import subprocess

import pytest
from conftest import BIN, REPO
from shown_outputs import LANGS, MODULES, PAGES, all_outputs, missing, shown
from test_readme import split_page

OUTPUTS = all_outputs()
NOT_OUTPUTS = ("workspace tree",)
"""Notes of the ```text blocks that are not outputs (another test checks each)"""

CHECK = "python tests/write_outputs.py --check"


def test_every_output_block_is_named():
    used = []
    for page in PAGES:
        blocks = [b for b in split_page(page.read_text())[0] if b.lang in LANGS]
        for block in blocks:
            if block.note in NOT_OUTPUTS:
                continue
            if not block.note.startswith("output: "):
                pytest.fail(
                    f"{page.name}: a ```{block.lang} block without <!-- output: NAME -->"
                    " (register NAME in tests/outputs_<page>.py, see"
                    f" docs/development.md):\n{block.body}"
                )
            name = block.note.removeprefix("output: ")
            if name not in OUTPUTS:
                pytest.fail(f"{page.name}: no output named {name} in {MODULES}")
            used.append(name)
        outputs = len(blocks) - sum(block.note in NOT_OUTPUTS for block in blocks)
        assert len(shown(page)) == outputs, f"{page.name}: a note the script misses"
    assert sorted(used) == sorted(OUTPUTS), "each output is shown once"


def test_the_pages_agree_with_a_fresh_run():
    """``python tests/write_outputs.py --check``: every output this machine
    can make is made again, and agrees with its page"""
    environment = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    process = subprocess.run(
        ["bash", "-c", CHECK],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    report = process.stdout + process.stderr[-5000:]
    assert process.returncode == 0, report
    made = set(re.findall(r"^([\w-]+): made$", process.stdout, re.MULTILINE))
    for name, output in OUTPUTS.items():
        if lacking := missing(output.needs):
            assert f"{name}: not made, needs {' and '.join(lacking)}" in report
        else:
            assert name in made, report
