"""The analysis (``python -m xpkit.analyze``, and the end of the experiment)
on a real run of a 2 x 2 grid (tests/grid.yaml) where two points fail for
real: the table, its files, the figures and the TensorBoard folder."""

import itertools
import json
import math
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from conftest import REPO, Sandbox
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer

from xpkit.figures import accuracy_panels
from xpkit.results_table import experiment_table, failed_points
from xpkit.tensorboard_files import learning_curves

GRID_YAML = REPO / "tests" / "grid.yaml"
TOO_BIG = 10_000_000_000_000
"""hidden_dim of the points that cannot run (tests/grid.yaml)"""

TAGS = ["n_layers", "hidden_dim", "kernel_size", "lr", "seed"]
REST = "lr=0.001,seed=0"
"""The tags of lr and seed, the same for every point of tests/grid.yaml"""
SCALARS = {"train/loss", "validation/loss", "validation/accuracy"}
CADENCE = [20, 40, 60, 80, 100, 120, 124]
"""Validation steps of the sample: n_val 20, 62 steps per epoch, 2 epochs"""


@pytest.fixture(scope="module")
def grid(tmp_path_factory) -> Sandbox:
    """A sandbox where tests/grid.yaml has run once (it fails: two points
    cannot run)"""
    sandbox = Sandbox(tmp_path_factory.mktemp("grid"))
    sandbox.first_run = sandbox.experiment(GRID_YAML, check=False)
    return sandbox


@pytest.fixture(scope="module")
def table(grid) -> pd.DataFrame:
    return experiment_table(grid.workspace, "MNIST_grid")


def results_folder(sandbox: Sandbox, experiment="MNIST_grid") -> Path:
    """The analysis files of the current run"""
    return sandbox.workspace / "experiments" / experiment / "current" / "results"


def markdown_rows(text: str) -> list[dict]:
    """The rows of the first Markdown table in ``text``, as {column: cell}"""
    lines = [line for line in text.splitlines() if line.startswith("|")]
    header, _, *rows = (
        [cell.strip() for cell in line.strip().strip("|").split("|")] for line in lines
    )
    return [dict(zip(header, row, strict=True)) for row in rows]


def test_the_experiment_fails_naming_the_failed_points(grid):
    run = grid.first_run
    assert run.returncode == 1, run.stderr[-3000:]
    assert "2 of 4 grid points failed" in run.stderr
    for n_layers in (1, 2):
        label = f"n_layers={n_layers},hidden_dim={TOO_BIG},kernel_size=3,{REST}"
        assert f"{label}: learn FAIL, evaluate FAIL (dependency)" in run.stderr
    assert f"hidden_dim=8,kernel_size=3,{REST}:" not in run.stderr


def test_one_row_per_grid_point_with_its_results(grid, table):
    assert list(table.columns[:5]) == TAGS
    assert len(table) == 4
    points = {tuple(row) for row in table[TAGS].itertuples(index=False)}
    assert points == set(itertools.product([1, 2], [8, TOO_BIG], [3], [0.001], [0]))
    done = table[table.hidden_dim == 8]
    assert len(done) == 2
    for row in done.itertuples():
        assert (row.learn_state, row.evaluate_state) == ("DONE", "DONE")
        results = json.loads((Path(row.evaluate_folder) / "results.json").read_text())
        assert row.test_accuracy == results["accuracy"]
        assert row.test_loss == results["loss"]
        summary = json.loads((Path(row.learn_folder) / "learn.json").read_text())
        assert row.validation_accuracy == summary["validation_accuracy"]
        assert row.validation_loss == summary["validation_loss"]
        assert row.train_seconds == summary["train_seconds"] > 0
        # The folders are the ones experimaestro lists for this experiment
        for folder in (row.learn_folder, row.evaluate_folder):
            assert Path(folder).parent.parent == grid.workspace / "jobs"
        assert 0.5 < row.test_accuracy <= 1


def test_sorted_best_test_accuracy_first(table):
    accuracies = list(table.test_accuracy)
    assert accuracies[:2] == sorted(accuracies[:2], reverse=True)
    assert not any(math.isnan(a) for a in accuracies[:2])
    assert all(math.isnan(a) for a in accuracies[2:])


