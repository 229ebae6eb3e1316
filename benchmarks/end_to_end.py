"""(c) of the benchmark: an experiment run end to end in a fresh workspace, its
wall time split into start-up, data preparation, jobs and scheduling. Imported
by benchmarks/run.py, which puts the repository and tests/ on sys.path."""

import json
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from conftest import REPO, Sandbox  # tests/conftest.py: the tests' sandbox


def parse_time(text: str) -> float:
    """Seconds since the epoch of a local time written by experimaestro"""
    return datetime.fromisoformat(text.replace(",", ".")).timestamp()


def scheduler_events(workspace: Path) -> dict:
    """Times of the first launchers.py load and job submission, from the
    scheduler's log (millisecond timestamps)"""
    events = {}
    for log in sorted(workspace.glob(".scheduler/*/experimaestro.log")):
        for line in log.read_text().splitlines():
            stamp, _, message = line.partition(" - ")
            for key, marker in (
                ("launchers", "launchers.py"),
                ("submitted", "Submitting job"),
            ):
                if marker in message and key not in events:
                    events[key] = parse_time(stamp)
    return events


def job_figures(workspace: Path) -> list[dict]:
    """Run time of each job (status.json) and what it depends on"""
    jobs = []
    for status_path in sorted(workspace.glob("jobs/*/*/.experimaestro/status.json")):
        folder = status_path.parent.parent
        status = json.loads(status_path.read_text())
        params = json.loads((folder / "params.json").read_text())
        job = {
            "task": folder.parent.name.rsplit(".", 1)[-1],
            "id": folder.name,
            "state": status.get("state"),
            "started": parse_time(status["started_time"]),
            "ended": parse_time(status["ended_time"]),
            # The jobs whose outputs it reads (Evaluate -> Learn)
            "after": sorted(
                {o["identifier"] for o in params["objects"]} - {folder.name}
            ),
        }
        job["run_seconds"] = job["ended"] - job["started"]
        log = folder / f"{job['task']}.err"
        for line in log.read_text().splitlines() if log.exists() else []:
            if "CPU threads" in line:
                job["threads"] = int(line.split(" with ")[1].split()[0])
        if (summary := folder / "learn.json").exists():
            job["train_seconds"] = json.loads(summary.read_text())["train_seconds"]
        if (results := folder / "results.json").exists():
            job["accuracy"] = json.loads(results.read_text())["accuracy"]
        jobs.append(job)
    known = {job["id"] for job in jobs}
    for job in jobs:
        job["after"] = [i for i in job["after"] if i in known]
    return jobs


def critical_path(jobs: list[dict]) -> float:
    """Longest chain of run times along the dependencies: the task run time
    with as many cores as jobs"""
    by_id = {job["id"]: job for job in jobs}
    memo = {}

    def finish(job_id):
        if job_id not in memo:
            job = by_id[job_id]
            memo[job_id] = job["run_seconds"] + max(
                (finish(i) for i in job["after"]), default=0.0
            )
        return memo[job_id]

    return max((finish(i) for i in by_id), default=0.0)


def busy_seconds(jobs: list[dict]) -> float:
    """Seconds during which at least one job was running"""
    total, end = 0.0, float("-inf")
    for job in sorted(jobs, key=lambda j: j["started"]):
        if job["ended"] > end:
            total += job["ended"] - max(job["started"], end)
            end = job["ended"]
    return total


def run_experiment(yaml: str, extra: list[str], mnist: Path, keep: bool) -> dict:
    """(c): ``experimaestro run-experiment`` in a fresh HOME and workspace"""
    folder = Path(tempfile.mkdtemp(prefix="mnist-xp-benchmark-"))
    # A fresh user whose MNIST comes from `mnist`, on this machine's launcher,
    # as in the tests
    sandbox = Sandbox(folder, mnist.resolve())
    env, workspace = sandbox.env, sandbox.workspace
    command = [Path(sys.executable).parent / "experimaestro", "run-experiment", yaml]
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.time()
    process = subprocess.run(
        [*map(str, command), *extra],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.time() - start
    # CPU time of the experiment and of all its jobs (reaped children count)
    now = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = now.ru_utime + now.ru_stime - used.ru_utime - used.ru_stime
    if process.returncode != 0:
        raise RuntimeError(
            f"{yaml} {extra} failed ({process.returncode}), see {folder}:\n"
            f"{process.stderr[-3000:]}"
        )
    events, jobs = scheduler_events(workspace), job_figures(workspace)
    submitted = events.get("submitted", start)
    data_preparation = submitted - events.get("launchers", submitted)
    startup = submitted - start - data_preparation
    busy = busy_seconds(jobs)
    accuracies = [job["accuracy"] for job in jobs if "accuracy" in job]
    figures = {
        "command": shlex.join(["experimaestro", "run-experiment", yaml, *extra]),
        "wall_seconds": wall,
        "cpu_seconds": cpu,
        "startup_seconds": startup,
        "data_preparation_seconds": data_preparation,
        "task_busy_seconds": busy,
        "task_sum_seconds": sum(job["run_seconds"] for job in jobs),
        "task_critical_path_seconds": critical_path(jobs),
        "scheduling_overhead_seconds": wall - startup - data_preparation - busy,
        # Part of it: from the end of the last job to the end of the command
        # (results table and figures of the experiment, exit)
        "after_last_job_seconds": start
        + wall
        - max((job["ended"] for job in jobs), default=start + wall),
        "best_accuracy": max(accuracies, default=None),
        "jobs": [
            {k: v for k, v in job.items() if k not in ("after", "started", "ended")}
            | {"start_offset_seconds": job["started"] - start}
            for job in sorted(jobs, key=lambda j: j["started"])
        ],
    }
    if keep:
        figures["folder"] = str(folder)
    else:
        shutil.rmtree(folder, ignore_errors=True)
    return figures
