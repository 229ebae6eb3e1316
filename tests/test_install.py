"""The installation: ``pip install -r requirements.txt`` installs mnist_xp
(editable, from pyproject.toml), so that its commands work from any folder,
not only from the root of the repository."""

import sys

import pytest
from check_lowest_versions import lower_bounds
from conftest import BIN, REPO, SAMPLE_YAML, Sandbox


@pytest.fixture(scope="module")
def elsewhere(tmp_path_factory) -> Sandbox:
    """A sandbox where the sample experiment has run once, started from a
    folder outside the repository (its ``folder``)"""
    root = tmp_path_factory.mktemp("install")
    sandbox = Sandbox(root)
    sandbox.folder = root / "elsewhere"
    sandbox.folder.mkdir()
    assert REPO not in sandbox.folder.parents
    sandbox.first_run = sandbox.run(
        [str(BIN / "experimaestro"), "run-experiment", str(SAMPLE_YAML)],
        cwd=sandbox.folder,
    )
    return sandbox


def test_mnist_xp_is_the_repository_code_from_any_folder(elsewhere):
    where = elsewhere.run(
        [sys.executable, "-c", "import mnist_xp; print(mnist_xp.__file__)"],
        cwd=elsewhere.folder,
    )
    # Editable: the tutorial's files themselves, not a copy
    assert where.stdout.strip() == str(REPO / "mnist_xp" / "__init__.py")
    usage = elsewhere.run(
        [sys.executable, "-m", "xpkit.analyze", "--help"], cwd=elsewhere.folder
    )
    assert usage.stdout.startswith("usage: python -m xpkit.analyze")


def test_experiment_runs_from_any_folder(elsewhere):
    jobs = elsewhere.jobs("learn") + elsewhere.jobs("evaluate")
    assert len(jobs) == 2
    for job in jobs:
        assert list(job.glob("*.done")), f"{job} did not end DONE"
        # e.g. a TensorFlow pulled in by tensorboard, built for another NumPy
        for log in job.glob("*.err"):
            assert "Traceback" not in log.read_text(), log
    [results] = elsewhere.results()
    assert results["accuracy"] > 0.8, results
    # Nothing written in the folder the command ran from
    assert not list(elsewhere.folder.iterdir())


def test_analysis_runs_from_any_folder(elsewhere):
    process = elsewhere.run(
        [
            sys.executable,
            "-m",
            "xpkit.analyze",
            "--experiment",
            "MNIST_sample",
            "--no-tensorboard",
        ],
        cwd=elsewhere.folder,
    )
    assert "1 grid points, 1 done" in process.stdout, process.stdout
    assert not list(elsewhere.folder.iterdir())


def test_every_dependency_is_in_pyproject_with_a_lower_bound():
    lines = (REPO / "requirements.txt").read_text().splitlines()
    # One place per version bound: pyproject.toml
    assert [line for line in lines if line and line[0] != "#"] == ["-e .[dev]"]
    # What tests/check_lowest_versions.py installs (it raises on a missing one)
    bounds = lower_bounds()
    assert {"experimaestro", "torch", "torchvision", "pytest"} <= bounds.keys()
