"""Where experimaestro runs the jobs: ``find_launcher(requirements, tags)``.

experimaestro loads this file from its configuration folder,
``~/.config/experimaestro/launchers.py`` (or the folder given with
``--xpm-config-dir``), and calls ``find_launcher`` each time an experiment
asks for a launcher, e.g. ``find_launcher("duration=1h & cpu(cores=4)")``.
It returns the first launcher that can satisfy the requirement.

This file must stand alone (experimaestro loads it by path, not as a module
of the project), so it imports nothing from ``mnist_xp``.
"""

import logging
import os

from experimaestro.connectors.local import LocalConnector
from experimaestro.launcherfinder import HostRequirement
from experimaestro.launcherfinder.specs import HostSimpleRequirement
from experimaestro.launchers import Launcher
from experimaestro.launchers.direct import DirectLauncher

logger = logging.getLogger("xpm.launchers")


def gpu_count() -> int:
    """Number of CUDA GPUs on this machine (0 when PyTorch sees none)"""
    try:
        import torch

        return torch.cuda.device_count()
    except ImportError:
        return 0


def local_launcher(requirement: HostSimpleRequirement) -> Launcher:
    """Runs the job on this machine, as many at once as the cores allow

    Every local job takes as many "core" tokens as the cores it asks for (at
    most the machine's cores), and experimaestro starts a job only when its
    tokens are free. The job learns its share through ``MNIST_XP_CORES``.
    """
    total = os.cpu_count() or 1
    cores = min(max(requirement.cpu.cores, 1), total)
    connector = LocalConnector.instance()
    token = connector.createtoken("mnist-xp-cores", total)

    launcher = DirectLauncher(connector)
    launcher.setenv("MNIST_XP_CORES", str(cores))
    launcher.addListener(lambda job: job.dependencies.add(token.dependency(cores)))

    if requirement.accelerators and gpu_count() == 0:
        logger.warning(
            "The requirement asks for a GPU but this machine has none:"
            " the jobs will run on the CPU (%d cores each)",
            cores,
        )
    elif not requirement.accelerators:
        # A job that did not ask for a GPU must not take one
        launcher.setenv("CUDA_VISIBLE_DEVICES", "")
    return launcher


def find_launcher(requirement: HostRequirement, tags: set[str] = set()) -> Launcher:
    """Returns a launcher for the first alternative of ``A | B`` requirements
    that can be met (experimaestro passes the parsed requirement string)"""
    for alternative in requirement.requirements:
        return local_launcher(alternative)
