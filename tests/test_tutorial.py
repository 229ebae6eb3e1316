"""What the README's tutorial promises, through the real ``experimaestro``
command: the workspace tree it draws, its three exercises, the minimal
launchers.py of the launchers guide and the settings the set-up writes."""

import re
import shlex
import shutil
from pathlib import Path

import pytest
from conftest import BIN, REPO, Sandbox

README = (REPO / "README.md").read_text()

PARAMS = "experimaestro run-experiment params.yaml"
"""The README's main command"""

ON_THE_SAMPLE = "-c n_validation=1000"
"""Appended to the README's commands: the tests' MNIST sample has 5,000
training images, fewer than the 10,000 that params.yaml holds out"""

EXERCISE_META = "experimaestro run-experiment params.yaml -c n_val=50"
EXERCISE_SEED = "experimaestro run-experiment params.yaml -c seed=1"


def job_states(sandbox: Sandbox) -> dict[Path, int]:
    """Every job folder, with the time its log was last written"""
    jobs = sandbox.jobs("learn") + sandbox.jobs("evaluate")
    return {job: next(job.glob("*.err")).stat().st_mtime_ns for job in jobs}


@pytest.fixture(scope="module")
def grid(tmp_path_factory) -> Sandbox:
    """A sandbox where params.yaml ran once (on the sample)"""
    sandbox = Sandbox(tmp_path_factory.mktemp("tutorial"))
    sandbox.run(f"{PARAMS} {ON_THE_SAMPLE}")
    return sandbox


def tree_paths(block: str) -> list[str]:
    """The paths a ``tree``-style drawing names, as glob patterns relative to
    the workspace: an identifier shortened with … and a run id match any"""
    paths, stack = [], []
    for line in block.splitlines()[1:]:  # the first line is the workspace
        match = re.match(r"^([│ ]*[├└]── )(\S+)", line)
        assert match, f"not a tree line: {line!r}"
        depth = len(match[1]) // 4 - 1
        name = match[2].rstrip("/")
        name = re.sub(r"^[0-9a-f]{8}…$", "*", name)
        name = re.sub(r"^\d{8}_\d{6}$", "*", name)
        stack[depth:] = [name]
        paths.append("/".join(stack))
    return paths


def test_workspace_tree_exists_after_a_run(grid):
    [block] = re.findall(
        r"<!-- workspace tree -->\n```text\n(.*?)```", README, re.DOTALL
    )
    paths = tree_paths(block)
    assert len(paths) > 15
    for path in paths:
        assert list(grid.workspace.glob(path)), f"{path} not in the workspace"
    assert (grid.workspace / "experiments" / "MNIST_train" / "current").is_symlink()


def test_exercise_meta_parameter_runs_nothing(grid):
    before = job_states(grid)
    again = grid.run(f"{EXERCISE_META} {ON_THE_SAMPLE}")
    assert job_states(grid) == before, "a job ran again, or a new one appeared"
    assert "Process started" not in again.stderr


def test_exercise_new_seed_new_jobs(grid):
    before = job_states(grid)
    grid.run(f"{EXERCISE_SEED} {ON_THE_SAMPLE}")
    after = job_states(grid)
    new = set(after) - set(before)
    assert len(new) == 4, new  # a Learn and an Evaluate per grid point
    assert all(after[job] == time for job, time in before.items())


def test_exercise_bumped_version_runs_every_learn_job_again(grid, tmp_path):
    # A copy of the tutorial with Learn's version bumped, as the reader edits it
    copy = tmp_path / "repository"
    shutil.copytree(REPO / "mnist_xp", copy / "mnist_xp")
    for name in ("params.yaml", "debug.yaml"):
        shutil.copy(REPO / name, copy)
    learn = copy / "mnist_xp" / "learn.py"
    source = learn.read_text()
    old = "class Learn(ResumableTask):"
    head, tail = source.split(old)
    bumped = tail.replace("version: Constant[int] = 1", "version: Constant[int] = 2", 1)
    learn.write_text(head + old + bumped)

    learn_before = set(grid.jobs("learn"))
    evaluate_before = set(grid.jobs("evaluate"))
    grid.run(f"{PARAMS} {ON_THE_SAMPLE}", cwd=copy)
    # Two new Learn jobs for seed 0, and their Evaluate jobs with them
    assert len(set(grid.jobs("learn")) - learn_before) == 2
    assert len(set(grid.jobs("evaluate")) - evaluate_before) == 2


def fake_sbatch(folder: Path) -> Path:
    folder.mkdir()
    sbatch = folder / "sbatch"
    sbatch.write_text("#!/bin/sh\necho 1\n")
    sbatch.chmod(0o755)
    return folder


def test_minimal_launchers(sandbox, tmp_path):
    command = 'experimaestro find-launchers --config docs/minimal-launchers "duration=1h & cpu(cores=4)"'
    sandbox.env["PATH"] = str(BIN)  # no sbatch: this machine
    found = sandbox.run(shlex.split(command)).stdout
    assert found.strip() == "DirectLauncher(LocalConnector)"
    # Where sbatch is installed: SLURM, with what the requirement asks
    sandbox.env["PATH"] = f"{BIN}:{fake_sbatch(tmp_path / 'slurm')}"
    found = sandbox.run(shlex.split(command)).stdout
    assert found.startswith("SlurmLauncher(") and "time='60'" in found, found
    assert "cpus_per_task='4'" in found


def test_minimal_launchers_shown_in_full():
    shown = "<!-- from docs/minimal-launchers/launchers.py -->\n```python\n"
    source = (REPO / "docs" / "minimal-launchers" / "launchers.py").read_text()
    assert f"{shown}{source}```" in (REPO / "docs" / "launchers.md").read_text()


def test_settings_shown_are_written(sandbox):
    [block] = re.findall(
        r"<!-- settings written -->\n```yaml\n(.*?)```", README, re.DOTALL
    )
    written = (sandbox.home / ".config" / "experimaestro" / "settings.yaml").read_text()
    shown = block.replace("~/experiments/mnist-xp", str(sandbox.workspace))
    assert written == shown
