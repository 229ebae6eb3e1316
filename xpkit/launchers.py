"""Where experimaestro runs the jobs: ``find_launcher(requirement, tags)``.

experimaestro calls ``find_launcher`` whenever an experiment asks for a
launcher, with the requirement of its configuration, e.g.
``duration=1h & cuda(mem=4G)*1 & cpu(cores=4)``. This one sends the jobs to
SLURM when a controller answers (``scontrol ping`` says UP), else runs them on
this machine. ``XPKIT_LAUNCHER`` (auto, local or slurm) forces the choice.

experimaestro reads ``~/.config/experimaestro/launchers.py``, which imports
this function (``python -m xpkit.configure`` writes it). What it asks of
SLURM, time limits and the local core policy: ``docs/launchers.md``.
"""

import contextlib
import logging
import os
from collections.abc import Iterable

from experimaestro.connectors.local import LocalConnector
from experimaestro.launchers import Launcher
from experimaestro.launchers.direct import DirectLauncher

from .gpus import GpuAllocator, machine_gpus
from .launcher_support import (
    LAUNCHER_VARIABLE,
    LauncherError,
    PatientSlurmLauncher,
    first_alternative,
    launcher_choice,
    local_cores,
    poll_interval,
    probe_slurm,
    set_job_environment,
    slurm_options,
)

logger = logging.getLogger("xpm.launchers")


def find_launcher(requirement, tags: Iterable[str] = ()) -> Launcher:
    """SLURM when a controller answers (or ``XPKIT_LAUNCHER=slurm``), else
    this machine, for the first alternative of the requirement

    :param tags: ``local`` without ``slurm`` keeps the jobs on this machine
    :raises LauncherError: if ``XPKIT_LAUNCHER`` is not allowed, or is
        ``slurm`` and no SLURM controller answers
    """
    requirement = first_alternative(requirement)
    choice = launcher_choice()
    tags = set(tags or ())
    if choice == "local" or (
        choice == "auto" and "local" in tags and "slurm" not in tags
    ):
        return local_launcher(requirement)

    probe = probe_slurm()
    if probe.answered:
        launcher = slurm_launcher(requirement, probe.binpath)
        args = " ".join(launcher.options.args())
        logger.info(
            "Jobs go to SLURM (%s: %s) with %s", probe.tried, probe.answer, args
        )
        return launcher
    if choice == "slurm":
        # Never a silent fall back to training on a login node
        raise LauncherError(
            f"{LAUNCHER_VARIABLE}=slurm, but no SLURM controller answered:"
            f" tried {probe.tried}, got: {probe.answer}. Run from a machine of"
            " the cluster (a login node), or set SLURM_CONF to the cluster's"
            " slurm.conf, and check that `scontrol ping` says UP; or set"
            f" {LAUNCHER_VARIABLE}=local to run the jobs on this machine"
        )
    # A warning where SLURM is installed (the jobs may be about to train on a
    # login node); on a laptop, running here is what is expected
    logger.log(
        logging.WARNING if probe.installed else logging.INFO,
        "No SLURM controller answered (%s): the jobs run on this machine"
        " (%s=auto; set it to slurm to stop instead)",
        probe.summary,
        LAUNCHER_VARIABLE,
    )
    return local_launcher(requirement)


def local_launcher(requirement) -> Launcher:
    """Runs the jobs on this machine, each with the cores it asks for but at
    most half of the machine's, so that two jobs run side by side"""
    total = os.cpu_count() or 1
    cores = local_cores(requirement.cpu.cores, total)
    connector = LocalConnector.instance()
    make_tokens_folder(connector)
    launcher = DirectLauncher(connector)
    # A job starts only when its cores are free: one token per core
    token = connector.createtoken("xpkit-cores", total)
    launcher.addListener(lambda job: job.dependencies.add(token.dependency(cores)))
    launcher.setenv("XPKIT_CORES", str(cores))  # the job's PyTorch threads
    set_job_environment(launcher, cores)

    gpus = machine_gpus()
    if requirement.accelerators and gpus:
        # Each job gets GPUs of its own, in turn (else all would use cuda:0)
        asked = min(len(requirement.accelerators), len(gpus))
        launcher.addListener(GpuAllocator(connector, gpus, asked))
    elif requirement.accelerators:
        s = "s" if cores > 1 else ""
        logger.warning(
            "The requirement asks for a GPU but this machine has none:"
            f" the jobs will run on the CPU ({cores} core{s} each)"
        )
    else:
        launcher.setenv("CUDA_VISIBLE_DEVICES", "")  # no GPU asked: none taken
    return launcher


def make_tokens_folder(connector: LocalConnector):
    """Makes experimaestro's folder of tokens (``~/.local/share/experimaestro``):
    experimaestro 2.7 makes it without ``exist_ok``, so of two experiments
    started together in a new HOME one could stop on ``FileExistsError``.
    Delete once experimaestro's ``Connector.localpath`` passes ``exist_ok``."""
    with contextlib.suppress(FileExistsError):
        connector.localpath  # noqa: B018 (reading the property makes the folder)


def slurm_launcher(requirement, binpath: str = "/usr/bin") -> Launcher:
    """Submits every job with sbatch, asking for what the requirement needs,
    and follows it with sacct, waiting while SLURM does not answer"""
    # No launcherenv: sbatch gets the experiment's whole environment, SBATCH_*
    # (partition, account, QOS...) and SLURM_CONF included
    options = slurm_options(requirement)
    launcher = PatientSlurmLauncher(
        options=options, interval=poll_interval(), binpath=binpath
    )
    # (SLURM does not confine a job to its cores on every cluster)
    set_job_environment(launcher, int(options.cpus_per_task))
    return launcher
