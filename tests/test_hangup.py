"""A dropped connection to the machine that runs the experiment (an SSH
session to a cluster's login node): the experiment process gets SIGHUP and
dies, its jobs go on, and the same command run again re-attaches to them
(docs/launchers.md, "On a login node: keep the experiment running when the
connection drops").

- on SLURM, the job is SLURM's: it keeps running, and the rerun follows it
  with sacct instead of submitting it again;
- with the local launcher, experimaestro starts each job in a session of its
  own: the hangup does not reach it, and the rerun waits for that process;
- in tmux, or under nohup, the experiment itself keeps running.

A connection that drops is a pseudo-terminal whose other end closes: the tmux
test opens one (``pty.fork``) and closes it, the others send SIGHUP to the
experiment process, as the kernel and the login shell do then.
"""

import contextlib
import json
import os
import pty
import re
import shutil
import signal
import struct
import termios
import threading
import time
from fcntl import ioctl

import psutil
import pytest
from conftest import BIN, REPO, Sandbox, processes_of, started, stop, wait_for
from test_slurm import (
    cluster,  # noqa: F401 (the fixture, for the SLURM case)
    slurm_jobs,
    slurm_sandbox,
)

from xpkit.tensorboard_files import read_scalars

# The commands, as docs/launchers.md gives them
RUN_LOCAL = "experimaestro run-experiment debug.yaml"
RUN_SLURM = "XPKIT_LAUNCHER=slurm experimaestro run-experiment debug.yaml"
TMUX_NEW = "tmux new -s mnist"
ACTIVATE = ". .venv/bin/activate"
TMUX_ATTACH = "tmux attach -t mnist"
NOHUP = "nohup experimaestro run-experiment debug.yaml > ~/debug.log 2>&1 &"
LIST = "experimaestro jobs --workspace mnist-xp list --tags --experiment MNIST_debug"

LONGER = " -c epochs=100"
"""debug.yaml's Learn job, made to train for 20 s or so on the sample: still
running when the connection drops, and when the experiment is run again"""
TOTAL_STEPS = 100 * 62  # 4,000 training images / 64 per batch, 100 epochs


def longer(command: str) -> str:
    """The command, with the Learn job training for longer"""
    return command.replace("debug.yaml", f"debug.yaml{LONGER}")


def training(sandbox: Sandbox) -> bool:
    """Whether the Learn job has started training"""
    logs = [job / "learn.err" for job in sandbox.jobs("learn")]
    return bool(logs) and logs[0].is_file() and "Training on" in logs[0].read_text()


def check_ran_once(sandbox: Sandbox):
    """Both jobs DONE, the Learn job trained once from start to end (no
    second start, no resumption), its learning curves not doubled, and the
    evaluation's results written"""
    [job] = sandbox.jobs("learn")
    [evaluate] = sandbox.jobs("evaluate")
    for folder in (job, evaluate):
        assert list(folder.glob("*.done")), f"{folder} did not end DONE"
    log = (job / "learn.err").read_text()
    assert log.count("Training on") == 1, log[-3000:]
    assert "Resuming from the checkpoint" not in log
    assert not list(job.glob("learn.2*.err")), "the Learn job was submitted again"
    assert json.loads((job / "learn.json").read_text())["steps"] == TOTAL_STEPS
    # One TensorBoard file, each point logged once
    assert len(list((job / "runs").glob("events.out.tfevents.*"))) == 1
    curves = read_scalars(job / "runs")
    accuracy = curves[curves.scalar == "validation/accuracy"]
    assert not accuracy.step.duplicated().any(), accuracy
    assert accuracy.step.max() == TOTAL_STEPS
    [results] = sandbox.results()
    assert results["accuracy"] > 0.8, results
    lines = sandbox.run(LIST).stdout.splitlines()
    states = [line.split()[0] for line in lines if line.strip()]
    assert states == ["DONE", "DONE"], lines


# --- The experiment dies, its jobs go on: run it again


@pytest.mark.parametrize(
    "launcher", ["local", pytest.param("slurm", marks=pytest.mark.slurm)]
)
def test_rerun_after_a_hangup_reattaches(request, tmp_path, launcher):
    if launcher == "slurm":
        sandbox = slurm_sandbox(tmp_path, request.getfixturevalue("cluster"))
        command = longer(RUN_SLURM)
    else:
        sandbox = Sandbox(tmp_path)
        command = longer(RUN_LOCAL)
    log = tmp_path / "experiment.log"
    # (env: exec takes no variable assignments; the experiment keeps its pid)
    with started(sandbox, f"env {command}", log) as experiment:
        wait_for(lambda: training(sandbox), "the Learn job to train", experiment)
        [job] = sandbox.jobs("learn")
        spec = json.loads((job / "learn.pid").read_text())
        experiment.send_signal(signal.SIGHUP)
        assert experiment.wait(timeout=30) == -signal.SIGHUP, log.read_text()[-3000:]

    # The Learn job goes on without the experiment
    time.sleep(2)
    if launcher == "slurm":
        [record] = slurm_jobs(sandbox, job)
        assert record["State"] == "RUNNING", record
        process = f"slurm:{spec['pid']}"
    else:
        learning = psutil.Process(spec["pid"])
        request.addfinalizer(lambda: stop([learning]))  # (if the test fails)
        assert learning.status() != psutil.STATUS_ZOMBIE
        assert learning.cmdline()[-1] == str(job / "learn.py")
        process = f"PsUtil(psutil.Process(pid={spec['pid']},"
    assert not (job / "learn.done").exists(), "the Learn job ended too soon"

    # The same command, run again, waits for that job and runs the evaluation
    rerun = sandbox.run(command)
    assert f"Got process {process}" in rerun.stderr, rerun.stderr[-3000:]
    assert "1 grid points, 1 done, 0 failed" in rerun.stdout, rerun.stdout[-3000:]
    # The rerun started the evaluation only
    if launcher == "slurm":
        [submission] = re.findall(r"sbatch command: .*", rerun.stderr)
        assert "/evaluate.sh" in submission, submission
        records = slurm_jobs(sandbox)
        assert [r["JobName"] for r in records] == ["learn.sh", "evaluate.sh"], records
        assert {r["State"] for r in records} == {"COMPLETED"}, records
    else:
        assert rerun.stderr.count("Process started") == 1, rerun.stderr[-3000:]
        assert not learning.is_running()
    check_ran_once(sandbox)


