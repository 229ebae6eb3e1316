"""The grid forms of the YAML file (a value, a list, range, range_mult, and
-c), with experimaestro 2.7's defects around them: each gives the expected
jobs, with the right types and tags, or one clear message before any job."""

import re

import pytest
from conftest import SAMPLE_YAML
from experimaestro.utils.config import validate_attrs

from mnist_xp.experiment import Configuration
from xpkit.checks import ConfigurationError
from xpkit.grid import combinations, read_grid

BASE = {
    "id": "MNIST_grid_forms",
    "n_layers": [1],
    "hidden_dim": [32],
    "kernel_size": [3],
    "lr": "1e-3",  # as YAML reads 1e-3: a string
    "seed": 0,
    "epochs": 1,
    "batch_size": 64,
    "n_val": 100,
    "n_validation": 1000,
    "checkpoint_every": 500,
    "time_margin": 120,
    "launcher": "cpu(cores=1)",
}


def grid_of(**values) -> dict:
    return read_grid(validate_attrs(Configuration, {**BASE, **values}))


@pytest.mark.parametrize(
    "key, value, expected",
    [
        ("hidden_dim", 16, [16]),  # a single value
        ("hidden_dim", [32], [32]),  # a one-element list (2.7.0's generate_grid: None)
        ("hidden_dim", "9", [9]),  # as -c hidden_dim=9 gives it
        ("n_layers", [1, 2], [1, 2]),
        ("n_layers", "[1,2]", [1, 2]),  # -c n_layers=[1,2]
        ("hidden_dim", {"range": [16, 65, 16]}, [16, 32, 48, 64]),
        ("hidden_dim", {"range_mult": [8, 3, 2]}, [8, 16, 32]),
        ("lr", {"range_mult": ["1e-4", 3, 10]}, [1e-4, 1e-3, 1e-2]),
        ("lr", "1e-3", [1e-3]),  # a string from YAML: a number
        ("seed", [0, 1, 2], [0, 1, 2]),
    ],
)
def test_forms_give_values_of_the_right_type(key, value, expected):
    values = grid_of(**{key: value})[key]
    assert values == pytest.approx(expected)
    kind = float if key == "lr" else int
    assert all(type(v) is kind for v in values), values


@pytest.mark.parametrize(
    "key, value, words",
    [
        # 1, 1.5, 2.25, 3.375: truncated by 2.7.0, duplicate jobs
        ("hidden_dim", {"range_mult": [1, 4, 1.5]}, ["hidden_dim", "1.5", "integer"]),
        ("n_layers", [1, "abc"], ["n_layers", "'abc'", "integer"]),
        ("lr", [1e-3, "fast"], ["lr", "'fast'", "number"]),
        ("kernel_size", [3, 3.0], ["kernel_size", "twice"]),
        ("hidden_dim", [], ["hidden_dim", "non-empty"]),
        ("hidden_dim", {"range": [8, 9, 0]}, ["hidden_dim", "step"]),
        ("hidden_dim", {"range_mult": [8, 3]}, ["hidden_dim", "start, count, factor"]),
        ("seed", True, ["seed", "True"]),
    ],
)
def test_bad_forms_are_refused(key, value, words):
    with pytest.raises(ConfigurationError) as error:
        grid_of(**{key: value})
    for word in words:
        assert word in str(error.value), str(error.value)


def test_combinations_of_the_grid():
    points = combinations(grid_of(n_layers=[1, 2], seed=[0, 1]))
    assert len(points) == 4
    assert {(p["n_layers"], p["seed"]) for p in points} == {
        (1, 0),
        (1, 1),
        (2, 0),
        (2, 1),
    }


def simulated(output: str) -> list[str]:
    """The jobs a dry run lists: task and tags"""
    return re.findall(
        r"Simulating mnist_xp\.learn\.(\w+)/[0-9a-f]{64} \((.*)\)", output
    )


def test_dry_run_lists_the_jobs_and_runs_none(sandbox, tmp_path):
    yaml = tmp_path / "forms.yaml"
    yaml.write_text(
        f"imports: [{SAMPLE_YAML}]\nid: MNIST_forms\n"
        "hidden_dim: {range: [8, 17, 8]}\nlr: {range_mult: [1e-3, 2, 10]}\n"
    )
    process = sandbox.experiment(yaml, "--run-mode", "dry_run")
    jobs = simulated(process.stdout + process.stderr)
    assert len(jobs) == 8, jobs  # 2 hidden_dim x 2 lr, a Learn and an Evaluate each
    tags = {tags for task, tags in jobs if task == "learn"}
    assert "n_layers=1, hidden_dim=16, kernel_size=3, lr=0.01, seed=0" in tags, tags
    assert not (sandbox.workspace / "jobs").exists(), "a dry run ran a job"


def test_override_keeps_the_tag(sandbox):
    process = sandbox.experiment(
        SAMPLE_YAML, "-c", "hidden_dim=9", "--run-mode", "dry_run"
    )
    jobs = simulated(process.stdout + process.stderr)
    assert {tags for _, tags in jobs} == {
        "n_layers=1, hidden_dim=9, kernel_size=3, lr=0.001, seed=0"
    }


def test_bad_form_stops_before_any_job(sandbox, tmp_path):
    yaml = tmp_path / "bad.yaml"
    yaml.write_text(
        f"imports: [{SAMPLE_YAML}]\nid: MNIST_forms\n"
        "hidden_dim: {range_mult: [10, 3, 1.5]}\n"
    )
    process = sandbox.experiment(yaml, check=False)
    assert process.returncode != 0
    [line] = [x for x in process.stderr.splitlines() if "hidden_dim" in x]
    assert "22.5" in line and "integer" in line, line
    assert not (sandbox.workspace / "jobs").exists()
