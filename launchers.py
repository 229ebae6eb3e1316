"""Where experimaestro runs the jobs: ``find_launcher(requirement, tags)``.

experimaestro calls ``find_launcher`` each time an experiment asks for a
launcher, with the parsed requirement string of the configuration (e.g.
``duration=1h & cuda(mem=4G)*1 & cpu(cores=4)``). It returns

- a SLURM launcher (every job submitted with ``sbatch``) when a SLURM
  controller answers on this machine: ``scontrol ping`` says it is UP. Having
  ``sbatch`` installed is not enough: the controller must answer;
- else the local launcher: jobs run here, each with the cores it asks for
  but at most half of the machine's, so that two run side by side.

Choosing
--------
``MNIST_XP_LAUNCHER`` (environment) forces the choice:

- ``auto`` (default): SLURM when a controller answers, else this machine (and
  a log line says so). The experiment passes ``tags=["slurm"]``: it prefers
  SLURM; a caller passing ``tags=["local"]`` (and not ``slurm``) gets the
  local launcher without asking SLURM;
- ``local``: always this machine;
- ``slurm``: always SLURM; if no controller answers, the experiment stops
  with an error before anything is submitted (never a silent fall back to
  training on a login node).

What a requirement becomes in SLURM
-----------------------------------
Only the first alternative of ``A | B`` is used.

=======================  ==============================================
requirement              sbatch option (``#SBATCH`` line of ``<job>.sh``)
=======================  ==============================================
``duration=90m``         ``--time=1:30:00`` (SLURM counts whole minutes)
``cpu(cores=4)``         ``--cpus-per-task=4`` (always set, 1 by default,
                         so that ``SLURM_CPUS_PER_TASK`` is in the job's
                         environment, where the jobs read their threads;
                         ``OMP_NUM_THREADS`` and ``MKL_NUM_THREADS`` too)
``cpu(mem=8G)``          ``--mem=7630M`` (MiB, rounded up)
``cuda(mem=4G)*2``       ``--gpus-per-node=2`` (also ``gpu(...)``; SLURM
                         cannot ask for GPU memory: pick the GPU model
                         with ``SBATCH_CONSTRAINT`` or a partition)
=======================  ==============================================

Partition, account and QOS are never written here: ``sbatch`` reads them
from the environment of the experiment, which experimaestro passes on to
it unchanged (and which override the ``#SBATCH`` lines)::

    export SBATCH_PARTITION=gpu SBATCH_ACCOUNT=myteam SBATCH_QOS=normal

Any other ``SBATCH_*`` variable works the same way (``SBATCH_CONSTRAINT``,
``SBATCH_EXCLUDE``...). The jobs get the environment of the experiment too
(``sbatch --export=ALL``, SLURM's default).

experimaestro follows the jobs by calling ``sacct`` every 60 seconds;
``MNIST_XP_SLURM_POLL`` sets another interval in seconds (the tests use 1).

Time limits: a learning job that is near its ``--time`` limit checkpoints
and stops (``time_margin`` of the configuration), and experimaestro submits
it again (up to ``max_retries`` times, a workspace setting); it resumes from
its checkpoint. A job that SLURM kills at the limit (TIMEOUT) is not
submitted again by experimaestro 2.7: running the experiment again resumes
it. :class:`MnistSlurmLauncher` works around an experimaestro bug that broke
resubmissions, and exports the jobs' environment variables before they
start (experimaestro sets them from within Python only).

Installing
----------
experimaestro loads this file by path from its configuration folder,
``~/.config/experimaestro/launchers.py``, or from the folder given with
``experimaestro run-experiment --xpm-config-dir DIR`` (that option moves
``launchers.py`` only: ``settings.yaml`` is still read from
``~/.config/experimaestro``). ``python -m mnist_xp.configure`` links
``~/.config/experimaestro/launchers.py`` to this file. It must stand alone:
it imports nothing from ``mnist_xp``.

Checking what a requirement resolves to, without submitting anything::

    $ experimaestro find-launchers "duration=1h & cuda(mem=4G)*1 & cpu(cores=4)"
    SlurmLauncher(SlurmOptions(nodes=1, time='1:00:00', account=None, qos=None,
    partition=None, constraint=None, mem=None, exclude=None, mem_per_gpu=None,
    cpus_per_task='4', nodelist=None, ntasks_per_node=None, gpus=None,
    gpus_per_node=1), path=/usr/bin)

(one line, after the log lines of experimaestro and of this file), or
``DirectLauncher(LocalConnector)`` where no controller answers (or with
``MNIST_XP_LAUNCHER=local``). ``--config DIR`` reads ``DIR/launchers.py``.
"""

