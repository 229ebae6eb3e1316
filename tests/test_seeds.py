"""Several seeds per grid point: the results table of a real three-seed run
(one row per point, mean and std over the seeds), its files and its figure;
a seed that fails, on a per-job table made by hand; and seeds.yaml."""

import math
import re
import statistics

import pandas as pd
import pytest
from conftest import REPO, SAMPLE_YAML, Sandbox
from matplotlib.container import ErrorbarContainer

from xpkit.figures import accuracy_figure, accuracy_panels
from xpkit.results_table import FOLDERS, METRICS, experiment_table, failed_points
from xpkit.seeds import STATISTICS, by_point, format_by_point, several_seeds

ID = "MNIST_seeds_test"
POINT = {"n_layers": 1, "hidden_dim": 8, "kernel_size": 3, "lr": 0.001}
"""The one grid point of tests/sample.yaml, but for its seed"""


@pytest.fixture(scope="module")
def seeded(tmp_path_factory) -> Sandbox:
    """A sandbox where the sample experiment has run once with 3 seeds"""
    root = tmp_path_factory.mktemp("seeds")
    sandbox = Sandbox(root)
    yaml = root / "seeds_test.yaml"
    yaml.write_text(
        f"imports: [{SAMPLE_YAML}]\nid: {ID}\nseed: [0, 1, 2]\nepochs: 1\n"
        "figures: true\n"
    )
    sandbox.run_output = sandbox.experiment(yaml)
    return sandbox


@pytest.fixture(scope="module")
def accuracies(seeded) -> list[float]:
    """The test accuracies of the 3 Evaluate jobs, from their results.json"""
    values = [result["accuracy"] for result in seeded.results()]
    assert len(values) == 3
    return values


def results_folder(sandbox: Sandbox):
    return sandbox.workspace / "experiments" / ID / "current" / "results"


def markdown_rows(text: str) -> list[dict]:
    """The rows of the first Markdown table in ``text``, as {column: cell}"""
    lines = [line for line in text.splitlines() if line.startswith("|")]
    header, _, *rows = (
        [cell.strip() for cell in line.strip().strip("|").split("|")] for line in lines
    )
    return [dict(zip(header, row, strict=True)) for row in rows]


def test_the_printed_table_has_a_row_per_point_with_mean_and_std(seeded, accuracies):
    out = seeded.run_output.stdout
    assert f"{ID}, run " in out
    assert "1 grid points x 3 seeds (0, 1, 2), 3 runs, 3 done, 0 failed" in out
    [row] = markdown_rows(out)
    assert list(row) == [*POINT, "n_seeds", *STATISTICS, "missing_seeds"]
    assert {name: row[name] for name in POINT} == {
        "n_layers": "1",
        "hidden_dim": "8",
        "kernel_size": "3",
        "lr": "0.001",
    }
    assert row["n_seeds"] == "3" and row["missing_seeds"] == ""
    assert float(row["test_accuracy_mean"]) == round(statistics.mean(accuracies), 4)
    assert float(row["test_accuracy_std"]) == round(statistics.stdev(accuracies), 4)
    assert float(row["test_accuracy_std"]) > 0
    # The command prints the same table, and results.md holds it
    command = seeded.run(f"python -m xpkit.analyze --experiment {ID}")
    assert markdown_rows(command.stdout) == [row]
    assert markdown_rows((results_folder(seeded) / "results.md").read_text()) == [row]


def test_csv_files_per_job_and_per_point(seeded, accuracies):
    folder = results_folder(seeded)
    jobs = pd.read_csv(folder / "results.csv")
    assert len(jobs) == 3 and sorted(jobs.seed) == [0, 1, 2]
    assert list(jobs.columns[-len(METRICS) - len(FOLDERS) :]) == [*METRICS, *FOLDERS]
    assert sorted(jobs.test_accuracy) == sorted(accuracies)
    [point] = pd.read_csv(folder / "results_by_point.csv").to_dict("records")
    assert point["n_seeds"] == 3
    assert point["test_accuracy_mean"] == pytest.approx(statistics.mean(accuracies))
    assert point["test_accuracy_std"] == pytest.approx(statistics.stdev(accuracies))
    for name in ("test_loss", "validation_accuracy", "validation_loss"):
        assert point[f"{name}_mean"] == pytest.approx(jobs[name].mean())
        assert point[f"{name}_std"] == pytest.approx(statistics.stdev(jobs[name]))
        assert point[f"{name}_std"] > 0


def test_the_figure_has_error_bars(seeded, accuracies):
    assert (results_folder(seeded) / "test_accuracy.png").stat().st_size > 5_000
    table = experiment_table(seeded.workspace, ID)
    assert several_seeds(table) and len(table) == 3
    [(parameter, ticks, [(_, x, means, stds)], _)] = accuracy_panels(table)
    assert parameter == "grid point" and x == [0]
    assert ticks == ["n_layers=1,hidden_dim=8,kernel_size=3,lr=0.001"]
    assert means == [pytest.approx(statistics.mean(accuracies))]
    assert stds == [pytest.approx(statistics.stdev(accuracies))]
    [axis] = accuracy_figure(table).axes
    [bars] = [c for c in axis.containers if isinstance(c, ErrorbarContainer)]
    assert bars.has_yerr


# --- A seed that fails, on a per-job table as experiment_table makes it


