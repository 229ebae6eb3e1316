"""The commands of the README's "Results" and "Monitoring" sections
(docs/drafts/results.md), run as written, in a sandbox where the workspace is
the default one, ``~/experiments/mnist-xp``, and MNIST the small sample."""

import json
import re
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import REPO, Sandbox, free_port, wait_for

LONG_YAML = REPO / "tests" / "long.yaml"

# The commands, as the README gives them
LIST = "experimaestro jobs --workspace mnist-xp list --tags --experiment MNIST_train"
EXPERIMENTS = "experimaestro experiments --workspace mnist-xp list"
LOG = "experimaestro jobs --workspace mnist-xp log {job}"
LOG_STEPS = (
    'experimaestro jobs --workspace mnist-xp log {job} | grep -o "step [0-9]*: .*"'
)
PATH = "experimaestro jobs --workspace mnist-xp path {job}"
KILL = "experimaestro jobs --workspace mnist-xp kill --experiment MNIST_train"
KILL_PERFORM = (
    "experimaestro jobs --workspace mnist-xp kill --experiment MNIST_train --perform"
)
CLEAN = """experimaestro jobs --workspace mnist-xp clean --experiment MNIST_train --filter '@state = "error"'"""
CLEAN_PERFORM = """experimaestro jobs --workspace mnist-xp clean --experiment MNIST_train --filter '@state = "error"' --perform"""
ANALYZE = "python -m xpkit.analyze"
FIGURES = (
    "python -m xpkit.analyze --experiment MNIST_train"
    " --output docs/figures --no-tensorboard"
)
TENSORBOARD = (
    "tensorboard --logdir"
    " ~/experiments/mnist-xp/experiments/MNIST_train/current/results/tensorboard"
)

POINTS = [f"n_layers={n},hidden_dim=32,kernel_size=3,lr=0.001,seed=0" for n in (1, 2)]
"""The grid points of params.yaml"""


def default_sandbox(root: Path) -> Sandbox:
    """A sandbox whose workspace is also at ``~/experiments/mnist-xp``, the
    default of ``python -m xpkit.configure``"""
    sandbox = Sandbox(root)
    (sandbox.home / "experiments").mkdir()
    (sandbox.home / "experiments" / "mnist-xp").symlink_to(sandbox.workspace)
    return sandbox


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Sandbox:
    """params.yaml has run once (2 grid points); the sample has 5,000 images,
    too few for the 10,000 held out by default"""
    sandbox = default_sandbox(tmp_path_factory.mktemp("monitoring"))
    sandbox.first_run = sandbox.experiment("params.yaml", "-c", "n_validation=1000")
    return sandbox


def listed_jobs(output: str) -> list[tuple[str, str, str]]:
    """(state, task/hash, tags) of each job line of ``experimaestro jobs``"""
    pattern = r"^(\w+) +(mnist_xp\.learn\.\w+/[0-9a-f]{64}) ?(.*)$"
    return re.findall(pattern, output, flags=re.MULTILINE)


def test_jobs_list(trained):
    jobs = listed_jobs(trained.run(LIST).stdout)
    assert len(jobs) == 4
    for n_layers in (1, 2):
        tags = f"n_layers={n_layers} hidden_dim=32 kernel_size=3 lr=0.001 seed=0"
        assert sorted(
            (state, job.split("/")[0]) for state, job, t in jobs if t == tags
        ) == [("DONE", "mnist_xp.learn.evaluate"), ("DONE", "mnist_xp.learn.learn")]


def test_experiments_list(trained):
    output = trained.run(EXPERIMENTS).stdout
    assert re.search(r"^MNIST_train \[.+\] \(4/4 jobs\)$", output, re.MULTILINE)


def test_jobs_log_and_path(trained):
    [job] = [
        job
        for state, job, tags in listed_jobs(trained.run(LIST).stdout)
        if job.startswith("mnist_xp.learn.learn/") and tags.startswith("n_layers=1")
    ]
    log = trained.run(LOG.format(job=job)).stdout
    assert "Computing on cpu" in log
    # 4,000 training images: 62 steps, fewer than n_val (100): validated once
    steps = trained.run(LOG_STEPS.format(job=job)).stdout.splitlines()
    assert len(steps) == 1, steps
    assert re.fullmatch(
        r"step 62: train loss [\d.]+, validation loss [\d.]+, accuracy [\d.]+",
        steps[0],
    )
    path = trained.run(PATH.format(job=job)).stdout.strip()
    assert Path(path) == trained.workspace / "jobs" / job
    assert json.loads((Path(path) / "learn.json").read_text())["steps"] == 62


