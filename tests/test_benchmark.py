"""The benchmark script runs (a quick smoke run: its timings are not checked)
and writes the figures it promises."""

import json


def positive(value) -> bool:
    return isinstance(value, (int, float)) and value > 0


def test_quick_benchmark_writes_its_figures(sandbox):
    # The README's command, made quick (the sample) and writing to the sandbox
    output = sandbox.home / "benchmark.json"
    process = sandbox.run(f"python benchmarks/run.py --quick --json {output}")
    figures = json.loads(output.read_text())

    assert figures["quick"] is True
    assert positive(figures["threads"])
    training = figures["training"]["models"]
    evaluation = figures["evaluation"]["models"]
    assert set(training) == set(evaluation) == {"n_layers=1", "n_layers=2"}
    for row in training.values():
        for key in ("project_images_per_s", "torchvision_images_per_s", "ratio"):
            assert positive(row[key]), (key, row)
    for row in evaluation.values():
        for key in ("first_seconds", "best_seconds", "images_per_s"):
            assert positive(row[key]), (key, row)
    assert figures["evaluation"]["n_images"] == 1000  # the sample's test images

    [experiment] = figures["experiments"].values()
    for key in (
        "wall_seconds",
        "startup_seconds",
        "task_busy_seconds",
        "task_sum_seconds",
        "task_critical_path_seconds",
        "best_accuracy",
    ):
        assert positive(experiment[key]), (key, experiment)
    for key in ("data_preparation_seconds", "scheduling_overhead_seconds"):
        assert experiment[key] >= 0, (key, experiment)
    assert [job["task"] for job in experiment["jobs"]] == ["learn", "evaluate"]
    for job in experiment["jobs"]:
        assert job["state"] == "done" and positive(job["run_seconds"]), job
        assert job["threads"] == 1, job  # debug.yaml asks for one core
    assert "cuda" in figures  # None without a GPU

    # The figures are printed too
    assert "(a) training" in process.stdout and "ratio" in process.stdout
