"""The experiment on a real SLURM cluster: every job goes through sbatch, is
followed with sacct, can be killed, and survives its time limit.

The cluster is the single-node one of ``tests/slurm/start-cluster.sh``
(``.ci/run`` starts it before pytest). When no controller answers, the tests
that need it are skipped, saying how to start it: the tests never install
packages or start the cluster themselves.
SLURM jobs are told apart from those of other tests by their working
directory (sacct's WorkDir), which is their job folder in the sandbox.
"""

import contextlib
import importlib.util
import json
import logging
import os
import random
import re
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
import yaml
from conftest import BIN, REPO, SAMPLE_YAML, Sandbox, wait_for

pytestmark = pytest.mark.slurm

SLURM_TEST_DIR = Path(os.environ.get("SLURM_TEST_DIR") or "/tmp/mnist-xp-slurm")
START = REPO / "tests" / "slurm" / "start-cluster.sh"
STOP = REPO / "tests" / "slurm" / "stop-cluster.sh"
TIMELIMIT_YAML = REPO / "tests" / "slurm-timelimit.yaml"
GPU_SPEC = "duration=1h & cuda(mem=4G)*1 & cpu(cores=4)"
DAEMONS = ("munged", "mariadbd", "slurmdbd", "slurmctld", "slurmd")
"""What start-cluster.sh starts, in this order"""
STEPS_PER_EPOCH = 62
"""4,000 training images of the sample, 64 per batch"""


# --- The cluster


def cluster_environment() -> dict[str, str]:
    """The variables ``env.sh`` exports (SLURM_CONF, SLURM_TEST_DIR), or
    where start-cluster.sh would put slurm.conf if it has not run yet"""
    variables = {"SLURM_CONF": str(SLURM_TEST_DIR / "etc" / "slurm.conf")}
    env_sh = SLURM_TEST_DIR / "env.sh"
    if env_sh.is_file():
        for match in re.finditer(
            r'^export (\w+)="(.*)"$', env_sh.read_text(), re.MULTILINE
        ):
            variables[match[1]] = match[2]
    return variables