def test_failed_points_are_shown_with_their_state(table):
    failed = table[table.hidden_dim == TOO_BIG]
    assert len(failed) == 2
    for row in failed.itertuples():
        assert row.learn_state == "FAIL"
        assert row.evaluate_state == "FAIL (dependency)"
        for name in (
            "test_accuracy",
            "test_loss",
            "validation_accuracy",
            "validation_loss",
            "train_seconds",
        ):
            assert math.isnan(getattr(row, name))
        log = (Path(row.learn_folder) / "learn.err").read_text()
        assert "can't allocate memory" in log
    assert len(failed_points(table)) == 2
    assert all(f"hidden_dim={TOO_BIG}" in line for line in failed_points(table))


def test_the_experiment_prints_the_table_of_the_command(grid):
    command = grid.run("python -m xpkit.analyze --experiment MNIST_grid")
    printed = markdown_rows(grid.first_run.stdout)
    assert printed == markdown_rows(command.stdout)
    assert [row["learn_state"] for row in printed] == ["DONE"] * 2 + ["FAIL"] * 2
    folder = results_folder(grid).resolve()
    assert f"tensorboard --logdir {folder / 'tensorboard'}" in command.stdout


def test_csv_and_markdown_files(grid, table):
    folder = results_folder(grid)
    csv = pd.read_csv(folder / "results.csv")
    assert list(csv.columns) == list(table.columns)
    pd.testing.assert_frame_equal(csv, table, check_dtype=False)
    rows = markdown_rows((folder / "results.md").read_text())
    assert len(rows) == 4 and list(rows[0]) == list(table.columns)
    for row, expected in zip(rows, table.itertuples()):
        assert int(row["hidden_dim"]) == expected.hidden_dim
        if math.isnan(expected.test_accuracy):
            assert row["test_accuracy"] == "nan"
        else:
            assert float(row["test_accuracy"]) == round(expected.test_accuracy, 4)
        assert (grid.workspace / row["learn_folder"]).samefile(expected.learn_folder)


@pytest.mark.parametrize("name", ["test_accuracy.png", "curves.png"])
def test_figures_are_real_png_files(grid, name):
    path = results_folder(grid) / name
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 5_000
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.width > 200 and image.height > 200


def test_test_accuracy_figure_has_a_panel_per_swept_parameter(table):
    panels = {panel[0]: panel for panel in accuracy_panels(table)}
    assert set(panels) == {"n_layers", "hidden_dim"}  # kernel_size: one value
    _, ticks, lines, legend = panels["hidden_dim"]
    assert ticks == ["8", str(TOO_BIG)] and legend == "n_layers"
    assert [label for label, *_ in lines] == ["n_layers=1", "n_layers=2"]
    for _, x, accuracy, stds in lines:
        assert x == [0, 1] and stds is None  # one seed: no error bars
        assert not math.isnan(accuracy[0]) and math.isnan(accuracy[1])


def test_learn_event_files_hold_the_curves_at_the_validation_cadence(table):
    for row in table[table.learn_state == "DONE"].itertuples():
        accumulator = EventAccumulator(
            str(Path(row.learn_folder) / "runs"), size_guidance={"scalars": 0}
        )
        accumulator.Reload()
        assert set(accumulator.Tags()["scalars"]) == SCALARS
        for scalar in SCALARS:
            steps = [event.step for event in accumulator.Scalars(scalar)]
            assert steps == CADENCE, (scalar, steps)
    curves = learning_curves(table)
    accuracy = curves[curves.scalar == "validation/accuracy"]
    assert accuracy.groupby("point").step.apply(list).to_dict() == {
        f"n_layers=1,hidden_dim=8,kernel_size=3,{REST}": CADENCE,
        f"n_layers=2,hidden_dim=8,kernel_size=3,{REST}": CADENCE,
    }