import logging
import math
import os
import shlex
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass

from experimaestro.connectors.local import LocalConnector
from experimaestro.exceptions import HandledException
from experimaestro.launcherfinder import HostRequirement
from experimaestro.launcherfinder.parser import parse
from experimaestro.launcherfinder.specs import HostSimpleRequirement
from experimaestro.launchers import Launcher
from experimaestro.launchers.direct import DirectLauncher
from experimaestro.launchers.slurm import (
    SlurmLauncher,
    SlurmOptions,
    SlurmScriptBuilder,
)

logger = logging.getLogger("xpm.launchers")

LAUNCHER_VARIABLE = "MNIST_XP_LAUNCHER"
"""Environment variable forcing the launcher: auto, local or slurm"""

LAUNCHER_CHOICES = ("auto", "local", "slurm")

POLL_VARIABLE = "MNIST_XP_SLURM_POLL"
"""Environment variable: seconds between two ``sacct`` calls"""

PROBE_TIMEOUT = 10
"""Seconds ``scontrol ping`` may take before the controller counts as silent"""


class LauncherError(HandledException):
    """The launcher asked for cannot be used (shown without a traceback)"""


def gpu_count() -> int:
    """Number of CUDA GPUs on this machine (0 when PyTorch sees none)"""
    try:
        import torch

        return torch.cuda.device_count()
    except ImportError:
        return 0


def set_job_environment(launcher: Launcher, cores: int):
    """Environment variables of the jobs, read before they import anything

    - The OpenMP and MKL thread pools (PyTorch computes with them) get one
      thread per core of the job: more threads than cores make jobs side by
      side several times slower.
    - glibc's memory allocator keeps the memory freed by one batch for the
      next (up to 32 MiB blocks from its heap, never given back while under
      1 GiB): by default it returns the feature maps' memory to the system
      after every batch, and takes it back zeroed, a quarter to a third of
      the training time of a small CNN on a CPU.
    """
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        launcher.setenv(variable, str(cores))
    launcher.setenv(
        "GLIBC_TUNABLES",
        f"glibc.malloc.mmap_threshold={32 << 20}:glibc.malloc.trim_threshold={1 << 30}",
    )


