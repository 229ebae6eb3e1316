"""The tests also pass when pytest starts in the background (``python -m
pytest &``, some CI runners): such a pytest inherits Ctrl+C (SIGINT) ignored,
and the commands that the tests stop with Ctrl+C must not inherit it."""

import signal
import subprocess
import sys

from conftest import REPO

CHILD = "import signal; print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)"


def test_commands_get_ctrl_c():
    child = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, check=False
    )
    assert child.stdout.strip() == "True", child.stderr


def test_commands_get_ctrl_c_with_pytest_in_the_background():
    process = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", f"{__file__}::test_commands_get_ctrl_c"],
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert process.returncode == 0, process.stdout[-3000:]
