"""What experimaestro alone would show as a traceback, or say twice, through
the real ``experimaestro run-experiment``: Ctrl+C while the jobs run, and
the lines a run prints about TensorBoard and SLURM."""

import json
import os
import signal

import psutil
from conftest import BIN, REPO, started, wait_for

LONG_YAML = REPO / "tests" / "long.yaml"
"""One grid point that learns for tens of seconds"""


def test_ctrl_c_says_the_jobs_go_on_and_a_rerun_follows_them(sandbox, tmp_path):
    log = tmp_path / "experiment.log"
    command = f"{BIN / 'experimaestro'} run-experiment {LONG_YAML}"
    with started(sandbox, command, log) as experiment:
        wait_for(
            lambda: list(sandbox.workspace.glob("jobs/*.learn/*/learn.pid")),
            "the learning job to start",
            experiment,
        )
        [job] = sandbox.jobs("learn")
        pid = json.loads((job / "learn.pid").read_text())["pid"]
        # A terminal's Ctrl+C: SIGINT to the whole foreground process group
        os.killpg(experiment.pid, signal.SIGINT)
        assert experiment.wait(timeout=120) == 1
    output = log.read_text()
    assert "Traceback" not in output, output[-3000:]
    assert output.count("Experiment failed: Stopped (Ctrl+C):") == 1, output[-3000:]
    assert (
        "Stopped (Ctrl+C): 1 started job goes on by itself, 1 waiting job will"
        " not start."
        " Run the same command again: it follows the started jobs to their end"
        " and starts the others" in output
    )
    assert psutil.pid_exists(pid), "the learning job was stopped too"
    assert not (job / "learn.done").exists()

    # The rerun follows the same process to its end, then evaluates
    rerun = sandbox.experiment(LONG_YAML)
    assert f"Got process PsUtil(psutil.Process(pid={pid}," in rerun.stderr
    assert (job / "learn.done").exists()
    assert "Resuming" not in (job / "learn.err").read_text()
    assert sandbox.results()[0]["n_images"] == 1000
