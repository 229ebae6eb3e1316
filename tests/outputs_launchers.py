"""The outputs of docs/launchers.md (see shown_outputs.py)

The SLURM ones run on the test cluster (tests/slurm/start-cluster.sh), with
the sandboxes and scenarios of test_slurm.py; the others on a PATH without
the SLURM commands, as on a laptop.
"""

import os
import re
import shutil
from pathlib import Path

from conftest import SAMPLE_YAML, Sandbox, wait_for
from shown_outputs import SLURM, Runs, lines_with, output
from test_slurm import (
    cluster_daemons,
    cluster_environment,
    slurm_jobs,
    slurm_sandbox,
    unanswered_slurm_conf,
)

FIND_GPU = 'experimaestro find-launchers "duration=1h & cuda(mem=4G)*1 & cpu(cores=4)"'
RUN_DEBUG = "XPKIT_LAUNCHER=slurm experimaestro run-experiment debug.yaml"
SACCT = (
    "sacct -S now-1day -X -o JobID,JobName%12,State%14,Partition,AllocTRES%40,Elapsed"
)
FIND_MINIMAL = (
    "experimaestro find-launchers --config docs/minimal-launchers"
    ' "duration=1h & cpu(cores=4)"'
)
JOB_NUMBER = r"\bslurm:\d+"
"""The number SLURM gives a job (in experimaestro's log)"""


def cluster_sandbox(
    runs: Runs, name: str, variables: dict, launcher: str = "slurm"
) -> Sandbox:
    """test_slurm's sandbox (``variables``: SLURM_CONF...; sacct polled every
    second), made in ``runs`` so that :meth:`Runs.tidy` knows its paths"""
    folder = runs.root / name
    assert not folder.exists(), f"two sandboxes named {name}"
    sandbox = slurm_sandbox(folder, variables, launcher)
    runs.sandboxes.append(sandbox)
    return sandbox


def log_lines(text: str, *patterns: str) -> str:
    """The lines of experimaestro's log that match, without their date, and
    with the job folders' names cut to 8 characters (as in ``Job[...]``)"""
    kept = lines_with(text, *patterns)
    kept = re.sub(r"(?m)^\S+ (?=(INFO|WARN|ERROR) )", "", kept)
    return re.sub(r"/([0-9a-f]{8})[0-9a-f]{56}/", r"/\1.../", kept)


# --- Without SLURM


def without_slurm(runs: Runs):
    """``experimaestro find-launchers`` for params.yaml's requirement on a
    machine without SLURM (scontrol and sbatch not on PATH) or GPU
    (``CUDA_VISIBLE_DEVICES`` empty), XPKIT_LAUNCHER unset (auto): what
    it printed"""
    sandbox = runs.sandbox("launchers-no-slurm")
    tools = sandbox.home.parent / "bin"  # (bash, which sandbox.run needs)
    tools.mkdir()
    (tools / "bash").symlink_to(shutil.which("bash"))
    folders = [
        folder
        for folder in sandbox.env["PATH"].split(os.pathsep)
        if not any((Path(folder) / name).exists() for name in ("sbatch", "scontrol"))
    ]
    sandbox.env["PATH"] = os.pathsep.join([*folders, str(tools)])
    sandbox.env.pop("XPKIT_LAUNCHER")
    sandbox.env["CUDA_VISIBLE_DEVICES"] = ""
    return sandbox.run(FIND_GPU)


@output("launchers-find-local")
def find_local(runs: Runs) -> str:
    return runs.tidy(runs.once(without_slurm).stdout)


@output("launchers-find-local-log", volatile=[r"\(\d+ cores? each\)"])
def find_local_log(runs: Runs) -> str:
    """The lines of launchers.py on the error output (the cores each job gets
    are half the machine's: they differ from one machine to another)"""
    return runs.tidy(lines_with(runs.once(without_slurm).stderr, "xpm.launchers"))


# --- SLURM installed, but no controller answers


@output("launchers-slurm-down", needs=[SLURM])
def slurm_down(runs: Runs) -> str:
    """debug.yaml with XPKIT_LAUNCHER=slurm and SLURM_CONF naming a
    controller port where nothing listens (test_slurm's ``unanswered_slurm_conf``): the
    line that says why the experiment stopped"""
    sandbox = cluster_sandbox(runs, "launchers-slurm-down", {})
    # SLURM_CONF, in the sandbox's folder
    sandbox.env.update(unanswered_slurm_conf(sandbox.home.parent))
    process = sandbox.run(RUN_DEBUG, check=False)
    assert process.returncode != 0, process.stdout[-3000:]
    assert not (sandbox.workspace / "jobs").exists(), "a job was submitted"
    return runs.tidy(lines_with(process.stdout + process.stderr, "Experiment failed"))


