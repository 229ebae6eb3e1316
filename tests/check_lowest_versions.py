"""Installs the lowest versions that pyproject.toml admits, and runs the fast
tests with them: a lower bound that no longer works fails here.

    python tests/check_lowest_versions.py [--python PYTHON] [--keep] [-- PYTEST_ARGS...]

Every dependency of pyproject.toml (its ``dependencies`` and its ``dev``
extra) must have a lower bound ``>=X``. In a fresh virtual environment under
the temporary folder, ``pip install -r requirements.txt`` runs as in the
README, constrained to ``==X`` for each of them (the packages they need get
their newest versions, as pip gives them), then the script checks the
installed versions and ``pip check``, and runs pytest (by default on
:data:`FAST_TESTS`; PYTEST_ARGS replace them). The environment is removed at
the end, unless ``--keep``. Exit status: pytest's, or 1 when the installation
fails.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

FAST_TESTS = [
    "tests/test_install.py",
    "tests/test_identifiers.py",
    "tests/test_experiment.py",
    "tests/test_analyze.py",
    # The real MNIST (when ../shared has it) takes minutes: the sample only
    "-k",
    "not real_mnist",
]
"""What runs by default (3 to 6 minutes on two shared cores): the installation, identifiers, the
experiment end to end and the analysis (pandas, matplotlib, tensorboard)"""


def lower_bounds() -> dict[str, str]:
    """``{name: X}`` for each requirement ``name>=X,...`` of pyproject.toml

    :raises ValueError: naming a requirement without a lower bound
    """
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + project["optional-dependencies"]["dev"]
    bounds = {}
    for requirement in requirements:
        name = re.match(r"[A-Za-z0-9._-]+", requirement).group()
        lowest = re.search(r">=\s*([^,;\s]+)", requirement)
        if lowest is None:
            raise ValueError(
                f"pyproject.toml: {requirement!r} has no lower bound (>=X)"
            )
        bounds[name] = lowest.group(1)
    return bounds


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def step(what: str, command: list[str], check=False, env=None):
    """Runs a command in the repository, printing what and how long; returns
    the completed process"""
    print(f"--- {what}: {' '.join(command)}", flush=True)
    start = time.monotonic()
    process = subprocess.run(command, cwd=REPO, check=check, env=env)
    print(f"--- {what}: {time.monotonic() - start:.0f} s", flush=True)
    return process


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--python", default=sys.executable, help="interpreter")
    parser.add_argument("--keep", action="store_true", help="keep the environment")
    args, pytest_args = parser.parse_known_args()
    if pytest_args[:1] == ["--"]:
        pytest_args = pytest_args[1:]

    try:
        bounds = lower_bounds()
    except ValueError as error:
        sys.exit(str(error))
    venv = Path(tempfile.mkdtemp(prefix="mnist-xp-lowest-"))
    python = venv / "bin" / "python"
    constraints = venv / "lowest.txt"
    try:
        step("environment", [args.python, "-m", "venv", str(venv)], check=True)
        constraints.write_text("".join(f"{n}=={v}\n" for n, v in bounds.items()))
        print(constraints.read_text(), end="")
        install = [str(python), "-m", "pip", "install", "-c", str(constraints)]
        if step("install", [*install, "-r", "requirements.txt"]).returncode:
            print("The lowest versions cannot be installed together")
            return 1
        listing = subprocess.run(
            [str(python), "-m", "pip", "list", "--format=json"],
            capture_output=True,
            text=True,
            check=True,
        )
        installed = {
            canonical(p["name"]): p["version"] for p in json.loads(listing.stdout)
        }
        wrong = {
            name: installed.get(canonical(name))
            for name, version in bounds.items()
            if installed.get(canonical(name)) != version
        }
        if wrong:
            print(f"Installed other versions than the lower bounds: {wrong}")
            return 1
        if step("pip check", [str(python), "-m", "pip", "check"]).returncode:
            return 1
        env = dict(os.environ, VIRTUAL_ENV=str(venv))
        env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"
        tests = pytest_args or FAST_TESTS
        command = [str(python), "-m", "pytest", "-p", "no:cacheprovider", *tests]
        return step("tests", command, env=env).returncode
    finally:
        if args.keep:
            print(f"Kept {venv}")
        else:
            shutil.rmtree(venv, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
