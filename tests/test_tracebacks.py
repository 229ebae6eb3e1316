"""What experimaestro alone would show as a traceback, or say twice, through
the real ``experimaestro run-experiment``: Ctrl+C while the jobs run, and
the lines a run prints about TensorBoard and SLURM."""

import json
import os
import shutil
import signal
from pathlib import Path

import psutil
import pytest
from conftest import BIN, REPO, SAMPLE_YAML, Sandbox, started, wait_for
from test_failures import FAILING_YAML

LONG_YAML = REPO / "tests" / "long.yaml"
"""One grid point that learns for tens of seconds"""


def ctrl_c_while_learning(sandbox: Sandbox, log: Path) -> int:
    """Runs tests/long.yaml (output in ``log``) and, once its learning job has
    started, presses Ctrl+C as a terminal does (SIGINT to the whole foreground
    process group); the experiment's exit status"""
    command = f"{BIN / 'experimaestro'} run-experiment {LONG_YAML}"
    with started(sandbox, command, log) as experiment:
        wait_for(
            lambda: list(sandbox.workspace.glob("jobs/*.learn/*/learn.pid")),
            "the learning job to start",
            experiment,
        )
        os.killpg(experiment.pid, signal.SIGINT)
        return experiment.wait(timeout=120)


def test_ctrl_c_says_the_jobs_go_on_and_a_rerun_follows_them(sandbox, tmp_path):
    log = tmp_path / "experiment.log"
    assert ctrl_c_while_learning(sandbox, log) == 1
    [job] = sandbox.jobs("learn")
    pid = json.loads((job / "learn.pid").read_text())["pid"]
    output = log.read_text()
    assert "Traceback" not in output, output[-3000:]
    assert output.count("Experiment failed: Stopped (Ctrl+C):") == 1, output[-3000:]
    assert (
        "Stopped (Ctrl+C): 1 started job goes on by itself, 1 waiting job will"
        " not start."
        " Run the same command again (the same -c options too): it follows the"
        " started jobs to their end"
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


def test_one_tensorboard_hint_a_run(sandbox):
    process = sandbox.experiment(SAMPLE_YAML)
    output = process.stdout + process.stderr
    [hint] = [line for line in output.splitlines() if "tensorboard --logdir" in line]
    assert hint.startswith("TensorBoard (1 run): tensorboard --logdir ")
    assert "You can monitor learning" not in output


def test_no_tensorboard_line_when_every_point_failed(sandbox, tmp_path):
    yaml = tmp_path / "all_failing.yaml"
    yaml.write_text(f"imports: [{FAILING_YAML}]\nhidden_dim: [10000000000000]\n")
    process = sandbox.experiment(yaml, check=False)
    assert process.returncode == 1
    assert "1 of 1 grid points failed:" in process.stderr
    assert "TensorBoard" not in process.stdout + process.stderr


@pytest.mark.skipif(not shutil.which("scontrol"), reason="no SLURM client here")
def test_one_short_line_when_no_slurm_controller_answers(sandbox, tmp_path):
    """The SLURM client installed, no cluster (no SLURM_CONF; a cluster named
    in /etc/slurm would answer, and the jobs go there: skipped)"""
    sandbox.env["XPKIT_LAUNCHER"] = "auto"
    process = sandbox.experiment(SAMPLE_YAML, "--run-mode", "dry_run")
    if "Jobs go to SLURM" in process.stderr:
        pytest.skip("a SLURM controller answers without SLURM_CONF")
    [line] = [line for line in process.stderr.splitlines() if "SLURM" in line]
    assert "No SLURM controller answered (scontrol ping: " in line
    assert "the jobs run on this machine" in line
    assert len(line) < 250, line
