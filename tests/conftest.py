"""What the tests share: a sandboxed HOME in which the real ``experimaestro``
command runs, and the MNIST files to use (the real ones when ``../shared`` has
them, else the small sample shipped in ``tests/data``)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SAMPLE = REPO / "tests" / "data" / "mnist-sample"
REAL_MNIST = REPO.parent / "shared" / "data" / "mnist"
SAMPLE_YAML = REPO / "tests" / "sample.yaml"

needs_real_mnist = pytest.mark.skipif(
    not (REAL_MNIST / "train-images-idx3-ubyte.gz").exists(),
    reason=f"the real MNIST is not in {REAL_MNIST}",
)


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "slurm: needs the test SLURM cluster (tests/slurm/start-cluster.sh)"
    )


class Sandbox:
    """A fresh HOME set up with ``python -m mnist_xp.configure``, its workspace
    and the environment that commands run with"""

    def __init__(self, root: Path, mnist: Path = SAMPLE):
        self.home = root / "home"
        self.workspace = root / "workspace"
        self.home.mkdir(parents=True, exist_ok=True)
        self.env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("MNIST_XP_", "DATAMAESTRO", "SLURM_", "SBATCH_"))
        }
        self.env.update(
            HOME=str(self.home),
            PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}",
            MNIST_XP_MIRROR=str(mnist),
            # On a machine where SLURM answers, only tests marked slurm use it
            MNIST_XP_LAUNCHER="local",
            PYTHONUNBUFFERED="1",
        )
        if mnist == SAMPLE:
            self.env["MNIST_XP_MD5SUMS"] = str(SAMPLE / "MD5SUMS")
        self.run(
            [
                sys.executable,
                "-m",
                "mnist_xp.configure",
                "--workspace",
                str(self.workspace),
            ]
        )

    def run(self, command, *, check=True, timeout=900, cwd=REPO, **kwargs):
        """Runs a command (a list, or a string for bash) and returns the
        completed process; output is captured as text"""
        if isinstance(command, str):
            command = ["bash", "-c", command]
        process = subprocess.run(
            command,
            cwd=cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            **kwargs,
        )
        if check and process.returncode != 0:
            raise AssertionError(
                f"{command} exited with {process.returncode}\n"
                f"--- stdout\n{process.stdout[-5000:]}\n--- stderr\n{process.stderr[-5000:]}"
            )
        return process

    def experiment(self, yaml: Path | str, *args, check=True):
        """``experimaestro run-experiment YAML ARGS...``"""
        return self.run(
            [str(BIN / "experimaestro"), "run-experiment", str(yaml), *args],
            check=check,
        )

    def jobs(self, task: str) -> list[Path]:
        """Job folders of a task (``learn`` or ``evaluate``)"""
        return sorted((self.workspace / "jobs" / f"mnist_xp.learn.{task}").glob("*"))

    def results(self) -> list[dict]:
        """The contents of every results file of the Evaluate jobs (the folder
        of an Evaluate that never ran, its Learn having failed, has none)"""
        paths = (job / "results.json" for job in self.jobs("evaluate"))
        return [json.loads(path.read_text()) for path in paths if path.exists()]


@pytest.fixture
def sandbox(tmp_path) -> Sandbox:
    return Sandbox(tmp_path)