def controller_answers(slurm_conf: str) -> tuple[bool, str]:
    """Whether ``scontrol ping`` says the controller of ``slurm_conf`` is UP,
    and what it said"""
    if shutil.which("scontrol") is None:
        return False, "scontrol is not installed"
    if not Path(slurm_conf).is_file():  # (scontrol would retry for a minute)
        return False, f"{slurm_conf} is not a file"
    try:
        process = subprocess.run(
            ["scontrol", "ping"],
            env={**os.environ, "SLURM_CONF": slurm_conf},
            capture_output=True,
            text=True,
            timeout=15,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False, "scontrol ping did not answer in 15 s"
    answer = (process.stdout + process.stderr).strip()
    return process.returncode == 0 and " is UP" in process.stdout, answer


@pytest.fixture(scope="module")
def cluster():
    """The environment of the test cluster (SLURM_CONF...), which must be
    running already (.ci/run starts it): the tests never install packages or
    start services themselves; they are skipped otherwise, saying how to
    start it"""
    variables = cluster_environment()
    up, answer = controller_answers(variables["SLURM_CONF"])
    if not up:
        pytest.skip(
            f"no SLURM controller answers (SLURM_CONF={variables['SLURM_CONF']}:"
            f" {answer}): start the test cluster with"
            f" `sudo {START.relative_to(REPO)}`"
        )
    return variables


def slurm_sandbox(root: Path, cluster: dict, launcher: str = "slurm") -> Sandbox:
    """A sandbox whose commands see the ``cluster`` variables (SLURM_CONF...),
    with a given XPKIT_LAUNCHER, and sacct polled every second"""
    sandbox = Sandbox(root)
    sandbox.env.update(cluster)
    sandbox.env.update(XPKIT_LAUNCHER=launcher, XPKIT_SLURM_POLL="1")
    return sandbox


def sacct(env: dict) -> list[dict]:
    """Every job (allocations, not steps) of the last day, as dictionaries"""
    fields = ["JobID", "JobName", "State", "Partition", "WorkDir", "AllocTRES"]
    process = subprocess.run(
        ["sacct", "-S", "now-1day", "-X", "-n", "-P", "-o", ",".join(fields)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return [
        dict(zip(fields, line.split("|")))
        for line in process.stdout.splitlines()
        if line
    ]


def slurm_jobs(sandbox: Sandbox, job: Path | None = None) -> list[dict]:
    """The SLURM jobs run from the sandbox's workspace (or from one job
    folder), oldest first"""
    folder = str(job or sandbox.workspace)
    return sorted(
        (
            record
            for record in sacct(sandbox.env)
            if record["WorkDir"] == folder or record["WorkDir"].startswith(f"{folder}/")
        ),
        key=lambda record: int(record["JobID"]),
    )


def wait_until_finished(env: dict, jobid: str, timeout: float = 120) -> dict:
    """The sacct record of a job once it has ended (or when time is up)"""
    deadline = time.monotonic() + timeout
    while True:
        records = [record for record in sacct(env) if record["JobID"] == jobid]
        unfinished = ("PENDING", "RUNNING", "COMPLETING", "REQUEUED")
        if time.monotonic() > deadline or (
            records and records[0]["State"] not in unfinished
        ):
            return records[0] if records else {"JobID": jobid, "State": "?"}
        time.sleep(1)


def last_job_id(env: dict) -> int:
    return max((int(record["JobID"]) for record in sacct(env)), default=0)


def listing(sandbox: Sandbox, experiment: str) -> list[str]:
    """The lines of experimaestro's job listing for an experiment"""
    return sandbox.run(
        f"experimaestro jobs --workspace mnist-xp list --tags --experiment {experiment}"
    ).stdout.splitlines()


def learn_logs(job: Path) -> str:
    """All the logs of a learning job, oldest first (experimaestro renames
    ``learn.err`` to ``learn.<date>.err`` before each resubmission)"""
    rotated = sorted(job.glob("learn.2*.err"))
    return "\n".join(path.read_text() for path in [*rotated, job / "learn.err"])


def yaml_values(path: Path) -> dict:
    """The keys set by a YAML file itself (not those of its imports)"""
    return yaml.safe_load(path.read_text())


def load_launchers():
    """The module of the launchers that launchers.py imports (xpkit's)"""
    return importlib.import_module("xpkit.launchers")


# --- 1. The sample experiment, end to end through SLURM


@pytest.fixture(scope="module")
def through_slurm(cluster, tmp_path_factory) -> Sandbox:
    """A sandbox where the sample experiment ran with XPKIT_LAUNCHER=slurm"""
    sandbox = slurm_sandbox(tmp_path_factory.mktemp("through-slurm"), cluster)
    start = time.monotonic()
    sandbox.process = sandbox.experiment(SAMPLE_YAML)
    sandbox.seconds = time.monotonic() - start
    return sandbox


def test_every_job_goes_through_sbatch_and_completes(through_slurm):
    sandbox = through_slurm
    jobs = sandbox.jobs("learn") + sandbox.jobs("evaluate")
    assert len(jobs) == 2
    assert sandbox.process.stderr.count("slurm sbatch command") == 2
    for job in jobs:
        [record] = slurm_jobs(sandbox, job)
        assert record["State"] == "COMPLETED", record
        assert list(job.glob("*.done")), f"{job} did not end DONE"
    assert len(slurm_jobs(sandbox)) == 2


def test_results_through_slurm(through_slurm):
    [results] = through_slurm.results()
    assert results["n_images"] == 1000
    assert results["accuracy"] > 0.8, results


def test_each_job_gets_the_cores_asked_for(through_slurm):
    # debug.yaml asks cpu(cores=1): one thread read from SLURM_CPUS_PER_TASK
    # (PyTorch would take the node's 2 cores without it)
    [job] = through_slurm.jobs("learn")
    script = (job / "learn.sh").read_text()
    assert "#SBATCH --cpus-per-task=1" in script
    assert "#SBATCH --time=0:10:00" in script
    assert "os.environ['OMP_NUM_THREADS'] = '1'" in (job / "learn.py").read_text()
    # Exported before the job starts: glibc reads GLIBC_TUNABLES only then
    exports, _, _ = script.partition("\nsrun ")
    assert "\nexport OMP_NUM_THREADS=1\n" in exports, script
    assert "\nexport GLIBC_TUNABLES=glibc.malloc.mmap_threshold=" in exports, script
    assert "Computing on cpu with 1 CPU threads" in (job / "learn.err").read_text()
    [record] = slurm_jobs(through_slurm, job)
    assert "cpu=1" in record["AllocTRES"], record


def test_listing_shows_done_after_slurm(through_slurm):
    lines = [
        line
        for line in listing(through_slurm, "MNIST_sample")
        if line.startswith("DONE")
    ]
    assert len(lines) == 2, lines
    for line in lines:
        assert "n_layers=1 hidden_dim=8 kernel_size=3" in line


def test_results_table_printed_after_slurm(through_slurm):
    out = through_slurm.process.stdout
    assert "n_layers" in out and "accuracy" in out, out


# --- 2. A GPU requirement becomes a GPU request


def test_gpu_spec_becomes_sbatch_options(cluster, monkeypatch):
    for key, value in {**cluster, "XPKIT_LAUNCHER": "auto"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("XPKIT_SLURM_POLL", "1")
    launchers = load_launchers()
    from experimaestro.launcherfinder.parser import parse
    from experimaestro.launchers.slurm import SlurmLauncher

    launcher = launchers.find_launcher(parse(GPU_SPEC), tags=["slurm"])
    assert isinstance(launcher, SlurmLauncher)
    args = launcher.options.args()
    for option in ("--gpus-per-node=1", "--cpus-per-task=4", "--time=1:00:00"):
        assert option in args, args
    assert not any(
        arg.startswith(("--partition", "--account", "--qos")) for arg in args
    )
    assert launcher.interval == 1.0


def test_find_launchers_with_the_cluster(cluster, tmp_path):
    sandbox = slurm_sandbox(tmp_path, cluster, launcher="auto")
    out = sandbox.run(
        'experimaestro find-launchers "duration=1h & cuda(mem=4G)*1 & cpu(cores=4)"'
    ).stdout
    assert out.startswith("SlurmLauncher(SlurmOptions(nodes=1, time='1:00:00'"), out
    assert "cpus_per_task='4'" in out and "gpus_per_node=1)" in out, out


def test_gpu_request_is_allocated(cluster, tmp_path, monkeypatch):
    """sbatch takes the options of a GPU requirement, and SLURM allocates a
    (fake) GPU; 2 cores, as the test node has no more"""
    for key, value in cluster.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("XPKIT_LAUNCHER", "slurm")
    launchers = load_launchers()
    spec = "duration=1m & cuda(mem=4G)*1 & cpu(cores=2)"
    args = launchers.find_launcher(spec, tags=["slurm"]).options.args()
    env = {**os.environ, **cluster}
    output = tmp_path / "gpu.out"
    jobid = subprocess.run(
        ["sbatch", "--parsable", *args, f"--output={output}", f"--chdir={tmp_path}"]
        + ["--wrap", "echo gpus=$CUDA_VISIBLE_DEVICES cpus=$SLURM_CPUS_PER_TASK"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()
    record = wait_until_finished(env, jobid)
    assert record["State"] == "COMPLETED", record
    assert "gres/gpu=1" in record["AllocTRES"], record
    assert "cpu=2" in record["AllocTRES"], record
    assert output.read_text().split() == ["gpus=0", "cpus=2"]


# --- 3. Killing a job cancels it in SLURM


def test_kill_cancels_the_slurm_job(cluster, tmp_path):
    sandbox = slurm_sandbox(tmp_path, cluster)
    yaml = tmp_path / "kill.yaml"
    # Long enough to be running when killed (a few minutes of training)
    yaml.write_text(f"imports: [{REPO / 'tests' / 'resume.yaml'}]\nid: MNIST_kill\n")
    log = tmp_path / "experiment.log"
    with log.open("w") as output:
        experiment = subprocess.Popen(
            [str(BIN / "experimaestro"), "run-experiment", str(yaml)]
            + ["-c", "epochs=500"],
            cwd=REPO,
            env=sandbox.env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            logs = [job / "learn.err" for job in sandbox.jobs("learn")]
            if logs and logs[0].is_file() and "Training on" in logs[0].read_text():
                break
            assert experiment.poll() is None, log.read_text()[-3000:]
            time.sleep(1)
        else:
            pytest.fail("the learning job did not start in 2 minutes")
        [job] = sandbox.jobs("learn")
        [record] = slurm_jobs(sandbox, job)
        assert record["State"] == "RUNNING", record

        kill = sandbox.run(
            "experimaestro jobs --workspace mnist-xp kill --experiment MNIST_kill"
            " --perform"
        )
        assert "KILLED" in kill.stdout, kill.stdout
        experiment.wait(timeout=120)
    finally:
        if experiment.poll() is None:
            experiment.kill()
            experiment.wait()

    assert experiment.returncode != 0, log.read_text()[-3000:]
    [record] = slurm_jobs(sandbox, job)
    assert record["State"].startswith("CANCELLED"), record
    assert not list(job.glob("*.done"))
    lines = listing(sandbox, "MNIST_kill")
    assert not any(line.startswith("DONE") for line in lines), lines
    [learn] = [line for line in lines if "mnist_xp.learn.learn/" in line]
    assert learn.startswith("FAIL"), lines
    # The evaluation never ran: nothing was submitted after the kill
    assert len(slurm_jobs(sandbox)) == 1


# --- 4. A bad requirement stops everything before sbatch


@pytest.mark.parametrize("spec", ["gpu(mem=4)", "duration=1.5h"])
def test_bad_spec_submits_nothing(cluster, tmp_path, spec):
    sandbox = slurm_sandbox(tmp_path, cluster)
    yaml = tmp_path / "bad.yaml"
    yaml.write_text(
        f"imports: [{SAMPLE_YAML}]\nid: MNIST_badspec\nlauncher: {spec!r}\n"
    )
    before = last_job_id(sandbox.env)
    process = sandbox.experiment(yaml, check=False)
    assert process.returncode != 0
    assert "launcher" in process.stderr + process.stdout
    assert "sbatch" not in process.stderr
    assert not (sandbox.workspace / "jobs").exists(), "a job was submitted"
    assert last_job_id(sandbox.env) == before, "sbatch was called"


# --- 5. No cluster: a clear error, or the local launcher


MINIMAL_CONF = """ClusterName=nocluster
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={port}
NodeName=localnode CPUs=1 State=UNKNOWN
PartitionName=debug Nodes=localnode Default=YES
"""


@pytest.fixture
def no_cluster(tmp_path) -> dict:
    return unanswered_slurm_conf(tmp_path)


def unanswered_slurm_conf(tmp_path: Path) -> dict:
    """SLURM_CONF for a controller port where nothing listens: the test
    cluster's configuration if there is one (the cluster keeps running), else
    a minimal one, in ``tmp_path/down``. Does not need the cluster."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    real = Path(cluster_environment()["SLURM_CONF"])
    if real.is_file():
        config = re.sub(
            r"(?m)^SlurmctldPort=.*$", f"SlurmctldPort={port}", real.read_text()
        )
    else:
        config = MINIMAL_CONF.format(port=port)
    path = tmp_path / "down" / "slurm.conf"
    path.parent.mkdir()
    path.write_text(config)
    return {"SLURM_CONF": str(path)}


def test_slurm_forced_without_cluster_is_an_error(no_cluster, tmp_path):
    sandbox = slurm_sandbox(tmp_path, no_cluster, launcher="slurm")
    process = sandbox.experiment(SAMPLE_YAML, check=False)
    message = process.stderr + process.stdout
    assert process.returncode != 0
    assert "no SLURM controller answered" in message, message[-3000:]
    if shutil.which("scontrol"):  # else: "looking for scontrol and sbatch"
        assert "scontrol ping" in message and no_cluster["SLURM_CONF"] in message
    assert not (sandbox.workspace / "jobs").exists()


def test_auto_without_cluster_runs_here(no_cluster, tmp_path):
    sandbox = slurm_sandbox(tmp_path, no_cluster, launcher="auto")
    process = sandbox.run("experimaestro run-experiment debug.yaml")
    assert "No SLURM controller answered" in process.stderr
    assert "the jobs run on this machine" in process.stderr
    assert "sbatch" not in process.stderr
    [results] = sandbox.results()
    # debug.yaml: one epoch of the sample's 4,000 training images
    assert results["accuracy"] > 0.5, results
    for job in sandbox.jobs("learn") + sandbox.jobs("evaluate"):
        assert not (job / f"{job.parent.name.split('.')[-1]}.sh").exists()


def test_find_launchers_without_cluster(no_cluster, tmp_path):
    sandbox = slurm_sandbox(tmp_path, no_cluster, launcher="auto")
    # The sandbox is set up already: the command says so, and keeps the file
    configure = sandbox.run(
        f"python -m xpkit.configure --workspace {sandbox.workspace} --id mnist-xp"
        " --experiments 'MNIST_*'"
    ).stdout
    assert configure.count("already set up") == 2, configure
    out = sandbox.run(
        'experimaestro find-launchers "duration=1h & cuda(mem=4G)*1 & cpu(cores=4)"'
    ).stdout
    assert out.strip() == "DirectLauncher(LocalConnector)"


def test_unknown_launcher_choice_is_an_error(tmp_path):
    sandbox = slurm_sandbox(tmp_path, {}, launcher="cluster")
    process = sandbox.experiment(SAMPLE_YAML, check=False)
    message = process.stderr + process.stdout
    assert process.returncode != 0
    assert "XPKIT_LAUNCHER='cluster' is not allowed" in message, message[-3000:]
    assert "auto, local, slurm" in message
    assert not (sandbox.workspace / "jobs").exists()


# --- 6. Time limit: checkpoint, resubmission, resume


def test_time_limit_resubmits_and_resumes(cluster, tmp_path):
    """The job stops itself before its one-minute limit, at a checkpoint, and
    is resubmitted until done. Whatever the speed of the machine: its
    time_margin is longer than the limit, so that each submission stops at
    its first checkpoint (each epoch's end), however early it gets there"""
    config = yaml_values(TIMELIMIT_YAML)
    assert config["time_margin"] > 60, "each submission must stop at a checkpoint"
    assert config["checkpoint_every"] > STEPS_PER_EPOCH, "checkpoints: epochs' ends"
    sandbox = slurm_sandbox(tmp_path, cluster)
    # Retries to spare (default: 3), should the job stop more often
    settings = sandbox.home / ".config" / "experimaestro" / "settings.yaml"
    settings.write_text(
        settings.read_text().replace("  path:", "  max_retries: 10\n  path:", 1)
    )
    # Partition from the environment, as users set it: sbatch reads it
    sandbox.env["SBATCH_PARTITION"] = "short"
    sandbox.experiment(TIMELIMIT_YAML)

    [job] = sandbox.jobs("learn")
    records = slurm_jobs(sandbox, job)
    assert len(records) >= 2, records
    assert {record["Partition"] for record in records} == {"short"}, records
    # Each submission but the last stopped itself before the limit
    # (remaining_time() works) instead of being killed (TIMEOUT)
    assert [record["State"] for record in records[:-1]] == ["FAILED"] * (
        len(records) - 1
    ), records
    assert records[-1]["State"] == "COMPLETED", records

    logs = learn_logs(job)
    assert logs.count("Task requested graceful timeout") == len(records) - 1
    # What remaining_time() said: some seconds of the one-minute limit
    left = [int(s) for s in re.findall(r"only (\d+) s left: stopping here", logs)]
    assert len(left) == len(records) - 1 and all(0 < s <= 60 for s in left), left
    resumed = [
        int(step)
        for step in re.findall(r"Resuming from the checkpoint at step (\d+)", logs)
    ]
    assert len(resumed) == len(records) - 1, resumed
    # The first submission stopped at its first checkpoint, the others went on
    # from where the previous one stopped
    assert resumed[0] == STEPS_PER_EPOCH, resumed
    assert resumed == sorted(resumed)
    assert all(step % STEPS_PER_EPOCH == 0 for step in resumed), resumed

    summary = json.loads((job / "learn.json").read_text())
    assert summary["steps"] == config["epochs"] * STEPS_PER_EPOCH
    assert list(job.glob("learn.done"))
    lines = listing(sandbox, "MNIST_timelimit")
    assert sum(line.startswith("DONE") for line in lines) == 2, lines
    [results] = sandbox.results()
    assert results["accuracy"] > 0.8, results


# --- 7. A failed start of the cluster stops what it started


def running_daemons(folder: Path) -> dict[str, int]:
    """The daemons whose PID file in a state folder names a live process of
    that name: {name: pid}"""
    running = {}
    for name in DAEMONS:
        try:
            pid = int((folder / "pids" / f"{name}.pid").read_text())
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
            state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
        except (OSError, ValueError):
            continue
        if comm == name and state != "Z":
            running[name] = pid
    return running


def processes_of(folder: Path) -> list[str]:
    """``PID NAME`` of every live process whose command line or environment
    (SLURM_CONF) names the folder"""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:  # (a zombie's are empty; a process may end meanwhile)
            text = (proc / "cmdline").read_bytes() + (proc / "environ").read_bytes()
            name = (proc / "comm").read_text().strip()
        except OSError:
            continue
        if str(folder).encode() in text:
            found.append(f"{proc.name} {name}")
    return found


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def free_ports(count: int, avoid: range = range(0)) -> int:
    """The first of ``count`` consecutive free ports, below the ephemeral
    range (where client connections could take one meanwhile)"""
    for _ in range(200):
        first = random.randrange(20_000, 30_000)
        ports = range(first, first + count)
        if not set(ports) & set(avoid) and all(map(port_is_free, ports)):
            return first
    pytest.fail(f"no {count} consecutive free ports found")


@contextlib.contextmanager
def port_taken(port: int):
    """Something listens on the port (all addresses, as the daemons do)"""
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("0.0.0.0", port))
        holder.listen()
        yield


@pytest.mark.skipif(os.geteuid() != 0, reason="start-cluster.sh runs as root")
@pytest.mark.skipif(
    os.environ.get("TEST_START_CLUSTER_SCRIPT") != "1",
    reason="starts daemons of a second cluster for a while: only where asked,"
    " with TEST_START_CLUSTER_SCRIPT=1 (.ci/run does)",
)
def test_failed_start_stops_what_it_started(cluster, tmp_path):
    """start-cluster.sh with a state folder and ports of its own (the test
    cluster keeps running), made to fail at several steps: each time, the
    daemons started by that run are stopped, and only those"""
    main_cluster = Path(cluster.get("SLURM_TEST_DIR", SLURM_TEST_DIR))
    main_daemons = running_daemons(main_cluster)
    state = tmp_path / "cluster"
    base = free_ports(3)  # slurmctld, slurmd, slurmdbd
    env = {key: value for key, value in os.environ.items() if "SLURM" not in key}
    env.update(
        SLURM_TEST_DIR=str(state),
        SLURM_TEST_PORT_BASE=str(base),
        SLURM_TEST_DB_PORT=str(free_ports(1, avoid=range(base, base + 3))),
        SLURM_TEST_TIMEOUT="30",
    )

    def start(**variables) -> str:
        """Runs start-cluster.sh, expecting a failure; returns its log"""
        process = subprocess.run(
            [str(START)],
            env={**env, **variables},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert process.returncode != 0, process.stderr[-3000:]
        return process.stderr

    try:
        # No time to wait for anything: munged or mariadbd (caught before
        # it wrote its PID file) does not answer in time. (Both were left
        # running before the cleanup on failure.)
        log = start(SLURM_TEST_TIMEOUT="0")
        assert processes_of(state) == [], log[-3000:]
        assert running_daemons(state) == {}
        assert "timed out after 0s waiting for: m" in log, log[-3000:]
        assert "start failed: stopping what this run started (munged" in log

        # slurmctld cannot listen on its port: it exits, after munged,
        # mariadbd and slurmdbd have started
        with port_taken(base):
            log = start()
        assert processes_of(state) == [], log[-3000:]
        assert not list((state / "pids").iterdir())
        assert "slurmctld exited while waiting for" in log, log[-3000:]
        assert (
            "stopping what this run started (munged mariadbd slurmdbd slurmctld)" in log
        )

        # A successful start, whose daemons a later failed start leaves alone
        subprocess.run(
            [str(START)], env=env, capture_output=True, timeout=300, check=True
        )
        before = running_daemons(state)
        assert set(before) == set(DAEMONS)
        subprocess.run(
            [str(STOP), "slurmctld"],
            env=env,
            capture_output=True,
            timeout=60,
            check=True,
        )
        with port_taken(base):
            log = start()
        assert "munged already running" in log and "slurmdbd already running" in log
        assert "stopping what this run started (slurmctld)" in log, log[-3000:]
        assert running_daemons(state) == {
            name: pid for name, pid in before.items() if name != "slurmctld"
        }
    finally:
        subprocess.run(
            [str(STOP)], env=env, capture_output=True, timeout=300, check=False
        )
    assert processes_of(state) == []
    # The test cluster did not notice
    assert running_daemons(main_cluster) == main_daemons
    up, answer = controller_answers(cluster["SLURM_CONF"])
    assert up, answer


# --- 8. SLURM stops answering during a run


@pytest.fixture
def daemons(cluster):
    with cluster_daemons(cluster) as stop_and_start:
        yield stop_and_start


@contextlib.contextmanager
def cluster_daemons(cluster: dict):
    """``stop(NAME)`` stops one daemon of the test cluster, ``start()`` starts
    again what is missing (running jobs go on); at the end, the cluster is
    whole again and answers, since other tests use it"""
    env = {**os.environ, **cluster}

    def stop(name: str):
        subprocess.run(
            [str(STOP), name], env=env, capture_output=True, timeout=120, check=True
        )

    def start():
        process = subprocess.run(
            [str(START)],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert process.returncode == 0, process.stderr[-3000:]

    try:
        yield stop, start
    finally:
        start()
        assert running_daemons(Path(cluster.get("SLURM_TEST_DIR", SLURM_TEST_DIR)))
        up, answer = controller_answers(cluster["SLURM_CONF"])
        assert up, answer
        sacct(env)  # (the accounting answers: check=True)


@pytest.mark.parametrize("daemon", ["slurmctld", "slurmdbd"])
def test_slurm_stops_answering_during_a_run(cluster, daemons, tmp_path, daemon):
    """The controller is restarted, or the accounting daemon stops for 20 s,
    while the Learn job runs: the experiment says once that SLURM stopped
    answering and that it waits, then how long it has waited, then that SLURM
    answers again; no error of sacct reaches the log, and the jobs end DONE"""
    stop, start = daemons
    sandbox = slurm_sandbox(tmp_path, cluster)
    sandbox.env["XPKIT_SLURM_REPORT"] = "10"
    yaml = tmp_path / "outage.yaml"
    # Long enough to train through a restart of the controller (half a minute)
    yaml.write_text(f"imports: [{SAMPLE_YAML}]\nid: MNIST_outage\nepochs: 30\n")
    log = sandbox.experiment_log

    def training():
        logs = [job / "learn.err" for job in sandbox.jobs("learn")]
        return logs and logs[0].is_file() and "Training on" in logs[0].read_text()

    def reminders() -> list[int]:
        return [
            int(s)
            for s in re.findall(r"SLURM has not answered for (\d+) s", log.read_text())
        ]

    with sandbox.background_experiment(yaml) as experiment:
        wait_for(training, "the learning job to train", experiment)
        stop(daemon)
        wait_for(
            lambda: "SLURM stopped answering" in log.read_text(),
            "the experiment to say that SLURM stopped answering",
            experiment,
            60,
        )
        if daemon == "slurmdbd":
            wait_for(lambda: len(reminders()) >= 2, "two reminders", experiment, 60)
        start()
        experiment.wait(timeout=600)
    output = log.read_text()
    assert experiment.returncode == 0, output[-3000:]

    [stopped] = [
        line for line in output.splitlines() if "SLURM stopped answering" in line
    ]
    assert "keeps waiting" in stopped, stopped
    cause = "is DOWN" if daemon == "slurmctld" else "Problem talking to the database"
    assert cause in stopped, stopped
    assert output.count("SLURM answers again after") == 1, output[-3000:]
    if daemon == "slurmdbd":
        first, second, *_ = reminders()  # (10 s apart, at least)
        assert first >= 10 and second >= 20, reminders()
    # SLURM's own messages stay out of the log
    assert not re.search(r"(?m)^(sacct|squeue|slurm_load_jobs)", output), output

    jobs = sandbox.jobs("learn") + sandbox.jobs("evaluate")
    assert len(jobs) == 2
    for job in jobs:
        assert list(job.glob("*.done")), f"{job} did not end DONE"
    records = slurm_jobs(sandbox)
    assert [record["State"] for record in records] == ["COMPLETED"] * 2, records
    [results] = sandbox.results()
    assert results["accuracy"] > 0.8, results


FAKE_SACCT = """#!/bin/sh
# sacct as on a cluster whose configuration cannot be read for a while: the
# job is running, then {failures} calls fail, then the job has completed
count=$(cat "{counter}" 2>/dev/null || echo 0)
echo $((count + 1)) > "{counter}"
if [ "$count" -eq 0 ]; then
    echo "42|RUNNING|2026-01-01T10:00:00|Unknown|"
elif [ "$count" -le {failures} ]; then
    echo "sacct: fatal: Could not establish a configuration source" >&2
    exit 1
else
    echo "42|COMPLETED|2026-01-01T10:00:00|2026-01-01T10:05:00|"
fi
"""


def test_watcher_waits_for_sacct(tmp_path, monkeypatch, caplog, capfd):
    """experimaestro's own job watcher, with a sacct that fails as it does
    when the SLURM configuration cannot be read, then answers again: the job
    ends with its state, the log says once that SLURM stopped answering, then
    how long it has waited, then that it answers again, and sacct's errors
    never reach the terminal. (No cluster: fake sacct, scontrol and sbatch)"""
    bin = tmp_path / "bin"
    bin.mkdir()
    counter = tmp_path / "calls"
    scripts = {
        "sacct": FAKE_SACCT.format(failures=6, counter=counter),
        "scontrol": "#!/bin/sh\necho 'Slurmctld(primary) at fake is UP'\n",
        "sbatch": "#!/bin/sh\nexit 1\n",
    }
    for name, text in scripts.items():
        (bin / name).write_text(text)
        (bin / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("SLURM_CONF", raising=False)
    monkeypatch.setenv("XPKIT_SLURM_POLL", "0.2")
    monkeypatch.setenv("XPKIT_SLURM_REPORT", "0.5")
    caplog.set_level(logging.INFO, logger="xpm.launchers")
    launchers = load_launchers()
    from experimaestro.launcherfinder.parser import parse
    from experimaestro.launchers.slurm.base import BatchSlurmProcess

    launcher = launchers.slurm_launcher(parse("cpu(cores=1)").requirements[0], bin)
    process = BatchSlurmProcess(launcher, "42")
    codes = []
    waiting = threading.Thread(target=lambda: codes.append(process.wait()), daemon=True)
    waiting.start()
    waiting.join(timeout=60)
    assert codes == [0], "the job did not end COMPLETED"
    # 6 failures, 0.2 s apart: at least one reminder after 0.5 s
    messages = [record.getMessage() for record in caplog.records]
    [stopped] = [m for m in messages if m.startswith("SLURM stopped answering")]
    assert "Could not establish a configuration source" in stopped, stopped
    assert "keeps waiting" in stopped, stopped
    assert any(m.startswith("SLURM has not answered for ") for m in messages), messages
    assert sum(m.startswith("SLURM answers again after ") for m in messages) == 1
    assert int(counter.read_text()) >= 8
    assert "Could not establish" not in capfd.readouterr().err


# --- Without the cluster: what the environment variables do


def test_poll_interval(monkeypatch):
    launchers = load_launchers()
    monkeypatch.delenv("XPKIT_SLURM_POLL", raising=False)
    assert launchers.poll_interval() == 60
    monkeypatch.setenv("XPKIT_SLURM_POLL", "2.5")
    assert launchers.poll_interval() == 2.5
    for value in ("0", "-1", "soon", "nan"):
        monkeypatch.setenv("XPKIT_SLURM_POLL", value)
        with pytest.raises(launchers.LauncherError, match="XPKIT_SLURM_POLL"):
            launchers.poll_interval()


def test_report_interval(monkeypatch):
    launchers = load_launchers()
    from experimaestro.launcherfinder.parser import parse

    from xpkit.launcher_support import report_interval  # (loaded by launchers.py)

    monkeypatch.delenv("XPKIT_SLURM_REPORT", raising=False)
    assert report_interval() == 300
    monkeypatch.setenv("XPKIT_SLURM_REPORT", "5")
    assert report_interval() == 5
    monkeypatch.setenv("XPKIT_SLURM_REPORT", "often")
    # Stops find_launcher, before anything is submitted
    with pytest.raises(launchers.LauncherError, match="XPKIT_SLURM_REPORT='often'"):
        launchers.slurm_launcher(parse("cpu(cores=1)").requirements[0])


def test_sacct_looks_back_over_midnight():
    """sacct lists the jobs of the current day unless given a start time: the
    first call after midnight looks back to before the last answer"""
    load_launchers()
    from datetime import datetime

    from xpkit.slurm_polling import PatientConnector, sacct_start

    def at(text):
        return datetime.fromisoformat(f"2026-01-02T{text}")

    assert sacct_start(None, at("00:01:00")) is None  # (no answer yet)
    assert sacct_start(at("10:00:00"), at("10:01:00")) is None
    # The last answer came before midnight (an outage, or the last poll)
    assert (
        sacct_start(datetime(2026, 1, 1, 22), at("02:00:00")) == "2026-01-01T21:50:00"
    )
    assert sacct_start(at("00:05:00"), at("00:06:00")) == "2026-01-01T23:55:00"
    connector = PatientConnector(1, 300, lambda: None)
    connector.last_answer = datetime(2026, 1, 1, 23, 59)
    command = ["sacct", "-n", "-p"]
    assert connector.looking_back(command, at("00:00:30")) == [
        *command,
        "--starttime=2026-01-01T23:49:00",
    ]
    # A start time given by experimaestro is kept
    given = [*command, "-S", "now-1day"]
    assert connector.looking_back(given, at("00:00:30")) == given


def test_local_choice_never_asks_slurm(monkeypatch):
    launchers = load_launchers()
    monkeypatch.setenv("XPKIT_LAUNCHER", "local")
    monkeypatch.setattr(launchers, "probe_slurm", lambda: pytest.fail("probed"))
    from experimaestro.launchers.direct import DirectLauncher

    assert isinstance(launchers.find_launcher("cpu(cores=1)"), DirectLauncher)
    monkeypatch.setenv("XPKIT_LAUNCHER", "auto")
    launcher = launchers.find_launcher("cpu(cores=1)", tags=["local"])
    assert isinstance(launcher, DirectLauncher)


@pytest.mark.parametrize(
    ("asked", "machine", "given"),
    [(4, 2, 1), (4, 8, 4), (2, 8, 2), (4, 1, 1), (0, 4, 1)],
)
def test_local_jobs_get_at_most_half_the_cores(asked, machine, given):
    assert load_launchers().local_cores(asked, machine) == given


def test_requirement_to_sbatch_options():
    launchers = load_launchers()
    from experimaestro.launcherfinder.parser import parse

    def args(spec):
        requirement = parse(spec).requirements[0]
        return launchers.slurm_options(requirement).args()

    assert args("duration=90m & cpu(mem=2G)") == [
        "--nodes=1",
        "--time=1:30:00",
        "--mem=1908M",
        "--cpus-per-task=1",
    ]
    assert args("duration=2d & gpu(mem=8G)*2 & cpu(cores=8)") == [
        "--nodes=1",
        "--time=48:00:00",
        "--cpus-per-task=8",
        "--gpus-per-node=2",
    ]
    # No duration: the partition's default time limit
    assert args("cuda(mem=4G)") == [
        "--nodes=1",
        "--cpus-per-task=1",
        "--gpus-per-node=1",
    ]
