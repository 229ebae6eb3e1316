"""A failing grid point stays local; two runs of one experiment never run a
job twice."""

import pytest
from conftest import REPO, SAMPLE_YAML, Sandbox, wait_for

FAILING_YAML = REPO / "tests" / "failing.yaml"


@pytest.fixture(scope="module")
def failed(tmp_path_factory) -> Sandbox:
    sandbox = Sandbox(tmp_path_factory.mktemp("failing"))
    sandbox.first_run = sandbox.experiment(FAILING_YAML, check=False)
    return sandbox


def job_states(sandbox: Sandbox) -> dict[str, str]:
    """``{"<task> hidden_dim=<value>": state}`` from the experiment's listing"""
    listing = sandbox.run(
        "experimaestro jobs --workspace mnist-xp list --tags --experiment MNIST_failing"
    ).stdout
    states = {}
    for line in listing.splitlines():
        if "hidden_dim=" in line:
            state, name, *tags = line.split()
            task = name.split("/")[0].split(".")[-1]
            [hidden_dim] = [t for t in tags if t.startswith("hidden_dim=")]
            states[f"{task} {hidden_dim}"] = state
    return states


def test_only_the_failing_point_fails(failed):
    assert failed.first_run.returncode != 0
    states = job_states(failed)
    assert states["learn hidden_dim=8"] == "DONE"
    assert states["evaluate hidden_dim=8"] == "DONE"
    assert states["learn hidden_dim=10000000000000"] == "FAIL"
    assert states["evaluate hidden_dim=10000000000000"] != "DONE"
    assert len(failed.results()) == 1  # the failed point was not evaluated
    output = failed.first_run.stdout + failed.first_run.stderr
    assert "can't allocate memory" in "".join(
        (job / "learn.err").read_text() for job in failed.jobs("learn")
    )
    assert "10000000000000" in output and "failed" in output.lower()


def test_rerun_resubmits_only_the_failed_point(failed):
    [done_job] = [job for job in failed.jobs("learn") if (job / "learn.done").exists()]
    before = (done_job / "learn.err").stat().st_mtime_ns
    rerun = failed.experiment(FAILING_YAML, check=False)
    assert rerun.returncode != 0  # still out of memory
    assert (done_job / "learn.err").stat().st_mtime_ns == before
    assert rerun.stderr.count("Process started") == 1, rerun.stderr


def test_second_run_waits_for_the_first(sandbox):
    with sandbox.background_experiment(SAMPLE_YAML) as first:
        pid_files = "jobs/*.learn/*/learn.pid"
        wait_for(lambda: list(sandbox.workspace.glob(pid_files)), "a Learn job", first)
        assert (sandbox.workspace / "experiments" / "MNIST_sample" / "lock").exists()
        second = sandbox.experiment(SAMPLE_YAML)
        assert first.wait(timeout=300) == 0
    assert "waiting for lock to be released" in second.stderr
    # The second run found the jobs done: each ran once
    assert second.stderr.count("Process started") == 0
    for job in sandbox.jobs("learn") + sandbox.jobs("evaluate"):
        assert len(list(job.glob("*.err"))) == 1, f"{job} ran twice"
