"""The outputs of docs/monitoring.md (see shown_outputs.py)

Most come from the run of params.yaml on the full MNIST that the README's
outputs use (``outputs_readme.params_on_full_mnist``); the page's commands run
in its sandbox once the experiment is over. The others: params.yaml on the
full MNIST again, looked at while its jobs run then stopped; tests/long.yaml
on the sample, killed then cleaned as test_monitoring.py does; three seeds of
tests/sample.yaml as test_seeds.py does.
"""

import contextlib
import re
import signal
import subprocess

from conftest import (
    REAL_MNIST,
    REPO,
    SAMPLE_YAML,
    Sandbox,
    processes_of,
    started,
    stop,
    wait_for,
)
from outputs_readme import JOBS_LIST, params_on_full_mnist
from shown_outputs import FULL_MNIST, SSHD, Runs, lines_with, output
from test_interfaces import WEB_ADDRESS, job_rows, quit_tui, terminal
from test_monitoring import listed_jobs
from test_ssh_monitor import cluster_with_jobs, private_sshd, ssh_monitor

EXPERIMENTS_LIST = "experimaestro experiments --workspace mnist-xp list"
JOB = "mnist_xp.learn.learn/63109dc362937409e718d328672603fdcc1e70f0109a4f0a85f0ffe3b57452ed"
"""The Learn job of params.yaml's point n_layers=1 (the page names it)"""
LOG_STEPS = (
    "experimaestro jobs --workspace mnist-xp log"
    " mnist_xp.learn.learn/63109dc362937409e718d328672603fdcc1e70f0109a4f0a85f0ffe3b57452ed"
    ' | grep -o "step [0-9]*: .*"'
)
JOB_PATH = (
    "experimaestro jobs --workspace mnist-xp path"
    " mnist_xp.learn.learn/63109dc362937409e718d328672603fdcc1e70f0109a4f0a85f0ffe3b57452ed"
)
assert JOB in LOG_STEPS and JOB in JOB_PATH
KILL = "experimaestro jobs --workspace mnist-xp kill --experiment MNIST_train"
KILL_PERFORM = f"{KILL} --perform"
CLEAN = """experimaestro jobs --workspace mnist-xp clean --experiment MNIST_train --filter '@state = "error"'"""
CLEAN_PERFORM = f"{CLEAN} --perform"
MONITOR = "experimaestro experiments --workspace mnist-xp monitor"
ANALYZE = "python -m xpkit.analyze"
SERVICE_FOLDER = "ls ~/experiments/mnist-xp/experiments/MNIST_train/current/results/tensorboard-service"
SERVICES_LIST = (
    "experimaestro experiments --workspace mnist-xp services list MNIST_train"
)
SERVICES_START = "experimaestro experiments --workspace mnist-xp services start tensorboard MNIST_train"
TENSORBOARD = (
    "tensorboard --logdir"
    " ~/experiments/mnist-xp/experiments/MNIST_train/current/results/tensorboard"
)
ACTIONS_LIST = "experimaestro experiments --workspace mnist-xp actions list MNIST_train"
EXPORT = "experimaestro experiments --workspace mnist-xp actions run MNIST_train 21f9d41cb6fd737c701381db59284cdfca6dbd03d539cf5c19129a56af0d062d --set folder=best-model"
UNKNOWN_ACTION = (
    "experimaestro experiments --workspace mnist-xp actions run MNIST_train 0"
)

PORT = r"(?<=localhost:)\d+|(?<=127\.0\.0\.1:)\d+"
"""A port that a server found free"""
TRAIN_SECONDS = r"\b(?:\d+\.\d+|nan)(?= \| jobs/)"
"""The train_seconds column of the results table (a timing)"""


# --- Scenarios


def trained(runs: Runs) -> Sandbox:
    """The sandbox of params.yaml's run on the full MNIST, with the default
    workspace folder ``~/experiments/mnist-xp`` (a link) that the page's
    paths use"""
    sandbox, _ = runs.once(params_on_full_mnist)
    default = sandbox.home / "experiments" / "mnist-xp"
    if not default.exists():
        default.parent.mkdir(exist_ok=True)
        default.symlink_to(sandbox.workspace)
    return sandbox


