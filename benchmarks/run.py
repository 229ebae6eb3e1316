"""How fast the tutorial runs: training and evaluation throughput, and the
experiments end to end.

    python benchmarks/run.py [--json FILE] [--quick] [--mnist FOLDER]
                             [--threads N] [--experiments 'YAML [OPTION...]' ...]

Prints the figures and writes them to a JSON file (``results/benchmark.json``
unless ``--json`` says otherwise):

(a) ``training``: images per second of the project's data path (``load_images``
    once, then ``normalise`` on batches cut from the uint8 tensor) against the
    usual torchvision one (``MNIST`` + ``DataLoader`` + PIL ``ToTensor`` and
    ``Normalize`` per image), with the same CNN, Adam, batch size (64) and
    number of PyTorch threads (``--threads``, by default the cores), in this
    process, for the two models of ``params.yaml``. A window of ``--steps``
    steps is timed after ``--warmup`` steps, the paths taking turns
    ``--repeats`` times; the best window counts (the machine may be shared).
    ``project_channels_first`` is the project's path with the usual memory
    layout: what is left of the gain without the channels-last view;
(b) ``evaluation``: ``measure`` on the test images (10,000 for MNIST), its
    first call (what an Evaluate job does) and the best of the next ones;
(c) ``experiments``: ``experimaestro run-experiment`` of ``debug.yaml`` and
    ``params.yaml``, each in a fresh workspace (the tests' ``Sandbox``: a new
    HOME set up with ``python -m mnist_xp.configure``, MNIST copied from
    ``--mnist``, this machine's launcher), the wall time split into
    start-up (until the first job is submitted, data preparation excepted),
    data preparation, jobs running (at least one job between its
    ``started_time`` and ``ended_time``) and scheduling overhead (the rest:
    starting the job processes, noticing their end, the results at the end);
    also the sum and critical path of the jobs' run times, and the CPU seconds
    of the whole command;
(d) ``cuda``: (a) and (b) on the GPU, when PyTorch sees one.

``--quick`` is a smoke run on the tests' MNIST sample, with one thread and
``tests/sample.yaml`` only (well under a minute on 2 cores). Timings depend on
what else the machine runs: its load is recorded with the figures.
"""

