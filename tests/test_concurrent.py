"""Two experiments of one workspace started together: with experimaestro 2.7
they ran a shared job twice, or hung for good (issue #17); the second now
waits, in one line, for the first to end (xpkit/workspace_lock.py)."""

import signal
from pathlib import Path

from conftest import REPO, SAMPLE_YAML, processes_of, started, stop, wait_for

LONG_YAML = REPO / "tests" / "long.yaml"

FIRST = f"""imports: [{SAMPLE_YAML}]
id: MNIST_first
n_layers: [1, 2]
"""
"""Two grid points, seed 0"""

SECOND = f"""imports: [{SAMPLE_YAML}]
id: MNIST_second
n_layers: [1, 2]
seed: [0, 1]
"""
"""The same points with two seeds: the seed-0 jobs are those of FIRST"""

WAITING = "Waiting for experiment {holder} ("
"""The start of the line of an experiment that waits for ``holder``"""


def write_yaml(folder: Path, name: str, text: str) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(text)
    return path


def job_folders(workspace: Path) -> list[Path]:
    return sorted(workspace.glob("jobs/mnist_xp.learn.*/*"))


def test_experiments_sharing_jobs_run_each_job_once(sandbox, tmp_path):
    first = write_yaml(tmp_path, "first", FIRST)
    second = write_yaml(tmp_path, "second", SECOND)
    logs = {
        "MNIST_first": tmp_path / "first.log",
        "MNIST_second": tmp_path / "second.log",
    }
    command = "experimaestro run-experiment {}"
    try:
        with (
            started(sandbox, command.format(first), logs["MNIST_first"]) as a,
            started(sandbox, command.format(second), logs["MNIST_second"]) as b,
        ):
            # Without xpkit/workspace_lock.py, they could hang here for good
            wait_for(
                lambda: a.poll() is not None and b.poll() is not None,
                "both experiments to end",
                timeout=420,
            )
            assert a.returncode == 0, logs["MNIST_first"].read_text()
            assert b.returncode == 0, logs["MNIST_second"].read_text()
    finally:
        stop(processes_of(sandbox))  # jobs of a hung run, if any
    outputs = {xp: log.read_text() for xp, log in logs.items()}

    # 2 points x 2 seeds, a Learn and an Evaluate each: 8 jobs, each started once
    jobs = job_folders(sandbox.workspace)
    assert len(jobs) == 8, jobs
    starts = sum(output.count("xpm: Process started") for output in outputs.values())
    assert starts == len(jobs), outputs
    for job in jobs:
        assert list(job.glob("*.done")), f"{job} did not end DONE"
        assert not list(job.glob("*.failed")), f"{job} has a .failed file"

    # Whichever took the workspace first, the other said once that it waited
    waited = [
        xp
        for xp, output in outputs.items()
        if output.count(WAITING.format(holder=other(xp))) == 1
    ]
    assert len(waited) == 1, outputs
    assert "experimaestro 2.7" in outputs[waited[0]]


def other(xp: str) -> str:
    return "MNIST_second" if xp == "MNIST_first" else "MNIST_first"


def test_ctrl_c_while_waiting_ends_in_one_line(sandbox, tmp_path):
    """The README's MNIST_train, for minutes (tests/long.yaml), holds the
    workspace; the sample experiment waits, and Ctrl+C ends it"""
    try:
        with started(
            sandbox, f"experimaestro run-experiment {LONG_YAML}", tmp_path / "long.log"
        ) as long:
            wait_for(
                lambda: list(sandbox.workspace.glob("jobs/*.learn/*/learn.pid")),
                "the long experiment's job",
                long,
            )
            log = tmp_path / "sample.log"
            command = f"experimaestro run-experiment {SAMPLE_YAML}"
            with started(sandbox, command, log) as waiting:
                wait_for(
                    lambda: WAITING.format(holder="MNIST_train") in log.read_text(),
                    "the waiting line",
                    waiting,
                )
                waiting.send_signal(signal.SIGINT)
                assert waiting.wait(timeout=60) == 1
    finally:
        stop(processes_of(sandbox))
    output = log.read_text()
    assert "Traceback" not in output, output
    assert output.count("stopped (Ctrl+C) while waiting for MNIST_train") == 1, output
    # Nothing of the sample experiment was submitted
    assert "Submitting job" not in output, output