# --- On the test cluster


def finding_on_the_cluster(runs: Runs) -> Sandbox:
    """A sandbox that sees the test cluster, XPKIT_LAUNCHER=auto"""
    return cluster_sandbox(
        runs, "launchers-find-slurm", cluster_environment(), launcher="auto"
    )


@output("launchers-find-slurm", needs=[SLURM])
def find_slurm(runs: Runs) -> str:
    sandbox = runs.once(finding_on_the_cluster)
    return runs.tidy(sandbox.run(FIND_GPU).stdout)


@output("launchers-find-minimal", needs=[SLURM])
def find_minimal(runs: Runs) -> str:
    """docs/minimal-launchers/launchers.py, where sbatch is installed"""
    sandbox = runs.once(finding_on_the_cluster)
    return runs.tidy(sandbox.run(FIND_MINIMAL).stdout)


def debug_on_the_cluster(runs: Runs):
    """``XPKIT_LAUNCHER=slurm experimaestro run-experiment debug.yaml`` on
    the test cluster: the sandbox, and what the run printed"""
    sandbox = cluster_sandbox(runs, "launchers-slurm-run", cluster_environment())
    return sandbox, sandbox.run(RUN_DEBUG)


@output("launchers-slurm-run", needs=[SLURM], volatile=[JOB_NUMBER])
def slurm_run(runs: Runs) -> str:
    """The lines of the log that say where the jobs go, and about each
    submission to SLURM (without their dates). Not experimaestro's
    "Submitting job" lines: they come from another thread, and fall before
    or after the first sbatch from one run to the next"""
    _, process = runs.once(debug_on_the_cluster)
    patterns = (
        r"xpm\.launchers: ",
        r"sbatch command",
        r"Process started",
        r"ended with code",
    )
    return runs.tidy(log_lines(process.stderr, *patterns))


@output("launchers-sacct", needs=[SLURM], volatile=[r"(?m)^\d+\b"])
def sacct_view(runs: Runs) -> str:
    """sacct's header, and its lines for the jobs of the debug.yaml run"""
    sandbox, _ = runs.once(debug_on_the_cluster)
    numbers = {record["JobID"] for record in slurm_jobs(sandbox)}
    assert len(numbers) == 2, numbers
    lines = sandbox.run(SACCT).stdout.splitlines()
    kept = lines[:2] + [line for line in lines[2:] if line.split()[0] in numbers]
    return runs.tidy("".join(line.rstrip() + "\n" for line in kept))


# --- SLURM stops answering


OUTAGE_YAML = f"imports: [{SAMPLE_YAML}]\nid: MNIST_outage\nepochs: 30\n"
"""test_slurm's experiment for an outage (half a minute of training)"""


@output(
    "launchers-slurmdbd-outage",
    needs=[SLURM],
    volatile=[r"answered for \d+ s", r"answers again after \d+ s"],
)
def slurmdbd_outage(runs: Runs) -> str:
    """slurmdbd stopped once the Learn job trains, started again after two
    reminders (XPKIT_SLURM_REPORT=10): the lines of launchers.py up to
    the second reminder, the one that says SLURM answers again, and the end
    of the Learn job (the seconds depend on how long each poll takes)"""
    sandbox = cluster_sandbox(runs, "launchers-outage", cluster_environment())
    sandbox.env["XPKIT_SLURM_REPORT"] = "10"
    yaml = sandbox.home.parent / "outage.yaml"
    yaml.write_text(OUTAGE_YAML)
    log = sandbox.experiment_log

    def training():
        logs = [job / "learn.err" for job in sandbox.jobs("learn")]
        return logs and logs[0].is_file() and "Training on" in logs[0].read_text()

    def reminders() -> int:
        return log.read_text().count("SLURM has not answered for")

    # Stop and start daemons, the cluster whole again at the end
    with (
        cluster_daemons(cluster_environment()) as (stop, start),
        sandbox.background_experiment(yaml) as experiment,
    ):
        wait_for(training, "the learning job to train", experiment)
        stop("slurmdbd")
        wait_for(lambda: reminders() >= 2, "two reminders", experiment, 90)
        start()
        experiment.wait(timeout=600)
    text = log.read_text()
    assert experiment.returncode == 0, text[-3000:]
    lines = log_lines(text, r"xpm\.launchers: SLURM", r"learn/\w+\] ended").splitlines()
    reminder = [i for i, line in enumerate(lines) if "has not answered" in line]
    del lines[reminder[1] + 1 : reminder[-1] + 1]  # (a third, if start was slow)
    return runs.tidy("".join(line + "\n" for line in lines))