import argparse
import contextlib
import json
import os
import platform
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
for folder in (REPO, REPO / "tests"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

# Measure in the conditions of a job: with the environment its launcher gives
# it (launchers.py, set_job_environment), read by glibc when a process starts
if "GLIBC_TUNABLES" not in os.environ:
    from launchers import set_job_environment

    class _Environment:
        def setenv(self, key, value):
            os.environ[key] = value

    set_job_environment(_Environment(), os.cpu_count() or 1)
    os.execv(sys.executable, [sys.executable, *sys.argv])

import torch
import torch.nn.functional as F
from conftest import SAMPLE, Sandbox  # tests/conftest.py: the tests' sandbox

from mnist_xp.data import OFFICIAL_MD5, MNISTLabelledImages, copy_from_mirror
from mnist_xp.learn import (
    CNN,
    MNIST_MEAN,
    MNIST_STD,
    configure_torch,
    load_images,
    measure,
    normalise,
)

MODELS = {
    "n_layers=1": {"n_layers": 1, "hidden_dim": 32, "kernel_size": 3},
    "n_layers=2": {"n_layers": 2, "hidden_dim": 32, "kernel_size": 3},
}
"""The two models of params.yaml"""

BATCH_SIZE = 64
LEARNING_RATE = 1e-3


# --- (a) training throughput -------------------------------------------------


def project_steps(model, images, labels, device, layout=None):
    """One optimisation step per call, as Learn does it: a batch cut from the
    uint8 tensor along a seeded permutation, normalised on the fly

    :param layout: None for ``normalise``'s own memory layout, or
        ``"channels-first"`` to give the model the usual (N, C, H, W) one
    """
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    images, labels = images.to(device), labels.to(device)
    n_batches = len(images) // BATCH_SIZE
    generator = torch.Generator().manual_seed(0)
    order, position = None, n_batches

    def step():
        nonlocal order, position
        if position == n_batches:
            order, position = torch.randperm(len(images), generator=generator), 0
        batch = order[position * BATCH_SIZE : (position + 1) * BATCH_SIZE].to(device)
        position += 1
        inputs = normalise(images[batch])
        if layout == "channels-first":
            inputs = inputs.squeeze(1).unsqueeze(1)
        loss = F.cross_entropy(model(inputs), labels[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    return step


def torchvision_steps(model, root: Path, n_train: int, device):
    """One optimisation step per call, the usual way: torchvision's MNIST
    dataset, a DataLoader (no worker processes) and per-image PIL transforms"""
    from torch.utils.data import DataLoader, Subset
    from torchvision.datasets import MNIST
    from torchvision.transforms import Compose, Normalize, ToTensor

    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    transform = Compose([ToTensor(), Normalize((MNIST_MEAN,), (MNIST_STD,))])
    dataset = Subset(MNIST(root, train=True, transform=transform), range(n_train))
    loader = DataLoader(
        dataset,
        batch_size=BATCH_SIZE,
        shuffle=True,
        drop_last=True,
        generator=torch.Generator().manual_seed(0),
    )
    batches = iter(loader)

    def step():
        nonlocal batches
        try:
            images, labels = next(batches)
        except StopIteration:
            batches = iter(loader)
            images, labels = next(batches)
        images, labels = images.to(device), labels.to(device)
        loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    return step


def new_model(spec: dict, device) -> CNN:
    """A CNN of params.yaml, with the weights drawn from seed 0"""
    torch.manual_seed(0)
    model = CNN.C(**spec).instance()
    model.initialise()
    return model.to(device).train()


def synchronise(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_steps(step, n: int, device) -> float:
    """Seconds taken by ``n`` calls of ``step``"""
    synchronise(device)
    start = time.perf_counter()
    for _ in range(n):
        step()
    synchronise(device)
    return time.perf_counter() - start


def training_throughput(root: Path, n_validation: int, args, device) -> dict:
    """(a): images per second of both data paths, for each model

    Each path gets ``warmup`` untimed steps, then ``repeats`` windows of
    ``steps`` timed steps, the two paths taking turns; the best window counts
    (the machine may be shared), the median is kept too.
    """
    data = MNISTLabelledImages.C(id="com.lecun.mnist.train", root=root, train=True)
    start = time.perf_counter()
    images, labels = load_images(data.instance(), torch.device("cpu"))
    load_seconds = time.perf_counter() - start
    n_train = len(images) - n_validation
    train = images[:n_train], labels[:n_train]

    figures = {}
    for name, spec in MODELS.items():
        paths = {
            "project": project_steps(new_model(spec, device), *train, device),
            "torchvision": torchvision_steps(
                new_model(spec, device), root, n_train, device
            ),
        }
        if not args.quick:
            # The part of the gain that the memory layout brings
            paths["project_channels_first"] = project_steps(
                new_model(spec, device), *train, device, "channels-first"
            )
        for step in paths.values():
            timed_steps(step, args.warmup, device)
        rates = {path: [] for path in paths}
        for _ in range(args.repeats):
            for path, step in paths.items():
                seconds = timed_steps(step, args.steps, device)
                rates[path].append(args.steps * BATCH_SIZE / seconds)
        best = {path: max(values) for path, values in rates.items()}
        figures[name] = {
            **spec,
            "project_images_per_s": best["project"],
            "torchvision_images_per_s": best["torchvision"],
            "ratio": best["project"] / best["torchvision"],
            **{
                f"{path}_median_images_per_s": statistics.median(values)
                for path, values in rates.items()
            },
        }
        if "project_channels_first" in best:
            figures[name]["project_channels_first_images_per_s"] = best[
                "project_channels_first"
            ]
    return {
        "batch_size": BATCH_SIZE,
        "steps": args.steps,
        "warmup_steps": args.warmup,
        "repeats": args.repeats,
        "train_images": n_train,
        "load_seconds": load_seconds,
        "models": figures,
    }


# --- (b) evaluation ------------------------------------------------------------


def evaluation_throughput(root: Path, args, device) -> dict:
    """(b): ``measure`` over the test images; the first call (what an Evaluate
    job does) and the best of the next ones"""
    data = MNISTLabelledImages.C(id="com.lecun.mnist.test", root=root, train=False)
    start = time.perf_counter()
    images, labels = load_images(data.instance(), device)
    load_seconds = time.perf_counter() - start
    figures = {}
    for name, spec in MODELS.items():
        model = new_model(spec, device)
        times = []
        for _ in range(1 + args.repeats):
            synchronise(device)
            start = time.perf_counter()
            measure(model, images, labels)
            synchronise(device)
            times.append(time.perf_counter() - start)
        figures[name] = {
            **spec,
            "first_seconds": times[0],
            "best_seconds": min(times[1:]),
            "images_per_s": len(images) / min(times[1:]),
        }
    return {"n_images": len(images), "load_seconds": load_seconds, "models": figures}


# --- (c) experiments end to end ----------------------------------------------


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


def machine_load() -> dict:
    """How busy the machine is (other users' work slows the figures down):
    the load average over a minute, and the share of the last minute during
    which some task waited for a CPU (Linux pressure information)"""
    load = {"load_average": os.getloadavg()[0], "cpu_pressure": None}
    with contextlib.suppress(OSError, ValueError, IndexError):
        some = Path("/proc/pressure/cpu").read_text().split("\n")[0]
        load["cpu_pressure"] = float(some.split("avg60=")[1].split()[0]) / 100
    return load


# --- report --------------------------------------------------------------------


def print_report(figures: dict):
    def training_table(section, device):
        print(
            f"\n(a) training on {device}, {section['steps']} steps of"
            f" {section['batch_size']} images after {section['warmup_steps']}"
            f" warm-up steps, best of {section['repeats']}"
        )
        print(f"    {'model':<12} {'project':>10} {'torchvision':>12} {'ratio':>6}")
        for name, row in section["models"].items():
            print(
                f"    {name:<12} {row['project_images_per_s']:>7.0f}/s"
                f" {row['torchvision_images_per_s']:>9.0f}/s {row['ratio']:>5.2f}×"
            )

    def evaluation_table(section, device):
        print(f"\n(b) evaluation of {section['n_images']} test images on {device}")
        for name, row in section["models"].items():
            print(
                f"    {name:<12} first {row['first_seconds']:.2f} s,"
                f" best {row['best_seconds']:.2f} s ({row['images_per_s']:.0f}/s)"
            )

    machine = figures["machine"]
    loads = " and ".join(
        f"{load['load_average']:.1f}"
        + (
            f" ({load['cpu_pressure']:.0%} CPU pressure)"
            if load["cpu_pressure"]
            else ""
        )
        for load in (machine["load_at_start"], machine["load_at_end"])
    )
    print(
        f"\n{machine['cpu_count']} cores, {figures['threads']} PyTorch threads"
        f" ({figures['interop_threads']} inter-op), torch {machine['torch']};"
        f" load average {loads} at the start and the end"
    )
    training_table(figures["training"], "cpu")
    evaluation_table(figures["evaluation"], "cpu")
    for row in figures["experiments"].values():
        print(f"\n(c) {row['command']}")
        print(
            f"    wall {row['wall_seconds']:.1f} s = start-up"
            f" {row['startup_seconds']:.1f} + data {row['data_preparation_seconds']:.1f}"
            f" + tasks running {row['task_busy_seconds']:.1f}"
            f" + scheduling {row['scheduling_overhead_seconds']:.1f}"
            f" (of which {row['after_last_job_seconds']:.1f} after the last job)"
            f" (task sum {row['task_sum_seconds']:.1f},"
            f" critical path {row['task_critical_path_seconds']:.1f});"
            f" {row['cpu_seconds']:.0f} CPU seconds"
        )
        for job in row["jobs"]:
            extra = "".join(
                f", {key} {job[key]:.4g}"
                for key in ("threads", "train_seconds", "accuracy")
                if key in job
            )
            print(
                f"    {job['task']:<8} at {job['start_offset_seconds']:5.1f} s,"
                f" ran {job['run_seconds']:.1f} s{extra}"
            )
        if row["best_accuracy"] is not None:
            print(f"    best test accuracy {row['best_accuracy']:.4f}")
    if figures["cuda"]:
        training_table(figures["cuda"]["training"], figures["cuda"]["device"])
        evaluation_table(figures["cuda"]["evaluation"], figures["cuda"]["device"])


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=" ".join(__doc__.split("\n\n")[0].split())
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=REPO / "results" / "benchmark.json",
        help="where to write the figures (default: %(default)s)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke run on the tests' MNIST sample"
    )
    parser.add_argument(
        "--mnist",
        type=Path,
        default=REPO.parent / "shared" / "data" / "mnist",
        help="folder with the four MNIST IDX files, gzipped or not (%(default)s)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        help="PyTorch CPU threads for (a) and (b) (default: the cores; 1 with --quick)",
    )
    parser.add_argument(
        "--steps", type=int, help="timed steps per window (300; 20 with --quick)"
    )
    parser.add_argument(
        "--warmup", type=int, help="untimed steps first (30; 5 with --quick)"
    )
    parser.add_argument(
        "--repeats", type=int, help="timed windows per path (3; 1 with --quick)"
    )
    parser.add_argument(
        "--experiments",
        nargs="*",
        metavar="'YAML [OPTION...]'",
        help="experiments to run end to end, each a YAML file and options of"
        " run-experiment (default: debug.yaml and params.yaml)",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the experiments' workspaces"
    )
    args = parser.parse_args(argv)
    defaults = {"steps": 300, "warmup": 30, "repeats": 3, "threads": os.cpu_count()}
    if args.quick:
        defaults |= {"steps": 20, "warmup": 5, "repeats": 1, "threads": 1}
    for key, default in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, default)
    if args.quick:
        args.mnist = SAMPLE
    if args.experiments is None:
        args.experiments = (
            ["tests/sample.yaml"] if args.quick else ["debug.yaml", "params.yaml"]
        )
    n_validation = 1000 if args.quick else 10_000

    figures = {
        "command": shlex.join(["python", "benchmarks/run.py", *(argv or sys.argv[1:])]),
        "quick": args.quick,
        "machine": {
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "load_at_start": machine_load(),
        },
    }

    # The threads of a job that got --threads cores (configure_torch reads
    # MNIST_XP_CORES as the launcher sets it)
    os.environ.pop("SLURM_CPUS_PER_TASK", None)
    os.environ["MNIST_XP_CORES"] = str(args.threads)
    configure_torch(seed=0)
    figures["threads"] = torch.get_num_threads()
    figures["interop_threads"] = torch.get_num_interop_threads()

    with tempfile.TemporaryDirectory(prefix="mnist-xp-benchmark-") as root:
        raw = Path(root) / "MNIST" / "raw"
        raw.mkdir(parents=True)
        copy_from_mirror(args.mnist, raw)
        assert all((raw / name).exists() for name in OFFICIAL_MD5)
        cpu = torch.device("cpu")
        figures["training"] = training_throughput(Path(root), n_validation, args, cpu)
        figures["evaluation"] = evaluation_throughput(Path(root), args, cpu)
        figures["cuda"] = None
        if torch.cuda.is_available():
            cuda = torch.device("cuda")
            figures["cuda"] = {
                "device": torch.cuda.get_device_name(cuda),
                "training": training_throughput(Path(root), n_validation, args, cuda),
                "evaluation": evaluation_throughput(Path(root), args, cuda),
            }

    figures["experiments"] = {}
    for spec in args.experiments:
        yaml, *extra = shlex.split(spec)
        figures["experiments"][spec] = run_experiment(
            yaml, extra, args.mnist, args.keep
        )
    figures["machine"]["load_at_end"] = machine_load()

    print_report(figures)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(figures, indent=2))
    print(f"\nFigures written to {args.json}")


if __name__ == "__main__":
    main()