def stop_all(sandbox: Sandbox):
    """Stops what still runs with the sandbox's HOME (the jobs run in
    sessions of their own, which stopping the experiment's leaves running)"""
    stop(processes_of(sandbox))
    wait_for(lambda: not processes_of(sandbox), "the jobs to end", timeout=60)


def listed(sandbox: Sandbox) -> list[tuple[str, str]]:
    """(state, task/identifier) of each job of ``experimaestro jobs list``
    (nothing until the experiment has made its workspace)"""
    text = sandbox.run(JOBS_LIST, check=False).stdout
    return [(state, job) for state, job, _ in listed_jobs(text)]


def learning(sandbox: Sandbox) -> list:
    """The pid files of the Learn jobs that run (experimaestro writes one
    per job while it runs)"""
    return list((sandbox.workspace / "jobs").glob("mnist_xp.learn.learn/*/learn.pid"))


def while_running(runs: Runs) -> dict[str, str]:
    """params.yaml on the full MNIST, looked at once both Learn jobs run (a
    local job takes at most half of the cores, so that two run side by
    side), then stopped: what the job list and the analysis printed"""
    sandbox = runs.sandbox("monitoring-live", mnist=REAL_MNIST)
    log = sandbox.home.parent / "experiment.log"
    seen = {}
    try:
        with started(sandbox, "experimaestro run-experiment params.yaml", log) as xp:

            def both_learning():
                # (the job list is asked once their pid files are there: it
                # takes a second of CPU that the experiment needs)
                if len(learning(sandbox)) < 2:
                    return False
                states = [s for s, job in listed(sandbox) if ".learn.learn/" in job]
                return states == ["running", "running"]

            wait_for(both_learning, "both Learn jobs to run", xp)
            seen["list"] = sandbox.run(JOBS_LIST).stdout
            seen["analyze"] = sandbox.run(ANALYZE).stdout
    finally:
        stop_all(sandbox)
    return seen


def killed(runs: Runs) -> dict[str, str]:
    """tests/long.yaml on the sample (one point of params.yaml, 50 epochs):
    its Learn job killed while it runs, then the failed job cleaned; what
    each command printed, and the experiment's output (``experiment``)"""
    sandbox = runs.sandbox("monitoring-kill")
    seen = {}
    with sandbox.background_experiment(REPO / "tests" / "long.yaml") as experiment:

        def running():
            states = (
                [state for state, _ in listed(sandbox)] if learning(sandbox) else []
            )
            return "running" in states

        wait_for(running, "the Learn job to run", experiment)
        seen["kill"] = sandbox.run(KILL).stdout
        seen["kill --perform"] = sandbox.run(KILL_PERFORM).stdout
        assert experiment.wait(timeout=300) == 1
    seen["experiment"] = sandbox.experiment_log.read_text()
    seen["clean"] = sandbox.run(CLEAN).stdout
    seen["clean --perform"] = sandbox.run(CLEAN_PERFORM).stdout
    return seen


def until(process, log, pattern: str) -> str:
    """What ``process`` wrote to ``log`` once a line matches ``pattern`` (a
    server starts within seconds; one whose port is taken says so, and waits)"""
    wait_for(
        lambda: re.search(pattern, log.read_text(), re.MULTILINE),
        f"/{pattern}/ in {log}",
        process,
        timeout=60,
    )
    return log.read_text()


def interrupted(process):
    """Ctrl+C, then waits for the process to end"""
    process.send_signal(signal.SIGINT)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=60)  # (then killed on leaving `started`)


# --- Listing experiments and jobs


@output("monitoring-experiments-list", needs=[FULL_MNIST])
def experiments_list(runs: Runs) -> str:
    return runs.tidy(trained(runs).run(EXPERIMENTS_LIST).stdout)


@output("monitoring-jobs-running", needs=[FULL_MNIST])
def jobs_running(runs: Runs) -> str:
    return runs.tidy(runs.once(while_running)["list"])


@output("monitoring-jobs-done", needs=[FULL_MNIST])
def jobs_done(runs: Runs) -> str:
    return runs.tidy(trained(runs).run(JOBS_LIST).stdout)


# --- The log and the folder of a job


@output("monitoring-log-steps", needs=[FULL_MNIST])
def log_steps(runs: Runs) -> str:
    return runs.tidy(trained(runs).run(LOG_STEPS).stdout)


