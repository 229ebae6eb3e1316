"""How fast the tutorial runs: training and evaluation throughput, and the
experiments end to end.

    python benchmarks/run.py [--json FILE] [--quick] [--mnist FOLDER]
                             [--threads N] [--experiments 'YAML [OPTION...]' ...]

Prints the figures and writes them to a JSON file (``results/benchmark.json``
unless ``--json`` says otherwise):

(a) ``training``: images per second of the project's data path (MNIST held in
    memory, asked for whole batches by ``xpkit.batches.epoch_batches``'s
    DataLoader, as ``Learn`` does) against the
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
    HOME set up with ``python -m xpkit.configure``, MNIST copied from
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

The parts: ``throughput.py`` ((a), (b)), ``end_to_end.py`` ((c)) and
``report.py`` (the printed figures), next to this script.
"""

import argparse
import contextlib
import json
import os
import platform
import shlex
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
for folder in (REPO, REPO / "tests"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

# Measure in the conditions of a job: with the environment its launcher gives
# it (xpkit/launcher_support.py), read by glibc when a process starts
if "GLIBC_TUNABLES" not in os.environ:
    from xpkit.launcher_support import set_job_environment

    class _Environment:
        def setenv(self, key, value):
            os.environ[key] = value

    set_job_environment(_Environment(), os.cpu_count() or 1)
    if "--quick" in sys.argv:  # the tests' sample, with its own checksums
        os.environ["MNIST_XP_MD5SUMS"] = str(REPO / "tests/data/mnist-sample/MD5SUMS")
        os.environ["PYTHONPATH"] = os.pathsep.join(
            [
                str(REPO / "tests" / "hooks"),
                *filter(None, [os.environ.get("PYTHONPATH")]),
            ]
        )
    os.execv(sys.executable, [sys.executable, *sys.argv])

import torch
from conftest import SAMPLE  # tests/conftest.py: the tests' MNIST sample

# The parts of the benchmark, next to this script
from end_to_end import run_experiment
from report import print_report
from throughput import evaluation_throughput, training_throughput

from mnist_xp.mnist_files import OFFICIAL_MD5, copy_from_mirror
from xpkit.speed import configure_torch


def machine_load() -> dict:
    """How busy the machine is (other users' work slows the figures down):
    the load average over a minute, and the share of the last minute during
    which some task waited for a CPU (Linux pressure information)"""
    load = {"load_average": os.getloadavg()[0], "cpu_pressure": None}
    with contextlib.suppress(OSError, ValueError, IndexError):
        some = Path("/proc/pressure/cpu").read_text().split("\n")[0]
        load["cpu_pressure"] = float(some.split("avg60=")[1].split()[0]) / 100
    return load


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
    # XPKIT_CORES as the launcher sets it)
    os.environ.pop("SLURM_CPUS_PER_TASK", None)
    os.environ["XPKIT_CORES"] = str(args.threads)
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
