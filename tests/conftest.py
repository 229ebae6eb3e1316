"""What the tests share: a sandboxed HOME in which the real ``experimaestro``
command runs, and the MNIST files to use (the real ones when ``../shared`` has
them, else the small sample shipped in ``tests/data``)."""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SAMPLE = REPO / "tests" / "data" / "mnist-sample"
REAL_MNIST = REPO.parent / "shared" / "data" / "mnist"
SAMPLE_YAML = REPO / "tests" / "sample.yaml"
HOOKS = REPO / "tests" / "hooks"

# Started in the background (`python -m pytest &`, some CI runners), pytest
# inherits Ctrl+C (SIGINT) ignored, and so would every command it starts: the
# tests that stop one with Ctrl+C need SIGINT back (tests/test_background.py)
signal.signal(signal.SIGINT, signal.default_int_handler)

needs_real_mnist = pytest.mark.skipif(
    not (REAL_MNIST / "train-images-idx3-ubyte.gz").exists(),
    reason=f"the real MNIST is not in {REAL_MNIST}",
)


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "slurm: needs the test SLURM cluster (tests/slurm/start-cluster.sh)"
    )


class Sandbox:
    """A fresh HOME set up with ``python -m xpkit.configure``, its workspace
    and the environment that commands run with"""

    def __init__(self, root: Path, mnist: Path = SAMPLE):
        self.home = root / "home"
        self.workspace = root / "workspace"
        self.experiment_log = root / "experiment.log"
        """Output of the experiment started by :meth:`background_experiment`"""
        self.home.mkdir(parents=True, exist_ok=True)
        self.env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(
                ("MNIST_XP_", "XPKIT_", "DATAMAESTRO", "SLURM_", "SBATCH_")
            )
        }
        self.env.update(
            HOME=str(self.home),
            PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}",
            MNIST_XP_MIRROR=str(mnist),
            # On a machine where SLURM answers, only tests marked slurm use it
            XPKIT_LAUNCHER="local",
            PYTHONUNBUFFERED="1",
        )
        if mnist == SAMPLE:
            # The sample's checksums replace the official ones (tests/hooks)
            self.env["MNIST_XP_MD5SUMS"] = str(SAMPLE / "MD5SUMS")
            paths = [str(HOOKS), *filter(None, [os.environ.get("PYTHONPATH")])]
            self.env["PYTHONPATH"] = os.pathsep.join(paths)
        self.run(
            [
                sys.executable,
                "-m",
                "xpkit.configure",
                "--workspace",
                str(self.workspace),
                "--id",
                "mnist-xp",
                "--experiments",
                "MNIST_*",
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

    @contextlib.contextmanager
    def background_experiment(self, yaml: Path | str):
        """Starts ``experimaestro run-experiment YAML`` without waiting for it,
        and yields its process (killed on leaving the block if still running);
        its output and errors go to :attr:`experiment_log`"""
        with self.experiment_log.open("w") as log:
            process = subprocess.Popen(
                [str(BIN / "experimaestro"), "run-experiment", str(yaml)],
                cwd=REPO,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            yield process
        finally:
            if process.poll() is None:
                process.kill()
            process.wait()

    def jobs(self, task: str) -> list[Path]:
        """Job folders of a task (``learn`` or ``evaluate``)"""
        return sorted((self.workspace / "jobs" / f"mnist_xp.learn.{task}").glob("*"))

    def results(self) -> list[dict]:
        """The contents of every results file of the Evaluate jobs (the folder
        of an Evaluate that never ran, its Learn having failed, has none)"""
        paths = (job / "results.json" for job in self.jobs("evaluate"))
        return [json.loads(path.read_text()) for path in paths if path.exists()]


def wait_for(predicate, what: str, process=None, timeout: float = 300):
    """Calls ``predicate`` every 0.2 s until it returns something true, and
    returns that

    :param process: the experiment (a ``Popen``): fails if it ends first
    :raises AssertionError: after ``timeout`` seconds, or when ``process`` ends
    """
    deadline = time.monotonic() + timeout
    while not (result := predicate()):
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the experiment ended before {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout} s for {what}")
        time.sleep(0.2)
    return result


def kill_at_first_checkpoint(sandbox: Sandbox, experiment, signum: int) -> Path:
    """Once the learning job of a running experiment (``experiment``: its
    process) has written its first checkpoint, sends ``signum`` to the job's
    process; returns the job's folder"""
    wait_for(
        lambda: list(sandbox.workspace.glob("jobs/*.learn/*/checkpoint.pth")),
        "a first checkpoint",
        experiment,
    )
    [job] = sandbox.jobs("learn")
    os.kill(json.loads((job / "learn.pid").read_text())["pid"], signum)
    return job


@pytest.fixture
def sandbox(tmp_path) -> Sandbox:
    return Sandbox(tmp_path)


@contextlib.contextmanager
def started(sandbox: Sandbox, command: str, log: Path, cwd=REPO):
    """Runs ``command`` (bash) in the background in a session of its own,
    output in ``log``; yields its process. On leaving, whatever of its
    session still runs is killed"""
    with log.open("w") as output:
        process = subprocess.Popen(
            ["bash", "-c", f"exec {command}"],
            cwd=cwd,
            env=sandbox.env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now"""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def processes_of(sandbox: Sandbox) -> list[psutil.Process]:
    """The processes that run with the sandbox's HOME: whatever a test started
    there (tmux and what runs in it, servers, Chromium, experiments, jobs)"""
    found = []
    for process in psutil.process_iter(["environ"]):
        if (process.info["environ"] or {}).get("HOME") == str(sandbox.home):
            found.append(process)
    return found


def stop(processes: list[psutil.Process]) -> list[str]:
    """Stops processes (SIGTERM, then SIGKILL after 10 s), and returns their
    command lines"""
    stopped = []
    for process in processes:
        with contextlib.suppress(psutil.Error):
            stopped.append(" ".join(process.cmdline()))
            process.terminate()
    _, alive = psutil.wait_procs(processes, timeout=10)
    for process in alive:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(alive, timeout=10)
    return stopped