@output("monitoring-job-path", needs=[FULL_MNIST])
def job_path(runs: Runs) -> str:
    return runs.tidy(trained(runs).run(JOB_PATH).stdout)


# --- Stopping jobs, cleaning up


@output("monitoring-kill-dry-run")
def kill_dry_run(runs: Runs) -> str:
    return runs.tidy(runs.once(killed)["kill"])


@output("monitoring-kill")
def kill(runs: Runs) -> str:
    return runs.tidy(runs.once(killed)["kill --perform"])


@output("monitoring-clean-dry-run")
def clean_dry_run(runs: Runs) -> str:
    return runs.tidy(runs.once(killed)["clean"])


@output("monitoring-clean")
def clean(runs: Runs) -> str:
    return runs.tidy(runs.once(killed)["clean --perform"])


@output("monitoring-failed-points")
def failed_points(runs: Runs) -> str:
    """The lines of the killed experiment's output that name the failed
    points (after its table)"""
    text = runs.once(killed)["experiment"]
    return runs.tidy(lines_with(text, r"grid points? failed", r"; log: "))


# --- Watching live


@output("monitoring-web", needs=[FULL_MNIST], volatile=[PORT, r"xpm-token=\w+"])
def web(runs: Runs) -> str:
    """``experiments monitor`` (its output and errors) up to the line with
    its address, then Ctrl+C"""
    sandbox = trained(runs)
    log = sandbox.home.parent / "monitor.log"
    with started(sandbox, MONITOR, log) as monitor:
        text = until(monitor, log, r"Web server started on .*xpm-token=\w+\n")
        interrupted(monitor)
    return runs.tidy(re.match(r".*?xpm-token=\w+\n", text, re.DOTALL)[0])


# --- The results table


@output("monitoring-analyze", needs=[FULL_MNIST], volatile=[TRAIN_SECONDS])
def analyze(runs: Runs) -> str:
    return runs.tidy(trained(runs).run(ANALYZE).stdout)


@output("monitoring-analyze-running", needs=[FULL_MNIST])
def analyze_running(runs: Runs) -> str:
    """The table and the line before it (the files written are left out)"""
    text = runs.once(while_running)["analyze"]
    return runs.tidy(text.split("\nWritten: ")[0])


def seeded(runs: Runs) -> str:
    """tests/sample.yaml with 3 seeds and 1 epoch (as test_seeds.py runs it):
    what the experiment printed"""
    sandbox = runs.sandbox("monitoring-seeds")
    yaml = sandbox.home.parent / "seeds_test.yaml"
    yaml.write_text(
        f"imports: [{SAMPLE_YAML}]\nid: MNIST_seeds_test\nseed: [0, 1, 2]\n"
        "epochs: 1\nfigures: true\n"
    )
    return sandbox.experiment(yaml).stdout


@output("monitoring-seeds")
def seeds(runs: Runs) -> str:
    """The first line of the results the experiment printed, and the table"""
    text = runs.once(seeded)
    first = lines_with(text, r"^MNIST_seeds_test, run ")
    return runs.tidy(first + "\n" + lines_with(text, r"^\|"))


# --- TensorBoard


@output("monitoring-service-folder", needs=[FULL_MNIST])
def service_folder(runs: Runs) -> str:
    """What the service's folder of the run holds (``ls``)"""
    return runs.tidy(trained(runs).run(SERVICE_FOLDER).stdout)


@output("monitoring-services-list", needs=[FULL_MNIST])
def services_list(runs: Runs) -> str:
    return runs.tidy(trained(runs).run(SERVICES_LIST).stdout)


@output("monitoring-services-start", needs=[FULL_MNIST], volatile=[PORT])
def services_start(runs: Runs) -> str:
    """Up to the URL of its TensorBoard, then Ctrl+C (the standard error,
    ``Using workspace``, left out)"""
    sandbox = trained(runs)
    log = sandbox.home.parent / "services-start.log"
    with started(sandbox, f"{SERVICES_START} 2>/dev/null", log) as command:
        text = until(command, log, r"URL: http://\S+\n")
        interrupted(command)
    return runs.tidy(lines_with(text, r"^Starting ", r"URL: "))