def job_row(n_layers, seed, accuracy, learn="DONE", evaluate="DONE") -> dict:
    """A row of a per-job table; metrics NaN unless both jobs are DONE"""
    done = learn == evaluate == "DONE"
    row = {"n_layers": n_layers, "hidden_dim": 8, "seed": seed}
    row |= {"learn_state": learn, "evaluate_state": evaluate}
    for name in METRICS:
        value = accuracy if "accuracy" in name else 1 - accuracy
        row[name] = value if done else math.nan
    folder = f"/ws/jobs/mnist_xp.learn.learn/{n_layers}{seed}"
    return row | {"learn_folder": folder, "evaluate_folder": folder + "e"}


@pytest.fixture
def failing() -> pd.DataFrame:
    """2 points x 3 seeds: seed 2 of n_layers=2 failed (its Evaluate too);
    seed 1 of n_layers=1 is still being evaluated; n_layers=3 has one seed"""
    rows = [
        job_row(1, 0, 0.90),
        job_row(1, 1, math.nan, evaluate="RUNNING"),
        job_row(1, 2, 0.94),
        job_row(2, 0, 0.97),
        job_row(2, 1, 0.95),
        job_row(2, 2, math.nan, learn="FAIL", evaluate="FAIL (dependency)"),
        job_row(3, 0, 0.99),
    ]
    return pd.DataFrame(rows)


def test_a_failed_seed_is_counted_and_named(failing):
    points = by_point(failing).set_index("n_layers")
    assert points.loc[2, "n_seeds"] == 2
    assert points.loc[2, "missing_seeds"] == "2 (learn FAIL)"
    assert points.loc[2, "test_accuracy_mean"] == pytest.approx(0.96)
    assert points.loc[2, "test_accuracy_std"] == pytest.approx(
        statistics.stdev([0.97, 0.95])
    )
    assert points.loc[2, "test_loss_mean"] == pytest.approx(0.04)
    assert points.loc[1, "n_seeds"] == 2
    assert points.loc[1, "missing_seeds"] == "1 (evaluate RUNNING)"
    assert points.loc[1, "validation_accuracy_mean"] == pytest.approx(0.92)
    # One seed done: a mean, no std; the seeds without a job are named
    assert points.loc[3, "n_seeds"] == 1
    assert points.loc[3, "test_accuracy_mean"] == pytest.approx(0.99)
    assert math.isnan(points.loc[3, "test_accuracy_std"])
    assert points.loc[3, "missing_seeds"] == "1 (no job); 2 (no job)"


def test_points_are_sorted_by_mean_and_printed(failing):
    points = by_point(failing)
    assert list(points.n_layers) == [3, 2, 1]
    assert list(points.columns) == [
        "n_layers",
        "hidden_dim",
        "n_seeds",
        *STATISTICS,
        "missing_seeds",
    ]
    rows = markdown_rows(format_by_point(points))
    assert [row["test_accuracy_mean"] for row in rows] == ["0.9900", "0.9600", "0.9200"]
    assert rows[0]["test_accuracy_std"] == "nan"
    assert rows[1]["missing_seeds"] == "2 (learn FAIL)"


def test_failed_points_stay_per_job_naming_the_seed(failing):
    [line] = failed_points(failing)
    assert line.startswith("n_layers=2,hidden_dim=8,seed=2: learn FAIL,")
    assert line.endswith("/ws/jobs/mnist_xp.learn.learn/22/learn.err")


def test_the_figure_draws_the_means_with_their_stds(failing):
    [(parameter, ticks, [(_, x, means, stds)], legend)] = accuracy_panels(failing)
    assert (parameter, ticks, x, legend) == ("n_layers", ["1", "2", "3"], [0, 1, 2], "")
    assert means == [pytest.approx(0.92), pytest.approx(0.96), pytest.approx(0.99)]
    assert stds[1] == pytest.approx(statistics.stdev([0.97, 0.95]))
    assert math.isnan(stds[2])
    [axis] = accuracy_figure(failing).axes
    assert any(isinstance(c, ErrorbarContainer) for c in axis.containers)


def test_one_seed_keeps_the_per_job_table(failing):
    one = failing[failing.seed == 0].reset_index(drop=True)
    assert not several_seeds(one)
    [(_, _, [(_, _, _, stds)], _)] = accuracy_panels(one)
    assert stds is None


# --- seeds.yaml


def simulated(output: str) -> dict[str, str]:
    """The Learn jobs of a dry run: tags -> identifier"""
    found = re.findall(
        r"Simulating mnist_xp\.learn\.learn/([0-9a-f]{64}) \((.*)\)", output
    )
    return {tags: identifier for identifier, tags in found}


def test_seeds_yaml_learns_each_point_of_params_yaml_with_3_seeds(sandbox):
    # The sample has 5,000 training images: hold out fewer than params.yaml
    fewer = ("-c", "n_validation=1000", "--run-mode", "dry_run")
    seeds = sandbox.experiment(REPO / "seeds.yaml", *fewer)
    assert "Running experiment MNIST_seeds " in seeds.stderr
    learn = simulated(seeds.stdout + seeds.stderr)
    assert sorted(learn) == [
        f"n_layers={n}, hidden_dim=32, kernel_size=3, lr=0.001, seed={seed}"
        for n in (1, 2)
        for seed in (0, 1, 2)
    ]
    # Seed 0 is params.yaml's: the same jobs, done once for both files
    params = sandbox.experiment(REPO / "params.yaml", *fewer)
    assert simulated(params.stdout + params.stderr).items() <= learn.items()