def test_analyze(trained):
    output = trained.run(ANALYZE).stdout
    assert re.search(r"^MNIST_train, run \S+: 2 grid points, 2 done, 0 failed", output)
    rows = [line for line in output.splitlines() if re.match(r"\|\s+\d", line)]
    assert len(rows) == 2 and all("| DONE " in row for row in rows)
    folder = (trained.workspace / "experiments/MNIST_train/current").resolve()
    tensorboard = folder / "results" / "tensorboard"
    assert f"TensorBoard (2 runs): tensorboard --logdir {tensorboard}" in output
    assert sorted(p.name for p in tensorboard.iterdir()) == POINTS


def test_regenerating_the_figures(trained, tmp_path):
    """The maintainers' command for docs/figures, in a copy of the layout"""
    trained.env["PYTHONPATH"] = str(REPO)
    try:
        trained.run(FIGURES, cwd=tmp_path)
    finally:
        del trained.env["PYTHONPATH"]
    assert sorted(p.name for p in (tmp_path / "docs/figures").iterdir()) == [
        "curves.png",
        "results.csv",
        "results.md",
        "test_accuracy.png",
    ]


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.load(answer)


def test_tensorboard_shows_one_run_per_grid_point(trained):
    trained.run(ANALYZE)
    port = free_port()
    # The README's command, on a free port rather than 6006
    server = subprocess.Popen(
        ["bash", "-c", f"exec {TENSORBOARD} --host 127.0.0.1 --port {port}"],
        env=trained.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        runs, deadline = [], time.monotonic() + 90
        while len(runs) < 2 and time.monotonic() < deadline:
            assert server.poll() is None, "tensorboard stopped"
            time.sleep(1)
            try:
                runs = get_json(f"http://127.0.0.1:{port}/data/runs")
            except OSError:
                continue
        assert sorted(runs) == POINTS
        tags = get_json(f"http://127.0.0.1:{port}/data/plugin/scalars/tags")
        for point in POINTS:
            assert set(tags[point]) == {
                "train/loss",
                "validation/loss",
                "validation/accuracy",
            }
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_kill_then_clean_a_running_job(tmp_path):
    sandbox = default_sandbox(tmp_path)
    with sandbox.background_experiment(LONG_YAML) as experiment:

        def running():
            # (fails until the experiment has made its workspace)
            jobs = listed_jobs(sandbox.run(LIST, check=False).stdout)
            return [job for state, job, _ in jobs if state == "running"]

        [learn] = wait_for(running, "the Learn job to run", experiment)
        assert learn.startswith("mnist_xp.learn.learn/")

        # While it runs, the analysis shows where each job is
        live = sandbox.run(ANALYZE).stdout
        assert re.search(r"1 grid points, 0 done, 0 failed, 1 unfinished", live)
        assert re.search(r"\| RUNNING +\| WAITING +\|", live), live

        dry = sandbox.run(KILL).stdout
        assert f"KILLING {learn} (dry run)" in dry
        assert experiment.poll() is None
        killed = sandbox.run(KILL_PERFORM).stdout
        assert f"KILLED  {learn}" in killed

        assert experiment.wait(timeout=300) == 1
    output = sandbox.experiment_log.read_text()
    assert "1 of 1 grid points failed" in output
    assert re.search(r"\| FAIL +\| FAIL \(dependency\) +\|", output), output

    # Cleaning: a dry run first, then for real (the killed job only: the
    # Evaluate job never started)
    folder = sandbox.workspace / "jobs" / learn
    assert folder.is_dir()
    dry = sandbox.run(CLEAN).stdout
    assert "Would clean (dry run)" in dry and folder.is_dir()
    cleaned = sandbox.run(CLEAN_PERFORM).stdout
    assert f"FAIL    {learn}\n  Cleaned" in cleaned
    assert not folder.exists()