def local_cores(asked: int, total: int) -> int:
    """Cores of a local job that asks for ``asked`` cores (0: not said) on a
    machine with ``total``: as asked, but at most half of them, at least one"""
    return min(max(asked, 1), max(total // 2, 1))


def local_launcher(requirement: HostSimpleRequirement) -> Launcher:
    """Runs the job on this machine, two jobs side by side or more

    A job gets the cores it asks for, but at most half of the machine's
    cores (at least one), so that two jobs run side by side: each spends
    its first seconds on one core (starting Python, importing PyTorch,
    reading MNIST), and a small CNN makes poor use of many threads, so two
    jobs side by side end sooner than one after the other with all the
    cores (on 2 cores, ``params.yaml`` takes about 60 s instead of 69 s).

    Every local job takes as many "core" tokens as its cores, and
    experimaestro starts a job only when its tokens are free. The job learns
    its share through ``MNIST_XP_CORES``, and the OpenMP and MKL thread pools
    (the ones PyTorch computes with) are sized to it before the job imports
    anything: jobs side by side never run more threads than there are cores,
    which would make each several times slower.
    """
    total = os.cpu_count() or 1
    cores = local_cores(requirement.cpu.cores, total)
    connector = LocalConnector.instance()
    token = connector.createtoken("mnist-xp-cores", total)

    launcher = DirectLauncher(connector)
    launcher.setenv("MNIST_XP_CORES", str(cores))
    set_job_environment(launcher, cores)
    launcher.addListener(lambda job: job.dependencies.add(token.dependency(cores)))

    if requirement.accelerators and gpu_count() == 0:
        logger.warning(
            "The requirement asks for a GPU but this machine has none:"
            " the jobs will run on the CPU (%d core%s each)",
            cores,
            "s" if cores > 1 else "",
        )
    elif not requirement.accelerators:
        # A job that did not ask for a GPU must not take one
        launcher.setenv("CUDA_VISIBLE_DEVICES", "")
    return launcher


def launcher_choice() -> str:
    """The value of ``MNIST_XP_LAUNCHER`` (``auto`` when unset or empty)

    :raises LauncherError: for a value that is not auto, local or slurm
    """
    value = os.environ.get(LAUNCHER_VARIABLE, "").strip().lower() or "auto"
    if value not in LAUNCHER_CHOICES:
        raise LauncherError(
            f"{LAUNCHER_VARIABLE}={os.environ[LAUNCHER_VARIABLE]!r} is not"
            f" allowed: use one of {', '.join(LAUNCHER_CHOICES)} (default: auto)"
        )
    return value


def poll_interval() -> float:
    """Seconds between two ``sacct`` calls: ``MNIST_XP_SLURM_POLL``, else
    experimaestro's default (60)

    :raises LauncherError: if the variable is not a positive number
    """
    value = os.environ.get(POLL_VARIABLE, "").strip()
    if not value:
        return SlurmLauncher.__init__.__kwdefaults__["interval"]
    try:
        interval = float(value)
    except ValueError:
        interval = math.nan
    if not (math.isfinite(interval) and interval > 0):
        raise LauncherError(
            f"{POLL_VARIABLE}={value!r} is not allowed: give a positive number"
            " of seconds between two sacct calls (e.g. 30)"
        )
    return interval


@dataclass
class SlurmProbe:
    """What asking the SLURM controller gave"""

    answered: bool
    """True when a controller said it is UP"""

    tried: str
    """The command run (or why none could be), for messages"""

    answer: str
    """What it printed, or why it failed"""

    binpath: str = "/usr/bin"
    """Folder of the SLURM commands (sbatch, sacct, squeue...)"""

    installed: bool = True
    """False when the SLURM commands are not on PATH (not a cluster machine)"""


def probe_slurm() -> SlurmProbe:
    """Asks the SLURM controller whether it is up, with ``scontrol ping``
    (the controller named in ``$SLURM_CONF``, else in /etc/slurm/slurm.conf)"""
    scontrol = shutil.which("scontrol")
    if scontrol is None or shutil.which("sbatch") is None:
        return SlurmProbe(
            False, "looking for scontrol and sbatch", "not on PATH", installed=False
        )
    binpath = os.path.dirname(shutil.which("sbatch"))
    config = os.environ.get("SLURM_CONF")
    tried = f"`{scontrol} ping` (SLURM_CONF={config or 'unset'})"
    if config and not os.path.isfile(config):
        # scontrol would retry for a minute before giving up
        return SlurmProbe(False, tried, f"{config} is not a file", binpath)
    try:
        process = subprocess.run(
            [scontrol, "ping"],
            check=False,
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        return SlurmProbe(False, tried, f"no answer in {PROBE_TIMEOUT} s", binpath)
    except OSError as error:
        return SlurmProbe(False, tried, str(error), binpath)
    # (without the banner of asterisks that comes with "DOWN")
    lines = (line.strip() for line in (process.stdout + process.stderr).split("\n"))
    answer = "; ".join(line for line in lines if line and not line.startswith("*"))
    if len(answer) > 500:
        answer = f"...{answer[-500:]}"
    # "Slurmctld(primary) at HOST is UP" (exit 0), "... is DOWN" (exit 1)
    answered = process.returncode == 0 and " is UP" in process.stdout
    if not answer:
        answer = f"nothing (exit status {process.returncode})"
    return SlurmProbe(answered, tried, answer, binpath)


def format_duration(seconds: int) -> str:
    """``--time`` value: hours:minutes:seconds, rounded up to whole minutes
    (SLURM counts whole minutes)"""
    minutes = math.ceil(seconds / 60)
    return f"{minutes // 60}:{minutes % 60:02d}:00"


def slurm_options(requirement: HostSimpleRequirement) -> SlurmOptions:
    """The sbatch options that ask for what ``requirement`` needs (no partition,
    account or QOS: sbatch reads them from ``SBATCH_*`` variables)"""
    options = SlurmOptions(cpus_per_task=str(max(requirement.cpu.cores, 1)))
    if requirement.duration > 0:
        options.time = format_duration(requirement.duration)
    if requirement.cpu.memory > 0:
        options.mem = f"{math.ceil(requirement.cpu.memory / 2**20)}M"
    if requirement.accelerators:
        options.gpus_per_node = len(requirement.accelerators)
    return options


class MnistSlurmScriptBuilder(SlurmScriptBuilder):
    """experimaestro's job script writer, with two fixes

    - The job's environment variables are exported by the shell script that
      sbatch runs too: experimaestro sets them only in the Python script,
      once Python has started, too late for ``GLIBC_TUNABLES``, which glibc
      reads when the process starts.
    - experimaestro 2.7 caches ``job.python_path`` as an iterator, which is
      empty after the first script is written: the script written again
      when a job is resubmitted (after a time limit) lacks the folder of
      ``mnist_xp``, and the job fails with ``No module named 'mnist_xp'``.
      Dropping the cached value makes experimaestro compute it again.
    """

    def write(self, job):
        job.__dict__.pop("python_path", None)
        script = super().write(job)
        exports = "".join(
            f"export {name}={shlex.quote(value)}\n"
            for name, value in job.environ.items()
        )
        text = script.read_text()
        script.write_text(text.replace("\nsrun ", f"\n{exports}srun ", 1))
        return script


class MnistSlurmLauncher(SlurmLauncher):
    """experimaestro's SLURM launcher, with :class:`MnistSlurmScriptBuilder`"""

    def scriptbuilder(self):
        return MnistSlurmScriptBuilder(self)


def slurm_launcher(
    requirement: HostSimpleRequirement, binpath: str = "/usr/bin"
) -> SlurmLauncher:
    """Submits every job with sbatch, asking for what ``requirement`` needs"""
    # No launcherenv: sbatch then gets the experiment's whole environment,
    # SBATCH_* and SLURM_CONF included (launcherenv would replace it)
    options = slurm_options(requirement)
    launcher = MnistSlurmLauncher(
        options=options, interval=poll_interval(), binpath=binpath
    )
    # (SLURM does not confine a job to its cores on every cluster)
    set_job_environment(launcher, int(options.cpus_per_task))
    return launcher


def first_alternative(requirement) -> HostSimpleRequirement:
    """The first alternative of ``A | B`` (a string is parsed first)"""
    if isinstance(requirement, str):
        requirement = parse(requirement)
    if isinstance(requirement, HostSimpleRequirement):
        return requirement
    return requirement.requirements[0]


def find_launcher(
    requirement: HostRequirement | str, tags: Iterable[str] = ()
) -> Launcher:
    """Returns the SLURM launcher when a controller answers (or when
    ``MNIST_XP_LAUNCHER=slurm``), else the local one, for the first
    alternative of the requirement

    :param tags: ``slurm`` prefers SLURM (the default when neither is given),
        ``local`` (without ``slurm``) keeps the jobs on this machine
    :raises LauncherError: if MNIST_XP_LAUNCHER is not allowed, or is
        ``slurm`` and no SLURM controller answers
    """
    alternative = first_alternative(requirement)
    choice = launcher_choice()
    tags = set(tags or ())
    if choice == "local" or (
        choice == "auto" and "local" in tags and "slurm" not in tags
    ):
        return local_launcher(alternative)

    probe = probe_slurm()
    if probe.answered:
        launcher = slurm_launcher(alternative, probe.binpath)
        logger.info(
            "Jobs go to SLURM (%s: %s) with %s",
            probe.tried,
            probe.answer,
            " ".join(launcher.options.args()),
        )
        return launcher
    if choice == "slurm":
        raise LauncherError(
            f"{LAUNCHER_VARIABLE}=slurm, but no SLURM controller answered:"
            f" tried {probe.tried}, got: {probe.answer}. Run from a machine of"
            " the cluster (a login node), or set SLURM_CONF to the cluster's"
            " slurm.conf, and check that `scontrol ping` says UP; or set"
            f" {LAUNCHER_VARIABLE}=local to run the jobs on this machine"
        )
    # A warning where SLURM is installed: the jobs may be about to train on a
    # login node; elsewhere (a laptop), running here is what is expected
    logger.log(
        logging.WARNING if probe.installed else logging.INFO,
        "No SLURM controller answered (tried %s: %s): the jobs run on this"
        " machine (%s=auto; set it to slurm to stop instead)",
        probe.tried,
        probe.answer,
        LAUNCHER_VARIABLE,
    )
    return local_launcher(alternative)