def test_tensorboard_folder_has_one_run_per_trained_point(grid):
    folder = results_folder(grid) / "tensorboard"
    multiplexer = EventMultiplexer()
    multiplexer.AddRunsFromDirectory(str(folder))
    multiplexer.Reload()
    runs = multiplexer.Runs()
    # The points that cannot run failed before logging anything: no link
    assert set(runs) == {
        f"n_layers=1,hidden_dim=8,kernel_size=3,{REST}",
        f"n_layers=2,hidden_dim=8,kernel_size=3,{REST}",
    }
    for tags in runs.values():
        assert set(tags["scalars"]) == SCALARS
    assert sorted(p.name for p in folder.iterdir()) == sorted(runs)


def test_command_options(grid, tmp_path):
    run_id = (grid.workspace / "experiments/MNIST_grid/current").resolve().name
    output = tmp_path / "figures"
    command = grid.run(
        f"python -m xpkit.analyze --workspace {grid.workspace}"
        f" --experiment MNIST_grid --run {run_id} --output {output} --no-tensorboard"
    )
    assert f"MNIST_grid, run {run_id}: 4 grid points, 2 done, 2 failed" in (
        command.stdout
    )
    assert sorted(p.name for p in output.iterdir()) == [
        "curves.png",
        "results.csv",
        "results.md",
        "test_accuracy.png",
    ]
    assert "TensorBoard" not in command.stdout


def test_command_errors_say_what_exists(grid):
    unknown = grid.run("python -m xpkit.analyze --experiment NOPE", check=False)
    assert unknown.returncode == 1
    assert re.search(r"No experiment NOPE in .*experiments: MNIST_grid", unknown.stderr)
    run_id = (grid.workspace / "experiments/MNIST_grid/current").resolve().name
    no_run = grid.run(
        "python -m xpkit.analyze --experiment MNIST_grid --run 1999", check=False
    )
    assert no_run.returncode == 1
    assert "No run 1999 of MNIST_grid" in no_run.stderr
    assert f"runs: {run_id}" in no_run.stderr


def test_a_run_refused_by_the_checks_is_passed_over(sandbox):
    """After a good run, a run refused before any job leaves `current`
    pointing to a run without jobs: the analysis reads the good one, and says so"""
    sample = REPO / "tests" / "sample.yaml"
    sandbox.experiment(sample)
    good = (sandbox.workspace / "experiments/MNIST_sample/current").resolve().name
    refused = sandbox.experiment(sample, "-c", "lr=0", check=False)
    assert refused.returncode != 0 and "lr: 0.0 is not allowed" in refused.stderr
    latest = (sandbox.workspace / "experiments/MNIST_sample/current").resolve().name
    assert latest != good  # (what experimaestro 2.7 does)
    analysis = sandbox.run("python -m xpkit.analyze --experiment MNIST_sample")
    assert f"The latest run of MNIST_sample, {latest}, has no job" in analysis.stdout
    assert f"MNIST_sample, run {good}: 1 grid points, 1 done" in analysis.stdout
    assert "Traceback" not in analysis.stderr


@pytest.mark.parametrize("content", ['{"loss": 0.1, "accur', "[1, 2]"])
def test_a_damaged_results_file_is_named_with_what_to_do(sandbox, content):
    sample = REPO / "tests" / "sample.yaml"
    sandbox.experiment(sample)
    [evaluate] = sandbox.jobs("evaluate")
    good = json.loads((evaluate / "results.json").read_text())
    (evaluate / "results.json").write_text(content)

    analysis = sandbox.run(
        "python -m xpkit.analyze --experiment MNIST_sample", check=False
    )
    assert analysis.returncode == 1
    [line] = analysis.stderr.strip().splitlines()
    assert line.startswith(f"Analysis stopped: {evaluate}/results.json is damaged")
    assert f"delete its job folder {evaluate} and run the experiment again" in line
    rerun = sandbox.experiment(sample, check=False)
    assert rerun.returncode != 0
    assert f"{evaluate}/results.json is damaged" in rerun.stderr + rerun.stdout
    assert "Traceback" not in rerun.stderr

    shutil.rmtree(evaluate)  # what the message says
    sandbox.experiment(sample)
    assert json.loads((evaluate / "results.json").read_text()) == good