# --- Keeping the experiment running: tmux, nohup


class Connection:
    """A login over a pseudo-terminal of 200 x 50 characters (as sshd opens
    one) that runs ``command`` in bash; what it shows is kept in ``text``"""

    def __init__(self, sandbox: Sandbox, command: str):
        pid, fd = pty.fork()
        if pid == 0:  # the login
            os.chdir(REPO)
            os.execvpe("bash", ["bash", "-c", f"exec {command}"], sandbox.env)
        ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
        self.pid, self.fd, self.text = pid, fd, ""
        threading.Thread(target=self.read, daemon=True).start()

    def read(self):
        with contextlib.suppress(OSError):  # (EIO once the login is over)
            while data := os.read(self.fd, 4096):
                self.text += data.decode(errors="replace")

    def type(self, keys: str):
        os.write(self.fd, keys.encode())

    def drop(self):
        """The connection drops: the terminal hangs up"""
        os.close(self.fd)

    def wait(self, timeout: float = 60) -> int:
        """The login's exit status, once it has ended"""
        return wait_for(
            lambda: (ended := os.waitpid(self.pid, os.WNOHANG))[0] and ended,
            "the login to end",
            timeout=timeout,
        )[1]


@pytest.fixture
def tmux_sandbox(tmp_path):
    """A sandbox whose tmux server is its own (TMUX_TMPDIR), stopped at the
    end with whatever still runs there"""
    if not shutil.which("tmux"):
        pytest.skip("needs tmux (.ci/run installs it)")
    sandbox = Sandbox(tmp_path)
    sandbox.env.update(
        TMUX_TMPDIR=str(tmp_path), TERM="xterm-256color", SHELL="/bin/bash"
    )
    try:
        yield sandbox
    finally:
        sandbox.run("tmux kill-server", check=False)
        stop(processes_of(sandbox))


def pane(sandbox: Sandbox) -> str:
    """The text of the tmux session's pane, its history included, wrapped
    lines joined ("" while there is no session yet)"""
    return sandbox.run("tmux capture-pane -p -J -S - -t mnist", check=False).stdout


def test_tmux_keeps_the_experiment_through_a_hangup(tmux_sandbox):
    sandbox = tmux_sandbox
    login = Connection(sandbox, TMUX_NEW)
    wait_for(
        lambda: re.search(r"[#$] *\Z", pane(sandbox).strip()), "a prompt", timeout=30
    )
    # (the venv of the tests, whatever its folder)
    login.type(ACTIVATE.replace(".venv/bin", str(BIN)) + "\r")
    login.type(longer(RUN_LOCAL) + "\r")
    wait_for(lambda: training(sandbox), "the Learn job to train", timeout=120)
    login.drop()
    login.wait()
    [experiment] = [
        process
        for process in processes_of(sandbox)
        if "run-experiment" in process.cmdline()
    ]
    time.sleep(2)
    assert experiment.is_running(), "the experiment died with the connection"

    # A new connection: tmux attach shows the session, which goes on
    again = Connection(sandbox, TMUX_ATTACH)
    wait_for(lambda: "[mnist]" in again.text, "the session to show", timeout=60)
    experiment.wait(timeout=120)
    # (tmux shows what the experiment wrote a moment after it ends)
    wait_for(
        lambda: "1 grid points, 1 done, 0 failed" in pane(sandbox),
        "the results in the session",
        timeout=30,
    )
    again.type("\x02d")  # Ctrl-b d: detach, the session stays
    again.wait()
    assert "[detached (from session mnist)]" in again.text, again.text[-1000:]
    check_ran_once(sandbox)


def test_nohup_keeps_the_experiment_through_a_hangup(tmp_path):
    sandbox = Sandbox(tmp_path)
    try:
        sandbox.run(longer(NOHUP))  # returns at once
        [experiment] = wait_for(
            lambda: [
                process
                for process in processes_of(sandbox)
                if "run-experiment" in process.cmdline()
            ],
            "the experiment to start",
        )
        wait_for(lambda: training(sandbox), "the Learn job to train", timeout=120)
        experiment.send_signal(signal.SIGHUP)
        time.sleep(2)
        assert experiment.is_running(), "SIGHUP stopped the experiment"
        experiment.wait(timeout=120)
    finally:
        stop(processes_of(sandbox))
    log = (sandbox.home / "debug.log").read_text()
    assert "1 grid points, 1 done, 0 failed" in log, log[-3000:]
    check_ran_once(sandbox)