@output("monitoring-tensorboard", needs=[FULL_MNIST], volatile=[PORT])
def tensorboard(runs: Runs) -> str:
    """Up to the line with its address, then Ctrl+C"""
    sandbox = trained(runs)
    log = sandbox.home.parent / "tensorboard.log"
    with started(sandbox, TENSORBOARD, log) as server:
        text = until(server, log, r"^TensorBoard .* at http.*\n")
        interrupted(server)
    return runs.tidy(lines_with(text, r"^Serving TensorBoard", r"^TensorBoard .* at "))


# --- Exporting the best model: an action


def work_folder(sandbox: Sandbox):
    """A folder outside the repository, where the actions run"""
    folder = sandbox.home.parent / "work"
    folder.mkdir(exist_ok=True)
    return folder


@output("monitoring-actions-list", needs=[FULL_MNIST])
def actions_list(runs: Runs) -> str:
    sandbox = trained(runs)
    return runs.tidy(sandbox.run(ACTIONS_LIST, cwd=work_folder(sandbox)).stdout)


@output("monitoring-action-run", needs=[FULL_MNIST])
def action_run(runs: Runs) -> str:
    sandbox = trained(runs)
    return runs.tidy(sandbox.run(EXPORT, cwd=work_folder(sandbox)).stdout)


@output(
    "monitoring-model-json",
    needs=[FULL_MNIST],
    volatile=[r'(?<="train_seconds": )[\d.]+'],  # a timing
)
def model_json(runs: Runs) -> str:
    """The model.json the export action wrote (it refuses to write over it)"""
    written = work_folder(trained(runs)) / "best-model" / "model.json"
    if not written.exists():
        action_run(runs)
    return runs.tidy(written.read_text())


@output("monitoring-action-unknown", needs=[FULL_MNIST])
def action_unknown(runs: Runs) -> str:
    sandbox = trained(runs)
    return runs.tidy(sandbox.run(UNKNOWN_ACTION, cwd=work_folder(sandbox)).stdout)


# --- From your laptop: ssh-monitor


def ssh_monitored(runs: Runs) -> dict[str, str]:
    """tests/sample.yaml run in a "cluster" sandbox, then watched from an
    empty "laptop" sandbox with ssh-monitor, through the private sshd of
    test_ssh_monitor.py (as the test does): the terminal interface's screen
    once it shows the jobs (``tui``), and what ``--web`` printed once it
    serves and its remote side has started (``web``)"""
    cluster = cluster_with_jobs(runs.sandbox("ssh-cluster"))
    laptop = runs.sandbox("ssh-laptop")
    seen = {}
    with private_sshd(runs.root / "sshd") as sshd:
        with terminal(laptop, ssh_monitor(sshd, cluster)) as term:
            seen["tui"] = term.wait_until(
                lambda screen: len(job_rows(screen)) == 2, "the jobs", 60
            )
            quit_tui(term)
            term.wait_exit()
        log = laptop.home.parent / "ssh-monitor-web.log"
        command = ssh_monitor(sshd, cluster, "--web")  # (its port: 12345)
        with started(laptop, command, log) as monitor:
            until(monitor, log, WEB_ADDRESS)
            seen["web"] = until(monitor, log, r"Server started for .*\n")
            interrupted(monitor)
    return seen


@output(
    "monitoring-ssh-monitor-tui",
    needs=[SSHD],
    volatile=[r"\d{4}-\d\d-\d\d \d\d:\d\d", r"(?<= )\d+s(?= )"],  # when, how long
)
def ssh_monitor_tui(runs: Runs) -> str:
    """The experiment and its jobs, as the screen shows them (the frames and
    the blank ends of lines left out)"""
    screen = runs.once(ssh_monitored)["tui"]
    shown = lines_with(screen, r"MNIST_sample - ", r"^ ID  ", r"^ [0-9a-f]{7}  ")
    return runs.tidy("".join(line.strip(" │") + "\n" for line in shown.splitlines()))


@output("monitoring-ssh-monitor-web", needs=[SSHD], volatile=[PORT, r"xpm-token=\w+"])
def ssh_monitor_web(runs: Runs) -> str:
    """What ``--web`` printed: its own lines, then those of the remote side
    (``[SSH] ...``, which come in between, at times here, at times there)"""
    lines = runs.once(ssh_monitored)["web"].splitlines(keepends=True)
    remote = [line for line in lines if line.startswith("[SSH] ")]
    local = [line for line in lines if not line.startswith("[SSH] ")]
    return runs.tidy("".join(local + remote))
